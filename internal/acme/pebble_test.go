package acme

import (
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/acme/pebbletest"
)

// A real ACME CA for the tests: pebble (internal/acme/pebbletest), validating HTTP-01 on the
// port of a responder server that fans out to the tests' Managers. Started once, on first use,
// and stopped by TestMain.

type pebbleEnv struct {
	*pebbletest.CA

	mu        sync.Mutex
	responder []http.Handler
	served    map[string]int // challenge path -> status, as answered to pebble
}

var (
	pebbleOnce  sync.Once
	pebbleErr   error
	pebbleState *pebbleEnv
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pebbleState != nil {
		pebbleState.Close()
	}
	os.Exit(code)
}

// pebble returns the shared CA, starting it (and installing it) the first time; a failure fails
// the test with the reason, never skips it.
func pebble(t *testing.T) *pebbleEnv {
	t.Helper()
	pebbleOnce.Do(func() { pebbleState, pebbleErr = startPebble() })
	if pebbleErr != nil {
		t.Fatalf("pebble: %v", pebbleErr)
	}
	return pebbleState
}

func startPebble() (*pebbleEnv, error) {
	p := &pebbleEnv{served: map[string]int{}}
	httpPort, err := p.serveResponders()
	if err != nil {
		return nil, err
	}
	ca, err := pebbletest.Start(pebbletest.Options{HTTPPort: httpPort, Profiles: map[string]time.Duration{
		"default": 90 * 24 * time.Hour,
		"short":   time.Minute,
	}})
	if err != nil {
		return nil, err
	}
	p.CA = ca
	return p, nil
}

// serveResponders listens where pebble validates HTTP-01 and asks each registered Responder in
// turn; it records what was answered.
func (p *pebbleEnv) serveResponders() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(p.fanOut), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *pebbleEnv) fanOut(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	hs := append([]http.Handler(nil), p.responder...)
	p.mu.Unlock()
	code := http.StatusNotFound
	defer func() {
		p.mu.Lock()
		p.served[r.URL.Path] = code
		p.mu.Unlock()
	}()
	for _, h := range hs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound {
			code = rec.Code
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
	}
	http.NotFound(w, r)
}

// register makes m's Responder answer pebble's validations.
func (p *pebbleEnv) register(m *Manager) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.responder = append(p.responder, m.Responder())
}

// servedTokens are the challenge paths answered 200 so far.
func (p *pebbleEnv) servedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for path, code := range p.served {
		if code == http.StatusOK {
			out = append(out, path)
		}
	}
	return out
}

// root is pebble's current root (regenerated at each start), what clients would trust.
func (p *pebbleEnv) root(t *testing.T) *x509.CertPool {
	t.Helper()
	pool, err := p.RootPool()
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// post sends a JSON body to a management API (pebble's or challtestsrv's).
func (p *pebbleEnv) post(t *testing.T, url string, body any) {
	t.Helper()
	if err := p.Post(url, body); err != nil {
		t.Fatal(err)
	}
}
