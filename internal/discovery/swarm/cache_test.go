package swarm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/inventory"
)

// checkedSource is a source whose CheckManager passed, as in Watch: its Lists read raw.
func checkedSource(tb testing.TB, cli *client.Client, opt Options) *Source {
	tb.Helper()
	s := New(cli, opt)
	if err := s.CheckManager(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// One-shot commands List without CheckManager: through the client's calls, as the client's API
// version may not be negotiated yet.
func TestListUncheckedReadsThroughTheClient(t *testing.T) {
	e := newFakeSwarm(t)
	s := New(e.client(), Options{Log: quiet})
	if ws, err := s.List(context.Background()); err != nil || len(ws) != 2 {
		t.Fatalf("List = %d workloads, %v", len(ws), err)
	}
	if s.cache.tasks != nil || s.rawFailures != 0 {
		t.Errorf("an unchecked source read raw (cache %v, raw failures %d)", s.cache.tasks != nil, s.rawFailures)
	}
}

// cachedWorld is a source on e with its first List done, in a world of 3 services of 2 tasks.
type cachedWorld struct {
	t        *testing.T
	e        *fakeSwarm
	s        *Source
	services []swarm.Service
	tasks    []swarm.Task
	last     []discovery.Workload
}

func newCachedWorld(t *testing.T) *cachedWorld {
	t.Helper()
	w := &cachedWorld{t: t, e: newFakeSwarm(t)}
	w.services, w.tasks = manyServices(t, 3, 2)
	w.s = checkedSource(t, w.e.client(), Options{Log: quiet})
	w.publish()
	w.list()
	return w
}

// publish puts the world's services and tasks in the engine's answers.
func (w *cachedWorld) publish() {
	w.e.set(func(e *fakeSwarm) { e.services, e.tasks = mustJSON(w.t, w.services), mustJSON(w.t, w.tasks) })
}

// list polls, checks the answer is what the client's own calls make of the engine's, and returns
// whether it is a new slice (something was converted).
func (w *cachedWorld) list() bool {
	w.t.Helper()
	return w.poll(true)
}

// poll is list, compared with the client's decoding or not (a new source reads the nodes, which a
// watching source reads only when a node event says they changed).
func (w *cachedWorld) poll(compare bool) bool {
	w.t.Helper()
	ws, err := w.s.List(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if !compare {
		fresh := len(ws) == 0 || &ws[0] != &w.last[0]
		w.last = ws
		return fresh
	}
	want, err := New(w.e.client(), Options{Log: quiet}).listDecoded(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if !equalSets(ws, want) {
		w.t.Fatalf("cached List:\n%+v\nthe client's decoding:\n%+v", ws, want)
	}
	fresh := len(ws) == 0 || len(w.last) == 0 || &ws[0] != &w.last[0]
	w.last = ws
	return fresh
}

func equalSets(a, b []discovery.Workload) bool {
	return slices.EqualFunc(a, b, func(x, y discovery.Workload) bool { return x.Equal(&y) })
}

func (w *cachedWorld) workload(id string) (discovery.Workload, bool) {
	i := slices.IndexFunc(w.last, func(x discovery.Workload) bool { return x.ID == id })
	if i < 0 {
		return discovery.Workload{}, false
	}
	return w.last[i], true
}

// The cache against the client's own decoding, change by change: whatever changes, the set is
// the same as without the cache; nothing changed, it is the last set, without a conversion.
func TestCacheInvalidation(t *testing.T) {
	w := newCachedWorld(t)
	if w.list() {
		t.Error("a poll that changed nothing built a new set")
	}
	steps := []struct {
		name   string
		change func()
		check  func() bool
	}{
		{"service label changed", func() { w.services[1].Spec.Labels = map[string]string{"VIRTUAL_HOST": "new.test"} },
			func() bool { x, _ := w.workload(w.tasks[2].ID); return x.ServiceLabels["VIRTUAL_HOST"] == "new.test" }},
		{"service published a port", func() {
			w.services[0].Endpoint.Ports = []swarm.PortConfig{{TargetPort: 80, PublishedPort: 30080, PublishMode: swarm.PortConfigPublishModeIngress}}
		}, func() bool {
			x, _ := w.workload(w.tasks[0].ID)
			return len(x.Ports) == 1 && x.Ports[0].HostPort == 30080
		}},
		{"task no longer running", func() { w.tasks[3].Status.State = swarm.TaskStateFailed },
			func() bool { _, ok := w.workload(w.tasks[3].ID); return !ok }},
		{"task running again", func() { w.tasks[3].Status.State = swarm.TaskStateRunning },
			func() bool { _, ok := w.workload(w.tasks[3].ID); return ok }},
		{"task address changed", func() { w.tasks[4].NetworksAttachments[0].Addresses = []string{"10.0.9.9/24"} },
			func() bool { x, _ := w.workload(w.tasks[4].ID); return x.Networks[0].IP == "10.0.9.9" }},
		{"task removed", func() { w.tasks = slices.Delete(w.tasks, 5, 6) },
			func() bool { return len(w.last) == 5 }},
		{"task added", func() {
			nt := w.tasks[0]
			nt.ID, nt.Slot = "tasknew", 9
			w.tasks = append(w.tasks, nt)
		}, func() bool { _, ok := w.workload("tasknew"); return ok && len(w.last) == 6 }},
		{"service removed", func() { w.services = w.services[1:] },
			func() bool { _, ok := w.workload(w.tasks[0].ID); return !ok }},
	}
	for _, st := range steps {
		st.change()
		w.publish()
		if !w.list() {
			t.Errorf("%s: the last set again", st.name)
		}
		if !st.check() {
			t.Errorf("%s: not seen: %+v", st.name, w.last)
		}
		if w.list() {
			t.Errorf("%s: the poll after it built a new set", st.name)
		}
	}
}

// A node's new address reaches its tasks, the tasks' answer unchanged.
func TestCacheNodeAddressChange(t *testing.T) {
	w := newCachedWorld(t)
	var nodes []swarm.Node
	if err := json.Unmarshal(readFixture(t, "nodes.json"), &nodes); err != nil {
		t.Fatal(err)
	}
	nodes[0].Status.Addr = "192.0.2.7"
	w.e.set(func(e *fakeSwarm) { e.nodes = mustJSON(t, nodes) })
	if w.poll(false) {
		t.Fatal("the node list was read again without a node event")
	}
	w.s.mu.Lock()
	w.s.nodesStale = true // as a node event sets it
	w.s.mu.Unlock()
	if !w.list() {
		t.Fatal("a node's new address left the set as it was")
	}
	for _, x := range w.last {
		if x.NodeAddress != "192.0.2.7" {
			t.Errorf("%s: node address %q", x.Name, x.NodeAddress)
		}
	}
	// The node list read again with nothing new: the last set.
	w.s.mu.Lock()
	w.s.nodesStale = true
	w.s.mu.Unlock()
	if w.list() {
		t.Error("the same nodes read again built a new set")
	}
}

// With a label filter, the other services' tasks are never converted; a service that gets the
// label has its tasks converted from the task answer it did not change.
func TestCacheLabelFilter(t *testing.T) {
	e := newFakeSwarm(t)
	services, tasks := manyServices(t, 3, 2)
	listed := func(n int) {
		e.set(func(e *fakeSwarm) { e.services, e.tasks = mustJSON(t, services[:n]), mustJSON(t, tasks) })
	}
	listed(1) // the engine filters the services; the tasks are every service's
	s := checkedSource(t, e.client(), Options{Log: quiet, LabelFilter: "VIRTUAL_HOST"})
	ws, err := s.List(context.Background())
	if err != nil || len(ws) != 2 {
		t.Fatalf("List = %d workloads, %v; want the listed service's 2", len(ws), err)
	}
	for _, ct := range s.cache.tasks {
		if ct.converted != (ct.serviceID == services[0].ID) || ct.task != nil {
			t.Errorf("task of %s: converted %v, decoded task kept %v", ct.serviceID, ct.converted, ct.task != nil)
		}
	}
	listed(2)
	if ws, err = s.List(context.Background()); err != nil || len(ws) != 4 {
		t.Fatalf("List after a second service got the label = %d workloads, %v", len(ws), err)
	}
	if got := workloadNames(ws); !slices.Contains(got, "app01.1.task0100") {
		t.Errorf("List = %v, want app01's tasks", got)
	}
}

// The set the pipeline gets from a poll that changed nothing changes nothing in the inventory:
// nothing is routed or rendered again (watch.Pipeline builds only when Apply reports a change).
func TestIdlePollChangesNoInventory(t *testing.T) {
	w := newCachedWorld(t)
	inv := inventory.New()
	if !inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: w.last}) {
		t.Fatal("the first set changed nothing")
	}
	w.list()
	if inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: w.last}) {
		t.Error("an idle poll changed the inventory")
	}
	w.tasks[0].NetworksAttachments[0].Addresses = []string{"10.0.7.7/24"}
	w.publish()
	w.list()
	if !inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: w.last}) {
		t.Error("a task's new address did not change the inventory")
	}
}

