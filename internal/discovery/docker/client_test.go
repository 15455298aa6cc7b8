package docker

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

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

func TestNewClientWithoutCounter(t *testing.T) {
	e := newFakeEngine(t)
	t.Setenv("DOCKER_HOST", e.host())
	t.Setenv("DOCKER_API_VERSION", "1.41")
	cli, err := NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.ContainerList(context.Background(), container.ListOptions{}); err != nil {
		t.Fatal(err)
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
	tr := countingTransport{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
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
