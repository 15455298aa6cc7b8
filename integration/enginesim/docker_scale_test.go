package enginesim_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
)

// holdInspects holds every container inspect from the first one on until release is closed, and
// closes first when the first one comes: a test can then change the engine while a resync is
// under way, whatever the scheduling.
type holdInspects struct {
	next    http.RoundTripper
	first   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *holdInspects) RoundTrip(r *http.Request) (*http.Response, error) {
	if docker.Operation(r.Method, r.URL.Path) == "container_inspect" {
		h.once.Do(func() { close(h.first) })
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	}
	return h.next.RoundTrip(r)
}

func wrappedClient(t testing.TB, sim *enginesim.Sim, wrap func(http.RoundTripper) http.RoundTripper) *client.Client {
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

// state is the source's view: the workloads its updates add up to.
type state map[string]discovery.Workload

func (s state) apply(u discovery.Update) {
	if u.Full {
		clear(s)
	}
	for _, w := range u.Workloads {
		s[w.ID] = w
	}
	for _, id := range u.Removed {
		delete(s, id)
	}
}

// until applies the source's updates to st until one brings the workload id; the timeout only
// turns a hang (a lost event) into a failure.
func until(t *testing.T, out <-chan discovery.Update, st state, id string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case u := <-out:
			st.apply(u)
			for _, w := range u.Workloads {
				if w.ID == id {
					return
				}
			}
		case <-timeout:
			t.Fatalf("the workload %.12s never came: an event was lost (%d workloads)", id, len(st))
		}
	}
}

// Start-up with 5,000 containers on a slow engine that drops events for slow readers, while 300
// containers start during the initial resync: none is lost, and each costs one inspect (the
// resync's list came before them).
func TestDockerSourceStartupWhileStarting(t *testing.T) {
	// A small event buffer (the engine's patience, 100ms, as it is): a source that stops reading
	// during its resync loses events here.
	sim := enginesim.Start(t, enginesim.Options{Latency: time.Millisecond, DropSlowReaders: true, EventBuffer: 64})
	const n, started = 5000, 300
	if _, err := sim.AddContainers(n, enginesim.DefaultContainer); err != nil {
		t.Fatal(err)
	}
	h := &holdInspects{first: make(chan struct{}), release: make(chan struct{})}
	cli := wrappedClient(t, sim, func(rt http.RoundTripper) http.RoundTripper { h.next = rt; return h })
	src := docker.New(cli, docker.Options{Log: quiet, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan discovery.Update, 64)
	go src.Watch(ctx, out)

	<-h.first // listed; the resync's inspects wait
	want := map[string]bool{}
	for i := range started {
		id, err := sim.Start(enginesim.DefaultContainer(n + i))
		if err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	close(h.release)
	sentinel, err := sim.Start(enginesim.DefaultContainer(n + started))
	if err != nil {
		t.Fatal(err)
	}
	st := state{}
	until(t, out, st, sentinel) // every event before the sentinel's start is handled by now

	if d := sim.Dropped(); d != 0 {
		t.Errorf("the engine dropped %d events for vhost-gen", d)
	}
	if len(st) != n+started+1 {
		t.Errorf("%d workloads, want %d", len(st), n+started+1)
	}
	for id := range want {
		if _, ok := st[id]; !ok {
			t.Errorf("container %.12s, started during the resync, is not routed", id)
		}
	}
	if got := sim.Requests()["GET /containers/{id}/json"]; got != n+started+1 {
		t.Errorf("%d inspects, want %d: one per container", got, n+started+1)
	}
}

// An event storm on a slow engine that drops events for slow readers: none is lost, the final
// state is the engine's, and no event costs more than one inspect (events that queue up for one
// container share one).
func TestDockerSourceEventStorm(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{Latency: 2 * time.Millisecond, DropSlowReaders: true})
	const n, storm = 200, 5000
	ids, err := sim.AddContainers(n, enginesim.DefaultContainer)
	if err != nil {
		t.Fatal(err)
	}
	cli := wrappedClient(t, sim, nil)
	src := docker.New(cli, docker.Options{Log: quiet, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan discovery.Update, 64)
	go src.Watch(ctx, out)
	st := state{}
	select {
	case u := <-out:
		st.apply(u)
	case <-time.After(time.Minute):
		t.Fatal("no first update")
	}
	sim.ResetRequests()

	stormDone := make(chan error, 1)
	go func() {
		_, err := sim.EventStorm(ctx, storm, 0)
		stormDone <- err
	}()
	// Read while the storm runs, as the pipeline would.
	for running := true; running; {
		select {
		case u := <-out:
			st.apply(u)
		case err := <-stormDone:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		}
	}
	sentinel, err := sim.Start(enginesim.DefaultContainer(n))
	if err != nil {
		t.Fatal(err)
	}
	until(t, out, st, sentinel)

	if d := sim.Dropped(); d != 0 {
		t.Errorf("the engine dropped %d events for vhost-gen", d)
	}
	inspects := sim.Requests()["GET /containers/{id}/json"]
	t.Logf("%d events cost %d inspects", storm, inspects)
	if inspects > storm+1 {
		t.Errorf("%d inspects for %d events", inspects, storm+1)
	}
	// The engine's own view of each container's health.
	list, err := cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]string{}
	for _, c := range list {
		for _, h := range []string{discovery.HealthHealthy, discovery.HealthUnhealthy} {
			if strings.HasSuffix(c.Status, "("+h+")") {
				truth[c.ID] = h
			}
		}
	}
	for _, id := range ids {
		if got, want := st[id].Health, truth[id]; got != want || want == "" {
			t.Errorf("container %.12s: health %q, the engine says %q", id, got, want)
		}
	}
}

// BenchmarkStartup10k measures a start-up at 10,000 containers: from Watch to the first full
// update (subscribe, list, 10,000 inspects), on an engine answering at once and on one taking
// 1 ms a request.
func BenchmarkStartup10k(b *testing.B) {
	const n = 10000
	for _, latency := range []time.Duration{0, time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%v", latency), func(b *testing.B) {
			sim := enginesim.Start(b, enginesim.Options{Latency: latency})
			if _, err := sim.AddContainers(n, enginesim.DefaultContainer); err != nil {
				b.Fatal(err)
			}
			cli := wrappedClient(b, sim, nil)
			sim.ResetRequests()
			for b.Loop() {
				src := docker.New(cli, docker.Options{Log: quiet, Resync: time.Hour})
				ctx, cancel := context.WithCancel(context.Background())
				out := make(chan discovery.Update)
				done := make(chan struct{})
				go func() { src.Watch(ctx, out); close(done) }()
				if u := <-out; !u.Full || len(u.Workloads) != n {
					b.Fatalf("first update: full %v, %d workloads", u.Full, len(u.Workloads))
				}
				cancel()
				<-done
			}
			b.ReportMetric(float64(sim.Requests()["GET /containers/{id}/json"])/float64(b.N), "inspects/op")
		})
	}
}
