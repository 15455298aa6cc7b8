// Command echo is the integration tests' backend: a tiny HTTP server, built static and imported
// into a FROM-scratch image. It answers every request with who it is, so that tests can tell
// replicas apart; on /_headers it answers the request's headers instead, one "Name: value" line
// each, sorted.
//
// Environment: ECHO_PORTS (comma separated, default 80), ECHO_NAME (default: the hostname),
// ECHO_TCP_PORTS (raw TCP: greets with "name=NAME\n", then echoes every line back),
// ECHO_STOP_GRACE (a duration: on SIGTERM keep serving this long before shutting down, as an
// application with a pre-stop delay does; default 0, stop at once).
// Backend protocols other than HTTP, for VIRTUAL_PROTO (each a comma separated list of ports,
// default none; each answers the same line as HTTP with " proto=..." added):
// ECHO_UWSGI_PORTS (the uwsgi protocol, answered with a raw HTTP/1.1 response as uWSGI apps do:
// " proto=uwsgi"), ECHO_FCGI_PORTS (FastCGI: " proto=fastcgi root=DOCUMENT_ROOT
// script=SCRIPT_FILENAME"), ECHO_H2C_PORTS (cleartext HTTP/2 with prior knowledge, for grpc_pass,
// and HTTP/1.x too: " proto=HTTP/2.0 ct=CONTENT_TYPE"; a request whose content type starts with
// application/grpc gets the line as one gRPC message and the trailer Grpc-Status: 0) and
// ECHO_H2TLS_PORTS (the same over TLS with ALPN h2, for grpcs, with a self-signed certificate
// made at start).
// "echo health" is a healthcheck command: it exits 0 when the first port answers; "echo unhealthy"
// always exits 1. Docker runs --health-cmd through "/bin/sh -c", and a FROM-scratch image has no
// shell, so the image also holds this binary as /bin/sh, which understands just those two.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if filepath.Base(os.Args[0]) == "sh" && len(os.Args) == 3 && os.Args[1] == "-c" {
		words := strings.Fields(os.Args[2])
		if len(words) == 2 && filepath.Base(words[0]) == "echo" {
			os.Exit(healthcheck(words[1]))
		}
		os.Exit(127)
	}
	if len(os.Args) > 1 {
		os.Exit(healthcheck(os.Args[1]))
	}
	hostname, _ := os.Hostname()
	name := os.Getenv("ECHO_NAME")
	if name == "" {
		name = hostname
	}
	ports := os.Getenv("ECHO_PORTS")
	if ports == "" {
		ports = "80"
	}
	// SIGHUPs are counted and reported, so that a test can use an echo container as a stand-in
	// proxy and see vhost-gen's reload signals arrive.
	var hups atomic.Int64
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			hups.Add(1)
		}
	}()
	echoLine = func(port, host, path, xff string) string {
		return fmt.Sprintf("name=%s port=%s host=%s path=%s xff=%s hups=%d id=%s", name, port, host, path, xff, hups.Load(), hostname)
	}
	var servers []*http.Server
	for _, p := range strings.Split(ports, ",") {
		port := strings.TrimSpace(p)
		srv := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Echo-Name", name)
				if r.URL.Path == "/_headers" {
					writeHeaders(w, r)
					return
				}
				fmt.Fprintln(w, echoLine(port, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For")))
			})}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(1)
			}
		}()
	}
	for _, p := range listPorts("ECHO_TCP_PORTS") {
		go serveTCP(":"+p, name)
	}
	for _, p := range listPorts("ECHO_UWSGI_PORTS") {
		go serveUWSGI(listen(p), p, name)
	}
	for _, p := range listPorts("ECHO_FCGI_PORTS") {
		ln := listen(p)
		go fcgi.Serve(ln, fcgiHandler(p, name))
	}
	for _, p := range listPorts("ECHO_H2C_PORTS") {
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h2Handler(p, name), Protocols: new(http.Protocols)}
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		servers = append(servers, srv)
		ln := listen(p)
		go srv.Serve(ln)
	}
	if tlsPorts := listPorts("ECHO_H2TLS_PORTS"); len(tlsPorts) > 0 {
		cert, err := selfSigned(hostname)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		for _, p := range tlsPorts {
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h2Handler(p, name),
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}}
			servers = append(servers, srv)
			ln := tls.NewListener(listen(p), srv.TLSConfig)
			go srv.Serve(ln)
		}
	}
	// Stop on SIGTERM, at once unless ECHO_STOP_GRACE says otherwise, so that container stops and
	// restarts are quick.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	if grace, err := time.ParseDuration(os.Getenv("ECHO_STOP_GRACE")); err == nil {
		time.Sleep(grace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(ctx)
	}
}

// echoLine formats the line every request is answered with, whatever the protocol (without its
// newline); main sets it.
var echoLine func(port, host, path, xff string) string

// listPorts is the ports an ECHO_*_PORTS variable lists, none by default.
func listPorts(env string) []string {
	var ports []string
	for _, p := range strings.Split(os.Getenv(env), ",") {
		if p = strings.TrimSpace(p); p != "" {
			ports = append(ports, p)
		}
	}
	return ports
}

// listen listens on a TCP port, or exits.
func listen(port string) net.Listener {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	return ln
}

