package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/acme/pebbletest"
)

// The ACME tests run a real pebble (internal/acme/pebbletest) per test, validating HTTP-01 on
// the test's proxy's HTTP port: pebble asks http://<name>:<port>/.well-known/acme-challenge/...,
// its DNS server resolves every name to 127.0.0.1, the proxy forwards the path to vhost-gen's
// responder. Each issuance takes a few seconds; the tests place six orders in all.

// acmeEnv is a tlsEnv whose vhost-gen orders certificates from its own pebble.
type acmeEnv struct {
	*tlsEnv
	ca       *pebbletest.CA
	rootFile string // pebble's root, what the clients trust
	roots    *x509.CertPool
	acmeDir  string
}

// newACMEEnv starts the proxy (with vhost-gen, ACME off, so that its HTTP port is known), then
// pebble validating on that port, then vhost-gen again with ACME on. certsDir "" is a new empty
// directory.
func newACMEEnv(t *testing.T, proxy string, o pebbletest.Options, certsDir string) *acmeEnv {
	t.Helper()
	te := newTLSEnv(t, proxy, certsDir, "--acme=false")
	o.HTTPPort = te.port
	o.FreePort = func() (int, error) { return freePort(t), nil }
	ae := &acmeEnv{tlsEnv: te, ca: pebbletest.New(t, o), acmeDir: t.TempDir()}
	root, err := ae.ca.Root()
	if err != nil {
		t.Fatal(err)
	}
	ae.rootFile = filepath.Join(t.TempDir(), "pebble-root.pem")
	writeFile(t, ae.rootFile, string(root))
	ae.roots = x509.NewCertPool()
	ae.roots.AppendCertsFromPEM(root)
	te.restart("--acme=true", "--acme-ca-uri", ae.ca.DirURL, "--acme-ca-bundle", ae.ca.CABundle,
		"--acme-dir", ae.acmeDir, "--acme-responder", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--acme-email", "ops@example.org")
	return ae
}

// waitIssued waits until sni is served with a certificate from pebble, five handshakes in a
// row (a reloaded nginx's old worker may take one more), and returns it.
func (ae *acmeEnv) waitIssued(sni string, timeout time.Duration) *x509.Certificate {
	ae.t.Helper()
	deadline := time.Now().Add(timeout)
	ok := 0
	for {
		leaf, err := ae.handshake(sni)
		if err == nil && strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate") {
			if ok++; ok == 5 {
				return leaf
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ok = 0
		if time.Now().After(deadline) {
			st, _ := ae.tlsRoutes()
			ae.t.Fatalf("%s: no certificate from pebble after %v (last: %v %v); ACME status %+v", sni, timeout, leaf, err, st.ACME)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// orderTime is the time from vhost-gen's first "ordering certificate" to its first
// "certificate stored", read from its log.
func (ae *acmeEnv) orderTime() time.Duration {
	var ordered, stored time.Time
	for _, line := range strings.Split(ae.vgLog.String(), "\n") {
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(line + " x")[0], "time="))
		switch {
		case err != nil:
		case strings.Contains(line, `msg="acme: ordering certificate"`) && ordered.IsZero():
			ordered = at
		case strings.Contains(line, `msg="acme: certificate stored"`) && stored.IsZero():
			stored = at
		}
	}
	if ordered.IsZero() || stored.IsZero() {
		return 0
	}
	return stored.Sub(ordered).Round(time.Millisecond)
}

// verifiedClient is an HTTPS client that trusts pebble's root alone and dials the proxy's HTTPS
// port whatever the URL's host.
func (ae *acmeEnv) verifiedClient() *http.Client {
	addr := ae.httpsAddr()
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: ae.roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
		}}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// curl fetches https://host:PORT/ with curl, trusting pebble's root only.
func (ae *acmeEnv) curl(host string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	port := strconv.Itoa(ae.httpsPort)
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "10", "--cacert", ae.rootFile,
		"--resolve", host+":"+port+":127.0.0.1", "-w", "\ncode=%{http_code}", "https://"+host+":"+port+"/").CombinedOutput()
	return string(out), err
}

// opensslVerify runs openssl s_client against the HTTPS port with SNI host, trusting pebble's
// root only, and fails on any verification error.
func (ae *acmeEnv) opensslVerify(host string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", ae.httpsAddr(), "-servername", host,
		"-CAfile", ae.rootFile, "-verify_return_error", "-verify_hostname", host)
	cmd.Stdin = strings.NewReader("") // EOF: closes after the handshake
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestACME, on both proxies: a container with ACME_HOST (two names) is served over HTTP (200)
// until its certificate exists; pebble then issues it, validating HTTP-01 through the proxy's
// HTTP port; HTTPS serves it for both names (verified against pebble's root by curl --cacert and
// openssl s_client -verify_return_error), HTTP now redirects, and /routes shows the site's
// certificate source "acme" and the ACME status (name, notAfter, renewAt). HAProxy serves it
// still after a reload of its own.
func TestACME(t *testing.T) {
	t.Parallel()
	forEachProxy(t, acmeIssue)
}

func acmeIssue(t *testing.T, proxy string) {
	ae := newACMEEnv(t, proxy, pebbletest.Options{}, "")
	app := ae.host("app")
	www := "www." + app
	start := time.Now()
	ae.run("app", "-e", "VIRTUAL_HOST="+app+","+www, "-e", "ACME_HOST="+app+","+www)
	// Served on HTTP before the certificate: a redirect would mean the certificate came first.
	ae.waitAnswer("HTTP before the certificate", "GET", app, "/", false, answer{Status: 200, Served: "app"})
	reloadsBefore := 0
	if proxy == "haproxy" {
		reloadsBefore = ae.masterReloads() // the site is in, its certificate not yet
	}
	leaf := ae.waitIssued(app, 90*time.Second)
	took := time.Since(start)
	t.Logf("%s: a 2-name certificate from pebble served over HTTPS %v after the container started (order to certificate stored: %v)",
		proxy, took.Round(time.Millisecond), ae.orderTime())
	if got := strings.Join(leaf.DNSNames, ","); !strings.Contains(got, app) || !strings.Contains(got, www) || len(leaf.DNSNames) != 2 {
		t.Errorf("SANs %v, want %s and %s", leaf.DNSNames, app, www)
	}
	for _, host := range []string{app, www} {
		out, err := ae.curl(host)
		if err != nil || !strings.Contains(out, "name=app") || !strings.HasSuffix(out, "code=200") {
			t.Errorf("curl --cacert pebble's root https://%s: %v\n%s", host, err, out)
		}
		out, err = ae.opensslVerify(host)
		if err != nil || !strings.Contains(out, "Verify return code: 0 (ok)") {
			t.Errorf("openssl s_client -verify_return_error %s: %v\n%s", host, err, out)
		}
		if s, err := ae.handshake(host); err != nil || serial(s) != serial(leaf) {
			t.Errorf("%s: %v %v, want serial %s", host, s, err, serial(leaf))
		}
	}
	ae.waitAnswer("HTTP redirects once the certificate is served", "GET", app, "/x?y=1", false,
		answer{Status: 301, Location: "https://app.L.test:HTTPS/x?y=1"})

	ae.waitFor("/routes to show the ACME certificate", func() error {
		routes, body := ae.tlsRoutes()
		for _, s := range routes.Sites {
			if s.Host == app {
				if s.TLS == nil || s.TLS.CertSource != "acme" || s.TLS.Cert == nil || s.TLS.Cert.Serial != serial(leaf) || s.TLS.Method != "redirect" {
					return fmt.Errorf("%s not served with the ACME certificate %s:\n%s", app, serial(leaf), body)
				}
				return nil
			}
		}
		return fmt.Errorf("no site %s:\n%s", app, body)
	})
	st, ok := ae.acmeStatus(app)
	_, body := ae.tlsRoutes()
	switch {
	case !ok:
		t.Errorf("/routes: no ACME status for %s:\n%s", app, body)
	case !st.NotAfter.Equal(leaf.NotAfter) || st.Serial != serial(leaf) || st.LastError != "" ||
		!st.RenewAt.After(time.Now()) || !st.RenewAt.Before(st.NotAfter):
		t.Errorf("ACME status %+v; certificate %s until %v", st, serial(leaf), leaf.NotAfter)
	}
	if n := ae.ca.Orders(); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}

	if proxy == "haproxy" {
		// The first certificate of a site already served on HTTP: the certificate, its crt-list
		// line and the maps' flip to a redirect all went through the runtime API.
		at := ae.masterReloads()
		if at != reloadsBefore {
			t.Errorf("HAProxy's master reloaded %d times for the site's first certificate, want none", at-reloadsBefore)
		}
		if _, err := ae.master("reload"); err != nil {
			t.Fatalf("master reload: %v", err)
		}
		ae.waitFor("HAProxy's reload", func() error {
			if n := ae.masterReloads(); n <= at {
				return fmt.Errorf("%d reloads", n)
			}
			return nil
		})
		ae.waitServed(app, serial(leaf))
		if out, err := ae.curl(www); err != nil || !strings.HasSuffix(out, "code=200") {
			t.Errorf("after a reload: curl https://%s: %v\n%s", www, err, out)
		}
	}
	if n := ae.checkFailed(); n != 0 {
		t.Errorf("%v applies failed the proxy's check", n)
	}
}

