package docker

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// inflight counts the inspects in flight at the client. Until bound of them are in flight at
// once, it holds each, so that a source that inspects bound at a time is seen to, whatever the
// scheduling; one that never does is reported (after patience), not waited for forever.
type inflight struct {
	next  http.RoundTripper
	bound int

	mu        sync.Mutex
	now, max  int
	full      chan struct{}
	once      *sync.Once
	neverFull bool
}

func (f *inflight) RoundTrip(r *http.Request) (*http.Response, error) {
	if Operation(r.Method, r.URL.Path) != "container_inspect" {
		return f.next.RoundTrip(r)
	}
	f.mu.Lock()
	f.now++
	f.max = max(f.max, f.now)
	full, once := f.full, f.once
	if f.now == f.bound {
		once.Do(func() { close(full) })
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	const patience = 30 * time.Second // only for a source that never reaches the bound
	t := time.NewTimer(patience)
	defer t.Stop()
	select {
	case <-full:
	case <-t.C:
		f.mu.Lock()
		f.neverFull = true
		f.mu.Unlock()
		once.Do(func() { close(full) })
	}
	return f.next.RoundTrip(r)
}

func simClient(t testing.TB, sim *enginesim.Sim, wrap func(http.RoundTripper) http.RoundTripper) *client.Client {
	t.Helper()
	opts := []client.Opt{client.WithHost(sim.Host()), client.WithAPIVersionNegotiation()}
	if wrap != nil {
		opts = append(opts, func(c *client.Client) error {
			hc := c.HTTPClient()
			hc.Transport = wrap(hc.Transport)
			return client.WithHTTPClient(hc)(c)
		})
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// A resync inspects inspectConcurrency containers at a time: never more, and that many at once.
// So does a batch of events over many containers.
func TestInspectConcurrencyBound(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{Latency: time.Millisecond})
	const n = 300
	ids, err := sim.AddContainers(n, enginesim.DefaultContainer)
	if err != nil {
		t.Fatal(err)
	}
	f := &inflight{bound: inspectConcurrency, full: make(chan struct{}), once: new(sync.Once)}
	s := New(simClient(t, sim, func(rt http.RoundTripper) http.RoundTripper { f.next = rt; return f }), Options{Log: quiet})
	ctx := context.Background()
	ws, err := s.List(ctx)
	if err != nil || len(ws) != n {
		t.Fatalf("List: %d workloads, %v", len(ws), err)
	}
	if got := sim.Requests()["GET /containers/{id}/json"]; got != n {
		t.Errorf("%d inspects, want %d", got, n)
	}
	f.mu.Lock()
	if f.max != inspectConcurrency || f.neverFull {
		t.Errorf("resync: at most %d inspects in flight (reached the bound: %v), want %d", f.max, !f.neverFull, inspectConcurrency)
	}
	f.max, f.full, f.once = 0, make(chan struct{}), new(sync.Once) // hold again until the bound is reached
	f.mu.Unlock()

	// A batch dirtying every container.
	var ms []event
	for _, id := range ids {
		if err := sim.SetHealth(id, "unhealthy"); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, s.batch(containerEvent("health_status: unhealthy", id, nil))...)
	}
	out := make(chan discovery.Update, n)
	if err := s.process(ctx, ms, out); err != nil {
		t.Fatal(err)
	}
	if us := drain(out); len(us) != n || us[0].Workloads[0].Health != "unhealthy" {
		t.Errorf("batch: %d updates", len(us))
	}
	f.mu.Lock()
	if f.max != inspectConcurrency || f.neverFull {
		t.Errorf("batch: at most %d inspects in flight (reached the bound: %v), want %d", f.max, !f.neverFull, inspectConcurrency)
	}
	f.mu.Unlock()
}

// When more events queue than the queue's cap while the session is busy, the queue is dropped
// and the session resyncs at once: no event is lost unnoticed.
func TestQueueOverflowForcesResync(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	const n = 50
	if _, err := sim.AddContainers(n, enginesim.DefaultContainer); err != nil {
		t.Fatal(err)
	}
	s := New(simClient(t, sim, nil), Options{Log: quiet, Resync: time.Hour})
	s.queueCap = 10
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan discovery.Update) // unbuffered: the session waits on the test
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, out) }()
	if u := <-out; !u.Full || len(u.Workloads) != n {
		t.Fatalf("first update: full %v, %d workloads", u.Full, len(u.Workloads))
	}
	// One start: the session inspects it and then waits to send its update, unread.
	first, err := sim.Start(enginesim.DefaultContainer(n))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the start's inspect", func() bool { return sim.Requests()["GET /containers/{id}/json"] == n+1 })
	// Meanwhile 20 more start: 40 events (connect, start) for a queue of 10.
	for i := range 20 {
		if _, err := sim.Start(enginesim.DefaultContainer(n + 1 + i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the reader to read every event", func() bool { return s.received.Load() >= 2+40 })
	if u := <-out; len(u.Workloads) != 1 || u.Workloads[0].ID != first {
		t.Fatalf("second update: %+v, want the first start's", u)
	}
	u := <-out
	if !u.Full || len(u.Workloads) != n+21 {
		t.Fatalf("after the overflow: full %v, %d workloads; want a full update of %d", u.Full, len(u.Workloads), n+21)
	}
	req := sim.Requests()
	if req["GET /containers/json"] != 2 || req["GET /containers/{id}/json"] != n+21 || req["GET /events"] != 1 {
		t.Errorf("requests %v: want 2 lists (start-up, overflow), %d inspects, one subscription", req, n+21)
	}
	// The session goes on with the same stream.
	last, _ := sim.Start(enginesim.DefaultContainer(n + 21))
	if u := <-out; len(u.Workloads) != 1 || u.Workloads[0].ID != last {
		t.Errorf("after the resync: %+v, want the next start", u)
	}
	cancel()
	<-done
}

// waitFor polls cond until true; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
