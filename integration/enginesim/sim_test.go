package enginesim_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
)

// newClient is the official client, configured as vhost-gen configures it (negotiating).
func newClient(t testing.TB, host string) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// vhostGenFilters are the filters vhost-gen's docker source subscribes with
// (internal/discovery/docker/source.go eventFilters).
func vhostGenFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("type", "network"),
		filters.Arg("event", "start"), filters.Arg("event", "die"), filters.Arg("event", "destroy"),
		filters.Arg("event", "pause"), filters.Arg("event", "unpause"), filters.Arg("event", "rename"),
		filters.Arg("event", "health_status"), filters.Arg("event", "kill"),
		filters.Arg("event", "connect"), filters.Arg("event", "disconnect"),
	)
}

func TestNegotiation(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	cli := newClient(t, sim.Host())
	ctx := context.Background()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != "1.41" || cli.ClientVersion() != "1.41" {
		t.Errorf("server API %s, negotiated %s; want 1.41 both", v.APIVersion, cli.ClientVersion())
	}
	ping, err := cli.Ping(ctx)
	if err != nil || ping.APIVersion != "1.41" || ping.OSType != "linux" || ping.SwarmStatus == nil {
		t.Errorf("ping = %+v, %v", ping, err)
	}
	// A client pinned above the engine's version is refused as the engine refuses it.
	pinned, err := client.NewClientWithOpts(client.WithHost(sim.Host()), client.WithVersion("1.45"))
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if _, err := pinned.Info(ctx); err == nil || !strings.Contains(err.Error(), "too new") {
		t.Errorf("API 1.45 against a 1.41 engine: err = %v", err)
	}
	got := sim.Requests()
	if got["HEAD /_ping"] == 0 || got["GET /version"] != 1 || got["GET /info"] != 0 { // refused before it counts
		t.Errorf("requests = %v", got)
	}
	sim.ResetRequests()
	if n := len(sim.Requests()); n != 0 {
		t.Errorf("after reset: %d keys", n)
	}
}

func TestContainers(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	ids, err := sim.AddContainers(3, enginesim.DefaultContainer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Add(enginesim.ContainerSpec{Name: "db", Labels: map[string]string{"role": "db"}, Health: "starting",
		Ports: []enginesim.Port{{Port: 5432, Publish: true, HostIP: "127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Add(enginesim.ContainerSpec{Name: "db"}); err == nil {
		t.Error("a second container named db was added")
	}
	cli := newClient(t, sim.Host())
	ctx := context.Background()
	list, err := cli.ContainerList(ctx, container.ListOptions{})
	if err != nil || len(list) != 4 {
		t.Fatalf("list: %d containers, %v", len(list), err)
	}
	if list[0].Names[0] != "/db" || list[0].Status == "" || !strings.HasSuffix(list[0].Status, "(health: starting)") ||
		list[0].Ports[0].PublicPort != 32768 || list[0].Ports[0].IP != "127.0.0.1" {
		t.Errorf("newest first, with status and ports: %+v", list[0])
	}
	list, _ = cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "role=db"))})
	if len(list) != 1 {
		t.Errorf("label filter: %d containers", len(list))
	}
	c, err := cli.ContainerInspect(ctx, "app-00001")
	if err != nil {
		t.Fatal(err)
	}
	ep := c.NetworkSettings.Networks["frontend"]
	if c.ID != ids[1] || c.Name != "/app-00001" || !c.State.Running || ep == nil || ep.IPAddress != "172.18.0.3" ||
		ep.Gateway != "172.18.0.1" || ep.NetworkID == "" || c.HostConfig.NetworkMode != "frontend" ||
		!slices.Contains(c.Config.Env, "VIRTUAL_HOST=app-00001.example") {
		t.Errorf("inspect by name: %+v %+v", c.ContainerJSONBase, ep)
	}
	if c2, err := cli.ContainerInspect(ctx, ids[2][:10]); err != nil || c2.ID != ids[2] {
		t.Errorf("inspect by ID prefix: %v", err)
	}
	if _, err := cli.ContainerInspect(ctx, "nope"); !cerrdefs.IsNotFound(err) {
		t.Errorf("unknown container: err = %v, want not found", err)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("id", ep.NetworkID))})
	if err != nil || len(nets) != 1 || nets[0].Name != "frontend" || nets[0].IPAM.Config[0].Subnet != "172.18.0.0/16" {
		t.Errorf("network list by id: %+v, %v", nets, err)
	}
	if err := sim.Stop(ids[0]); err != nil {
		t.Fatal(err)
	}
	all, _ := cli.ContainerList(ctx, container.ListOptions{All: true})
	running, _ := cli.ContainerList(ctx, container.ListOptions{})
	if len(all) != 4 || len(running) != 3 {
		t.Errorf("after a stop: %d containers, %d running", len(all), len(running))
	}
}

// collect reads n events from a stream, or fails after a while.
func collect(t *testing.T, msgs <-chan events.Message, errs <-chan error, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, string(m.Type)+" "+string(m.Action))
		case err := <-errs:
			t.Fatalf("event stream: %v (after %q)", err, got)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %q, want %d events", got, n)
		}
	}
	return got
}

func TestEvents(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	cli := newClient(t, sim.Host())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := time.Now()
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: vhostGenFilters()})
	id, err := sim.Start(enginesim.ContainerSpec{Name: "web", Networks: []string{"a", "b"}, Labels: map[string]string{"VIRTUAL_HOST": "w.example"}})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetHealth(id, "healthy")
	sim.Kill(id, "HUP")
	sim.Stop(id)
	sim.Remove(id)
	want := []string{"network connect", "network connect", "container start", "container health_status: healthy",
		"container kill", "container kill", "container die", "network disconnect", "network disconnect", "container destroy"}
	if got := collect(t, msgs, errs, len(want)); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}

	// since replays the history, filtered; until ends the stream.
	past, perrs := cli.Events(ctx, events.ListOptions{Since: before.Format(time.RFC3339Nano), Until: time.Now().Format(time.RFC3339Nano),
		Filters: filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", "VIRTUAL_HOST=w.example"))})
	got := collect(t, past, perrs, 8)
	if got[0] != "container create" || got[7] != "container destroy" {
		t.Errorf("replayed %q", got)
	}
	select {
	case err := <-perrs:
		if err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Errorf("after until: %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end at until")
	}

	// EndEventStreams ends the live stream, as an engine restart does.
	if n := sim.EndEventStreams(); n != 1 {
		t.Errorf("ended %d streams, want 1", n)
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Error("no error at the end of the stream")
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream did not end")
	}
	if got := sim.Requests()["GET /events"]; got != 2 {
		t.Errorf("GET /events counted %d, want 2", got)
	}
}

func TestEventStorm(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	sim.AddContainers(10, enginesim.DefaultContainer)
	cli := newClient(t, sim.Host())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: vhostGenFilters()})
	start := time.Now()
	n, err := sim.EventStorm(ctx, 50, 500)
	if err != nil || n != 50 {
		t.Fatalf("storm: %d, %v", n, err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("50 events at 500/s took %v", d)
	}
	got := collect(t, msgs, errs, 50)
	if got[0] != "container health_status: unhealthy" || got[10] != "container health_status: healthy" {
		t.Errorf("storm events: %q", got[:11])
	}
}