// maxUWSGI bounds a uwsgi request: the packet's vars (a 16-bit size, so at most 64 KiB anyway)
// and its body each.
const maxUWSGI = 64 << 10

// serveUWSGI answers the uwsgi protocol: each connection carries one packet (a 4-byte header:
// modifier1 0, a 16-bit little-endian size, modifier2 0; then that many bytes of vars, each a
// 16-bit little-endian length and key, and a length and value), then CONTENT_LENGTH bytes of
// body. The answer is a raw HTTP/1.1 response, as uWSGI applications send, and the connection
// closes.
func serveUWSGI(ln net.Listener, port, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			status, body := uwsgiAnswer(bufio.NewReader(c), port)
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nX-Echo-Name: %s\r\nConnection: close\r\n\r\n%s",
				status, http.StatusText(status), len(body), name, body)
		}()
	}
}

// uwsgiAnswer reads one uwsgi request and makes its answer's status and body.
func uwsgiAnswer(r *bufio.Reader, port string) (int, string) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return http.StatusBadRequest, "bad uwsgi header\n"
	}
	size := int(binary.LittleEndian.Uint16(head[1:3]))
	if head[0] != 0 || head[3] != 0 || size > maxUWSGI {
		return http.StatusBadRequest, fmt.Sprintf("unsupported uwsgi packet: modifier1=%d modifier2=%d size=%d\n", head[0], head[3], size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return http.StatusBadRequest, "short uwsgi packet\n"
	}
	vars := map[string]string{}
	for len(data) > 0 {
		key, rest, ok := uwsgiString(data)
		if !ok {
			return http.StatusBadRequest, "bad uwsgi vars\n"
		}
		value, rest, ok := uwsgiString(rest)
		if !ok {
			return http.StatusBadRequest, "bad uwsgi vars\n"
		}
		vars[key], data = value, rest
	}
	if cl := vars["CONTENT_LENGTH"]; cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return http.StatusBadRequest, "bad CONTENT_LENGTH\n"
		}
		if n > maxUWSGI {
			return http.StatusRequestEntityTooLarge, "body too large\n"
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return http.StatusBadRequest, "short body\n"
		}
	}
	path := vars["PATH_INFO"]
	if path == "" {
		path, _, _ = strings.Cut(vars["REQUEST_URI"], "?")
	}
	return http.StatusOK, echoLine(port, vars["HTTP_HOST"], path, vars["HTTP_X_FORWARDED_FOR"]) + " proto=uwsgi\n"
}

// uwsgiString splits a 16-bit little-endian length-prefixed string off b.
func uwsgiString(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

// fcgiHandler answers FastCGI requests with the line, the protocol, and the DOCUMENT_ROOT and
// SCRIPT_FILENAME params, so that a test can see VIRTUAL_ROOT reach the backend.
func fcgiHandler(port, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-Name", name)
		if r.URL.Path == "/_headers" {
			writeHeaders(w, r)
			return
		}
		env := fcgi.ProcessEnv(r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s proto=fastcgi root=%s script=%s\n", echoLine(port, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For")), env["DOCUMENT_ROOT"], env["SCRIPT_FILENAME"])
	})
}

// h2Handler answers the line with the request's protocol and content type; a gRPC request (its
// content type application/grpc...) gets it as a gRPC answer would be: one message frame (a
// zero compressed flag, a 32-bit big-endian length, the bytes) and the trailer Grpc-Status 0.
func h2Handler(port, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo-Name", name)
		io.Copy(io.Discard, io.LimitReader(r.Body, maxUWSGI))
		ct := r.Header.Get("Content-Type")
		line := fmt.Sprintf("%s proto=%s ct=%s\n", echoLine(port, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For")), r.Proto, ct)
		if !strings.HasPrefix(ct, "application/grpc") {
			if r.URL.Path == "/_headers" {
				writeHeaders(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, line)
			return
		}
		w.Header().Set("Content-Type", "application/grpc")
		frame := make([]byte, 5, 5+len(line))
		binary.BigEndian.PutUint32(frame[1:], uint32(len(line)))
		w.Write(append(frame, line...))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
}

// selfSigned makes a self-signed ECDSA certificate for the hostname, localhost and the loopback
// addresses, for the TLS ports.
func selfSigned(hostname string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "echo"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if hostname != "" && hostname != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// writeHeaders answers the request's headers, one "Name: value" line each, sorted: the Host
// header too, and a header sent several times once, its values joined with ", " (which means the
// same in HTTP).
func writeHeaders(w http.ResponseWriter, r *http.Request) {
	lines := []string{"Host: " + r.Host}
	for k, vs := range r.Header {
		lines = append(lines, k+": "+strings.Join(vs, ", "))
	}
	sort.Strings(lines)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strings.Join(lines, "\n")+"\n")
}

// serveTCP greets each connection with the server's name and echoes lines back.
func serveTCP(addr, name string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprintf(c, "name=%s\n", name)
			io.Copy(c, c)
		}()
	}
}

func healthcheck(mode string) int {
	if mode != "health" {
		return 1
	}
	port, _, _ := strings.Cut(os.Getenv("ECHO_PORTS")+",", ",")
	if _, err := strconv.Atoi(port); err != nil {
		port = "80"
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	return 0
}
