package acme

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
)

// counter wraps the ACME client's transport: it counts requests and accepted orders, records
// each order's "replaces", and can make the CA's renewal info fail. With fastPoll, challenge
// responses carry "Retry-After: 1" (pebble sends none, and lego then polls the authorization
// after about 5 s): it shortens the tests, not what they check.
type counter struct {
	next     http.RoundTripper
	ariFail  bool
	fastPoll bool

	mu       sync.Mutex
	requests int
	orders   int
	replaces []string
}

func (c *counter) wrap(rt http.RoundTripper) http.RoundTripper { c.next = rt; return c }

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.requests++
	c.mu.Unlock()
	if c.ariFail && strings.Contains(r.URL.Path, "renewalInfo") {
		return &http.Response{StatusCode: http.StatusNotFound, Request: r,
			Header: http.Header{"Content-Type": {"application/problem+json"}},
			Body:   io.NopCloser(strings.NewReader(`{"type":"urn:ietf:params:acme:error:malformed","detail":"test: no renewal info","status":404}`))}, nil
	}
	isOrder := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/order-plz")
	var replaces string
	if isOrder && r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		replaces = orderReplaces(b)
	}
	resp, err := c.next.RoundTrip(r)
	if c.fastPoll && err == nil && r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/chalZ/") &&
		resp.Header.Get("Retry-After") == "" {
		resp.Header.Set("Retry-After", "1")
	}
	if isOrder && err == nil && resp.StatusCode == http.StatusCreated {
		c.mu.Lock()
		c.orders++
		c.replaces = append(c.replaces, replaces)
		c.mu.Unlock()
	}
	return resp, err
}

// orderReplaces reads "replaces" from a newOrder JWS.
func orderReplaces(jws []byte) string {
	var msg struct{ Payload string }
	var order struct{ Replaces string }
	if json.Unmarshal(jws, &msg) != nil {
		return ""
	}
	payload, _ := base64.RawURLEncoding.DecodeString(msg.Payload)
	_ = json.Unmarshal(payload, &order)
	return order.Replaces
}

func (c *counter) counts() (requests, orders int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests, c.orders
}

// testLog keeps the tests' output short; warnings and errors show what went wrong.
var testLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

type harness struct {
	t       *testing.T
	p       *pebbleEnv
	m       *Manager
	cnt     *counter
	changed chan struct{}
	stop    func()
}