// An engine that refuses raw reads with a 400 (an API version it does not speak, plain HTTP to
// its TLS port) is read through the client's calls; after a few such polls, through them alone.
func TestRawRefusedFallsBack(t *testing.T) {
	e := newFakeSwarm(t)
	e.set(func(e *fakeSwarm) {
		e.failures["/tasks"] = fakeFailure{http.StatusBadRequest, "client version 1.99 is too new"}
	})
	s := checkedSource(t, e.clientWithAgent(), Options{Log: quiet})
	for range maxRawFailures + 2 {
		if _, err := s.List(context.Background()); err == nil || !strings.Contains(err.Error(), "too new") {
			t.Fatalf("List = %v, want the engine's refusal through the client", err)
		}
	}
	if s.rawFailures != 0 || e.calls("/tasks") != 2*(maxRawFailures+2) {
		t.Errorf("both reads failed: raw failures %d, task lists %d; want 0 and two a poll", s.rawFailures, e.calls("/tasks"))
	}
	// The client's call succeeds where raw reads do not: raw reads stop after maxRawFailures polls.
	e.set(func(e *fakeSwarm) { delete(e.failures, "/tasks"); e.refuseRaw = true })
	before := e.calls("/services")
	for range maxRawFailures + 3 {
		if ws, err := s.List(context.Background()); err != nil || len(ws) != 2 {
			t.Fatalf("List = %d workloads, %v", len(ws), err)
		}
	}
	if got, want := e.calls("/services")-before, 2*maxRawFailures+3; got != want {
		t.Errorf("service lists = %d, want %d (raw reads given up after %d polls)", got, want, maxRawFailures)
	}
}