// TestACMERestartNoOrder: vhost-gen restarted three times on the same --acme-dir reuses the
// certificate it holds: pebble's log shows no new order, and the same serial is served.
func TestACMERestartNoOrder(t *testing.T) {
	t.Parallel()
	ae := newACMEEnv(t, "nginx", pebbletest.Options{}, "")
	app := ae.host("app")
	ae.run("app", "-e", "VIRTUAL_HOST="+app, "-e", "ACME_HOST="+app)
	leaf := ae.waitIssued(app, 90*time.Second)
	orders, issued := ae.ca.Orders(), len(ae.ca.Issued())
	if orders != 1 || issued != 1 {
		t.Errorf("%d orders, %d issued; want 1", orders, issued)
	}
	for i := range 3 {
		ae.restart()
		ae.waitServed(app, serial(leaf))
		time.Sleep(2 * time.Second) // time enough for an order, were one due
		if n := ae.ca.Orders(); n != orders {
			t.Fatalf("restart %d: %d orders in pebble's log, want %d", i+1, n, orders)
		}
	}
	if got := ae.ca.Issued(); len(got) != 1 || got[0] != serial(leaf) {
		t.Errorf("pebble issued %v, want only %s", got, serial(leaf))
	}
	if st, ok := ae.acmeStatus(app); !ok || st.Serial != serial(leaf) || st.LastError != "" {
		t.Errorf("ACME status after the restarts: %+v", st)
	}
}