// newHarness runs a Manager on dir against pebble; stopped at the test's end.
func newHarness(t *testing.T, p *pebbleEnv, dir string, clk *fakeClock, cnt *counter, tune func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, p: p, cnt: cnt, changed: make(chan struct{}, 16)}
	o := Options{CAURL: p.DirURL, CABundle: p.CABundle, Dir: dir, Log: testLog, Now: clk.Now,
		RenewCheck: 200 * time.Millisecond, MinBackoff: time.Second,
		OnChange: func() { h.changed <- struct{}{} }, transport: cnt.wrap}
	if tune != nil {
		tune(&o)
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	p.register(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(h.stop)
	return h
}

func (h *harness) waitChange(timeout time.Duration) {
	h.t.Helper()
	select {
	case <-h.changed:
	case <-time.After(timeout):
		h.t.Fatalf("no certificate after %v; status %+v\npebble:\n%s", timeout, h.m.Status(), h.p.LogTail(4000))
	}
}

func (h *harness) status() Status {
	h.t.Helper()
	st := h.m.Status()
	if len(st) != 1 {
		h.t.Fatalf("status: %+v", st)
	}
	return st[0]
}

// readChain parses DIR/<name>.crt: leaf first.
func readChain(t *testing.T, dir, name string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) < 2 {
		t.Fatalf("%s.crt: %d certificates, want the full chain", name, len(out))
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestIssueRestartRenew: a 2-name certificate issued, files and modes right, challenge tokens
// served only during the order; three restarts order nothing (no request to the CA at all); the
// CA's renewal info then moved into the past renews it, as a replacement of the old one.
func TestIssueRestartRenew(t *testing.T) {
	p := pebble(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "acme")
	clk := &fakeClock{}
	req := Request{Names: []string{"www.app.test", "app.test"}, Email: "ops@app.test", Profile: "default"}

	cnt := &counter{}
	h := newHarness(t, p, dir, clk, cnt, nil)
	start := time.Now()
	h.m.Want([]Request{req})
	h.waitChange(60 * time.Second)
	t.Logf("issued a 2-name certificate from pebble in %v", time.Since(start).Round(time.Millisecond))

	checkFiles(t, dir, "www.app.test", "ops@app.test")
	chain := readChain(t, dir, "www.app.test")
	leaf := chain[0]
	if got := slices.Sorted(slices.Values(leaf.DNSNames)); !slices.Equal(got, []string{"app.test", "www.app.test"}) {
		t.Errorf("SANs %v", got)
	}
	if !strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate") {
		t.Errorf("issuer %q", leaf.Issuer.CommonName)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.root(t), Intermediates: inter, DNSName: "app.test"}); err != nil {
		t.Errorf("verify against pebble's root: %v", err)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want EC P-256", leaf.PublicKey)
	}
	st := h.status()
	if st.Serial != serialOf(leaf) || !st.NotAfter.Equal(leaf.NotAfter) || st.Orders != 1 || st.LastError != "" ||
		!st.RenewAt.After(clk.Now()) || !st.NextTry.IsZero() {
		t.Errorf("status %+v", st)
	}
	checkTokensGone(t, p, h.m)
	waitMeta(t, dir, "www.app.test", func(m Meta) bool { return m.Renewal != nil && !m.Renewal.WindowStart.IsZero() })
	h.stop()
	if _, orders := cnt.counts(); orders != 1 {
		t.Fatalf("%d orders, want 1", orders)
	}

	for i := range 3 {
		cnt := &counter{}
		h := newHarness(t, p, dir, clk, cnt, nil)
		h.m.Want([]Request{req})
		time.Sleep(time.Second)
		h.stop()
		if requests, _ := cnt.counts(); requests != 0 {
			t.Fatalf("restart %d: %d requests to the CA, want none", i+1, requests)
		}
		if st := h.status(); st.Serial != serialOf(leaf) {
			t.Fatalf("restart %d: serial %s, want %s", i+1, st.Serial, serialOf(leaf))
		}
	}

	cnt = &counter{fastPoll: true}
	h = newHarness(t, p, dir, clk, cnt, nil)
	h.m.Want([]Request{req})
	past := clk.Now().Add(-2 * time.Hour).UTC()
	p.post(t, p.Mgmt+"/set-renewal-info/", map[string]string{
		"Certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})),
		"ARIResponse": fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`,
			past.Format(time.RFC3339), past.Add(time.Hour).Format(time.RFC3339)),
	})
	clk.Advance(7 * time.Hour) // past the renewal info's Retry-After (6 h): asked again
	h.waitChange(60 * time.Second)
	renewed := readChain(t, dir, "www.app.test")[0]
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("same serial after renewal")
	}
	wantID, _ := api.MakeARICertID(leaf)
	if _, orders := cnt.counts(); orders != 1 || cnt.replaces[0] != wantID {
		t.Errorf("renewal: %d orders, replaces %q, want 1 replacing %q", orders, cnt.replaces, wantID)
	}
	if st := h.status(); st.Orders != 2 || st.Serial != serialOf(renewed) {
		t.Errorf("status after renewal %+v", st)
	}
}

func checkFiles(t *testing.T, dir, name, email string) {
	t.Helper()
	for path, want := range map[string]os.FileMode{
		dir:                              0o700,
		filepath.Join(dir, name+".crt"):  0o644,
		filepath.Join(dir, name+".key"):  0o600,
		filepath.Join(dir, name+".json"): 0o644,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
	accounts, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", email+".json"))
	if len(accounts) != 1 || mode(t, accounts[0]) != 0o600 {
		t.Errorf("account files %v", accounts)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")); err != nil {
		t.Errorf("key pair: %v", err)
	}
}

// checkTokensGone: pebble was answered for the tokens, and now that the order is over the
// Responder no longer knows any of them.
func checkTokensGone(t *testing.T, p *pebbleEnv, m *Manager) {
	t.Helper()
	served := p.servedTokens()
	if len(served) < 2 {
		t.Errorf("tokens answered to pebble: %v, want one per name", served)
	}
	for _, path := range served {
		rec := httptest.NewRecorder()
		m.Responder().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s after the order: %d, want 404", path, rec.Code)
		}
	}
}

func waitMeta(t *testing.T, dir, name string, ok func(Meta) bool) Meta {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m Meta
		b, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err == nil && json.Unmarshal(b, &m) == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s.json never as expected: %s", name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRenewThirdOfLifetime: with no renewal info from the CA, a one-minute certificate (RSA
// 2048) is renewed when a third of its lifetime is left.
func TestRenewThirdOfLifetime(t *testing.T) {
	p := pebble(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "acme")
	clk := &fakeClock{}
	cnt := &counter{ariFail: true, fastPoll: true}
	// The clock moved forward stays there: without a longer pause after an order, the renewed
	// certificate would look due at once.
	h := newHarness(t, p, dir, clk, cnt, func(o *Options) { o.MinBackoff = 30 * time.Second })
	h.m.Want([]Request{{Names: []string{"short.test"}, KeyType: "2048", Profile: "short"}})
	h.waitChange(60 * time.Second)
	leaf := readChain(t, dir, "short.test")[0]
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("key %T, want RSA 2048", leaf.PublicKey)
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if life > time.Minute {
		t.Fatalf("lifetime %v, want the short profile's minute", life)
	}
	st := h.status()
	if want := leaf.NotAfter.Add(-life / 3); !st.RenewAt.Equal(want) {
		t.Errorf("renew at %v, want %v", st.RenewAt, want)
	}
	clk.Advance(time.Until(st.RenewAt) + time.Second)
	h.waitChange(60 * time.Second)
	renewed := readChain(t, dir, "short.test")[0]
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("same serial after renewal")
	}
	if _, orders := cnt.counts(); orders != 2 {
		t.Errorf("%d orders, want 2", orders)
	}
}

// TestFailureBackoff: a name whose DNS fails: the order fails, the error is shown, the next try
// waits for the backoff, also across a restart.
func TestFailureBackoff(t *testing.T) {
	p := pebble(t)
	t.Parallel()
	p.post(t, p.DNSMgmt+"/set-servfail", map[string]string{"host": "fail.test"})
	dir := filepath.Join(t.TempDir(), "acme")
	clk := &fakeClock{}
	cnt := &counter{fastPoll: true}
	h := newHarness(t, p, dir, clk, cnt, func(o *Options) { o.MinBackoff = time.Minute })
	h.m.Want([]Request{{Names: []string{"fail.test"}, Profile: "default"}})
	deadline := time.Now().Add(60 * time.Second)
	for h.status().LastError == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no error; pebble:\n%s", p.LogTail(4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := h.status()
	if !strings.Contains(st.LastError, "fail.test") || !strings.Contains(st.LastError, p.DirURL) {
		t.Errorf("last error does not name the certificate and the CA: %q", st.LastError)
	}
	if wait := st.NextTry.Sub(clk.Now()); wait < 50*time.Second || wait > time.Minute {
		t.Errorf("next try in %v, want about a minute", wait)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, orders := cnt.counts(); orders != 1 || st.Orders != 1 {
		t.Errorf("%d orders placed, status says %d; want 1", orders, st.Orders)
	}
	h.stop()

	cnt2 := &counter{}
	h2 := newHarness(t, p, dir, clk, cnt2, func(o *Options) { o.MinBackoff = time.Minute })
	h2.m.Want([]Request{{Names: []string{"fail.test"}, Profile: "default"}})
	time.Sleep(time.Second)
	if requests, _ := cnt2.counts(); requests != 0 {
		t.Errorf("restart during the backoff: %d requests to the CA", requests)
	}
	if st2 := h2.status(); st2.LastError != st.LastError || !st2.NextTry.Equal(st.NextTry) {
		t.Errorf("after restart %+v, want the error and next try kept", st2)
	}
}

// TestAccountForgotten: the CA no longer knows the stored account (a test CA restarted): the
// order fails once, a new account is registered and stored, and the next order succeeds.
func TestAccountForgotten(t *testing.T) {
	p := pebble(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "acme")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	gone := strings.TrimSuffix(p.DirURL, "/dir") + "/my-account/forgotten"
	s, _ := NewDirStore(dir)
	if err := s.SaveAccount(context.Background(), p.DirURL, &Account{URI: gone,
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})}); err != nil {
		t.Fatal(err)
	}
	cnt := &counter{fastPoll: true}
	h := newHarness(t, p, dir, &fakeClock{}, cnt, nil)
	h.m.Want([]Request{{Names: []string{"again.test"}, Profile: "default"}})
	h.waitChange(60 * time.Second)
	a, err := s.LoadAccount(context.Background(), p.DirURL, "")
	if err != nil || a.URI == gone {
		t.Errorf("account %+v %v, want a new one", a, err)
	}
	if st := h.status(); st.Orders != 2 || st.LastError != "" {
		t.Errorf("status %+v, want 2 orders (one refused by the CA) and no error", st)
	}
}

// TestLockHeldElsewhere: while another gateway holds one certificate's lock (here, the test holds
// it in the same store), the Manager gives up waiting after lockWait and issues its other
// certificates; the held one is issued once its lock is free.
func TestLockHeldElsewhere(t *testing.T) {
	p := pebble(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "acme")
	store, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := store.Lock(context.Background(), "cert/a.held.test")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, p, dir, &fakeClock{}, &counter{}, func(o *Options) {
		o.Store, o.lockWait, o.lockRetry = store, 200*time.Millisecond, 300*time.Millisecond
	})
	// "a.held.test" sorts first and is as overdue as the other: the Manager tries it first.
	h.m.Want([]Request{{Names: []string{"a.held.test"}}, {Names: []string{"b.free.test"}}})
	h.waitChange(60 * time.Second)
	issued := func(name string) bool {
		for _, s := range h.m.Status() {
			if s.Name == name {
				return s.Serial != ""
			}
		}
		return false
	}
	if !issued("b.free.test") || issued("a.held.test") {
		t.Fatalf("with a.held.test's lock held elsewhere: status %+v; want b.free.test issued, a.held.test not", h.m.Status())
	}
	release()
	h.waitChange(60 * time.Second)
	if !issued("a.held.test") {
		t.Errorf("after the lock was released: status %+v; want a.held.test issued", h.m.Status())
	}
}
