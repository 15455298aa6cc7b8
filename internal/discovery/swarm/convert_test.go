package swarm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// IDs of the Swarm the fixtures were captured from (testdata/README.md).
const (
	nodeID       = "spqfk05tebrybxaujoznz6fo7"
	ingSvcID     = "es9udl10nbyfbtflx648k3mtg" // vgt-ing: ingress-published, env + container label
	hostSvcID    = "k11t3ar3ngwdg3t5rskucoani" // vgt-s: host-mode published, service label
	ingTaskID    = "5godu2v7qyln0n7s82t5998pn" // vgt-ing.1, running
	hostTaskID   = "qurvh6i6a4j5zwaaul1cfyw2w" // vgt-s.1, running
	pendingID    = "7csr2clbvjq8iam42gfef71g5" // vgt-s.2, pending: its host port is taken
	ingressNetID = "l6j11euvzwty7e18a5h9k2nh0"
	edgeNetID    = "1g56wgd3gdtruh21itov6kkkp"
	nodeAddr     = "127.0.0.1" // the fixture node's Status.Addr
)

func loadServices(t *testing.T) map[string]*swarm.Service {
	t.Helper()
	var l []swarm.Service
	if err := json.Unmarshal(readFixture(t, "services.json"), &l); err != nil {
		t.Fatalf("decode services.json: %v", err)
	}
	m := map[string]*swarm.Service{}
	for i := range l {
		m[l[i].ID] = &l[i]
	}
	return m
}

func loadTasks(t *testing.T) map[string]*swarm.Task {
	t.Helper()
	var l []swarm.Task
	if err := json.Unmarshal(readFixture(t, "tasks.json"), &l); err != nil {
		t.Fatalf("decode tasks.json: %v", err)
	}
	m := map[string]*swarm.Task{}
	for i := range l {
		m[l[i].ID] = &l[i]
	}
	return m
}

