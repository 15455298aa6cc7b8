package render

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// The tests in this file render one table with HTTPS, run the real nginx and the real HAProxy on
// it in turn (on 127.0.0.1, with the test certificates), send both the same requests over HTTP
// and HTTPS, and check what each answers — and that both answer the same.

// startNginx writes the rendered config with a main config that includes it, has nginx check
// it, and runs nginx (one process, in the foreground) until the test ends; it returns once nginx
// accepts connections at ready.
func startNginx(t *testing.T, conf []byte, ready string) {
	t.Helper()
	requireBinary(t, "nginx")
	dir := t.TempDir()
	file := filepath.Join(dir, "vhost-gen.conf")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := apply.NginxCheck("nginx")(context.Background(), file); err != nil {
		t.Fatalf("nginx -t rejects the rendered config: %v\n%s", err, conf)
	}
	main := fmt.Sprintf("daemon off;\nmaster_process off;\npid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n    access_log off;\n    include %s;\n}\n", dir, file)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := exec.Command("nginx", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", "stderr")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // master_process off: no worker is left behind
		<-exited
		if t.Failed() {
			t.Logf("nginx's output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nginx exited at start: %v\n%s", err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", ready, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not accept connections at %s after 10s:\n%s", ready, out.String())
		}
	}
}

