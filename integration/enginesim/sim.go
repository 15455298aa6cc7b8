// Package enginesim is a Docker Engine simulator for scale tests and benchmarks: an HTTP server on
// a unix socket that answers the read endpoints vhost-gen uses (ping, version, info, containers,
// networks, events, and in Swarm mode services, tasks and nodes) from N synthetic workloads, with
// JSON built from the official API types, so that the official client (and vhost-gen) reads it as
// it reads a real engine.
//
// Tests and benchmarks change the simulated world through methods (Start, Stop, Die, SetHealth,
// UpdateLabels, CreateService, ScaleService, ...); each emits the events the real engine emits for
// that change, in the real engine's order, on /events. Every request is counted per endpoint
// (method and path template, "GET /containers/{id}/json"), so a test can tell how many API calls
// vhost-gen makes per event or per resync.
//
// Typical use:
//
//	sim := enginesim.Start(t, enginesim.Options{})
//	sim.AddContainers(1000, enginesim.DefaultContainer)
//	cmd.Env = append(os.Environ(), "DOCKER_HOST="+sim.Host())
//
// What it does not simulate: images, volumes, exec, logs, any write endpoint other than a
// container kill (vhost-gen's --reload-container), and health probes' exec_* events (the real
// engine filters those out for vhost-gen's subscription anyway).
package enginesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/versions"
)

// Options configure a simulator. The zero value is a standalone engine speaking API 1.41 (Docker
// 20.10, this machine's engine) that never drops events.
type Options struct {
	// APIVersion is the highest API version served, as /_ping's API-Version header says; clients
	// negotiate down to it. Default "1.41".
	APIVersion string
	// Hostname is the engine host's name (/info's Name, the Swarm node's hostname). Default "enginesim".
	Hostname string
	// Swarm makes the engine a Swarm manager: /info says so and services, tasks and nodes answer.
	Swarm bool
	// Nodes is the number of Swarm nodes (default 1: this manager alone). Node 0 is this engine;
	// tasks are spread over the nodes round-robin, and only node 0's tasks are local containers.
	Nodes int
	// Latency is added to every request but /events, to model a loaded engine.
	Latency time.Duration
	// DropSlowReaders makes /events behave as the real engine does with a slow reader: each
	// subscriber has a 1024-event buffer, and an event that cannot be queued within 100ms is
	// dropped for that subscriber (see Dropped). Off, a slow reader slows the mutations down
	// instead, and no event is ever lost.
	DropSlowReaders bool
	// EventBuffer and DropAfter tune DropSlowReaders; defaults 1024 and 100ms, as the engine's.
	EventBuffer int
	DropAfter   time.Duration
	// History is how many past events /events can replay for since=; default 256, as the engine's.
	History int
}

// Sim is a running simulator. All methods are safe for concurrent use.
type Sim struct {
	opt    Options
	socket string
	ln     net.Listener
	srv    *http.Server
	mux    *http.ServeMux
	bus    *bus
	// mut serializes mutations with their events, so that events come out in the order of the
	// changes, each after its change is visible to readers.
	mut sync.Mutex
	// mu guards the world below.
	mu    sync.RWMutex
	world world

	reqMu    sync.Mutex
	requests map[string]int64
}

// New returns a simulator that is not listening yet (see Listen, or Start for tests).
func New(opt Options) *Sim {
	if opt.APIVersion == "" {
		opt.APIVersion = "1.41"
	}
	if opt.Hostname == "" {
		opt.Hostname = "enginesim"
	}
	if opt.Nodes <= 0 {
		opt.Nodes = 1
	}
	if opt.EventBuffer <= 0 {
		opt.EventBuffer = 1024
	}
	if opt.DropAfter <= 0 {
		opt.DropAfter = 100 * time.Millisecond
	}
	if opt.History <= 0 {
		opt.History = 256
	}
	s := &Sim{opt: opt, requests: map[string]int64{}}
	s.bus = newBus(opt)
	s.world.init(opt)
	s.mux = http.NewServeMux()
	s.routes()
	return s
}

// Start starts a simulator on a fresh socket for the test, closed when the test ends.
func Start(t testing.TB, opt Options) *Sim {
	t.Helper()
	// A short directory: a unix socket path must fit in 108 bytes, and test names can be long.
	dir, err := os.MkdirTemp("", "enginesim-")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opt)
	if err := s.Listen(filepath.Join(dir, "docker.sock")); err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		os.RemoveAll(dir)
	})
	return s
}

