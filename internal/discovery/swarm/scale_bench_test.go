package swarm

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/inventory"
)

// The shapes of a 10,000-task Swarm the idle poll is measured on: many small services, and a few
// large ones. Three nodes, so that two thirds of the tasks are remote (no local container).
var scaleShapes = []struct {
	name               string
	services, replicas int
}{
	{"3334x3", 3334, 3},
	{"100x100", 100, 100},
}

// simSwarm starts a simulated manager of nodes nodes running services services of replicas tasks
// each, every service on the "edge" overlay with a VIRTUAL_HOST.
func simSwarm(tb testing.TB, nodes, services, replicas int) *enginesim.Sim {
	tb.Helper()
	sim := enginesim.Start(tb, enginesim.Options{Swarm: true, Nodes: nodes})
	for i := range services {
		_, err := sim.CreateService(enginesim.ServiceSpec{Name: fmt.Sprintf("app%04d", i), Replicas: replicas,
			Networks: []string{"edge"}, Env: []string{"VIRTUAL_PORT=8080", "APP_MODE=production"},
			Labels: map[string]string{"VIRTUAL_HOST": fmt.Sprintf("app%04d.example.com", i)}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return sim
}

// recorder serves, on a unix socket of its own, the simulator's answers as they were when last
// fetched: a benchmark's CPU time is then the client's (reading the socket, parsing HTTP and
// JSON), the simulator's encoding aside. It counts the bytes it serves.
type recorder struct {
	sim   *http.Client
	mu    sync.Mutex
	saved map[string][]byte
	bytes atomic.Int64
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	uri := req.URL.RequestURI()
	r.mu.Lock()
	body, ok := r.saved[uri]
	r.mu.Unlock()
	if !ok {
		var err error
		if body, err = r.fetch(uri); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	r.bytes.Add(int64(len(body)))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Api-Version", "1.41")
	w.Write(body)
}

// fetch asks the simulator and keeps its answer.
func (r *recorder) fetch(uri string) ([]byte, error) {
	resp, err := r.sim.Get("http://enginesim" + uri)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s: %s", uri, resp.Status, body)
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.saved[uri] = body
	r.mu.Unlock()
	return body, nil
}

// refresh fetches every answer again, after the simulated Swarm changed.
func (r *recorder) refresh(tb testing.TB) {
	r.mu.Lock()
	uris := slices.Collect(maps.Keys(r.saved))
	r.mu.Unlock()
	for _, uri := range uris {
		if _, err := r.fetch(uri); err != nil {
			tb.Fatal(err)
		}
	}
}

// recordedClient is a client of sim's answers, served by a recorder.
func recordedClient(tb testing.TB, sim *enginesim.Sim) (*client.Client, *recorder) {
	tb.Helper()
	rec := &recorder{saved: map[string][]byte{}, sim: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sim.SocketPath())
		}}}}
	sock := filepath.Join(filepath.Dir(sim.SocketPath()), "recorder.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+sock), client.WithVersion("1.41"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli, rec
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPoll10k measures a poll of a 10,000-task Swarm: the client's CPU time (the process's,
// garbage collection included; the engine's answers are served as recorded), its allocations, the
// bytes it reads, and what a poll every 3 s (the default) costs in percent of one core. Cases:
// idle (nothing changed; "decoded" is every task decoded and converted, as before the cache), a
// task started or stopped, a service's labels changed, and the first poll.
//
//	go test -run '^$' -bench Poll10k -benchmem -benchtime 20x ./internal/discovery/swarm/
func BenchmarkPoll10k(b *testing.B) {
	for _, shape := range scaleShapes {
		sim := simSwarm(b, 3, shape.services, shape.replicas)
		cli, rec := recordedClient(b, sim)
		svc := sim.Services()[0]
		flip := 0
		cases := []struct {
			name   string
			change func() // between two polls, not measured
			fresh  bool   // a new source each poll
			decode bool   // through the client's calls, no cache
		}{
			{name: "idle"},
			{name: "idle-decoded", decode: true},
			{name: "task-changed", change: func() { flip ^= 1; sim.ScaleService(svc, shape.replicas+flip) }},
			{name: "service-labels-changed", change: func() {
				flip ^= 1
				sim.UpdateServiceLabels(svc, map[string]string{"VIRTUAL_HOST": fmt.Sprintf("v%d.example.com", flip)})
			}},
			{name: "first", fresh: true},
		}
		for _, tc := range cases {
			b.Run(shape.name+"/"+tc.name, func(b *testing.B) {
				s := checkedSource(b, cli, Options{Log: quiet})
				if tc.decode {
					s.rawFailures = maxRawFailures
				}
				ctx := context.Background()
				if _, err := s.List(ctx); err != nil {
					b.Fatal(err)
				}
				var cpu time.Duration
				bytesBefore := rec.bytes.Load()
				for b.Loop() {
					if tc.change != nil || tc.fresh {
						b.StopTimer()
						if tc.change != nil {
							tc.change()
							rec.refresh(b)
						}
						if tc.fresh {
							s = checkedSource(b, cli, Options{Log: quiet})
						}
						b.StartTimer()
					}
					start := cpuTime()
					ws, err := s.List(ctx)
					cpu += cpuTime() - start
					if err != nil || len(ws) < shape.services*shape.replicas {
						b.Fatalf("poll: %d workloads, %v", len(ws), err)
					}
				}
				perPoll := cpu / time.Duration(b.N)
				b.ReportMetric(float64(perPoll.Microseconds())/1000, "cpu-ms/poll")
				b.ReportMetric(float64(rec.bytes.Load()-bytesBefore)/float64(b.N), "bytes-read/poll")
				b.ReportMetric(100*perPoll.Seconds()/3, "%core@3s")
			})
		}
	}
}

// BenchmarkInventoryIdle10k measures what a poll that changed nothing costs the pipeline: the
// inventory's Apply of the same 10,000 workloads, which finds no change (so nothing is routed or
// rendered).
//
//	go test -run '^$' -bench InventoryIdle10k -benchmem ./internal/discovery/swarm/
func BenchmarkInventoryIdle10k(b *testing.B) {
	sim := simSwarm(b, 3, 3334, 3)
	cli, _ := recordedClient(b, sim)
	ws, err := checkedSource(b, cli, Options{Log: quiet}).List(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	inv := inventory.New()
	inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: ws})
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		if inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: ws}) {
			b.Fatal("the same set changed the inventory")
		}
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/poll")
}

// BenchmarkSimTaskList10k measures the other end of a poll: the simulated engine answering the
// task list of 10,000 running tasks (the client reads the bytes, no more). The real engine's cost
// differs, but it too encodes every task on every poll, whatever the client does with them.
//
//	go test -run '^$' -bench SimTaskList10k -benchtime 10x ./internal/discovery/swarm/
func BenchmarkSimTaskList10k(b *testing.B) {
	sim := simSwarm(b, 3, 3334, 3)
	rec := &recorder{saved: map[string][]byte{}, sim: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sim.SocketPath())
		}}}}
	uri := "/v1.41/tasks?" + url.Values{"filters": {`{"desired-state":{"running":true}}`}}.Encode()
	var cpu time.Duration
	for b.Loop() {
		start := cpuTime()
		if _, err := rec.fetch(uri); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/list")
}
