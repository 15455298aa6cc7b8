package docker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/client"
)

// fakeEngine serves the captured fixtures as a Docker Engine API 1.41 would: the container list
// and one inspect per fixture, by full ID, name or ID prefix; it records every request.
type fakeEngine struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	list     []byte
	inspect  map[string][]byte // by full ID
	names    map[string]string // name -> ID
	gone     map[string]bool   // IDs answering 404
	requests []string          // "METHOD path?query"
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	e := &fakeEngine{t: t, inspect: map[string][]byte{}, names: map[string]string{}, gone: map[string]bool{}}
	var err error
	if e.list, err = os.ReadFile(filepath.Join("testdata", "list.json")); err != nil {
		t.Fatal(err)
	}
	for _, n := range fixtureNames {
		b, err := os.ReadFile(filepath.Join("testdata", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Id, Name string }
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatal(err)
		}
		e.inspect[head.Id] = b
		e.names[strings.TrimPrefix(head.Name, "/")] = head.Id
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *fakeEngine) resolve(ref string) (string, bool) {
	if id, ok := e.names[ref]; ok {
		return id, true
	}
	for id := range e.inspect {
		if strings.HasPrefix(id, ref) {
			return id, true
		}
	}
	return "", false
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	req := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		req += "?" + r.URL.RawQuery
	}
	e.requests = append(e.requests, req)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Api-Version", "1.41")
	path := strings.TrimPrefix(r.URL.Path, "/v1.41")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	notFound := func(ref string) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "No such container: " + ref})
	}
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("OK"))
	case r.Method == http.MethodGet && path == "/containers/json":
		w.Write(e.list)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "containers" && parts[2] == "json":
		id, ok := e.resolve(parts[1])
		if !ok || e.gone[id] {
			notFound(parts[1])
			return
		}
		w.Write(e.inspect[id])
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "containers" && parts[2] == "kill":
		if _, ok := e.resolve(parts[1]); !ok {
			notFound(parts[1])
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotImplemented)
		json.NewEncoder(w).Encode(map[string]string{"message": "fake engine: not implemented: " + req})
	}
}

// host is the engine address in DOCKER_HOST form.
func (e *fakeEngine) host() string { return "tcp://" + e.srv.Listener.Addr().String() }

func (e *fakeEngine) client() *client.Client {
	e.t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(e.host()), client.WithVersion("1.41"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

// count returns how many recorded requests start with prefix ("GET /v1.41/containers/json").
func (e *fakeEngine) count(match func(req string) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.requests {
		if match(r) {
			n++
		}
	}
	return n
}

func (e *fakeEngine) inspects() int {
	return e.count(func(r string) bool {
		return strings.HasPrefix(r, "GET /v1.41/containers/") && strings.HasSuffix(r, "/json") && r != "GET /v1.41/containers/json"
	})
}

func (e *fakeEngine) recorded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}
