package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock is the real clock plus an offset the test moves.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

func TestNormalize(t *testing.T) {
	long := strings.Repeat("a", 63)
	tooLong := strings.Join([]string{long, long, long, long}, ".") // 255
	for _, tc := range []struct {
		name string
		req  Request
		err  string
		want Request
	}{
		{"defaults", Request{Names: []string{"App.Test", "www.app.test", "app.test."}},
			"", Request{Name: "app.test", Names: []string{"app.test", "www.app.test"}, KeyType: "ec-256"}},
		{"explicit", Request{Name: "shop", Names: []string{"a.test"}, Email: "ops@example.com", KeyType: "4096", Profile: "tlsserver"},
			"", Request{Name: "shop", Names: []string{"a.test"}, Email: "ops@example.com", KeyType: "4096", Profile: "tlsserver"}},
		{"no names", Request{}, "no names", Request{}},
		{"wildcard", Request{Names: []string{"*.app.test"}}, "not a host name", Request{}},
		{"path", Request{Names: []string{"../etc/passwd"}}, "not a host name", Request{}},
		{"slash", Request{Names: []string{"a/b.test"}}, "not a host name", Request{}},
		{"empty label", Request{Names: []string{"a..test"}}, "not a host name", Request{}},
		{"leading dot", Request{Names: []string{".test"}}, "not a host name", Request{}},
		{"hyphen", Request{Names: []string{"-a.test"}}, "not a host name", Request{}},
		{"too long", Request{Names: []string{tooLong}}, "not a host name", Request{}},
		{"bad name", Request{Name: "../x", Names: []string{"a.test"}}, "certificate name", Request{}},
		{"bad key", Request{Names: []string{"a.test"}, KeyType: "rsa1024"}, "key type", Request{}},
		{"bad email", Request{Names: []string{"a.test"}, Email: "x/../y"}, "email", Request{}},
		{"bad profile", Request{Names: []string{"a.test"}, Profile: "a b"}, "profile", Request{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalize(tc.req)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.want.Name || strings.Join(got.Names, ",") != strings.Join(tc.want.Names, ",") ||
				got.KeyType != tc.want.KeyType || got.Email != tc.want.Email || got.Profile != tc.want.Profile {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWantRefusesBadRequests(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	m, err := New(Options{Dir: store, CAURL: "https://127.0.0.1:1/dir", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	m.Want([]Request{
		{Names: []string{"../../outside"}},
		{Name: "../../x", Names: []string{"ok2.test"}},
		{Names: []string{"*.wild.test"}},
		{Names: []string{"ok.test"}},
		{Names: []string{"ok.test", "other.test"}}, // same name twice: the first is kept
	})
	st := m.Status()
	if len(st) != 4 {
		t.Fatalf("status: %+v", st)
	}
	byName := map[string]Status{}
	for _, s := range st {
		byName[s.Name] = s
	}
	for _, n := range []string{"../../outside", "../../x", "*.wild.test"} {
		if s := byName[n]; s.LastError == "" || s.LastErrorAt.IsZero() {
			t.Errorf("%s: no error in %+v", n, s)
		}
	}
	if s := byName["ok.test"]; s.LastError != "" || len(s.Names) != 1 {
		t.Errorf("ok.test: %+v", s)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "store" {
		t.Errorf("files outside the store: %v", ents)
	}
	if ents, _ := os.ReadDir(store); len(ents) != 0 {
		t.Errorf("store written by Want: %v", ents)
	}
	if fi, _ := os.Stat(store); fi.Mode().Perm() != 0o700 {
		t.Errorf("store mode %v", fi.Mode())
	}
}

func TestResponder(t *testing.T) {
	m, err := New(Options{Dir: t.TempDir(), Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	p := provider{m.store}
	ctx := context.Background()
	if err := p.Present(ctx, "app.test", "tok_EN-1", "tok_EN-1.thumb"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Responder())
	defer srv.Close()
	get := func(method, path string) (int, string, http.Header) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	code, body, h := get("GET", "/.well-known/acme-challenge/tok_EN-1")
	if code != 200 || body != "tok_EN-1.thumb" || h.Get("Content-Type") != "text/plain" {
		t.Errorf("GET: %d %q %v", code, body, h)
	}
	if code, body, _ := get("HEAD", "/.well-known/acme-challenge/tok_EN-1"); code != 200 || body != "" {
		t.Errorf("HEAD: %d %q", code, body)
	}
	if code, _, h := get("POST", "/.well-known/acme-challenge/tok_EN-1"); code != 405 || h.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", code, h)
	}
	for _, path := range []string{
		"/.well-known/acme-challenge/unknown",
		"/.well-known/acme-challenge/",
		"/.well-known/acme-challenge/tok_EN-1/x",
		"/.well-known/acme-challenge/..%2Ftok_EN-1",
		"/tok_EN-1",
		"/",
	} {
		if code, _, _ := get("GET", path); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if err := p.CleanUp(ctx, "app.test", "tok_EN-1", ""); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get("GET", "/.well-known/acme-challenge/tok_EN-1"); code != 404 {
		t.Errorf("after clean-up: %d, want 404", code)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	for i, w := range want {
		if got := backoff(i+1, time.Minute, 24*time.Hour); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := backoff(40, time.Minute, 24*time.Hour); got != 24*time.Hour {
		t.Errorf("backoff(40) = %v", got)
	}
}

func TestGuard(t *testing.T) {
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	key := namesKey([]string{"www.a.test", "a.test"})
	var orders []OrderRecord
	add := func(ago time.Duration, result string) {
		orders = append(orders, OrderRecord{At: now.Add(-ago), Names: key, Result: result})
	}
	add(8*24*time.Hour, resultIssued) // outside the window
	add(6*24*time.Hour, resultIssued)
	add(5*24*time.Hour, resultStarted) // unknown outcome counts
	add(4*24*time.Hour, resultFailed)  // failures do not
	add(3*24*time.Hour, resultIssued)
	add(2*24*time.Hour, resultIssued)
	orders = append(orders, OrderRecord{At: now.Add(-time.Hour), Names: "other.test", Result: resultIssued})
	if until, n := guardUntil(orders, key, now); !until.IsZero() || n != 4 {
		t.Fatalf("4 issued: until %v n %d", until, n)
	}
	add(time.Hour, resultIssued)
	until, n := guardUntil(orders, key, now)
	if n != 5 || !until.Equal(now.Add(-6*24*time.Hour).Add(guardWindow)) {
		t.Fatalf("5 issued: until %v n %d", until, n)
	}
	if got := len(pruneOrders(orders, now)); got != len(orders) {
		t.Errorf("prune kept %d of %d (keeps the last %d)", got, len(orders), keepOrders)
	}
}

func TestRenewAt(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := &x509.Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	if got, want := renewAt(leaf, nil), nb.Add(60*24*time.Hour); !got.Equal(want) {
		t.Errorf("third: %v, want %v", got, want)
	}
	ari := &RenewalInfo{RenewAt: nb.Add(50 * 24 * time.Hour)}
	if got := renewAt(leaf, ari); !got.Equal(ari.RenewAt) {
		t.Errorf("ARI: %v", got)
	}
	ari.RenewAt = nb.Add(100 * 24 * time.Hour) // past expiry: ignored
	if got := renewAt(leaf, ari); !got.Equal(nb.Add(60 * 24 * time.Hour)) {
		t.Errorf("ARI after expiry: %v", got)
	}
}

func TestChooseRenewal(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(s, e time.Duration, retry time.Duration) *certificate.RenewalInfo {
		return &certificate.RenewalInfo{ExtendedRenewalInfo: &acme.ExtendedRenewalInfo{
			RenewalInfo: acme.RenewalInfo{SuggestedWindow: acme.Window{Start: now.Add(s), End: now.Add(e)}},
			RetryAfter:  retry,
		}}
	}
	future := chooseRenewal(win(time.Hour, 3*time.Hour, 0), nil, now)
	if future.RenewAt.Before(now.Add(time.Hour)) || future.RenewAt.After(now.Add(3*time.Hour)) {
		t.Errorf("in window: %v", future.RenewAt)
	}
	if !future.NextCheck.Equal(now.Add(ariDefaultTTL)) {
		t.Errorf("next check: %v", future.NextCheck)
	}
	again := chooseRenewal(win(time.Hour, 3*time.Hour, 2*time.Hour), future, now.Add(time.Minute))
	if !again.RenewAt.Equal(future.RenewAt) {
		t.Errorf("same window re-rolled: %v vs %v", again.RenewAt, future.RenewAt)
	}
	past := chooseRenewal(win(-2*time.Hour, -time.Hour, 0), future, now)
	if !past.RenewAt.Equal(now) {
		t.Errorf("past window: %v, want now", past.RenewAt)
	}
}

func TestDirStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "acme")
	s, err := NewDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.LoadCert(ctx, "a.test"); err != ErrNotFound {
		t.Fatalf("empty: %v", err)
	}
	c := &Cert{Chain: []byte("chain"), Key: []byte("key"), Meta: Meta{Names: []string{"a.test"}}}
	if err := s.SaveCert(ctx, "a.test", c); err != nil {
		t.Fatal(err)
	}
	for f, mode := range map[string]os.FileMode{"a.test.crt": 0o644, "a.test.key": 0o600, "a.test.json": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", f, fi.Mode(), err, mode)
		}
	}
	got, err := s.LoadCert(ctx, "a.test")
	if err != nil || string(got.Chain) != "chain" || string(got.Key) != "key" || got.Meta.Names[0] != "a.test" {
		t.Fatalf("load: %+v %v", got, err)
	}
	if err := s.SaveCert(ctx, "../x", c); err == nil {
		t.Error("unsafe name accepted")
	}
	for _, email := range []string{"", "ops@example.com", "../../evil@x"} {
		a := &Account{Email: email, URI: "u", KeyPEM: []byte("k")}
		if err := s.SaveAccount(ctx, "https://ca.test:14000/dir", a); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadAccount(ctx, "https://ca.test:14000/dir", email)
		if err != nil || got.URI != "u" {
			t.Fatalf("account %q: %v", email, err)
		}
	}
	if _, err := s.LoadAccount(ctx, "https://other.test/dir", ""); err != ErrNotFound {
		t.Errorf("other CA: %v", err)
	}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(p, "accounts") && !fi.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", p, fi.Mode())
		}
		if strings.Contains(fi.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "accounts")); len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "ca.test_14000-") {
		t.Errorf("accounts: %v", ents)
	}
}

// TestRateGuard: five certificates for the same names in the week, none stored (deleted by
// hand, say): the sixth order is refused locally, before any request to the CA.
func TestRateGuard(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{}
	now := clk.Now()
	key := namesKey([]string{"app.test", "www.app.test"})
	meta := Meta{Names: []string{"app.test", "www.app.test"}}
	for i := range 5 {
		meta.Orders = append(meta.Orders, OrderRecord{At: now.Add(-time.Duration(6-i) * 24 * time.Hour), Names: key, Result: resultIssued})
	}
	s, _ := NewDirStore(dir)
	if err := s.SaveMeta(context.Background(), "app.test", &meta); err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	m, err := New(Options{Dir: dir, CAURL: "https://127.0.0.1:1/dir", Log: quietLog(), Now: clk.Now,
		transport: func(http.RoundTripper) http.RoundTripper {
			return rtFunc(func(*http.Request) (*http.Response, error) { requests.Add(1); return nil, io.EOF })
		}})
	if err != nil {
		t.Fatal(err)
	}
	m.Want([]Request{{Names: []string{"app.test", "www.app.test"}}})
	runFor(m, 300*time.Millisecond)
	st := m.Status()[0]
	if !strings.Contains(st.LastError, "refused locally: 5 certificates for app.test,www.app.test") {
		t.Fatalf("last error: %q", st.LastError)
	}
	if want := meta.Orders[0].At.Add(guardWindow); !st.NextTry.Equal(want) {
		t.Errorf("next try %v, want %v", st.NextTry, want)
	}
	if st.Orders != 5 || requests.Load() != 0 {
		t.Errorf("orders %d, requests to the CA %d", st.Orders, requests.Load())
	}
	// A day later the oldest has left the window: the order is placed (and fails: no CA here).
	clk.Advance(24*time.Hour + time.Minute)
	m.poke()
	runFor(m, 300*time.Millisecond)
	if requests.Load() == 0 {
		t.Error("no order after the window moved")
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func runFor(m *Manager, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m.Run(ctx)
}

// selfSigned makes a certificate and key for store tests.
func selfSigned(t *testing.T, names []string, nb, na time.Time) (chain, key []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestPlan: a stored certificate that serves is not ordered again; a change is.
func TestPlan(t *testing.T) {
	now := time.Now()
	chain, key := selfSigned(t, []string{"a.test", "b.test"}, now.Add(-time.Hour), now.Add(89*24*time.Hour))
	m, _ := New(Options{Dir: t.TempDir(), CAURL: "https://ca.test/dir", Log: quietLog()})
	base := Request{Name: "a.test", Names: []string{"b.test", "a.test"}, KeyType: "ec-256"}
	for _, tc := range []struct {
		name   string
		req    func(*Request)
		meta   func(*Meta)
		act    action
		reason string
	}{
		{"serves, ARI unknown", nil, nil, actCheck, ""},
		{"serves, ARI later", nil, func(m *Meta) { m.Renewal = &RenewalInfo{NextCheck: now.Add(time.Hour)} }, actCheck, ""},
		{"names", func(r *Request) { r.Names = []string{"a.test"} }, nil, actOrder, "names changed"},
		{"key type", func(r *Request) { r.KeyType = "2048" }, nil, actOrder, "key type changed"},
		{"CA", nil, func(m *Meta) { m.CA = "https://other.test/dir" }, actOrder, "CA changed"},
		{"profile", func(r *Request) { r.Profile = "short" }, func(m *Meta) { m.CA = "https://ca.test/dir" }, actOrder, "profile changed"},
		{"ARI says now", nil, func(m *Meta) { m.Renewal = &RenewalInfo{RenewAt: now, NextCheck: now.Add(time.Hour)} }, actOrder, "renewal due"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := base
			if tc.req != nil {
				tc.req(&req)
			}
			e := &entry{req: req}
			m.setStored(e, &Cert{Chain: chain, Key: key})
			if tc.meta != nil {
				tc.meta(&e.meta)
			}
			act, _, reason := m.plan(e, now)
			if act != tc.act || reason != tc.reason {
				t.Errorf("plan = %v %q, want %v %q", act, reason, tc.act, tc.reason)
			}
		})
	}
}
