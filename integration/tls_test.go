package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsCase is one request and what must come back.
type tlsCase struct {
	name         string
	method       string // GET when empty
	host, path   string // host: short name, under the test's domain; path "/" when empty
	https        bool
	want         answer
	ignoreHeader bool // compare without STS (selection cases are about the certificate)
}

// check polls each case until it answers as wanted (the config of the containers just started
// may still be on its way), in order.
func (te *tlsEnv) check(cases []tlsCase) {
	te.t.Helper()
	for _, c := range cases {
		method, path := c.method, c.path
		if method == "" {
			method = "GET"
		}
		if path == "" {
			path = "/"
		}
		host := c.host + "." + te.label + ".test"
		var last answer
		deadline := time.Now().Add(20 * time.Second)
		for {
			last = te.do(method, host, path, c.https)
			if c.ignoreHeader {
				last.STS = ""
			}
			if last == c.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if last != c.want {
			te.t.Errorf("%s (%s %s %s, https %v):\n got %v\nwant %v", c.name, method, host, path, c.https, last, c.want)
		}
	}
}

const unrecognizedName = "remote error: tls: unrecognized name"

// TestTLSCertSelection: nginx-proxy's certificate selection through the whole pipeline, on both
// proxies, with the certificates directory as a user fills it: the exact <host>.crt, the parent
// one level up (never two), CERT_NAME (a wrong one: no HTTPS for the site, no fall-through to
// the default), a .crt without its .key (no HTTPS), and default.crt trusted (served to a host
// without a certificate of its own), untrusted, or absent (every name without a certificate,
// an unknown one or none refused with a TLS alert, never another site's certificate).
//
// A site's name without a usable certificate (none of its own and default.crt untrusted, a wrong
// CERT_NAME, a .crt without its .key) while a default.crt exists: nginx refuses the handshake, as
// nginx-proxy does (test_fallback.py, untrusteddefault.yml: https://missing-cert... →
// unrecognized_name). HAProxy 2.6 cannot refuse one name while a default certificate is loaded:
// there the name goes to the fallback, which shows default.crt and answers 503 — the site is never
// served with it, but the handshake succeeds. Unknown names get the fallback on both.
func TestTLSCertSelection(t *testing.T) {
	t.Parallel()
	forEachProxy(t, func(t *testing.T, proxy string) {
		for _, mode := range []string{"trusted", "untrusted", "nodefault"} {
			t.Run(mode, func(t *testing.T) {
				t.Parallel()
				certSelection(t, proxy, mode)
			})
		}
	})
}

func certSelection(t *testing.T, proxy, mode string) {
	label := testLabel(t) // the env's label: its hosts' domain
	d := label + ".test"
	dir := t.TempDir()
	writeCert(t, dir, "exact."+d, "exact."+d)
	writeCert(t, dir, "par."+d, "*.par."+d)
	writeCert(t, dir, "two."+d, "*.two."+d, "*.y.two."+d) // two levels above x.y.two: never used
	writeCert(t, dir, "shared", "cn."+d)
	crt, _, _ := makeCert(t, "half."+d, "half."+d)
	writeAtomic(t, filepath.Join(dir, "half."+d+".crt"), crt, 0o644) // no .key
	if mode != "nodefault" {
		writeCert(t, dir, "default", "default.invalid")
	}
	flags := []string{"--acme=false"}
	if mode == "untrusted" {
		flags = append(flags, "--trust-default-cert=false")
	}
	te := newTLSEnv(t, proxy, dir, flags...)
	if te.label != label {
		t.Fatalf("label %q, want %q", te.label, label)
	}
	h := func(n string) string { return n + "." + d }
	te.run("main", "-e", "VIRTUAL_HOST="+h("exact")+","+h("a.par")+","+h("x.y.two")+","+h("half")+","+h("plain"))
	if mode != "untrusted" {
		te.run("cn", "-e", "VIRTUAL_HOST="+h("cn"), "-e", "CERT_NAME=shared")
		te.run("wrongcn", "-e", "VIRTUAL_HOST="+h("wrongcn"), "-e", "CERT_NAME=missing")
	}

	served := func(name, cert string) answer { return answer{Status: 200, Served: name, Cert: cert} }
	fallback := answer{Status: 503, Cert: "default"} // the fallback server: default.crt and 503
	refused := answer{Refused: unrecognizedName}
	// A site's name without a usable certificate, beside a default.crt: refused on nginx (as
	// nginx-proxy), the fallback on HAProxy (see above).
	siteNoCert := fallback
	if proxy == "nginx" {
		siteNoCert = refused
	}
	redirect := func(host string) answer {
		return answer{Status: 301, Location: "https://" + host + ".L.test:HTTPS/"}
	}
	httpServed := func(name string) answer { return answer{Status: 200, Served: name} }
	sel := func(name, host string, want answer) tlsCase {
		return tlsCase{name: name, host: host, https: true, want: want, ignoreHeader: true}
	}
	plain := func(name, host string, want answer) tlsCase { return tlsCase{name: name, host: host, want: want} }

	var cases []tlsCase
	switch mode {
	case "trusted":
		cases = []tlsCase{
			sel("exact <host>.crt", "exact", served("main", "exact.L.test")),
			sel("parent one level up", "a.par", served("main", "par.L.test")),
			sel("CERT_NAME", "cn", served("cn", "shared")),
			sel("two levels up: the trusted default", "x.y.two", served("main", "default")),
			sel("no certificate of its own: the trusted default", "plain", served("main", "default")),
			sel("wrong CERT_NAME: not served, no fall-through", "wrongcn", siteNoCert),
			sel(".crt without .key: not served", "half", siteNoCert),
			sel("unknown name", "unknown", fallback),
			plain("HTTP exact: redirect", "exact", redirect("exact")),
			plain("HTTP with the default: redirect", "plain", redirect("plain")),
			plain("HTTP wrong CERT_NAME: served on HTTP", "wrongcn", httpServed("wrongcn")),
			plain("HTTP .crt without .key: served on HTTP", "half", httpServed("main")),
		}
	case "untrusted":
		cases = []tlsCase{
			sel("exact <host>.crt", "exact", served("main", "exact.L.test")),
			sel("parent one level up", "a.par", served("main", "par.L.test")),
			sel("no certificate of its own: never the untrusted default's site", "plain", siteNoCert),
			sel("two levels up: no certificate", "x.y.two", siteNoCert),
			sel("unknown name", "unknown", fallback),
			plain("HTTP without a certificate: served on HTTP", "plain", httpServed("main")),
			plain("HTTP exact: redirect", "exact", redirect("exact")),
		}
	case "nodefault":
		cases = []tlsCase{
			sel("exact <host>.crt", "exact", served("main", "exact.L.test")),
			sel("parent one level up", "a.par", served("main", "par.L.test")),
			sel("CERT_NAME", "cn", served("cn", "shared")),
			plain("HTTP wrong CERT_NAME: served on HTTP", "wrongcn", httpServed("wrongcn")),
			sel("two levels up: refused", "x.y.two", refused),
			sel("no certificate: refused", "plain", refused),
			sel("wrong CERT_NAME: refused", "wrongcn", refused),
			sel(".crt without .key: refused", "half", refused),
			sel("unknown name: refused", "unknown", refused),
			plain("HTTP without a certificate: served on HTTP", "plain", httpServed("main")),
		}
	}
	te.check(cases)

	// No SNI at all: the default certificate, or a refusal.
	leaf, err := te.handshake("")
	switch {
	case mode == "nodefault" && (err == nil || err.Error() != unrecognizedName):
		t.Errorf("no SNI: %v %v, want %q", leaf, err, unrecognizedName)
	case mode != "nodefault" && (err != nil || leaf.Subject.CommonName != "default"):
		t.Errorf("no SNI: %v, want the default certificate", err)
	}
	// The served serials are the files' (not only their names).
	exact, err := te.handshake(h("exact"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, h("exact")+".crt"))
	crtExact, _, _ := parseFirstCert(b)
	if crtExact == nil || serial(exact) != serial(crtExact) {
		t.Errorf("exact: served serial %s, the file's %v", serial(exact), crtExact)
	}
	// /routes shows how each certificate was chosen (polled: it may lag the proxy by a moment).
	te.waitFor("/routes to show the certificates' selection", func() error {
		want := map[string]string{h("exact"): "exact", h("a.par"): "parent"}
		if mode == "trusted" {
			want[h("plain")], want[h("cn")] = "default", "CERT_NAME"
		}
		routes, body := te.tlsRoutes()
		for _, s := range routes.Sites {
			if via, ok := want[s.Host]; ok {
				if s.TLS == nil || s.TLS.Cert == nil || s.TLS.Cert.Via != via {
					return fmt.Errorf("%s not chosen via %s:\n%s", s.Host, via, body)
				}
				delete(want, s.Host)
			}
		}
		if len(want) > 0 {
			return fmt.Errorf("no site %v:\n%s", want, body)
		}
		return nil
	})
	if n := te.checkFailed(); n != 0 {
		t.Errorf("%v applies failed the proxy's check", n)
	}
}

// TestTLSMethods: HTTPS_METHOD, NON_GET_REDIRECT, HSTS and ENABLE_HTTP_ON_MISSING_CERT per
// container, through the whole pipeline, with the same expected answers on both proxies
// (nginx-proxy's): redirects name the HTTPS port (not 443), 301 for GET and, unless
// NON_GET_REDIRECT says 307 or 308, for the other methods; noredirect serves both without HSTS;
// nohttp answers 503 on HTTP; nohttps refuses the handshake for its name; a site without a
// certificate is served on HTTP (the downgrade), or with ENABLE_HTTP_ON_MISSING_CERT=false keeps
// its method: redirect to an HTTPS port that refuses its name, or nohttp's 503 (routing's
// SiteTLS.Redirect). HSTS (default max-age=31536000, custom, off) on HTTPS answers only; the
// backend sees X-Forwarded-Proto https, X-Forwarded-Ssl on and X-Forwarded-Port the HTTPS port.
func TestTLSMethods(t *testing.T) {
	t.Parallel()
	forEachProxy(t, tlsMethods)
}

func tlsMethods(t *testing.T, proxy string) {
	label := testLabel(t)
	d := label + ".test"
	dir := t.TempDir()
	// Every x.<label>.test has its parent's certificate; x.none.<label>.test has none.
	writeCert(t, dir, d, "*."+d)
	te := newTLSEnv(t, proxy, dir, "--acme=false")
	h := func(n string) string { return n + "." + d }
	const nonGetLabel = "com.github.nginx-proxy.nginx-proxy.non-get-redirect"
	te.run("redir", "-e", "VIRTUAL_HOST="+h("redir"))
	te.run("r307", "-e", "VIRTUAL_HOST="+h("r307"), "-e", "NON_GET_REDIRECT=307")
	te.run("r308", "-e", "VIRTUAL_HOST="+h("r308"), "--label", nonGetLabel+"=308")
	te.run("noredir", "-e", "VIRTUAL_HOST="+h("noredir"), "-e", "HTTPS_METHOD=noredirect")
	te.run("nohttp", "-e", "VIRTUAL_HOST="+h("nohttp"), "-e", "HTTPS_METHOD=nohttp")
	te.run("nohttps", "-e", "VIRTUAL_HOST="+h("nohttps"), "-e", "HTTPS_METHOD=nohttps")
	te.run("hsts", "-e", "VIRTUAL_HOST="+h("hsts"), "-e", "HSTS=max-age=600; includeSubDomains")
	te.run("hstsoff", "-e", "VIRTUAL_HOST="+h("hstsoff"), "-e", "HSTS=off")
	te.run("down", "-e", "VIRTUAL_HOST="+h("down.none"))
	te.run("strict", "-e", "VIRTUAL_HOST="+h("strict.none"), "-e", "ENABLE_HTTP_ON_MISSING_CERT=false")
	te.run("strictnohttp", "-e", "VIRTUAL_HOST="+h("snh.none"), "-e", "ENABLE_HTTP_ON_MISSING_CERT=false", "-e", "HTTPS_METHOD=nohttp")

	const sts = "max-age=31536000"
	to := func(code int, host, pathq string) answer {
		return answer{Status: code, Location: "https://" + host + ".L.test:HTTPS" + pathq}
	}
	httpOK := func(name string) answer { return answer{Status: 200, Served: name} }
	httpsOK := func(name, sts string) answer { return answer{Status: 200, Served: name, STS: sts, Cert: "L.test"} }
	fwd := func(name, sts string) answer {
		a := httpsOK(name, sts)
		a.XFProto, a.XFSsl, a.XFPort = "https", "on", "HTTPS"
		return a
	}
	refused := answer{Refused: unrecognizedName}
	cases := []tlsCase{
		// Positive answers of every container first: its config is in.
		{name: "redirect: HTTPS", host: "redir", https: true, want: httpsOK("redir", sts)},
		{name: "redirect: GET", host: "redir", path: "/p/q?x=1&y=2", want: to(301, "redir", "/p/q?x=1&y=2")},
		{name: "redirect: HEAD", method: "HEAD", host: "redir", path: "/h", want: to(301, "redir", "/h")},
		{name: "redirect: POST, 301 by default", method: "POST", host: "redir", path: "/form", want: to(301, "redir", "/form")},
		{name: "redirect: forwarded headers over HTTPS", host: "redir", path: "/_headers", https: true, want: fwd("redir", sts)},
		{name: "NON_GET_REDIRECT=307: GET", host: "r307", path: "/a", want: to(301, "r307", "/a")},
		{name: "NON_GET_REDIRECT=307: POST", method: "POST", host: "r307", path: "/a?b", want: to(307, "r307", "/a?b")},
		{name: "NON_GET_REDIRECT=307: DELETE", method: "DELETE", host: "r307", path: "/a", want: to(307, "r307", "/a")},
		{name: "non-get-redirect label 308: PUT", method: "PUT", host: "r308", path: "/u", want: to(308, "r308", "/u")},
		{name: "non-get-redirect label 308: GET", host: "r308", path: "/u", want: to(301, "r308", "/u")},
		{name: "noredirect: HTTP, no HSTS", host: "noredir", want: httpOK("noredir")},
		{name: "noredirect: HTTPS, no HSTS", host: "noredir", https: true, want: httpsOK("noredir", "")},
		{name: "noredirect: forwarded headers over HTTPS", host: "noredir", path: "/_headers", https: true, want: fwd("noredir", "")},
		{name: "nohttp: HTTPS", host: "nohttp", https: true, want: httpsOK("nohttp", sts)},
		{name: "nohttp: HTTP 503", host: "nohttp", want: answer{Status: 503}},
		{name: "nohttps: HTTP", host: "nohttps", want: httpOK("nohttps")},
		{name: "nohttps: HTTPS refused", host: "nohttps", https: true, want: refused},
		{name: "custom HSTS", host: "hsts", https: true, want: httpsOK("hsts", "max-age=600; includeSubDomains")},
		{name: "custom HSTS: HTTP redirects", host: "hsts", want: to(301, "hsts", "/")},
		{name: "HSTS=off", host: "hstsoff", https: true, want: httpsOK("hstsoff", "")},
		{name: "no certificate: served on HTTP", host: "down.none", want: httpOK("down")},
		{name: "no certificate: HTTPS refused", host: "down.none", https: true, want: refused},
		{name: "no certificate, ENABLE_HTTP_ON_MISSING_CERT=false: redirect kept", host: "strict.none", path: "/s", want: to(301, "strict.none", "/s")},
		{name: "no certificate, ENABLE_HTTP_ON_MISSING_CERT=false: HTTPS refused", host: "strict.none", https: true, want: refused},
		{name: "no certificate, nohttp, ENABLE_HTTP_ON_MISSING_CERT=false: HTTP 503", host: "snh.none", want: answer{Status: 503}},
		{name: "no certificate, nohttp, ENABLE_HTTP_ON_MISSING_CERT=false: HTTPS refused", host: "snh.none", https: true, want: refused},
		{name: "unknown host: HTTP 503", host: "unknown", want: answer{Status: 503}},
		{name: "unknown host: HTTPS refused", host: "unknown", https: true, want: refused},
	}
	// strictnohttp has no positive answer: wait for its site on /routes before the cases.
	te.waitFor("every site on /routes", func() error {
		routes, _ := te.tlsRoutes()
		if len(routes.Sites) != 11 {
			return fmt.Errorf("%d sites", len(routes.Sites))
		}
		return nil
	})
	te.check(cases)
	if n := te.checkFailed(); n != 0 {
		t.Errorf("%v applies failed the proxy's check", n)
	}
}

// TestTLSCertsDirWatched: the certificates directory is watched: a pair added while running is
// served over HTTPS without a restart and HTTP starts redirecting; a replaced pair is served
// with its new serial; a removed one leaves the site on HTTP only. A half-written pair — the .crt
// of a new certificate with its .key later, or a replacement's new .crt beside the old .key —
// never reaches the proxy: the loader refuses a .crt without its key and a key that does not
// match (the previous pair stays in service, KeepGood), so no apply ever fails the proxy's check
// (vhostgen_applies_total{result="check_failed"} stays 0) and the quarantine has nothing to do.
func TestTLSCertsDirWatched(t *testing.T) {
	t.Parallel()
	forEachProxy(t, certsDirWatched)
}

func certsDirWatched(t *testing.T, proxy string) {
	te := newTLSEnv(t, proxy, "", "--acme=false")
	w, n := te.host("w"), te.host("n")
	te.run("w", "-e", "VIRTUAL_HOST="+w)
	te.run("n", "-e", "VIRTUAL_HOST="+n)
	httpServed := answer{Status: 200, Served: "w"}
	redirect := answer{Status: 301, Location: "https://w.L.test:HTTPS/"}
	te.waitAnswer("w over HTTP, no certificate yet", "GET", w, "/", false, httpServed)
	te.waitServed(w, "")

	// Added.
	first := writeCert(t, te.certsDir, w, w)
	took := te.waitServed(w, serial(first))
	t.Logf("a certificate added was served after %v", took.Round(time.Millisecond))
	te.waitAnswer("HTTP redirects once the certificate is there", "GET", w, "/", false, redirect)
	if a := te.do("GET", w, "/", true); a.Status != 200 || a.Served != "w" {
		t.Errorf("HTTPS: %v", a)
	}

	// Replaced, a file at a time, the new .crt first: the old pair serves until the new key is in.
	crt, key, second := makeCert(t, w, w)
	writeAtomic(t, filepath.Join(te.certsDir, w+".crt"), crt, 0o644)
	time.Sleep(5 * time.Second) // more than the watcher's two polls
	if leaf, err := te.handshake(w); err != nil || serial(leaf) != serial(first) {
		t.Errorf("with the new .crt and the old .key: %v %v, want the old pair (serial %s) still served", leaf, err, serial(first))
	}
	writeAtomic(t, filepath.Join(te.certsDir, w+".key"), key, 0o600)
	te.waitServed(w, serial(second))

	// A new certificate half written: its .crt only.
	crt, key, third := makeCert(t, n, n)
	writeAtomic(t, filepath.Join(te.certsDir, n+".crt"), crt, 0o644)
	time.Sleep(5 * time.Second)
	if leaf, err := te.handshake(n); err == nil {
		t.Errorf("a .crt without its .key is served: %s", serial(leaf))
	}
	if a := te.do("GET", n, "/", false); a.Status != 200 || a.Served != "n" {
		t.Errorf("n over HTTP with half a pair: %v, want served (no certificate yet)", a)
	}
	if leaf, err := te.handshake(w); err != nil || serial(leaf) != serial(second) {
		t.Errorf("w while n is half written: %v %v", leaf, err)
	}
	writeAtomic(t, filepath.Join(te.certsDir, n+".key"), key, 0o600)
	te.waitServed(n, serial(third))

	// Removed.
	for _, f := range []string{w + ".crt", w + ".key"} {
		if err := os.Remove(filepath.Join(te.certsDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	te.waitServed(w, "")
	te.waitAnswer("w back on HTTP", "GET", w, "/", false, httpServed)
	if leaf, err := te.handshake(n); err != nil || serial(leaf) != serial(third) {
		t.Errorf("n after w's removal: %v %v", leaf, err)
	}
	if f := te.checkFailed(); f != 0 {
		t.Errorf("%v applies failed the proxy's check", f)
	}
	if q := te.metric("vhostgen_quarantined_sites"); q != 0 {
		t.Errorf("%v sites quarantined", q)
	}
}

// TestTLSSessionResumption: a client that comes back resumes its TLS session, on both proxies,
// with no default certificate (nginx resumes with the default server's session cache, which
// must be there even when that server refuses every handshake).
func TestTLSSessionResumption(t *testing.T) {
	t.Parallel()
	forEachProxy(t, func(t *testing.T, proxy string) {
		label := testLabel(t)
		host := "app." + label + ".test"
		dir := t.TempDir()
		writeCert(t, dir, host, host)
		te := newTLSEnv(t, proxy, dir, "--acme=false")
		te.run("app", "-e", "VIRTUAL_HOST="+host)
		te.waitAnswer("HTTPS", "GET", host, "/", true, answer{Status: 200, STS: "max-age=31536000", Served: "app", Cert: "app.L.test"})
		// Polled: a connection can still reach a worker of the config before the site's (nginx's
		// old workers accept until they close their sockets), which refuses the name.
		te.waitFor("TLS 1.3 resumption", func() error {
			// Go's client resumes with the proxy's (stateful) tickets.
			cfg := &tls.Config{ServerName: host, InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			for range 3 { // the ticket comes after the handshake: read a response first
				c, err := tls.Dial("tcp", te.httpsAddr(), cfg)
				if err != nil {
					return fmt.Errorf("TLS 1.3 handshake: %w", err)
				}
				fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
				io.ReadAll(c)
				c.Close()
				if c.ConnectionState().DidResume {
					return nil
				}
			}
			return errors.New("TLS 1.3: no session resumed in 3 connections")
		})
		te.waitFor("TLS 1.2 resumption", func() error {
			// Session IDs, which Go's client does not resume; openssl does.
			out, _ := exec.Command("openssl", "s_client", "-connect", te.httpsAddr(), "-servername", host,
				"-tls1_2", "-reconnect").CombinedOutput()
			if n := strings.Count(string(out), "\nReused, "); n < 5 {
				return fmt.Errorf("openssl s_client -reconnect resumed %d of its 5 reconnections:\n%s", n, tail(string(out), 1500))
			}
			return nil
		})
	})
}