// acmeResponder stands for vhost-gen's HTTP-01 responder: it knows one token.
func acmeResponder(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Responder", "acme")
		switch {
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.URL.Path == "/.well-known/acme-challenge/known-token":
			io.WriteString(w, "known-token.key-authorization")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// tlsSeen is what a test compares of one answer: the status and the headers the contract is
// about, what the backend received, and the certificate (its first name), or how the handshake
// was refused ("refused: " and the error). Ports are written P80 and P443.
type tlsSeen struct {
	Status                     int
	Location, STS              string
	Served, XFP, XFSsl, XFPort string
	Responder                  bool
	Cert                       string
}

func (s tlsSeen) String() string {
	type plain tlsSeen
	return fmt.Sprintf("%+v", plain(s))
}

// tlsCase is one request: over HTTPS with SNI (empty: the host's; "-": none) and TLS versions,
// or over HTTP.
type tlsCase struct {
	name                   string
	https                  bool
	method, host, path     string
	sni                    string
	minVersion, maxVersion uint16
	want                   tlsSeen
	// anyRefusal: only that the handshake fails is compared (the proxies' alerts differ).
	anyRefusal bool
	// haproxyOnly: nginx 1.22 cannot do it (see the report in the test); not compared.
	haproxyOnly bool
	// nginxWant: nginx's answer where the proxies differ on purpose (nil: want); not compared.
	nginxWant *tlsSeen
}

// tlsLive is a proxy running a rendered config: where it listens.
type tlsLive struct {
	http, https string
}

// do sends one request on a connection of its own, written by hand so that any Host can be sent.
func (l tlsLive) do(t *testing.T, c tlsCase) tlsSeen {
	t.Helper()
	_, p80, _ := net.SplitHostPort(l.http)
	_, p443, _ := net.SplitHostPort(l.https)
	host := strings.ReplaceAll(c.host, "P80", p80)
	var seen tlsSeen
	var conn net.Conn
	var err error
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if c.https {
		sni := c.sni
		switch sni {
		case "":
			sni = strings.ToLower(host)
		case "-":
			sni = ""
		}
		cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true, MinVersion: c.minVersion, MaxVersion: c.maxVersion}
		var tc *tls.Conn
		if tc, err = tls.DialWithDialer(dialer, "tcp", l.https, cfg); err != nil {
			return tlsSeen{Cert: "refused: " + err.Error()}
		}
		leaf := tc.ConnectionState().PeerCertificates[0]
		seen.Cert = leaf.DNSNames[0]
		conn = tc
	} else if conn, err = dialer.Dial("tcp", l.http); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	method := orDefault(c.method, "GET")
	body := ""
	if method != "GET" && method != "HEAD" {
		body = "Content-Length: 0\r\n"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", method, orDefault(c.path, "/"), host, body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ports := strings.NewReplacer(":"+p443, ":P443", ":"+p80, ":P80")
	seen.Status = resp.StatusCode
	seen.Location = ports.Replace(resp.Header.Get("Location"))
	seen.STS = strings.Join(resp.Header.Values("Strict-Transport-Security"), " | ")
	seen.Served = resp.Header.Get("X-Served-By")
	seen.XFP, seen.XFSsl = resp.Header.Get("X-Got-XFP"), resp.Header.Get("X-Got-XFSsl")
	seen.XFPort = strings.NewReplacer(p443, "P443", p80, "P80").Replace(resp.Header.Get("X-Got-XFPort"))
	seen.Responder = resp.Header.Get("X-Responder") != ""
	return seen
}

func orDefault(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// TestTLSLive runs nginx and HAProxy on the same HTTPS table, without and with a default
// certificate, and checks nginx-proxy's contract on both: redirects (codes, Location with the
// HTTPS port), HSTS (on errors too, never with noredirect, the backend's replaced), nohttp and
// nohttps, the certificate per SNI, the handshake refused for names without one (or the default
// certificate and 503), ACME challenges on HTTP for every host, the forwarded headers over HTTPS.
// Both proxies must answer every request the same, but one: with a default certificate that is
// not trusted, nginx refuses the handshake for a site's name without a certificate, as
// nginx-proxy does, where HAProxy 2.6 (which cannot refuse one name while a default certificate
// is loaded) shows the default certificate and answers 503.
func TestTLSLive(t *testing.T) {
	requireBinary(t, "nginx")
	requireBinary(t, "haproxy")
	const lo = "127.0.0.1"
	responder := acmeResponder(t)
	backends := map[string]*liveBackend{}
	port := func(name string) int {
		if backends[name] == nil {
			backends[name] = newLiveBackend(t, name, false)
		}
		return backends[name].port()
	}
	const nonGet = "com.github.nginx-proxy.nginx-proxy.non-get-redirect"
	ws := []discovery.Workload{
		ctr("redirect", lo, with(host("redirect.example.com"), "NON_GET_REDIRECT", "307"), port("redirect")),
		ctr("r308", lo, with(host("r308.example.com"), nonGet, "308"), port("r308")),
		ctr("noredirect", lo, with(host("noredirect.example.com"), "HTTPS_METHOD", "noredirect"), port("noredirect")),
		ctr("nohttp", lo, with(host("nohttp.example.com"), "HTTPS_METHOD", "nohttp"), port("nohttp")),
		ctr("nohttps", lo, with(host("nohttps.example.com"), "HTTPS_METHOD", "nohttps"), port("nohttps")),
		ctr("acme", lo, with(host("acme.example.com"), "HTTPS_METHOD", "nohttp", "ACME_HOST", "acme.example.com"), port("acme")),
		ctr("other", lo, host("other.example.com"), port("other")),    // a certificate of its own
		ctr("nocert", lo, host("nocert.example.net"), port("nocert")), // none: served over HTTP only
		ctr("wild", lo, host("*.wild.example.com"), port("wild")),
		ctr("docs", lo, with(host("docs.example.com"), "VIRTUAL_PATH", "/v2/"), port("docs")),
		ctr("modern", lo, with(host("modern.example.com"), "SSL_POLICY", "Mozilla-Modern"), port("modern")),
		ctr("custom", lo, with(host("custom.example.com"), "HSTS", "max-age=600; includeSubDomains"), port("custom")),
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	const sts = "max-age=31536000"
	served := func(name, proto, sts string) tlsSeen {
		s := tlsSeen{Status: 200, Served: name, XFP: proto, XFSsl: "off", XFPort: "P80", STS: sts}
		if proto == "https" {
			s.XFSsl, s.XFPort, s.Cert = "on", "P443", "example.com"
		}
		return s
	}
	redirect := func(code int, to string) tlsSeen { return tlsSeen{Status: code, Location: to} }
	acme := tlsSeen{Status: 200, Responder: true}
	for _, withDefault := range []bool{false, true} {
		// A name without a certificate: refused at the handshake, or the default certificate and
		// 503.
		noCert := tlsSeen{Cert: "refused: remote error: tls: unrecognized name"}
		noSNI := noCert
		var siteNoCertNginx *tlsSeen // nginx, a site's name: refused, as nginx-proxy does
		if withDefault {
			siteNoCertNginx = &tlsSeen{Cert: noCert.Cert}
			noCert = tlsSeen{Status: 503, Cert: "default.invalid"}
			// Then the Host chooses the site, as always.
			noSNI = served("redirect", "https", sts)
			noSNI.Cert = "default.invalid"
		}
		cases := []tlsCase{
			// HTTP: redirect with the HTTPS port, 301 for GET and HEAD, NON_GET_REDIRECT otherwise.
			{name: "GET redirect", host: "redirect.example.com", path: "/a?b=1", want: redirect(301, "https://redirect.example.com:P443/a?b=1")},
			{name: "HEAD redirect", method: "HEAD", host: "redirect.example.com", path: "/a", want: redirect(301, "https://redirect.example.com:P443/a")},
			{name: "POST redirect", method: "POST", host: "redirect.example.com", path: "/form", want: redirect(307, "https://redirect.example.com:P443/form")},
			{name: "OPTIONS redirect", method: "OPTIONS", host: "redirect.example.com", want: redirect(307, "https://redirect.example.com:P443/")},
			{name: "host with port", host: "Redirect.Example.COM:P80", path: "/x", want: redirect(301, "https://redirect.example.com:P443/x")},
			{name: "GET 308", host: "r308.example.com", want: redirect(301, "https://r308.example.com:P443/")},
			{name: "PUT 308", method: "PUT", host: "r308.example.com", want: redirect(308, "https://r308.example.com:P443/")},
			{name: "PATCH 308", method: "PATCH", host: "r308.example.com", want: redirect(308, "https://r308.example.com:P443/")},
			{name: "DELETE 308", method: "DELETE", host: "r308.example.com", want: redirect(308, "https://r308.example.com:P443/")},
			{name: "wildcard redirect", host: "X.wild.example.com", path: "/p", want: redirect(301, "https://x.wild.example.com:P443/p")},
			{name: "wildcard, not a host name", host: "evil.test?.wild.example.com", want: tlsSeen{Status: 400}},
			{name: "no root, redirected", host: "docs.example.com", path: "/x", want: redirect(301, "https://docs.example.com:P443/x")},
			{name: "HTTP noredirect", host: "noredirect.example.com", want: served("noredirect", "http", "")},
			{name: "HTTP nohttps", host: "nohttps.example.com", want: served("nohttps", "http", "")},
			{name: "HTTP without a certificate", host: "nocert.example.net", want: served("nocert", "http", "")},
			{name: "HTTP nohttp", host: "nohttp.example.com", want: tlsSeen{Status: 503}},
			{name: "HTTP nohttp with ACME", host: "acme.example.com", want: tlsSeen{Status: 503}},
			{name: "HTTP unknown", host: "unknown.example.org", want: tlsSeen{Status: 503}},
			// ACME challenges: for every host on HTTP, never redirected, whatever the method.
			{name: "ACME nohttp", host: "nohttp.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME nohttp with ACME", host: "acme.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME redirect", host: "redirect.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME wildcard", host: "x.wild.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME noredirect", host: "noredirect.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME nohttps", host: "nohttps.example.com", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME unknown host", host: "unknown.example.org", path: "/.well-known/acme-challenge/known-token", want: acme},
			{name: "ACME unknown token", host: "redirect.example.com", path: "/.well-known/acme-challenge/other", want: tlsSeen{Status: 404, Responder: true}},
			{name: "ACME POST", method: "POST", host: "redirect.example.com", path: "/.well-known/acme-challenge/known-token", want: tlsSeen{Status: 405, Responder: true}},
			// HTTPS: served with HSTS (replacing the backend's, on errors too) and the forwarded
			// headers of the HTTPS port.
			{name: "HTTPS redirect", https: true, host: "redirect.example.com", want: served("redirect", "https", sts)},
			{name: "HTTPS backend's HSTS replaced", https: true, host: "redirect.example.com", path: "/?sts=1", want: served("redirect", "https", sts)},
			{name: "HTTPS 404 has HSTS", https: true, host: "docs.example.com", want: tlsSeen{Status: 404, STS: sts, Cert: "example.com"}},
			{name: "HTTPS path", https: true, host: "docs.example.com", path: "/v2/x", want: served("docs", "https", sts)},
			{name: "HTTPS noredirect: no HSTS", https: true, host: "noredirect.example.com", want: served("noredirect", "https", "")},
			{name: "HTTPS noredirect: the backend's HSTS", https: true, host: "noredirect.example.com", path: "/?sts=1", want: served("noredirect", "https", "backend")},
			{name: "HTTPS nohttp", https: true, host: "nohttp.example.com", want: served("nohttp", "https", sts)},
			{name: "HTTPS nohttp with ACME", https: true, host: "acme.example.com", want: served("acme", "https", sts)},
			{name: "HTTPS custom HSTS", https: true, host: "custom.example.com", want: served("custom", "https", "max-age=600; includeSubDomains")},
			{name: "HTTPS wildcard", https: true, host: "x.wild.example.com", want: served("wild", "https", sts)},
			{name: "HTTPS own certificate", https: true, host: "other.example.com", want: func() tlsSeen {
				s := served("other", "https", sts)
				s.Cert = "other.example.com"
				return s
			}()},
			{name: "HTTPS ACME path goes to the site", https: true, host: "redirect.example.com", path: "/.well-known/acme-challenge/known-token", want: served("redirect", "https", sts)},
			{name: "HTTPS Host of another site", https: true, sni: "redirect.example.com", host: "noredirect.example.com", want: served("noredirect", "https", "")},
			{name: "HTTPS Host unknown", https: true, sni: "redirect.example.com", host: "unknown.example.org", want: tlsSeen{Status: 503, Cert: "example.com"}},
			{name: "HTTPS Host nohttps", https: true, sni: "redirect.example.com", host: "nohttps.example.com", want: tlsSeen{Status: 503, Cert: "example.com"}},
			// Names without a certificate.
			{name: "SNI unknown", https: true, host: "unknown.example.org", want: noCert},
			{name: "SNI nohttps", https: true, host: "nohttps.example.com", want: noCert},
			{name: "SNI without a certificate", https: true, host: "nocert.example.net", want: noCert, nginxWant: siteNoCertNginx},
			{name: "no SNI", https: true, sni: "-", host: "redirect.example.com", want: noSNI},
			// SSL policies.
			{name: "Modern over TLS 1.3", https: true, host: "modern.example.com", minVersion: tls.VersionTLS13, want: served("modern", "https", sts)},
			{name: "Intermediate refuses TLS 1.1", https: true, host: "redirect.example.com", minVersion: tls.VersionTLS10, maxVersion: tls.VersionTLS11,
				want: tlsSeen{Cert: "refused"}, anyRefusal: true},
			// nginx 1.22 settles the protocol version with the default server's list (the
			// policies' union), before SNI: there a Modern site takes TLS 1.2 as long as another
			// site's policy does.
			{name: "Modern refuses TLS 1.2", https: true, host: "modern.example.com", maxVersion: tls.VersionTLS12,
				want: tlsSeen{Cert: "refused"}, anyRefusal: true, haproxyOnly: true},
		}
		name := "strict-sni"
		if withDefault {
			name = "default-cert"
		}
		t.Run(name, func(t *testing.T) {
			seen := map[string]map[string]tlsSeen{}
			for _, proxy := range []string{"nginx", "haproxy"} {
				t.Run(proxy, func(t *testing.T) {
					httpAddr, httpsAddr := lo+":"+strconv.Itoa(freePort(t)), lo+":"+strconv.Itoa(freePort(t))
					_, p443, _ := net.SplitHostPort(httpsAddr)
					n443, _ := strconv.Atoi(p443)
					ts := &tlsScenario{https: httpsAddr, port: n443, acme: true, acmeResponder: responder, defaultCert: withDefault}
					store := newTestStore(testdata+"/", ts)
					table := routing.Build(ws, routing.Options{ProxyNetworks: []string{"frontend"}, TLS: ts.routingOptions(store)})
					for _, p := range table.Problems {
						if !p.Warning {
							t.Fatalf("problem: %v", p)
						}
					}
					o := ts.renderOptions(Options{Listen: httpAddr, Runtime: filepath.Join(t.TempDir(), "admin.sock")}, store, testdata+"/")
					o.CrtList = filepath.Join(t.TempDir(), "crt-list")
					writeTLSFiles(t, table.Sites, o.CrtList)
					r, err := Load(proxy, "")
					if err != nil {
						t.Fatal(err)
					}
					cfg, err := r.Render(NewData(table, o))
					if err != nil {
						t.Fatal(err)
					}
					if proxy == "nginx" {
						startNginx(t, cfg, httpAddr)
					} else {
						startHAProxy(t, cfg, httpAddr)
					}
					l := tlsLive{http: httpAddr, https: httpsAddr}
					seen[proxy] = map[string]tlsSeen{}
					for _, c := range cases {
						got := l.do(t, c)
						if c.anyRefusal && strings.HasPrefix(got.Cert, "refused: remote error: tls: ") {
							got = tlsSeen{Cert: "refused"}
						}
						seen[proxy][c.name] = got
						if c.haproxyOnly && proxy != "haproxy" {
							t.Logf("%s (not expected of nginx 1.22): %v", c.name, got)
							continue
						}
						want := c.want
						if c.nginxWant != nil && proxy == "nginx" {
							want = *c.nginxWant
						}
						if got != want {
							t.Errorf("%s:\n got %v\nwant %v", c.name, got, want)
						}
					}
				})
			}
			if len(seen) != 2 {
				return
			}
			for _, c := range cases {
				if n, h := seen["nginx"][c.name], seen["haproxy"][c.name]; n != h && !c.haproxyOnly && c.nginxWant == nil {
					t.Errorf("%s: nginx and HAProxy differ:\n nginx   %v\n haproxy %v", c.name, n, h)
				}
			}
		})
	}
}
