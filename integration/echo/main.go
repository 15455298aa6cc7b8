// Command echo is the integration tests' backend: a tiny HTTP server, built static and imported
// into a FROM-scratch image. It answers every request with who it is, so that tests can tell
// replicas apart; on /_headers it answers the request's headers instead, one "Name: value" line
// each, sorted.
//
// Environment: ECHO_PORTS (comma separated, default 80), ECHO_NAME (default: the hostname),
// ECHO_TCP_PORTS (raw TCP: greets with "name=NAME\n", then echoes every line back),
// ECHO_STOP_GRACE (a duration: on SIGTERM keep serving this long before shutting down, as an
// application with a pre-stop delay does; default 0, stop at once).
// "echo health" is a healthcheck command: it exits 0 when the first port answers; "echo unhealthy"
// always exits 1. Docker runs --health-cmd through "/bin/sh -c", and a FROM-scratch image has no
// shell, so the image also holds this binary as /bin/sh, which understands just those two.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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
				fmt.Fprintf(w, "name=%s port=%s host=%s path=%s xff=%s hups=%d id=%s\n", name, port, r.Host, r.URL.Path, r.Header.Get("X-Forwarded-For"), hups.Load(), hostname)
			})}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				fmt.Fprintln(os.Stderr, "echo:", err)
				os.Exit(1)
			}
		}()
	}
	for _, p := range strings.Split(os.Getenv("ECHO_TCP_PORTS"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			go serveTCP(":"+p, name)
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