// Listen serves the API on a unix socket at path, in the background.
func (s *Sim) Listen(path string) error {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	s.socket, s.ln = path, ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// Close stops the server and ends every event stream.
func (s *Sim) Close() error {
	s.bus.close()
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// SocketPath is the unix socket the simulator listens on.
func (s *Sim) SocketPath() string { return s.socket }

// Host is the DOCKER_HOST value for the simulator: "unix:///path/docker.sock". vhost-gen has no
// flag for it; it reads DOCKER_HOST as the docker CLI does.
func (s *Sim) Host() string { return "unix://" + s.socket }

// Requests returns a snapshot of the requests served so far, per "METHOD /path/{template}"
// ("GET /containers/{id}/json", "HEAD /_ping"); unknown paths count as themselves, and requests
// refused for their API version do not count.
func (s *Sim) Requests() map[string]int64 {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return maps.Clone(s.requests)
}

// ResetRequests zeroes the request counts.
func (s *Sim) ResetRequests() {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	clear(s.requests)
}

func (s *Sim) count(key string) {
	s.reqMu.Lock()
	s.requests[key]++
	s.reqMu.Unlock()
}

// versioned matches a versioned path, "/v1.41/containers/json".
var versioned = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// minAPIVersion is the oldest version the engine accepts, as 20.10's.
const minAPIVersion = "1.12"

// ServeHTTP strips the version prefix, refuses versions out of range as the engine does, and
// hands the request to the endpoint's handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Docker/"+engineVersion+" (linux)")
	w.Header().Set("Api-Version", s.opt.APIVersion)
	w.Header().Set("Ostype", "linux")
	if m := versioned.FindStringSubmatch(r.URL.Path); m != nil {
		switch v := m[1]; {
		case versions.LessThan(v, minAPIVersion):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, minAPIVersion))
			return
		case versions.GreaterThan(v, s.opt.APIVersion):
			writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", v, s.opt.APIVersion))
			return
		}
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath = m[2], ""
		r2.URL = &u
		r = &r2
	}
	s.mux.ServeHTTP(w, r)
}

// handle registers an endpoint; pattern is a ServeMux pattern, "GET /containers/{id}/json", and
// its method and path are the request counter's key (HEAD requests to a GET endpoint count as HEAD).
func (s *Sim) handle(pattern string, h http.HandlerFunc) {
	_, path, _ := strings.Cut(pattern, " ")
	stream := path == "/events"
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.count(r.Method + " " + path)
		if s.opt.Latency > 0 && !stream {
			time.Sleep(s.opt.Latency)
		}
		h(w, r)
	})
}

func (s *Sim) routes() {
	s.handle("GET /_ping", s.ping) // HEAD too
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
	s.handle("GET /containers/json", s.containerList)
	s.handle("GET /containers/{id}/json", s.containerInspect)
	s.handle("POST /containers/{id}/kill", s.containerKill)
	s.handle("GET /networks", s.networkList)
	s.handle("GET /networks/{id}", s.networkInspect)
	s.handle("GET /events", s.events)
	s.handle("GET /services", s.serviceList)
	s.handle("GET /services/{id}", s.serviceInspect)
	s.handle("GET /tasks", s.taskList)
	s.handle("GET /tasks/{id}", s.taskInspect)
	s.handle("GET /nodes", s.nodeList)
	s.handle("GET /nodes/{id}", s.nodeInspect)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.count(r.Method + " " + r.URL.Path)
		writeError(w, http.StatusNotFound, "page not found")
	})
}

// mutate runs one change of the world under the write lock, then publishes its events, in order,
// once the change is visible.
func (s *Sim) mutate(change func(w *world) ([]event, error)) error {
	s.mut.Lock()
	defer s.mut.Unlock()
	s.mu.Lock()
	evs, err := change(&s.world)
	s.mu.Unlock()
	for _, ev := range evs {
		s.bus.publish(ev.msg())
	}
	return err
}

// read runs f under the read lock.
func (s *Sim) read(f func(w *world)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(&s.world)
}

// writeJSON writes v as the engine does: JSON, one document, a trailing newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError writes the engine's error body, which the client turns into typed errors by status
// (404: cerrdefs.IsNotFound).
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// ErrNotFound is returned by mutations on an unknown container, service or node.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by mutations that the engine would refuse in the current state (start a
// name in use, stop a container that is not running).
var ErrConflict = errors.New("conflict")

// waitCtx sleeps d or until ctx ends.
func waitCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
