package enginesim_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	swarmsrc "github.com/vhost-gen/vhost-gen/internal/discovery/swarm"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/watch"
)

// The pipeline on the swarm source against a simulated Swarm of 1,500 tasks, polled every 20 ms:
// polls that change nothing route and render nothing; a scaled service is routed and rendered.
func TestSwarmIdlePollsRouteNothing(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{Swarm: true, Nodes: 3})
	const services, replicas = 500, 3
	for i := range services {
		if _, err := sim.CreateService(enginesim.ServiceSpec{Name: fmt.Sprintf("app%03d", i), Replicas: replicas,
			Networks: []string{"edge"}, Labels: map[string]string{"VIRTUAL_HOST": fmt.Sprintf("app%03d.example", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := client.NewClientWithOpts(client.WithHost(sim.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var builds, renders, servers atomic.Int64
	p := &watch.Pipeline{
		Sources: []discovery.Source{swarmsrc.New(cli, swarmsrc.Options{Log: quiet, Poll: 20 * time.Millisecond})},
		Build: func(ws []discovery.Workload) routing.Table {
			builds.Add(1)
			tab := routing.Build(ws, routing.Options{ProxyNetworks: []string{"edge"}})
			n := 0
			for _, s := range tab.Sites {
				for _, r := range s.Routes {
					n += len(r.Backend.Servers)
				}
			}
			servers.Store(int64(n))
			return tab
		},
		Render:  func(routing.Table) ([]byte, error) { return fmt.Appendf(nil, "render %d\n", renders.Add(1)), nil },
		Applier: &apply.Applier{Path: filepath.Join(t.TempDir(), "out.conf")},
		Min:     5 * time.Millisecond, Max: 50 * time.Millisecond,
		Log: quiet, Metrics: admin.NewMetrics(), State: &admin.State{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	eventually(t, "the first render", func() bool { return renders.Load() == 1 })
	if n := servers.Load(); n != services*replicas {
		t.Fatalf("%d servers routed, want %d", n, services*replicas)
	}

	sim.ResetRequests()
	eventually(t, "20 polls", func() bool { return sim.Requests()["GET /tasks"] >= 20 })
	if b, r := builds.Load(), renders.Load(); b != 1 || r != 1 {
		t.Errorf("after 20 polls that changed nothing: %d routings, %d renders; want 1 of each", b, r)
	}

	// A change is routed and rendered, once.
	if err := sim.ScaleService(sim.Services()[0], replicas+1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scaled service routed", func() bool { return servers.Load() == services*replicas+1 })
	sim.ResetRequests()
	eventually(t, "20 more polls", func() bool { return sim.Requests()["GET /tasks"] >= 20 })
	if b, r := builds.Load(), renders.Load(); b != 2 || r != 2 {
		t.Errorf("after one change and 20 idle polls: %d routings, %d renders; want 2 of each", b, r)
	}
}

// eventually polls cond for up to 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