func TestSplitArray(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: not readable
	}{
		{`[]`, []string{}},
		{` [ ] `, []string{}},
		{`[{"a":1}]`, []string{`{"a":1}`}},
		{"[ {\"a\":[1,{\"b\":\"]}\"}]} ,\n\t{\"c\":\"\\\"},\"} ]\n", []string{`{"a":[1,{"b":"]}"}]}`, `{"c":"\"},"}`}},
		{`[{"a":"\\"},{"b":"\\\""}]`, []string{`{"a":"\\"}`, `{"b":"\\\""}`}},
		{`[1,"x",null]`, []string{`1`, `"x"`, `null`}},
		{`{"a":1}`, nil},
		{`[{"a":1}`, nil},
		{`[{"a":"1}]`, nil},
		{`[{"a":1}}]`, nil},
		{`[{"a":1}] x`, nil},
		{``, nil},
	}
	for _, tt := range tests {
		spans, ok := splitArray([]byte(tt.in), nil)
		if ok != (tt.want != nil) {
			t.Errorf("splitArray(%q): ok %v", tt.in, ok)
			continue
		}
		got := []string{}
		for _, sp := range spans {
			got = append(got, tt.in[sp[0]:sp[1]])
		}
		if ok && !slices.Equal(got, tt.want) {
			t.Errorf("splitArray(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A poll that fails half way (the node list, after the services and tasks were read) leaves
// nothing half taken in: the next poll, on the same answers, builds the whole set again.
func TestCacheAfterFailedPoll(t *testing.T) {
	w := newCachedWorld(t)
	w.s.mu.Lock()
	w.s.nodesStale = true
	w.s.mu.Unlock()
	w.e.set(func(e *fakeSwarm) { e.failures["/nodes"] = fakeFailure{http.StatusInternalServerError, "boom"} })
	if _, err := w.s.List(context.Background()); err == nil {
		t.Fatal("no error")
	}
	w.e.set(func(e *fakeSwarm) { delete(e.failures, "/nodes") })
	if !w.list() || len(w.last) != 6 {
		t.Errorf("after a failed poll: %d workloads", len(w.last))
	}
}

// The raw reads and the cache make what the client's own calls make, field for field, of the
// captured fixtures (ingress and host-mode ports, env, container and service labels, a pending
// task).
func TestRawMatchesDecoded(t *testing.T) {
	e := newFakeSwarm(t)
	s := checkedSource(t, e.client(), Options{Log: quiet})
	got, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.cache.tasks == nil {
		t.Fatal("List did not read raw")
	}
	want, err := New(e.client(), Options{Log: quiet}).listDecoded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fixtureRunning) || !equalSets(got, want) {
		t.Errorf("raw List:\n%+v\nthe client's decoding:\n%+v", got, want)
	}
}

// The same on a simulated Swarm of 3 nodes with every kind of service, before and after changes.
func TestRawMatchesDecodedSim(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{Swarm: true, Nodes: 3})
	specs := []enginesim.ServiceSpec{
		{Name: "web", Replicas: 4, Networks: []string{"edge", "back"}, Env: []string{"VIRTUAL_PORT=80"},
			Labels: map[string]string{"VIRTUAL_HOST": "web.example"}, Ports: []enginesim.Port{{Port: 80, Publish: true}}},
		{Name: "host", Global: true, ContainerLabels: map[string]string{"VIRTUAL_HOST": "h.example"},
			Ports: []enginesim.Port{{Port: 8080, Publish: true, Mode: "host"}}},
		{Name: "plain", Replicas: 2, Networks: []string{"edge"}},
	}
	for _, spec := range specs {
		if _, err := sim.CreateService(spec); err != nil {
			t.Fatal(err)
		}
	}
	cli, err := client.NewClientWithOpts(client.WithHost(sim.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := checkedSource(t, cli, Options{Log: quiet})
	same := func(step string) {
		t.Helper()
		got, err := s.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want, err := New(cli, Options{Log: quiet}).listDecoded(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !equalSets(got, want) || s.cache.tasks == nil {
			t.Errorf("%s: raw List (raw %v):\n%+v\nthe client's decoding:\n%+v", step, s.cache.tasks != nil, got, want)
		}
	}
	same("first")
	sim.ScaleService("web", 2)
	same("scaled down")
	sim.UpdateServiceLabels("plain", map[string]string{"VIRTUAL_HOST": "p.example"})
	same("labels")
	sim.SetNodeAddr(1, "192.0.2.1")
	s.mu.Lock()
	s.nodesStale = true // as the node event sets it
	s.mu.Unlock()
	same("node address")
	sim.RemoveService("host")
	same("service removed")
}

// An answer is compared with the last as it comes, in whatever pieces the connection gives it.
func TestReadAnswer(t *testing.T) {
	last := []byte(`[{"ID":"a"},{"ID":"b"}]`)
	for _, tt := range []struct{ in, want string }{
		{string(last), ""}, // same
		{`[{"ID":"a"},{"ID":"c"}]`, `[{"ID":"a"},{"ID":"c"}]`},
		{`[{"ID":"a"}]`, `[{"ID":"a"}]`},
		{`[{"ID":"a"},{"ID":"b"}]  `, `[{"ID":"a"},{"ID":"b"}]  `},
		{`[{"ID":"a"},{"ID":"b"`, `[{"ID":"a"},{"ID":"b"`},
		{``, ``},
	} {
		for name, r := range map[string]func(string) io.Reader{
			"whole":    func(s string) io.Reader { return strings.NewReader(s) },
			"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
			"halves":   func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		} {
			got, same, err := readAnswer(r(tt.in), -1, last, make([]byte, 4))
			if err != nil || same != (tt.in == string(last)) || (!same && string(got) != tt.want) {
				t.Errorf("%s %q: %q, same %v, %v", name, tt.in, got, same, err)
			}
		}
	}
	if got, same, err := readAnswer(strings.NewReader("[]"), 2, nil, make([]byte, 8)); err != nil || same || string(got) != "[]" {
		t.Errorf("first answer: %q, same %v, %v", got, same, err)
	}
}