func loadNodes(t *testing.T) []swarm.Node {
	t.Helper()
	var l []swarm.Node
	if err := json.Unmarshal(readFixture(t, "nodes.json"), &l); err != nil {
		t.Fatalf("decode nodes.json: %v", err)
	}
	return l
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestFromTaskFixtures(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	nodes := map[string]string{nodeID: nodeAddr}
	hostTask, ingTask := tasks[hostTaskID], tasks[ingTaskID]

	shutdown := *hostTask
	shutdown.DesiredState = swarm.TaskStateShutdown // being stopped: out at once, though still running

	global := *hostTask
	global.Slot = 0 // a global service's task

	onUnknownNode := *hostTask
	onUnknownNode.NodeID = "gone"

	hostWorkload := discovery.Workload{
		ID:            hostTaskID,
		Name:          "vgt-s.1." + hostTaskID,
		Source:        "swarm",
		ServiceLabels: map[string]string{"VIRTUAL_HOST": "s.test"},
		// The overlay IP from its CIDR; the host-mode port listed twice in PortStatus, once here.
		Networks:    []discovery.Network{{Name: "vgt-edge", ID: edgeNetID, IP: "10.0.1.3"}},
		Ports:       []discovery.Port{{Port: 80, Proto: "tcp", HostPort: 18581}},
		NodeAddress: nodeAddr,
		Service:     "vgt-s",
		Created:     mustTime(t, "2026-11-25T11:43:59.737158368Z"),
	}
	globalWorkload := hostWorkload
	globalWorkload.Name = "vgt-s." + nodeID + "." + hostTaskID
	unknownNodeWorkload := hostWorkload
	unknownNodeWorkload.NodeAddress = ""

	tests := []struct {
		name string
		task *swarm.Task
		svc  string
		want discovery.Workload
		ok   bool
	}{
		{name: "host-mode published", task: hostTask, svc: hostSvcID, ok: true, want: hostWorkload},
		{name: "ingress published", task: ingTask, svc: ingSvcID, ok: true, want: discovery.Workload{
			ID:     ingTaskID,
			Name:   "vgt-ing.1." + ingTaskID,
			Source: "swarm",
			Labels: map[string]string{"VIRTUAL_PORT": "80"},       // --container-label
			Env:    map[string]string{"VIRTUAL_HOST": "ing.test"}, // --env
			// ingress is kept (routing never uses it, and says so in its problems).
			Networks: []discovery.Network{{Name: "ingress", ID: ingressNetID, IP: "10.0.0.4"}},
			// Empty PortStatus: the ingress-mode port comes from the service's Endpoint.
			Ports:       []discovery.Port{{Port: 80, Proto: "tcp", HostPort: 18582}},
			NodeAddress: nodeAddr,
			Service:     "vgt-ing",
			Created:     mustTime(t, "2026-11-25T11:44:15.54764388Z"),
		}},
		{name: "pending", task: tasks[pendingID], svc: hostSvcID, ok: false},
		{name: "desired state shutdown", task: &shutdown, svc: hostSvcID, ok: false},
		{name: "global service (slot 0)", task: &global, svc: hostSvcID, ok: true, want: globalWorkload},
		{name: "node not in the node list", task: &onUnknownNode, svc: hostSvcID, ok: true, want: unknownNodeWorkload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.task == nil || services[tt.svc] == nil {
				t.Fatal("fixture missing")
			}
			got, ok := FromTask(tt.task, services[tt.svc], nodes)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if !ok {
				return
			}
			if !got.Equal(&tt.want) {
				t.Errorf("FromTask =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

// Every task state but running is left out, whatever the desired state; and a running task whose
// desired state is no longer running (being stopped, or replaced in an update) is left out too.
func TestFromTaskStates(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	states := []swarm.TaskState{swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending,
		swarm.TaskStateAssigned, swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady,
		swarm.TaskStateStarting, swarm.TaskStateRunning, swarm.TaskStateComplete, swarm.TaskStateShutdown,
		swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned}
	for _, state := range states {
		for _, desired := range []swarm.TaskState{swarm.TaskStateRunning, swarm.TaskStateShutdown, swarm.TaskStateRemove} {
			task := *tasks[hostTaskID]
			task.Status.State, task.DesiredState = state, desired
			_, ok := FromTask(&task, services[hostSvcID], nil)
			if want := state == swarm.TaskStateRunning && desired == swarm.TaskStateRunning; ok != want {
				t.Errorf("state %s, desired %s: ok = %v, want %v", state, desired, ok, want)
			}
		}
	}
}

// Ports: host-mode ones from the task's PortStatus, ingress-mode ones from the service's Endpoint
// (never its host-mode ones: those answer only on the nodes that run a task); unpublished ones
// dropped; sorted and without duplicates.
func TestFromTaskPorts(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	task := *tasks[hostTaskID]
	task.Status.PortStatus.Ports = []swarm.PortConfig{
		{Protocol: "udp", TargetPort: 53, PublishedPort: 10053, PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 18581, PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 18581, PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: "tcp", TargetPort: 8443, PublishMode: swarm.PortConfigPublishModeHost}, // not published
	}
	svc := *services[hostSvcID]
	svc.Endpoint.Ports = []swarm.PortConfig{
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 18581, PublishMode: swarm.PortConfigPublishModeHost}, // the task's own
		{Protocol: "tcp", TargetPort: 9000, PublishedPort: 30000, PublishMode: swarm.PortConfigPublishModeHost},
		{Protocol: "tcp", TargetPort: 8080, PublishedPort: 18080, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 28080, PublishMode: swarm.PortConfigPublishModeIngress},
	}
	w, ok := FromTask(&task, &svc, nil)
	if !ok {
		t.Fatal("not ok")
	}
	want := []discovery.Port{
		{Port: 53, Proto: "udp", HostPort: 10053},
		{Port: 80, Proto: "tcp", HostPort: 18581},
		{Port: 80, Proto: "tcp", HostPort: 28080},
		{Port: 8080, Proto: "tcp", HostPort: 18080},
	}
	if got := w.Ports; len(got) != len(want) || !(&discovery.Workload{Ports: got}).Equal(&discovery.Workload{Ports: want}) {
		t.Errorf("Ports = %+v\nwant    %+v", got, want)
	}
}

// Networks are sorted by name; the first IPv4 address of an attachment is its IP; an attachment
// without one (IPv6 only, or none yet) is kept without an IP.
func TestFromTaskNetworks(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	task := *tasks[hostTaskID]
	att := func(name, id string, addrs ...string) swarm.NetworkAttachment {
		var a swarm.NetworkAttachment
		a.Network.ID, a.Network.Spec.Name, a.Addresses = id, name, addrs
		return a
	}
	task.NetworksAttachments = []swarm.NetworkAttachment{
		att("zeta", "z", "fd00::5/64", "10.9.0.5/24", "10.9.0.6/24"),
		att("alpha", "a", "10.8.0.7/16"),
		att("v6only", "v", "fd00::6/64"),
		att("none", "n"),
		att("garbage", "g", "not-an-address", "10.7.0.2/24"),
	}
	w, ok := FromTask(&task, services[hostSvcID], nil)
	if !ok {
		t.Fatal("not ok")
	}
	want := []discovery.Network{
		{Name: "alpha", ID: "a", IP: "10.8.0.7"},
		{Name: "garbage", ID: "g", IP: "10.7.0.2"},
		{Name: "none", ID: "n"},
		{Name: "v6only", ID: "v", IPv6: "fd00::6"},
		{Name: "zeta", ID: "z", IP: "10.9.0.5", IPv6: "fd00::5"},
	}
	if got := w.Networks; !(&discovery.Workload{Networks: got}).Equal(&discovery.Workload{Networks: want}) {
		t.Errorf("Networks = %+v\nwant       %+v", got, want)
	}
}

// Service labels come from the service, container labels and env from the task's own spec (the
// spec it was started with, not the service's current one).
func TestFromTaskSettingsSources(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	svc := *services[ingSvcID]
	svc.Spec.Labels = map[string]string{"VIRTUAL_HOST": "blue.test"}
	svc.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Env: []string{"VIRTUAL_HOST=next.test"}}
	w, ok := FromTask(tasks[ingTaskID], &svc, nil)
	if !ok {
		t.Fatal("not ok")
	}
	if v, from, _ := w.Setting("VIRTUAL_HOST"); v != "blue.test" || from != discovery.FromServiceLabel {
		t.Errorf("VIRTUAL_HOST = %q from %s, want the service label", v, from)
	}
	if v, from, _ := w.Setting("VIRTUAL_PORT"); v != "80" || from != discovery.FromLabel {
		t.Errorf("VIRTUAL_PORT = %q from %s, want the container label", v, from)
	}
	if w.Env["VIRTUAL_HOST"] != "ing.test" {
		t.Errorf("Env = %v, want the task's own", w.Env)
	}
	// A task without a container spec (a plugin task) has no labels or env, and does not panic.
	task := *tasks[ingTaskID]
	task.Spec.ContainerSpec = nil
	if w, ok := FromTask(&task, &svc, nil); !ok || w.Labels != nil || w.Env != nil {
		t.Errorf("no container spec: ok %v, labels %v, env %v", ok, w.Labels, w.Env)
	}
}

func TestNodeAddress(t *testing.T) {
	fixture := loadNodes(t)
	if len(fixture) != 1 {
		t.Fatalf("nodes.json has %d nodes", len(fixture))
	}
	node := func(status, manager string) *swarm.Node {
		n := &swarm.Node{}
		n.Status.Addr = status
		if manager != "" {
			n.ManagerStatus = &swarm.ManagerStatus{Addr: manager}
		}
		return n
	}
	tests := []struct {
		name string
		node *swarm.Node
		want string
	}{
		{"fixture", &fixture[0], nodeAddr},
		{"status address", node("10.1.2.3", "10.1.2.9:2377"), "10.1.2.3"},
		{"status 0.0.0.0: the manager address", node("0.0.0.0", "10.1.2.4:2377"), "10.1.2.4"},
		{"no status: the manager address", node("", "10.1.2.5:2377"), "10.1.2.5"},
		{"IPv6 manager address", node("0.0.0.0", "[fd00::1]:2377"), "fd00::1"},
		{"worker with 0.0.0.0", node("0.0.0.0", ""), ""},
		{"manager address without port", node("0.0.0.0", "10.1.2.6"), ""},
		{"nothing", node("", ""), ""},
	}
	for _, tt := range tests {
		if got := nodeAddress(tt.node); got != tt.want {
			t.Errorf("%s: nodeAddress = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// The workloads of the fixtures, routed: the overlay IP when the proxy shares the overlay, the
// node's address and published port when it does not, a problem when neither exists; never the
// ingress network.
func TestRoutingOfTasks(t *testing.T) {
	services, tasks := loadServices(t), loadTasks(t)
	nodes := map[string]string{nodeID: nodeAddr}
	hostW, ok1 := FromTask(tasks[hostTaskID], services[hostSvcID], nodes)
	ingW, ok2 := FromTask(tasks[ingTaskID], services[ingSvcID], nodes)
	if !ok1 || !ok2 {
		t.Fatal("fixture tasks not ok")
	}
	unpublishedSvc := *services[ingSvcID]
	unpublishedSvc.Endpoint.Ports = nil
	unpublished, ok := FromTask(tasks[ingTaskID], &unpublishedSvc, nodes)
	if !ok {
		t.Fatal("not ok")
	}
	servers := func(tab routing.Table, host string) []string {
		var out []string
		for _, s := range tab.Sites {
			if s.Host != host {
				continue
			}
			for _, r := range s.Routes {
				for _, srv := range r.Backend.Servers {
					out = append(out, srv.Address)
				}
			}
		}
		return out
	}
	tests := []struct {
		name     string
		w        discovery.Workload
		host     string
		opt      routing.Options
		want     string // the one server's address; empty: none, and a problem
		problems string // a substring of the problem
	}{
		{"shares the overlay", hostW, "s.test", routing.Options{ProxyNetworks: []string{"vgt-edge"}}, "10.0.1.3:80", ""},
		{"shares the overlay, network mode", hostW, "s.test", routing.Options{Mode: routing.ModeNetwork, ProxyNetworks: []string{"vgt-edge"}}, "10.0.1.3:80", ""},
		{"another network: host-mode port", hostW, "s.test", routing.Options{ProxyNetworks: []string{"other"}}, "127.0.0.1:18581", ""},
		{"proxy networks unknown: host-mode port", hostW, "s.test", routing.Options{}, "127.0.0.1:18581", ""},
		{"host-port mode ignores the overlay", hostW, "s.test", routing.Options{Mode: routing.ModeHostPort, ProxyNetworks: []string{"vgt-edge"}}, "127.0.0.1:18581", ""},
		{"ingress task: ingress-mode port", ingW, "ing.test", routing.Options{ProxyNetworks: []string{"ingress"}}, "127.0.0.1:18582", ""},
		{"ingress task, proxy unknown: ingress-mode port", ingW, "ing.test", routing.Options{}, "127.0.0.1:18582", ""},
		{"ingress only, unpublished: a problem", unpublished, "ing.test", routing.Options{ProxyNetworks: []string{"ingress"}}, "", "not published"},
		{"ingress only, network mode: a problem", ingW, "ing.test", routing.Options{Mode: routing.ModeNetwork, ProxyNetworks: []string{"ingress"}}, "", "shares no network"},
		{"VIRTUAL_NETWORK=ingress: a problem", withServiceLabel(ingW, "VIRTUAL_NETWORK", "ingress"), "ing.test", routing.Options{}, "", "never routed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := routing.Build([]discovery.Workload{tt.w}, tt.opt)
			got := servers(tab, tt.host)
			for _, a := range got {
				if strings.HasPrefix(a, "10.0.0.") {
					t.Errorf("routed to the ingress network: %s", a)
				}
			}
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("servers = %v, want none", got)
				}
				if len(tab.Problems) != 1 || !strings.Contains(tab.Problems[0].Reason, tt.problems) || tab.Problems[0].WorkloadID != tt.w.ID {
					t.Errorf("problems = %+v, want one on %s saying %q", tab.Problems, tt.w.Name, tt.problems)
				} else if s := tab.Problems[0].String(); !strings.HasPrefix(s, "swarm "+tt.w.Name+": ") {
					t.Errorf("problem reads %q, want it to name the swarm task", s)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("servers = %v, want [%s]", got, tt.want)
			}
			if len(tab.Problems) != 0 {
				t.Errorf("problems = %+v", tab.Problems)
			}
		})
	}
}

func withServiceLabel(w discovery.Workload, k, v string) discovery.Workload {
	labels := map[string]string{k: v}
	for k, v := range w.ServiceLabels {
		labels[k] = v
	}
	w.ServiceLabels = labels
	return w
}
