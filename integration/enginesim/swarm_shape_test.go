package enginesim_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
)

// swarmShape compares a real one-replica service with its simulated twin, when this machine's
// engine is a Swarm manager (the test never joins, leaves or inits a Swarm).
func swarmShape(t *testing.T, cli *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		t.Skipf("this engine is not a Swarm manager (state %q)", info.Swarm.LocalNodeState)
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	label := map[string]string{shapeLabel: "shape-" + run, "VIRTUAL_HOST": "svc.example"}
	netName, name := "esim-shape-ov-"+run, "esim-shape-svc-"+run
	image := echoImage(t, cli)
	env := []string{"VIRTUAL_PORT=80"}
	clabels := map[string]string{"com.example.c": "1"}

	nc, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "overlay", Attachable: true, Labels: label})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetwork(cli, nc.ID) })
	byType := filters.NewArgs(filters.Arg("type", "service"))
	rmsgs, _ := cli.Events(ctx, events.ListOptions{Filters: byType})
	replicas := uint64(1)
	created, err := cli.ServiceCreate(ctx, swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name, Labels: label},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Labels: clabels, Env: env},
			Networks: []swarm.NetworkAttachmentConfig{{Target: nc.ID}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, Protocol: "tcp", PublishMode: "ingress"}}},
	}, swarm.ServiceCreateOptions{QueryRegistry: false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ServiceRemove(context.Background(), created.ID) })
	running := filters.NewArgs(filters.Arg("service", name), filters.Arg("desired-state", "running"))
	for {
		ts, _ := cli.TaskList(ctx, swarm.TaskListOptions{Filters: running})
		if len(ts) == 1 && ts[0].Status.State == swarm.TaskStateRunning {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the real service's task never ran")
		}
		time.Sleep(300 * time.Millisecond)
	}

	sim := enginesim.Start(t, enginesim.Options{Swarm: true})
	scli := newClient(t, sim.Host())
	smsgs, _ := scli.Events(ctx, events.ListOptions{Filters: byType})
	if _, err := sim.CreateService(enginesim.ServiceSpec{Name: name, Image: image, Labels: label, ContainerLabels: clabels,
		Env: env, Replicas: 1, Networks: []string{netName}, Ports: []enginesim.Port{{Port: 80, Publish: true}}}); err != nil {
		t.Fatal(err)
	}

	// Info: what CheckManager and publish read.
	compareFields(t, "info", rawGet(t, cli, "/info", filters.Args{}), rawGet(t, scli, "/info", filters.Args{}),
		[]string{"Name", "Swarm.LocalNodeState", "Swarm.ControlAvailable", "Swarm.NodeID", "Swarm.Error", "Swarm.Nodes"})

	// Services: what List and FromTask read.
	byLabel := filters.NewArgs(filters.Arg("label", shapeLabel+"=shape-"+run))
	rs, ss := rawGet(t, cli, "/services", byLabel), rawGet(t, scli, "/services", byLabel)
	compareFields(t, "service", rs, ss, []string{"0.ID", "0.CreatedAt", "0.Version.Index", "0.Spec.Name", "0.Spec.Labels",
		"0.Spec.TaskTemplate.ContainerSpec.Labels", "0.Spec.TaskTemplate.ContainerSpec.Env", "0.Spec.Mode.Replicated.Replicas",
		"0.Endpoint.Ports", "0.Endpoint.Ports.0.Protocol", "0.Endpoint.Ports.0.TargetPort", "0.Endpoint.Ports.0.PublishedPort",
		"0.Endpoint.Ports.0.PublishMode", "0.Endpoint.VirtualIPs.0.Addr"})
	for _, p := range []string{"0", "0.Spec", "0.Endpoint"} {
		missingKeys(t, "service", rs, ss, p)
	}

	// Tasks, as List asks for them.
	rt, st := rawGet(t, cli, "/tasks", running), rawGet(t, scli, "/tasks", running)
	paths := []string{"0.ID", "0.ServiceID", "0.Slot", "0.NodeID", "0.Status.State", "0.DesiredState", "0.Spec.ContainerSpec.Labels",
		"0.Spec.ContainerSpec.Env", "0.Status.PortStatus", "0.Status.PortStatus.Ports", "0.Status.ContainerStatus.ContainerID",
		"0.NetworksAttachments"}
	for i := range 2 { // ingress, then the service's network, in both
		a := "0.NetworksAttachments." + strconv.Itoa(i)
		paths = append(paths, a+".Network.ID", a+".Network.Spec.Name", a+".Addresses", a+".Addresses.0")
	}
	compareFields(t, "task", rt, st, paths)
	for _, p := range []string{"0", "0.Status", "0.NetworksAttachments.1.Network"} {
		missingKeys(t, "task", rt, st, p)
	}
	for who, c := range map[string]*client.Client{"real": cli, "sim": scli} {
		ts, _ := c.TaskList(ctx, swarm.TaskListOptions{Filters: running})
		ns := []string{}
		for _, a := range ts[0].NetworksAttachments {
			ns = append(ns, a.Network.Spec.Name)
		}
		if !slices.Equal(ns, []string{"ingress", netName}) {
			t.Errorf("%s: task networks %v", who, ns)
		}
	}

	// Nodes: this manager, as nodeAddress reads it.
	rn := rawGet(t, cli, "/nodes", filters.NewArgs(filters.Arg("id", info.Swarm.NodeID)))
	simInfo, _ := scli.Info(ctx)
	sn := rawGet(t, scli, "/nodes", filters.NewArgs(filters.Arg("id", simInfo.Swarm.NodeID)))
	compareFields(t, "node", rn, sn, []string{"0.ID", "0.Status.Addr", "0.ManagerStatus.Addr", "0.Spec.Role", "0.Description.Hostname"})

	// The service create event.
	for _, c := range []struct {
		who string
		ch  <-chan events.Message
	}{{"real", rmsgs}, {"sim", smsgs}} {
	wait:
		for {
			select {
			case m := <-c.ch:
				if m.Actor.Attributes["name"] != name {
					continue // another test's service
				}
				if m.Type != events.ServiceEventType || m.Action != "create" || m.Scope != "swarm" || len(m.Actor.Attributes) != 1 {
					t.Errorf("%s: first service event %+v", c.who, m)
				}
				break wait
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no service event", c.who)
				break wait
			}
		}
	}
}

// removeNetwork removes a network once the tasks that used it are gone.
func removeNetwork(cli *client.Client, id string) {
	for range 60 {
		if cli.NetworkRemove(context.Background(), id) == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
