package enginesim_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	swarmsrc "github.com/vhost-gen/vhost-gen/internal/discovery/swarm"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// next waits for the source's next update.
func next(t *testing.T, out <-chan discovery.Update) discovery.Update {
	t.Helper()
	select {
	case u := <-out:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no update")
		return discovery.Update{}
	}
}

// apiCalls are the requests since the last reset, the pings of version negotiation aside.
func apiCalls(sim *enginesim.Sim) map[string]int64 {
	r := sim.Requests()
	delete(r, "HEAD /_ping")
	sim.ResetRequests()
	return r
}

// vhost-gen's docker source against the simulator: what each event costs it in API calls.
func TestDockerSourceCallsPerEvent(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	const n = 200
	ids, err := sim.AddContainers(n, enginesim.DefaultContainer)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(sim.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	src := docker.New(cli, docker.Options{Log: quiet, Resync: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan discovery.Update)
	go src.Watch(ctx, out)

	u := next(t, out)
	if !u.Full || len(u.Workloads) != n {
		t.Fatalf("first update: full %v, %d workloads", u.Full, len(u.Workloads))
	}
	w := u.Workloads[0]
	if w.Env["VIRTUAL_HOST"] == "" || len(w.Networks) != 1 || w.Networks[0].IP == "" || len(w.Ports) != 1 {
		t.Errorf("workload: %+v", w)
	}
	want := map[string]int64{"GET /events": 1, "GET /containers/json": 1, "GET /containers/{id}/json": n}
	if got := apiCalls(sim); !maps.Equal(got, want) {
		t.Errorf("connect: %v, want %v", got, want)
	}

	// A resync inspects nothing new: the list's fingerprints match the cached inspects.
	if ws, err := src.List(ctx); err != nil || len(ws) != n {
		t.Fatalf("resync: %d, %v", len(ws), err)
	}
	if got := apiCalls(sim); !maps.Equal(got, map[string]int64{"GET /containers/json": 1}) {
		t.Errorf("resync: %v, want one list and no inspect", got)
	}

	// A start (create, connect, start) costs one inspect: the connect comes before the start, for
	// a container the source does not know yet.
	id, _ := sim.Start(enginesim.DefaultContainer(n))
	if u := next(t, out); len(u.Workloads) != 1 || u.Workloads[0].ID != id {
		t.Errorf("start: %+v", u)
	}
	if got := apiCalls(sim); !maps.Equal(got, map[string]int64{"GET /containers/{id}/json": 1}) {
		t.Errorf("start: %v", got)
	}
	// A health change costs one inspect.
	sim.SetHealth(ids[0], "unhealthy")
	if u := next(t, out); len(u.Workloads) != 1 || u.Workloads[0].Health != "unhealthy" {
		t.Errorf("health: %+v", u)
	}
	if got := apiCalls(sim); !maps.Equal(got, map[string]int64{"GET /containers/{id}/json": 1}) {
		t.Errorf("health: %v", got)
	}
	// A stop costs nothing: kill takes it out, die and disconnect need no inspect.
	sim.Stop(id)
	if u := next(t, out); !slices.Equal(u.Removed, []string{id}) {
		t.Errorf("stop: %+v", u)
	}
	if u := next(t, out); !slices.Equal(u.Removed, []string{id}) { // the die
		t.Errorf("stop: %+v", u)
	}
	time.Sleep(50 * time.Millisecond)
	if got := apiCalls(sim); len(got) != 0 {
		t.Errorf("stop: %v, want no call", got)
	}
	// An event stream that ends costs a reconnect: events, list, and no inspect.
	sim.EndEventStreams()
	if u := next(t, out); !u.Full || len(u.Workloads) != n {
		t.Errorf("after reconnect: full %v, %d workloads", u.Full, len(u.Workloads))
	}
	if got := apiCalls(sim); !maps.Equal(got, map[string]int64{"GET /events": 1, "GET /containers/json": 1}) {
		t.Errorf("reconnect: %v", got)
	}
}

// vhost-gen's swarm source against a simulated Swarm of 3 nodes.
func TestSwarmSource(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{Swarm: true, Nodes: 3})
	web, err := sim.CreateService(enginesim.ServiceSpec{Name: "web", Replicas: 5, Networks: []string{"edge"},
		Labels: map[string]string{"VIRTUAL_HOST": "web.example", "VIRTUAL_PORT": "80"},
		Ports:  []enginesim.Port{{Port: 80, Publish: true}}})
	if err != nil {
		t.Fatal(err)
	}
	sim.CreateService(enginesim.ServiceSpec{Name: "other", Global: true, Labels: map[string]string{"VIRTUAL_HOST": "o.example"},
		Ports: []enginesim.Port{{Port: 8080, Publish: true, Mode: "host"}}})
	cli, err := client.NewClientWithOpts(client.WithHost(sim.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	src := swarmsrc.New(cli, swarmsrc.Options{Log: quiet, Poll: time.Hour})
	ctx := context.Background()
	if err := src.CheckManager(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := src.List(ctx)
	if err != nil || len(ws) != 8 {
		t.Fatalf("list: %d workloads, %v", len(ws), err)
	}
	slices.SortFunc(ws, func(a, b discovery.Workload) int { return strings.Compare(a.Name, b.Name) })
	w := ws[len(ws)-1] // a web task
	if w.Service != "web" || w.ServiceLabels["VIRTUAL_HOST"] != "web.example" || len(w.Networks) != 2 ||
		w.Networks[0].Name != "edge" || w.Networks[0].IP == "" || w.NodeAddress == "" || len(w.Ports) != 1 || w.Ports[0].HostPort != 30000 {
		t.Errorf("web task: %+v", w)
	}
	if got := apiCalls(sim); got["GET /services"] != 1 || got["GET /tasks"] != 1 || got["GET /nodes"] != 1 {
		t.Errorf("first list: %v", got)
	}
	sim.ScaleService(web, 2)
	if ws, _ := src.List(ctx); len(ws) != 5 {
		t.Errorf("after scaling to 2: %d workloads", len(ws))
	}
	if got := apiCalls(sim); !maps.Equal(got, map[string]int64{"GET /services": 1, "GET /tasks": 1}) {
		t.Errorf("a poll: %v, want a service list and a task list", got)
	}

	standalone := enginesim.Start(t, enginesim.Options{})
	cli2, _ := client.NewClientWithOpts(client.WithHost(standalone.Host()), client.WithAPIVersionNegotiation())
	defer cli2.Close()
	if err := swarmsrc.New(cli2, swarmsrc.Options{Log: quiet}).CheckManager(ctx); !errors.Is(err, swarmsrc.ErrNotManager) {
		t.Errorf("standalone engine: %v, want ErrNotManager", err)
	}
}
