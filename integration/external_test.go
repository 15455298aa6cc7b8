package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExternalPorts: a port mapping in front of the proxy (EXTERNAL_HTTP_PORT=8080 and
// EXTERNAL_HTTPS_PORT=10443, from the environment as the gateway image reads them). Redirects to
// HTTPS name 10443, not the port the proxy listens on; backends see 8080 and 10443 in
// X-Forwarded-Port, on HTTP and HTTPS; nginx's own redirect (a path's trailing slash) is relative.
// SERVER_TOKENS on a container is its site's (nginx); a container's EXTERNAL_HTTPS_PORT is a
// warning and the container is still served.
func TestExternalPorts(t *testing.T) {
	t.Parallel()
	forEachProxy(t, externalPorts)
}

func externalPorts(t *testing.T, proxy string) {
	label := testLabel(t)
	d := label + ".test"
	dir := t.TempDir()
	writeCert(t, dir, d, "*."+d)
	te := newTLSEnvWith(t, proxy, dir, []string{"EXTERNAL_HTTP_PORT=8080", "EXTERNAL_HTTPS_PORT=10443"}, "--acme=false")
	h := func(n string) string { return n + "." + d }
	te.run("redir", "-e", "VIRTUAL_HOST="+h("redir"))
	te.run("both", "-e", "VIRTUAL_HOST="+h("both"), "-e", "HTTPS_METHOD=noredirect", "-e", "SERVER_TOKENS=off")
	te.run("api", "-e", "VIRTUAL_HOST="+h("both"), "-e", "HTTPS_METHOD=noredirect", "-e", "VIRTUAL_PATH=/api/")
	te.run("loud", "-e", "VIRTUAL_HOST="+h("loud"), "-e", "HTTPS_METHOD=noredirect", "-e", "EXTERNAL_HTTPS_PORT=9443")

	te.waitAnswer("redirect names the external HTTPS port", "GET", h("redir"), "/x?y=1", false,
		answer{Status: 301, Location: "https://redir.L.test:10443/x?y=1"})
	te.waitAnswer("HTTP: X-Forwarded-Port 8080", "GET", h("both"), "/_headers", false,
		answer{Status: 200, Served: "both", XFProto: "http", XFSsl: "off", XFPort: "8080"})
	te.waitAnswer("HTTPS: X-Forwarded-Port 10443", "GET", h("both"), "/_headers", true,
		answer{Status: 200, Served: "both", XFProto: "https", XFSsl: "on", XFPort: "10443", Cert: "L.test"})
	te.waitAnswer("a container's EXTERNAL_HTTPS_PORT is ignored", "GET", h("loud"), "/_headers", false,
		answer{Status: 200, Served: "loud", XFProto: "http", XFSsl: "off", XFPort: "8080"})
	te.waitFor("loud's warning", func() error { // the table is published just after the reload
		if p := te.problem("loud"); !strings.Contains(p, "EXTERNAL_HTTPS_PORT: ignored") {
			return fmt.Errorf("loud's problem %q, want a warning that EXTERNAL_HTTPS_PORT is ignored", p)
		}
		return nil
	})
	if proxy != "nginx" {
		return // HAProxy names itself nowhere and redirects no path of its own
	}
	te.waitAnswer("nginx's trailing-slash redirect is relative", "GET", h("both"), "/api", false,
		answer{Status: 301, Location: "/api/"})
	server := func(host string) string {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", te.port), nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return resp.Header.Get("Server") + " " + strconv.Itoa(resp.StatusCode)
	}
	if got := server(h("both")); got != "nginx 200" {
		t.Errorf("SERVER_TOKENS=off site: Server %q, want nginx without its version", got)
	}
	if got := server(h("loud")); !strings.HasPrefix(got, "nginx/") {
		t.Errorf("site without SERVER_TOKENS: Server %q, want nginx's version (the gateway's default)", got)
	}
}

// TestProxyProtocol: ENABLE_PROXY_PROTOCOL, a load balancer in front that speaks the PROXY
// protocol. On HTTP and HTTPS the client is the address the header names: in X-Real-IP and
// X-Forwarded-For, and for NETWORK_ACCESS=internal (a public one gets 403, a private one is let
// in); a connection without the header is not served.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	forEachProxy(t, proxyProtocol)
}

func proxyProtocol(t *testing.T, proxy string) {
	label := testLabel(t)
	d := label + ".test"
	dir := t.TempDir()
	writeCert(t, dir, d, "*."+d)
	te := newTLSEnvWith(t, proxy, dir, []string{"ENABLE_PROXY_PROTOCOL=true"}, "--acme=false")
	h := func(n string) string { return n + "." + d }
	te.run("open", "-e", "VIRTUAL_HOST="+h("open"), "-e", "HTTPS_METHOD=noredirect")
	te.run("inside", "-e", "VIRTUAL_HOST="+h("inside"), "-e", "HTTPS_METHOD=noredirect", "-e", "NETWORK_ACCESS=internal")

	for _, https := range []bool{false, true} {
		te.waitFor(fmt.Sprintf("the PROXY header's client (https %v)", https), func() error {
			status, hs := te.viaBalancer("198.51.100.7", h("open"), "/_headers", https)
			if status != 200 || hs["X-Real-Ip"] != "198.51.100.7" || hs["X-Forwarded-For"] != "198.51.100.7" {
				return fmt.Errorf("status %d, X-Real-IP %q, X-Forwarded-For %q", status, hs["X-Real-Ip"], hs["X-Forwarded-For"])
			}
			if status, _ := te.viaBalancer("198.51.100.7", h("inside"), "/", https); status != 403 {
				return fmt.Errorf("NETWORK_ACCESS=internal, a public client: %d, want 403", status)
			}
			if status, _ := te.viaBalancer("10.1.2.3", h("inside"), "/", https); status != 200 {
				return fmt.Errorf("NETWORK_ACCESS=internal, a private client: %d, want 200", status)
			}
			return nil
		})
	}
	if status, body := te.get(h("open"), "/"); status == 200 {
		t.Errorf("a connection without a PROXY header was served: %d %q", status, body)
	}
}

// viaBalancer sends one request as a load balancer does: a PROXY protocol v1 header naming the
// client src, then the request (over TLS with https). It returns the status and, for /_headers,
// the headers the echo backend received.
func (te *tlsEnv) viaBalancer(src, host, path string, https bool) (int, map[string]string) {
	port := te.port
	if https {
		port = te.httpsPort
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 3*time.Second)
	if err != nil {
		return 0, nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	conn := c
	fmt.Fprintf(conn, "PROXY TCP4 %s 127.0.0.1 40000 %d\r\n", src, port)
	if https {
		conn = tls.Client(c, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, echoHeaders(string(body))
}