// TestACMEFailureBackoff: a name whose DNS fails (challtestsrv answers SERVFAIL) cannot be
// validated: its order fails, /routes shows the error and a next try in the future (the backoff,
// a minute at first), no second order comes within the test's window, and the site stays on
// HTTP; another host, with a static certificate, is served over HTTPS throughout.
func TestACMEFailureBackoff(t *testing.T) {
	t.Parallel()
	label := testLabel(t)
	good, bad := "good."+label+".test", "bad."+label+".test"
	dir := t.TempDir()
	static := writeCert(t, dir, good, good)
	ae := newACMEEnv(t, "nginx", pebbletest.Options{}, dir)
	if err := ae.ca.ServFail(bad); err != nil {
		t.Fatal(err)
	}
	ae.run("good", "-e", "VIRTUAL_HOST="+good)
	ae.waitServed(good, serial(static))

	// good over HTTPS, every 100 ms, until the end.
	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			requests.Add(1)
			if a := ae.do("GET", good, "/", true); a.Status != 200 || a.Served != "good" || a.Cert != "good.L.test" {
				failures.Add(1)
				firstFailure.CompareAndSwap(nil, a.String())
			}
		}
	}()

	start := time.Now()
	ae.run("bad", "-e", "VIRTUAL_HOST="+bad, "-e", "ACME_HOST="+bad)
	var st acmeStatus
	ae.waitFor("the failed order on /routes", func() error {
		var ok bool
		if st, ok = ae.acmeStatus(bad); !ok || st.LastError == "" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	t.Logf("order failed after %v: %s", time.Since(start).Round(time.Millisecond), st.LastError)
	if !strings.Contains(st.LastError, bad) {
		t.Errorf("last error does not name %s: %q", bad, st.LastError)
	}
	if wait := time.Until(st.NextTry); wait < 30*time.Second {
		t.Errorf("next try %v (in %v), want the backoff's minute", st.NextTry, wait)
	}
	time.Sleep(5 * time.Second)
	if n := ae.ca.Orders(); n != 1 {
		t.Errorf("%d orders in pebble's log, want 1", n)
	}
	if st2, _ := ae.acmeStatus(bad); st2.Orders != 1 || !st2.NextTry.Equal(st.NextTry) {
		t.Errorf("status %+v, want 1 order and the same next try", st2)
	}
	if a := ae.do("GET", bad, "/", false); a.Status != 200 || a.Served != "bad" {
		t.Errorf("%s over HTTP: %v, want served (no certificate)", bad, a)
	}
	if _, err := ae.handshake(bad); err == nil {
		t.Errorf("%s: served over HTTPS without a certificate", bad)
	}
	close(stop)
	<-done
	if f := failures.Load(); f != 0 || requests.Load() < 20 {
		t.Errorf("good over HTTPS: %d of %d requests failed (first: %v)", f, requests.Load(), firstFailure.Load())
	}
}

// TestACMERenewalUnderLoad, HAProxy: a certificate of two minutes (a pebble profile; pebble's
// directory shown without renewal info, so that vhost-gen renews when a third of the lifetime is
// left rather than at a random time of pebble's window, which for such a certificate is its
// whole life) is renewed while a client makes 20 requests a second over HTTPS, each on a new
// connection verified against pebble's root: a new serial before the old one expires, no
// request fails, and HAProxy's master never reloads (the renewal goes through the runtime API).
func TestACMERenewalUnderLoad(t *testing.T) {
	t.Parallel()
	const life = 2 * time.Minute
	ae := newACMEEnv(t, "haproxy", pebbletest.Options{NoARI: true,
		Profiles: map[string]time.Duration{"default": 90 * 24 * time.Hour, "short": life}}, "")
	app := ae.host("app")
	ae.run("app", "-e", "VIRTUAL_HOST="+app, "-e", "ACME_HOST="+app, "-e", "ACME_CERT_PROFILE=short")
	first := ae.waitIssued(app, 90*time.Second)
	lifetime := first.NotAfter.Sub(first.NotBefore) // pebble: the profile's validity less a second
	if lifetime > life || lifetime < life-2*time.Second {
		t.Fatalf("lifetime %v, want the profile's %v", lifetime, life)
	}
	st, ok := ae.acmeStatus(app)
	third := first.NotAfter.Add(-lifetime / 3)
	if d := st.RenewAt.Sub(third); !ok || d < -2*time.Second || d > 2*time.Second {
		t.Errorf("renew at %v, want about %v (a third of the lifetime left); status %+v", st.RenewAt, third, st)
	}
	t.Logf("issued %s, valid %v to %v; renewal planned at %v", serial(first), first.NotBefore.Format(time.TimeOnly),
		first.NotAfter.Format(time.TimeOnly), st.RenewAt.Format(time.TimeOnly))

	// 20 requests a second, each on its own verified connection.
	c := ae.verifiedClient()
	var (
		mu        sync.Mutex
		failed    []string
		requests  int
		renewedAt time.Time
		newSerial string
	)
	request := func() {
		resp, err := c.Get("https://" + app + ":" + strconv.Itoa(ae.httpsPort) + "/")
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		requests++
		if err != nil {
			failed = append(failed, at.Format(time.TimeOnly)+" "+err.Error())
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "name=app") {
			failed = append(failed, fmt.Sprintf("%s %d %q", at.Format(time.TimeOnly), resp.StatusCode, b))
			return
		}
		if s := serial(resp.TLS.PeerCertificates[0]); s != serial(first) && newSerial == "" {
			newSerial, renewedAt = s, at
		}
	}
	reloads := ae.masterReloads()
	var wg sync.WaitGroup
	tick := time.NewTicker(50 * time.Millisecond)
	deadline := first.NotAfter.Add(10 * time.Second)
	var stopAt time.Time
	for now := range tick.C {
		mu.Lock()
		renewed := newSerial != ""
		mu.Unlock()
		if renewed && stopAt.IsZero() {
			stopAt = now.Add(3 * time.Second) // a little load after the change too
		}
		if (!stopAt.IsZero() && now.After(stopAt)) || now.After(deadline) {
			break
		}
		wg.Add(1)
		go func() { defer wg.Done(); request() }()
	}
	tick.Stop()
	wg.Wait()
	reloads = ae.masterReloads() - reloads

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests over HTTPS, %d failed; new serial %s at %v (%v before the old one expired); HAProxy master reloads during the renewal: %d",
		requests, len(failed), newSerial, renewedAt.Format(time.TimeOnly), first.NotAfter.Sub(renewedAt).Round(time.Millisecond), reloads)
	if newSerial == "" || !renewedAt.Before(first.NotAfter) {
		t.Errorf("no new serial before %v (got %q at %v); ACME status %+v", first.NotAfter, newSerial, renewedAt, ae.acmeStatusOr(app))
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed:\n%s", len(failed), requests, strings.Join(failed[:min(len(failed), 10)], "\n"))
	}
	if reloads != 0 {
		t.Errorf("HAProxy reloaded %d times for the renewal, want 0 (runtime API)", reloads)
	}
	if n := ae.checkFailed(); n != 0 {
		t.Errorf("%v applies failed the proxy's check", n)
	}
}

func (ae *acmeEnv) acmeStatusOr(name string) acmeStatus {
	st, _ := ae.acmeStatus(name)
	return st
}
