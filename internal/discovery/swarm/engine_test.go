package swarm

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/client"
)

// fakeSwarm serves a Swarm manager's API as Docker Engine API 1.41 would: /info, /services,
// /tasks, /nodes from the captured fixtures (or whatever a test puts there), and /events as a
// stream the test pushes messages into. It records every request.
type fakeSwarm struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	info     []byte // /info
	services []byte
	tasks    []byte
	nodes    []byte
	// failures answer a path ("/services") with a status and the engine's error message.
	failures map[string]fakeFailure
	// refuseRaw answers 400 to list requests without the User-Agent "official" (a client's own
	// calls, with clientWithAgent), as an engine refuses reads it cannot serve.
	refuseRaw bool
	requests  []string // "METHOD path?query"

	events   chan events.Message // delivered to whichever /events stream is open
	quit     chan struct{}       // ends the open /events streams
	stopOnce sync.Once
}

type fakeFailure struct {
	status  int
	message string
}

// managerInfo, workerInfo and noSwarmInfo are /info answers (only the fields the source reads).
const (
	managerInfo = `{"ID":"engine","Name":"vm","Swarm":{"NodeID":"spqfk05tebrybxaujoznz6fo7","NodeAddr":"127.0.0.1","LocalNodeState":"active","ControlAvailable":true}}`
	workerInfo  = `{"ID":"engine","Name":"w1","Swarm":{"NodeID":"w1nodeid","NodeAddr":"10.0.0.12","LocalNodeState":"active","ControlAvailable":false}}`
	noSwarmInfo = `{"ID":"engine","Name":"solo","Swarm":{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false}}`
	// A manager's engine passes through these when it restarts or loses its cluster.
	pendingInfo = `{"ID":"engine","Name":"vm","Swarm":{"NodeID":"spqfk05tebrybxaujoznz6fo7","LocalNodeState":"pending","ControlAvailable":false}}`
	errorInfo   = `{"ID":"engine","Name":"vm","Swarm":{"NodeID":"","LocalNodeState":"error","ControlAvailable":false,"Error":"manager stopped: can't initialize raft node: rpc error"}}`
	lockedInfo  = `{"ID":"engine","Name":"vm","Swarm":{"NodeID":"","LocalNodeState":"locked","ControlAvailable":false}}`
)

// What the real engine answers (503) to a swarm request on a node that is not an active manager
// (moby daemon/cluster errNoManager): a worker; a node without a running Swarm node (outside a
// Swarm, or a member between two runs of its node); a manager starting or cut off.
const (
	notManagerMessage = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
	noSwarmMessage    = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
	preparingMessage  = "This node is not a swarm manager. Manager is being prepared or has trouble connecting to the cluster."
)

func newFakeSwarm(t *testing.T) *fakeSwarm {
	t.Helper()
	e := &fakeSwarm{t: t, info: []byte(managerInfo), failures: map[string]fakeFailure{},
		events: make(chan events.Message, 16), quit: make(chan struct{})}
	e.services = readFixture(t, "services.json")
	e.tasks = readFixture(t, "tasks.json")
	e.nodes = readFixture(t, "nodes.json")
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.stop)
	return e
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stop ends the event streams and closes the server: afterwards the engine is unreachable.
func (e *fakeSwarm) stop() {
	e.stopOnce.Do(func() {
		close(e.quit)
		e.srv.Close()
	})
}

func (e *fakeSwarm) serve(w http.ResponseWriter, r *http.Request) {
	req := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		req += "?" + r.URL.RawQuery
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1.41")
	e.mu.Lock()
	e.requests = append(e.requests, req)
	failure, failing := e.failures[path]
	if e.refuseRaw && r.UserAgent() != "official" && (path == "/services" || path == "/tasks") {
		failure, failing = fakeFailure{http.StatusBadRequest, "raw read refused"}, true
	}
	var body []byte
	switch path {
	case "/info":
		body = e.info
	case "/services":
		body = e.services
	case "/tasks":
		body = e.tasks
	case "/nodes":
		body = e.nodes
	}
	e.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Api-Version", "1.41")
	switch {
	case r.Method != http.MethodGet:
		w.WriteHeader(http.StatusNotImplemented)
		json.NewEncoder(w).Encode(map[string]string{"message": "fake swarm: not implemented: " + req})
	case failing:
		w.WriteHeader(failure.status)
		json.NewEncoder(w).Encode(map[string]string{"message": failure.message})
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("OK"))
	case path == "/events":
		e.stream(w, r)
	case body != nil:
		w.Write(body)
	default:
		w.WriteHeader(http.StatusNotImplemented)
		json.NewEncoder(w).Encode(map[string]string{"message": "fake swarm: not implemented: " + req})
	}
}

// stream answers /events: headers at once (the client waits for them), then every pushed message.
func (e *fakeSwarm) stream(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	flusher.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-e.quit:
			return
		case m := <-e.events:
			if err := enc.Encode(m); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

func (e *fakeSwarm) client() *client.Client {
	e.t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+e.srv.Listener.Addr().String()), client.WithVersion("1.41"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

// clientWithAgent is a client whose own calls say User-Agent "official" (see refuseRaw).
func (e *fakeSwarm) clientWithAgent() *client.Client {
	e.t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+e.srv.Listener.Addr().String()), client.WithVersion("1.41"),
		client.WithUserAgent("official"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

func (e *fakeSwarm) set(f func(e *fakeSwarm)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

// calls counts the GET requests to one endpoint ("/services"), whatever their query.
func (e *fakeSwarm) calls(endpoint string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.requests {
		p, _, _ := strings.Cut(strings.TrimPrefix(r, "GET /v1.41"), "?")
		if p == endpoint {
			n++
		}
	}
	return n
}

// total counts every request but the event stream's.
func (e *fakeSwarm) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.requests {
		if !strings.HasPrefix(r, "GET /v1.41/events") {
			n++
		}
	}
	return n
}

func (e *fakeSwarm) recorded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}
