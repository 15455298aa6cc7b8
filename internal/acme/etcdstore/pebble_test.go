package etcdstore

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/acme/pebbletest"
)

// Two gateways (two Managers on two stores, two etcd clients) want the same certificate: one
// order, both get it, and the CA validates through gateway A's responder alone, whichever gateway
// ordered (the token is in etcd).
func TestTwoGatewaysOneOrder(t *testing.T) {
	e := startEtcd(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var (
		mu        sync.Mutex
		responder http.Handler = http.NotFoundHandler()
	)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := responder
		mu.Unlock()
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	ca := pebbletest.New(t, pebbletest.Options{HTTPPort: l.Addr().(*net.TCPAddr).Port})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var managers []*acme.Manager
	for i := range 2 {
		s, _ := e.newStore(t, ca.DirURL)
		m, err := acme.New(acme.Options{CAURL: ca.DirURL, CABundle: ca.CABundle, Store: s, Log: quiet})
		must(t, err)
		if i == 0 {
			mu.Lock()
			responder = m.Responder()
			mu.Unlock()
		}
		managers = append(managers, m)
	}
	req := []acme.Request{{Names: []string{"shop.example.com", "www.shop.example.com"}, Email: "ops@example.com"}}
	var wg sync.WaitGroup
	for _, m := range managers {
		m.Want(req)
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()

	deadline := time.Now().Add(2 * time.Minute)
	serials := make([]string, len(managers))
	for {
		done := true
		for i, m := range managers {
			st := m.Status()
			if len(st) != 1 || st[0].Serial == "" {
				done = false
				continue
			}
			serials[i] = st[0].Serial
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for _, m := range managers {
				t.Logf("status: %+v", m.Status())
			}
			t.Fatal("the certificate was not issued to both gateways")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if serials[0] != serials[1] {
		t.Errorf("the gateways hold different certificates: %v", serials)
	}
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders at the CA, want 1", n)
	}
	// Each gateway mirrors the shared certificate into its own directory.
	s, _ := e.newStore(t, ca.DirURL)
	dir := filepath.Join(t.TempDir(), "acme")
	changed, err := SyncDir(ctx, s, dir)
	if err != nil || !changed {
		t.Fatalf("SyncDir: changed %v, %v", changed, err)
	}
}
