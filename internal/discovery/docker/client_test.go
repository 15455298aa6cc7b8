package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func TestOperation(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/v1.41/containers/json", "container_list"},
		{"GET", "/containers/json", "container_list"},
		{"GET", "/v1.41/containers/abc/json", "container_inspect"},
		{"GET", "/containers/abc/json", "container_inspect"},
		{"GET", "/v1.50/containers/" + plainID + "/json", "container_inspect"},
		{"POST", "/containers/abc/kill", "container_kill"},
		{"POST", "/v1.41/containers/abc/kill", "container_kill"},
		{"GET", "/v1.41/events", "get_events"},
		{"GET", "/events", "get_events"},
		{"HEAD", "/_ping", "head__ping"},
		{"GET", "/_ping", "get__ping"},
		{"HEAD", "/v1.41/_ping", "head__ping"},
		{"GET", "/v1.41/version", "get_version"},
		{"GET", "/v1.41/info", "get_info"},
		{"GET", "/v1.41/networks/bridge", "get_networks"},
		{"POST", "/v1.41/containers/abc/start", "post_containers"},
		{"GET", "/v1.41/containers/abc/logs", "get_containers"},
		{"GET", "/v1.41/containers/json/", "container_list"},
		{"GET", "/", "get"},
		{"GET", "", "get"},
	}
	for _, tt := range tests {
		if got := Operation(tt.method, tt.path); got != tt.want {
			t.Errorf("Operation(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	// The label must not carry IDs: inspects of different containers share one operation.
	if Operation("GET", "/v1.41/containers/aaa/json") != Operation("GET", "/v1.41/containers/bbb/json") {
		t.Error("container IDs leak into the operation name")
	}
}

// NewClient reads DOCKER_HOST (and the other DOCKER_* variables) and counts every request.
func TestNewClientCountsRequests(t *testing.T) {
	e := newFakeEngine(t)
	t.Setenv("DOCKER_HOST", e.host())
	t.Setenv("DOCKER_API_VERSION", "1.41")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	os.Unsetenv("DOCKER_TLS_VERIFY")
	os.Unsetenv("DOCKER_CERT_PATH")

	var mu sync.Mutex
	var ops []string
	cli, err := NewClient(func(op string) { mu.Lock(); ops = append(ops, op); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if cli.DaemonHost() != e.host() {
		t.Errorf("DaemonHost = %q, want %q (from DOCKER_HOST)", cli.DaemonHost(), e.host())
	}
	ctx := context.Background()
	if _, err := cli.ContainerList(ctx, container.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, "vgt-plain"); err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerKill(ctx, "vgt-plain", "HUP"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"container_list", "container_inspect", "container_kill"}; !slices.Equal(ops, want) {
		t.Errorf("counted %v, want %v", ops, want)
	}
	if got := e.recorded(); len(got) != 3 {
		t.Errorf("engine saw %v", got)
	}
}

// Without DOCKER_API_VERSION the client negotiates with a ping first, which is counted too.
func TestNewClientNegotiates(t *testing.T) {
	e := newFakeEngine(t)
	t.Setenv("DOCKER_HOST", e.host())
	t.Setenv("DOCKER_API_VERSION", "")
	os.Unsetenv("DOCKER_API_VERSION")
	var ops []string
	cli, err := NewClient(func(op string) { ops = append(ops, op) })
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ContainerList(context.Background(), container.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(ops) < 2 || !strings.HasSuffix(ops[0], "__ping") || ops[len(ops)-1] != "container_list" {
		t.Errorf("counted %v, want a ping then container_list", ops)
	}
	if cli.ClientVersion() != "1.41" {
		t.Errorf("negotiated version %q, want 1.41", cli.ClientVersion())
	}
}

func TestCountingTransport(t *testing.T) {
	var got []string
	tr := transport{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	}), count: func(op string) { got = append(got, op) }}
	req, _ := http.NewRequest("POST", "http://docker/v1.41/containers/x/kill?signal=HUP", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("RoundTrip: %v %v", resp, err)
	}
	if !slices.Equal(got, []string{"container_kill"}) {
		t.Errorf("counted %v", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// NewClient's client (here without a counter) hands List the container list an entry at a time (and ContainerList then
// returns nothing); List reads the same workloads as with a client that decodes the whole list.
func TestNewClientStreamsList(t *testing.T) {
	e := newFakeEngine(t)
	t.Setenv("DOCKER_HOST", e.host())
	t.Setenv("DOCKER_API_VERSION", "1.41")
	cli, err := NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	var ids []string
	list, err := cli.ContainerList(eachListed(ctx, func(c *container.Summary) { ids = append(ids, c.ID) }), container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Not asked to (and without a counter), the same client lists as usual.
	whole, err := cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 || len(ids) != len(whole) || len(whole) < 3 {
		t.Fatalf("streamed %d entries and returned %d; the whole list has %d", len(ids), len(list), len(whole))
	}
	for i := range whole {
		if ids[i] != whole[i].ID {
			t.Errorf("entry %d: streamed %s, listed %s", i, ids[i], whole[i].ID)
		}
	}
	streamed, err := New(cli, Options{Log: quiet}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := New(e.client(), Options{Log: quiet}).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(streamed) == 0 || !reflect.DeepEqual(streamed, decoded) {
		t.Errorf("List with a streamed list:\n%+v\nwith a decoded one:\n%+v", streamed, decoded)
	}

	// A list cut short is an error, not a shorter list.
	e.mu.Lock()
	e.list = e.list[:len(e.list)/2]
	e.mu.Unlock()
	if _, err := New(cli, Options{Log: quiet}).List(ctx); err == nil || !strings.Contains(err.Error(), "read the container list") {
		t.Errorf("List of a truncated answer: %v, want an error reading the list", err)
	}
}

// With DOCKER_TLS_VERIFY and DOCKER_CERT_PATH the client speaks https, though NewClient wraps the
// transport the client would have read its TLS settings from.
func TestNewClientTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	}))
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", srv.Certificate().Raw)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vhost-gen test client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "key.pem"), "EC PRIVATE KEY", kb)
	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
	t.Setenv("DOCKER_API_VERSION", "1.41")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	cli, err := NewClient(func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Ping(context.Background()); err != nil {
		t.Fatalf("ping over TLS: %v", err)
	}
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
