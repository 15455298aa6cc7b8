package enginesim_test

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
)

// shapeLabel marks what the shape test creates on the real engine.
const shapeLabel = "vhost-gen.enginesim"

// realEngine is the official client for this machine's engine (DOCKER_HOST or the default
// socket); the test is skipped without one.
func realEngine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Skipf("no Docker engine (bash scripts/env.sh starts one): %v", err)
	}
	return cli
}

// The simulator's answers have the shape of the real engine's, for the fields vhost-gen reads:
// one real container and its simulated twin, inspected, listed, and followed through events.
func TestSimulatorShape(t *testing.T) {
	cli := realEngine(t)
	t.Run("container", func(t *testing.T) { containerShape(t, cli) })
	t.Run("swarm", func(t *testing.T) { swarmShape(t, cli) })
}

// streamFor collects the events that pass vhost-gen's filters, of one container when id is set
// (network events by their container attribute).
func streamFor(ctx context.Context, cli *client.Client, id func() string) <-chan events.Message {
	out := make(chan events.Message, 100)
	msgs, _ := cli.Events(ctx, events.ListOptions{Filters: vhostGenFilters()})
	go func() {
		for m := range msgs {
			if id == nil || m.Actor.ID == id() || m.Actor.Attributes["container"] == id() {
				out <- m
			}
		}
	}()
	return out
}

// take reads n events, or what came within the timeout.
func take(t *testing.T, ch <-chan events.Message, n int) []events.Message {
	t.Helper()
	var got []events.Message
	for len(got) < n {
		select {
		case m := <-ch:
			got = append(got, m)
		case <-time.After(20 * time.Second):
			t.Errorf("got %d events, want %d", len(got), n)
			return got
		}
	}
	return got
}

func containerShape(t *testing.T, cli *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	label := map[string]string{shapeLabel: "shape-" + run, "com.example.role": "web"}
	netName, name := "esim-shape-"+run, "esim-shape-"+run
	image := echoImage(t, cli)
	env := []string{"VIRTUAL_HOST=shape.example", "VIRTUAL_PORT=80", "ECHO_PORTS=80,81"}

	nc, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Labels: label})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.NetworkRemove(context.Background(), nc.ID) })
	var realIDv atomic.Value // read by the event reader
	realIDv.Store("")
	realEvents := streamFor(ctx, cli, func() string { return realIDv.Load().(string) })
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: image, Env: env, Labels: label, ExposedPorts: nat.PortSet{"80/tcp": {}, "81/tcp": {}},
			Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "echo health"}, Interval: time.Second}},
		&container.HostConfig{NetworkMode: container.NetworkMode(netName),
			PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "0"}}}},
		nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	realID := created.ID
	realIDv.Store(realID)
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), realID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, realID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for c, _ := cli.ContainerInspect(ctx, realID); c.State.Health == nil || c.State.Health.Status != "healthy"; c, _ = cli.ContainerInspect(ctx, realID) {
		if ctx.Err() != nil {
			t.Fatal("the real container never became healthy")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Its twin in the simulator, through the same lifecycle.
	sim := enginesim.Start(t, enginesim.Options{})
	scli := newClient(t, sim.Host())
	simEvents := streamFor(ctx, scli, nil) // the twin is the simulator's only container
	simID, err := sim.Start(enginesim.ContainerSpec{Name: name, Image: image, Env: env, Labels: label, Networks: []string{netName},
		Health: "starting", Ports: []enginesim.Port{{Port: 80, Publish: true, HostIP: "127.0.0.1"}, {Port: 81}}})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetHealth(simID, "healthy")

	// Inspect: the fields FromInspect, InspectSelf, ProxyNetworks and stopSignal read.
	ri := rawGet(t, cli, "/containers/"+realID+"/json", filters.Args{})
	si := rawGet(t, scli, "/containers/"+simID+"/json", filters.Args{})
	nets := "NetworkSettings.Networks." + netName
	compareFields(t, "inspect", ri, si, []string{"Id", "Name", "Created", "State", "State.Status", "State.Running",
		"State.Paused", "State.Restarting", "State.Health.Status", "Config.Env", "Config.Labels", "Config.Image",
		"Config.StopSignal", "Config.ExposedPorts", "Config.ExposedPorts.80/tcp", "HostConfig.NetworkMode",
		"NetworkSettings.Ports", "NetworkSettings.Ports.80/tcp", "NetworkSettings.Ports.80/tcp.0.HostIp",
		"NetworkSettings.Ports.80/tcp.0.HostPort", "NetworkSettings.Ports.81/tcp", "NetworkSettings.Networks",
		nets + ".NetworkID", nets + ".IPAddress", nets + ".Gateway", nets + ".IPPrefixLen", nets + ".Aliases", nets + ".MacAddress"})
	for _, p := range []string{"", "State", "Config", "HostConfig", "NetworkSettings", nets} {
		missingKeys(t, "inspect", ri, si, p)
	}
	// Plausible values, read as vhost-gen reads them.
	for who, c := range map[string]*client.Client{"real": cli, "sim": scli} {
		id := map[string]string{"real": realID, "sim": simID}[who]
		in, err := c.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ep := in.NetworkSettings.Networks[netName]
		gw, gerr := netip.ParseAddr(ep.Gateway)
		ip, ierr := netip.ParseAddr(ep.IPAddress)
		if gerr != nil || ierr != nil || !netip.PrefixFrom(gw, ep.IPPrefixLen).Masked().Contains(ip) {
			t.Errorf("%s: address %s not in the network of gateway %s/%d", who, ep.IPAddress, ep.Gateway, ep.IPPrefixLen)
		}
		b := in.NetworkSettings.Ports["80/tcp"]
		if port, err := strconv.Atoi(b[0].HostPort); err != nil || port == 0 || b[0].HostIP != "127.0.0.1" {
			t.Errorf("%s: binding %+v", who, b)
		}
		if _, err := time.Parse(time.RFC3339Nano, in.Created); err != nil || in.Name != "/"+name || len(in.ID) != 64 ||
			string(in.HostConfig.NetworkMode) != netName || in.State.Health.Status != "healthy" {
			t.Errorf("%s: created %q, name %q, network mode %q, health %q", who, in.Created, in.Name, in.HostConfig.NetworkMode, in.State.Health.Status)
		}
	}

	// List: the fields of the fingerprint, and the label filter.
	byLabel := filters.NewArgs(filters.Arg("label", shapeLabel+"=shape-"+run))
	rl, sl := rawGet(t, cli, "/containers/json", byLabel), rawGet(t, scli, "/containers/json", byLabel)
	if n, m := len(rl.([]any)), len(sl.([]any)); n != 1 || m != 1 {
		t.Fatalf("listed %d real and %d simulated containers, want 1 each", n, m)
	}
	compareFields(t, "list", rl, sl, []string{"0.Id", "0.Names", "0.Names.0", "0.State", "0.Status", "0.Labels", "0.Ports",
		"0.HostConfig.NetworkMode", "0.NetworkSettings.Networks." + netName + ".IPAddress", "0.NetworkSettings.Networks." + netName + ".NetworkID"})
	missingKeys(t, "list", rl, sl, "0")
	for _, port := range []float64{80, 81} { // the order of ports is the engine's own
		pick := func(list any) any {
			ports, _ := lookup(list, "0.Ports")
			for _, p := range ports.([]any) {
				if p.(map[string]any)["PrivatePort"] == port {
					return p
				}
			}
			return nil
		}
		if rk, sk := keysOf(pick(rl), ""), keysOf(pick(sl), ""); !slices.Equal(rk, sk) {
			t.Errorf("list port %v: real keys %v, simulator keys %v", port, rk, sk)
		}
		compareFields(t, "list port", pick(rl), pick(sl), []string{"PrivatePort", "Type", "IP", "PublicPort"})
	}
	for who, l := range map[string]any{"real": rl, "sim": sl} {
		if st, _ := lookup(l, "0.Status"); !strings.HasPrefix(st.(string), "Up ") || !strings.HasSuffix(st.(string), "(healthy)") {
			t.Errorf("%s: status %q", who, st)
		}
	}

	// InspectSelf's network list by ID.
	rn := rawGet(t, cli, "/networks", filters.NewArgs(filters.Arg("id", nc.ID)))
	simNet, _ := lookup(si, nets+".NetworkID")
	sn := rawGet(t, scli, "/networks", filters.NewArgs(filters.Arg("id", simNet.(string))))
	compareFields(t, "network list", rn, sn, []string{"0.Id", "0.Name", "0.Internal", "0.IPAM.Config.0.Gateway"})

	// Events: the same sequence through vhost-gen's filters, and the same fields.
	if err := cli.ContainerStop(ctx, realID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	sim.Stop(simID)
	re, se := take(t, realEvents, 6), take(t, simEvents, 6)
	seq := func(ms []events.Message) (out []string) {
		for _, m := range ms {
			out = append(out, string(m.Type)+" "+string(m.Action))
		}
		return out
	}
	if !slices.Equal(seq(re), seq(se)) {
		t.Errorf("events through vhost-gen's filters:\n real %q\n  sim %q", seq(re), seq(se))
	}
	for i := range min(len(re), len(se)) {
		rj, sj := toJSON(t, re[i]), toJSON(t, se[i])
		what := "event " + seq(re)[i]
		compareFields(t, what, rj, sj, []string{"Type", "Action", "Actor.ID", "scope", "time", "timeNano", "status", "id", "from"})
		if rk, sk := keysOf(rj, "Actor.Attributes"), keysOf(sj, "Actor.Attributes"); !slices.Equal(rk, sk) {
			t.Errorf("%s: real attributes %v, simulator attributes %v", what, rk, sk)
		}
	}
}
