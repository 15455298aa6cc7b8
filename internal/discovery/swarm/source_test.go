package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func workloadNames(ws []discovery.Workload) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	slices.Sort(out)
	return out
}

// fixtureRunning are the fixtures' running tasks: the pending one is left out.
var fixtureRunning = []string{"vgt-ing.1." + ingTaskID, "vgt-s.1." + hostTaskID}

// perPoll is the cost of a poll: the requests of each endpoint since before.
type perPoll struct{ services, tasks, nodes, info, total int }

func (e *fakeSwarm) snapshot() perPoll {
	return perPoll{e.calls("/services"), e.calls("/tasks"), e.calls("/nodes"), e.calls("/info"), e.total()}
}

func (p perPoll) since(before perPoll) perPoll {
	return perPoll{p.services - before.services, p.tasks - before.tasks, p.nodes - before.nodes, p.info - before.info, p.total - before.total}
}

func TestListFixtures(t *testing.T) {
	e := newFakeSwarm(t)
	ws, err := New(e.client(), Options{Log: quiet}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := workloadNames(ws); !slices.Equal(got, fixtureRunning) {
		t.Errorf("List = %v, want %v", got, fixtureRunning)
	}
	for _, w := range ws {
		if w.NodeAddress != nodeAddr || w.Source != SourceName {
			t.Errorf("%s: NodeAddress %q, Source %q", w.Name, w.NodeAddress, w.Source)
		}
	}
}

// A poll costs one service list and one task list; the node list is read on the first poll only,
// while nothing says the nodes changed.
func TestListCostsTwoRequestsPerPoll(t *testing.T) {
	e := newFakeSwarm(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()

	before := e.snapshot()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot().since(before); got != (perPoll{services: 1, tasks: 1, nodes: 1, total: 3}) {
		t.Errorf("first poll: %+v, want 1 service list, 1 task list, 1 node list", got)
	}
	for i := range 5 {
		before = e.snapshot()
		if _, err := s.List(ctx); err != nil {
			t.Fatal(err)
		}
		if got := e.snapshot().since(before); got != (perPoll{services: 1, tasks: 1, total: 2}) {
			t.Errorf("poll %d: %+v, want 1 service list and 1 task list", i+2, got)
		}
	}
	// The task list asks for the tasks that should run, and nothing else.
	for _, r := range e.recorded() {
		if !strings.HasPrefix(r, "GET /v1.41/tasks") {
			continue
		}
		f := sentFilters(t, r)
		if got := f.Get("desired-state"); !slices.Equal(got, []string{"running"}) || f.Len() != 1 {
			t.Errorf("task list filters = %v (%q), want desired-state=running only", f, r)
		}
	}
}

// A node the cache does not know, running a task: the node list is read again, once.
func TestListReadsNodesForAnUnknownNode(t *testing.T) {
	e := newFakeSwarm(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}

	// A second node joins and a task is scheduled on it.
	var tasks []swarm.Task
	if err := json.Unmarshal(readFixture(t, "tasks.json"), &tasks); err != nil {
		t.Fatal(err)
	}
	moved := tasks[2]
	if moved.ID != hostTaskID {
		t.Fatalf("tasks.json order changed: %s", moved.ID)
	}
	moved.ID, moved.Slot, moved.NodeID = "newtaskonnode2", 3, "node2"
	tasks = append(tasks, moved)
	var nodes []swarm.Node
	if err := json.Unmarshal(readFixture(t, "nodes.json"), &nodes); err != nil {
		t.Fatal(err)
	}
	n2 := swarm.Node{ID: "node2"}
	n2.Status.Addr = "192.0.2.2"
	nodes = append(nodes, n2)
	e.set(func(e *fakeSwarm) { e.tasks, e.nodes = mustJSON(t, tasks), mustJSON(t, nodes) })

	before := e.snapshot()
	ws, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot().since(before); got.nodes != 1 || got.total != 3 {
		t.Errorf("poll with a task on an unknown node: %+v, want one node list", got)
	}
	addr := map[string]string{}
	for _, w := range ws {
		addr[w.ID] = w.NodeAddress
	}
	if addr["newtaskonnode2"] != "192.0.2.2" || addr[hostTaskID] != nodeAddr {
		t.Errorf("node addresses = %v", addr)
	}
	before = e.snapshot()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshot().since(before); got.nodes != 0 {
		t.Errorf("next poll read the nodes again: %+v", got)
	}

	// A task not yet placed (no node) does not make the nodes stale: the fixture's pending task
	// has none, and the polls above did not read them for it.
	if tasks[1].NodeID != "" || tasks[1].ID != pendingID {
		t.Errorf("pending fixture task has node %q", tasks[1].NodeID)
	}
}

// 10 services of 3 tasks each still cost one service list and one task list per poll.
func TestListCostDoesNotGrowWithTasks(t *testing.T) {
	e := newFakeSwarm(t)
	services, tasks := manyServices(t, 10, 3)
	e.set(func(e *fakeSwarm) { e.services, e.tasks = mustJSON(t, services), mustJSON(t, tasks) })
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()

	first := e.snapshot()
	ws, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 30 {
		t.Fatalf("List returned %d workloads, want 30", len(ws))
	}
	firstCost := e.snapshot().since(first)
	const polls = 20
	before := e.snapshot()
	for range polls {
		if ws, err = s.List(ctx); err != nil {
			t.Fatal(err)
		} else if len(ws) != 30 {
			t.Fatalf("List returned %d workloads, want 30", len(ws))
		}
	}
	cost := e.snapshot().since(before)
	if cost != (perPoll{services: polls, tasks: polls, total: 2 * polls}) {
		t.Errorf("%d polls of 10 services x 3 tasks: %+v, want %d service lists and %d task lists", polls, cost, polls, polls)
	}
	t.Logf("API calls per poll, 10 services x 3 tasks (30 workloads): first poll %d (services %d, tasks %d, nodes %d), then %.1f (services %d, tasks %d, nodes %d over %d polls)",
		firstCost.total, firstCost.services, firstCost.tasks, firstCost.nodes,
		float64(cost.total)/polls, cost.services, cost.tasks, cost.nodes, polls)
}

// manyServices makes n services of k running tasks each, on the fixture's node, each attached to
// an overlay.
func manyServices(t *testing.T, n, k int) ([]swarm.Service, []swarm.Task) {
	t.Helper()
	created := mustTime(t, "2026-11-25T11:00:00Z")
	var services []swarm.Service
	var tasks []swarm.Task
	for i := range n {
		svc := swarm.Service{ID: fmt.Sprintf("svc%02d", i)}
		svc.CreatedAt = created.Add(time.Duration(i) * time.Second)
		svc.Spec.Name = fmt.Sprintf("app%02d", i)
		svc.Spec.Labels = map[string]string{"VIRTUAL_HOST": fmt.Sprintf("app%02d.test", i)}
		services = append(services, svc)
		for j := range k {
			task := swarm.Task{ID: fmt.Sprintf("task%02d%02d", i, j), ServiceID: svc.ID, Slot: j + 1, NodeID: nodeID,
				DesiredState: swarm.TaskStateRunning}
			task.Status.State = swarm.TaskStateRunning
			task.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "app"}
			var a swarm.NetworkAttachment
			a.Network.ID, a.Network.Spec.Name = edgeNetID, "vgt-edge"
			a.Addresses = []string{fmt.Sprintf("10.0.1.%d/24", 10+i*k+j)}
			task.NetworksAttachments = []swarm.NetworkAttachment{a}
			tasks = append(tasks, task)
		}
	}
	return services, tasks
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sentFilters decodes the filters query parameter of a recorded request.
func sentFilters(t *testing.T, req string) filters.Args {
	t.Helper()
	_, rawQuery, _ := strings.Cut(req, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("filters") == "" {
		return filters.NewArgs()
	}
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		t.Fatalf("request %q: filters: %v", req, err)
	}
	return f
}

// The label filter goes to the engine with the service list; the task list is not filtered by
// service, so the tasks of the other services are dropped here.
func TestListLabelFilter(t *testing.T) {
	e := newFakeSwarm(t)
	// The engine applies the filter: only vgt-s has the label.
	var services []swarm.Service
	if err := json.Unmarshal(readFixture(t, "services.json"), &services); err != nil {
		t.Fatal(err)
	}
	services = slices.DeleteFunc(services, func(s swarm.Service) bool { return s.Spec.Name != "vgt-s" })
	e.set(func(e *fakeSwarm) { e.services = mustJSON(t, services) })

	ws, err := New(e.client(), Options{Log: quiet, LabelFilter: "VIRTUAL_HOST=s.test"}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := workloadNames(ws), []string{"vgt-s.1." + hostTaskID}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v (vgt-ing's task dropped)", got, want)
	}
	var sent []string
	for _, r := range e.recorded() {
		switch {
		case strings.HasPrefix(r, "GET /v1.41/services"):
			sent = append(sent, sentFilters(t, r).Get("label")...)
		case strings.HasPrefix(r, "GET /v1.41/tasks"):
			if got := sentFilters(t, r).Get("label"); len(got) != 0 {
				t.Errorf("task list sent a label filter %v", got)
			}
		}
	}
	if !slices.Equal(sent, []string{"VIRTUAL_HOST=s.test"}) {
		t.Errorf("label filter sent to /services = %v", sent)
	}

	// Without a filter, the service list sends no filters.
	e2 := newFakeSwarm(t)
	if _, err := New(e2.client(), Options{Log: quiet}).List(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range e2.recorded() {
		if strings.HasPrefix(r, "GET /v1.41/services") && strings.Contains(r, "filters") {
			t.Errorf("unfiltered service list sent filters: %q", r)
		}
	}
}

// A task whose service is gone since the service list (or never listed) is dropped.
func TestListDropsTasksOfUnlistedServices(t *testing.T) {
	e := newFakeSwarm(t)
	e.set(func(e *fakeSwarm) { e.services = []byte("[]") })
	ws, err := New(e.client(), Options{Log: quiet}).List(context.Background())
	if err != nil || len(ws) != 0 {
		t.Errorf("List without services = %v, %v; want nothing", workloadNames(ws), err)
	}
}

func TestListErrors(t *testing.T) {
	for _, endpoint := range []string{"/services", "/tasks", "/nodes"} {
		t.Run(endpoint, func(t *testing.T) {
			e := newFakeSwarm(t)
			e.set(func(e *fakeSwarm) {
				e.failures[endpoint] = fakeFailure{http.StatusInternalServerError, "boom"}
			})
			_, err := New(e.client(), Options{Log: quiet}).List(context.Background())
			want := "list " + strings.TrimPrefix(endpoint, "/")
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "boom") {
				t.Errorf("err = %v, want %q and the engine's message", err, want)
			}
			if errors.Is(err, ErrNotManager) {
				t.Errorf("a 500 is ErrNotManager: %v", err)
			}
		})
	}
	t.Run("engine down", func(t *testing.T) {
		e := newFakeSwarm(t)
		cli := e.client()
		e.stop()
		if _, err := New(cli, Options{Log: quiet}).List(context.Background()); err == nil || errors.Is(err, ErrNotManager) {
			t.Errorf("List with the engine down: err = %v", err)
		}
	})
}

// After a failed node list, the nodes are still stale: the next poll reads them.
func TestListRetriesNodesAfterFailure(t *testing.T) {
	e := newFakeSwarm(t)
	e.set(func(e *fakeSwarm) { e.failures["/nodes"] = fakeFailure{http.StatusInternalServerError, "boom"} })
	s := New(e.client(), Options{Log: quiet})
	if _, err := s.List(context.Background()); err == nil {
		t.Fatal("no error")
	}
	e.set(func(e *fakeSwarm) { delete(e.failures, "/nodes") })
	ws, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e.calls("/nodes") != 2 || len(ws) != 2 || ws[0].NodeAddress != nodeAddr {
		t.Errorf("node lists %d, workloads %+v", e.calls("/nodes"), ws)
	}
}

func TestCheckManager(t *testing.T) {
	tests := []struct {
		name     string
		info     string
		wantErr  bool
		mentions []string
	}{
		{"manager", managerInfo, false, nil},
		{"not in a swarm", noSwarmInfo, true, []string{"not part of a Swarm", "--source docker", "DOCKER_HOST"}},
		{"worker", workerInfo, true, []string{"worker", "w1nodeid", "manager", "DOCKER_HOST"}},
	}
	// States a manager passes through: errors, but not ErrNotManager (Watch waits them out).
	transient := []struct {
		name, info string
		mentions   []string
	}{
		{"pending", pendingInfo, []string{`"pending"`, "starting"}},
		{"error", errorInfo, []string{`"error"`, "can't initialize raft node"}},
		{"locked", lockedInfo, []string{"locked", "docker swarm unlock"}},
	}
	for _, tt := range transient {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeSwarm(t)
			e.set(func(e *fakeSwarm) { e.info = []byte(tt.info) })
			err := New(e.client(), Options{Log: quiet}).CheckManager(context.Background())
			if err == nil || errors.Is(err, ErrNotManager) {
				t.Fatalf("CheckManager = %v, want an error that is not ErrNotManager", err)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeSwarm(t)
			e.set(func(e *fakeSwarm) { e.info = []byte(tt.info) })
			err := New(e.client(), Options{Log: quiet}).CheckManager(context.Background())
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("CheckManager = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotManager) {
				t.Fatalf("CheckManager = %v, want ErrNotManager", err)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	t.Run("engine down", func(t *testing.T) {
		e := newFakeSwarm(t)
		cli := e.client()
		e.stop()
		if err := New(cli, Options{Log: quiet}).CheckManager(context.Background()); err == nil || errors.Is(err, ErrNotManager) {
			t.Errorf("CheckManager with the engine down = %v, want an error that is not ErrNotManager", err)
		}
	})
}

// The engine's own refusal (a 503 from a worker, or from an engine outside a Swarm) is
// ErrNotManager; List says so and Watch gives up instead of retrying.
func TestNotManagerRefusal(t *testing.T) {
	e := newFakeSwarm(t)
	e.set(func(e *fakeSwarm) {
		e.failures["/services"] = fakeFailure{http.StatusServiceUnavailable, notManagerMessage}
	})
	s := New(e.client(), Options{Log: quiet, Poll: time.Minute})
	_, err := s.List(context.Background())
	if !errors.Is(err, ErrNotManager) || !strings.Contains(err.Error(), "list services") || !strings.Contains(err.Error(), "promote") {
		t.Fatalf("List = %v, want ErrNotManager with the engine's message", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := make(chan discovery.Update, 16)
	err = s.Watch(ctx, out)
	if ctx.Err() != nil {
		t.Fatal("Watch kept retrying a node that is not a manager")
	}
	if !errors.Is(err, ErrNotManager) {
		t.Errorf("Watch = %v, want ErrNotManager", err)
	}
	if len(out) != 0 {
		t.Errorf("Watch sent %d updates", len(out))
	}
	if n := e.calls("/services"); n != 2 {
		t.Errorf("service lists = %d, want 2 (List, then Watch once)", n)
	}
}

// Watch on an engine outside a Swarm, or on a worker, ends at once with CheckManager's error.
func TestWatchNotManager(t *testing.T) {
	for _, info := range []string{noSwarmInfo, workerInfo} {
		e := newFakeSwarm(t)
		e.set(func(e *fakeSwarm) { e.info = []byte(info) })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := New(e.client(), Options{Log: quiet}).Watch(ctx, make(chan discovery.Update, 1))
		if ctx.Err() != nil || !errors.Is(err, ErrNotManager) {
			t.Errorf("Watch = %v (ctx %v), want ErrNotManager at once", err, ctx.Err())
		}
		cancel()
		if e.calls("/services") != 0 || e.calls("/tasks") != 0 {
			t.Errorf("listed services or tasks on a non-manager: %v", e.recorded())
		}
	}
}

func TestEventFilters(t *testing.T) {
	f := eventFilters()
	types := f.Get("type")
	slices.Sort(types)
	if want := []string{"container", "node", "service"}; !slices.Equal(types, want) {
		t.Errorf("type filter = %v, want %v", types, want)
	}
	for _, ev := range []string{"create", "update", "remove", "start", "die", "kill"} {
		if !f.ExactMatch("event", ev) {
			t.Errorf("event %q not asked for", ev)
		}
	}
	for _, ev := range []string{"exec_create", "exec_start", "attach", "health_status", "top", "destroy"} {
		if f.ExactMatch("event", ev) {
			t.Errorf("event %q asked for", ev)
		}
	}
	if keys := f.Keys(); len(keys) != 2 {
		t.Errorf("filter keys = %v, want only type and event (a label key would drop service events)", keys)
	}
}

func TestAnnounces(t *testing.T) {
	tests := []struct {
		name string
		m    events.Message
		want bool
	}{
		{"service update", events.Message{Type: events.ServiceEventType, Action: "update"}, true},
		{"service remove", events.Message{Type: events.ServiceEventType, Action: "remove"}, true},
		{"node update", events.Message{Type: events.NodeEventType, Action: "update"}, true},
		{"task container start", containerEvent("start", map[string]string{"com.docker.swarm.task.id": "t1"}), true},
		{"task container kill", containerEvent("kill", map[string]string{"com.docker.swarm.task.id": "t1", "signal": "15"}), true},
		{"plain container start", containerEvent("start", map[string]string{"name": "x"}), false},
		{"container without attributes", containerEvent("die", nil), false},
		{"container with another swarm label", containerEvent("start", map[string]string{"com.docker.swarm.service.id": "s"}), false},
	}
	for _, tt := range tests {
		if got := announces(tt.m); got != tt.want {
			t.Errorf("%s: announces = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func containerEvent(action string, attrs map[string]string) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: events.Action(action),
		Actor: events.Actor{ID: "c0ffee", Attributes: attrs}}
}

func TestNewDefaults(t *testing.T) {
	s := New(nil, Options{})
	if s.opt.Poll <= 0 || s.opt.Log == nil || !s.nodesStale {
		t.Errorf("New did not fill defaults: %+v", s.opt)
	}
	if s.Name() != "swarm" || SourceName != "swarm" {
		t.Errorf("Name = %q", s.Name())
	}
	var _ discovery.Source = s
}

// watching runs Watch in the background until the test ends.
type watching struct {
	out    chan discovery.Update
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	actions []string
}

func startWatch(t *testing.T, e *fakeSwarm, opt Options) *watching {
	t.Helper()
	w := &watching{out: make(chan discovery.Update, 256), done: make(chan error, 1)}
	if opt.Log == nil {
		opt.Log = quiet
	}
	opt.OnEvent = func(action string) {
		w.mu.Lock()
		w.actions = append(w.actions, action)
		w.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	s := New(e.client(), opt)
	go func() { w.done <- s.Watch(ctx, w.out) }()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop ends Watch and checks it returned nil; it may be called more than once.
func (w *watching) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err, ok := <-w.done:
		if ok && err != nil {
			t.Errorf("Watch = %v after cancel, want nil", err)
		}
		if ok {
			close(w.done)
		}
	case <-time.After(5 * time.Second):
		t.Error("Watch did not return after cancel")
	}
}

func (w *watching) events() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.actions)
}

// next waits up to d for an update.
func (w *watching) next(t *testing.T, d time.Duration) (discovery.Update, bool) {
	t.Helper()
	select {
	case u := <-w.out:
		return u, true
	case <-time.After(d):
		return discovery.Update{}, false
	}
}

// drain empties the updates received so far.
func (w *watching) drain() int {
	n := 0
	for {
		select {
		case <-w.out:
			n++
		default:
			return n
		}
	}
}

// Watch sends the whole set at once, as a Full update of the swarm source.
func TestWatchSendsFullAtOnce(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	u, ok := w.next(t, 2*time.Second)
	if !ok {
		t.Fatal("no update within 2s")
	}
	if !u.Full || u.Source != SourceName || len(u.Removed) != 0 {
		t.Errorf("first update: Full %v, Source %q, Removed %v", u.Full, u.Source, u.Removed)
	}
	if got := workloadNames(u.Workloads); !slices.Equal(got, fixtureRunning) {
		t.Errorf("first update = %v, want %v", got, fixtureRunning)
	}
	// The event stream was asked for with the source's filters.
	var asked bool
	for _, r := range e.recorded() {
		if strings.HasPrefix(r, "GET /v1.41/events") {
			asked = true
			if got := sentFilters(t, r).Get("type"); len(got) != 3 {
				t.Errorf("events asked with type filter %v", got)
			}
		}
	}
	if !asked {
		t.Error("Watch did not subscribe to events")
	}
	// With a 1-minute poll and no event, nothing more comes.
	if u, ok := w.next(t, 500*time.Millisecond); ok {
		t.Errorf("an update without an event or a poll: %+v", u)
	}
}

// An event announcing a change polls at once, long before the poll interval, and a few more times
// in the next seconds (a scaled service's tasks take a moment to run).
func TestWatchEventPollsAtOnce(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	// The service gets a new task.
	services, tasks := manyServices(t, 1, 2)
	e.set(func(e *fakeSwarm) { e.services, e.tasks = mustJSON(t, services), mustJSON(t, tasks) })
	sent := time.Now()
	e.events <- events.Message{Type: events.ServiceEventType, Action: "update", Actor: events.Actor{ID: "svc00", Attributes: map[string]string{"name": "app00"}}}
	u, ok := w.next(t, time.Second)
	if !ok {
		t.Fatal("no update within 1s of a service event (Poll is 1 minute)")
	}
	t.Logf("update %v after the service event", time.Since(sent).Round(time.Millisecond))
	if !u.Full || !slices.Equal(workloadNames(u.Workloads), []string{"app00.1.task0000", "app00.2.task0001"}) {
		t.Errorf("update after the event: Full %v, %v", u.Full, workloadNames(u.Workloads))
	}
	if got := w.events(); !slices.Equal(got, []string{"service update"}) {
		t.Errorf("OnEvent got %v", got)
	}
	// The burst: more polls follow within the next seconds, at the burst's offsets.
	before := e.calls("/tasks")
	const window = 1200 * time.Millisecond
	time.Sleep(window)
	want := 0
	for _, d := range burst[1:] {
		if d <= window-100*time.Millisecond {
			want++
		}
	}
	if n := e.calls("/tasks") - before; n < want-1 || n > want+1 {
		t.Errorf("%d polls in the %v after the first, want the burst's %d (%v)", n, window, want, burst)
	}
	if n := e.calls("/nodes"); n != 1 {
		t.Errorf("node lists = %d, want 1: a service event does not make the nodes stale", n)
	}
}

// A node event makes the node list stale: the polls it triggers read it once more.
func TestWatchNodeEventRefreshesNodes(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	if n := e.calls("/nodes"); n != 1 {
		t.Fatalf("node lists after the first poll = %d, want 1", n)
	}
	// The node's address changes.
	var nodes []swarm.Node
	if err := json.Unmarshal(readFixture(t, "nodes.json"), &nodes); err != nil {
		t.Fatal(err)
	}
	nodes[0].Status.Addr = "192.0.2.9"
	e.set(func(e *fakeSwarm) { e.nodes = mustJSON(t, nodes) })
	e.events <- events.Message{Type: events.NodeEventType, Action: "update", Actor: events.Actor{ID: nodeID}}
	u, ok := w.next(t, time.Second)
	if !ok {
		t.Fatal("no update within 1s of a node event")
	}
	for _, wl := range u.Workloads {
		if wl.NodeAddress != "192.0.2.9" {
			t.Errorf("%s: NodeAddress %q after the node event, want the new address", wl.Name, wl.NodeAddress)
		}
	}
	time.Sleep(600 * time.Millisecond) // more polls of the burst
	if n := e.calls("/nodes"); n != 2 {
		t.Errorf("node lists = %d, want 2 (first poll, then once after the node event)", n)
	}
	if got := w.events(); !slices.Equal(got, []string{"node update"}) {
		t.Errorf("OnEvent got %v", got)
	}
}

// Container events of plain containers (no task label) do not poll; a task's container does.
func TestWatchIgnoresPlainContainerEvents(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	before := e.calls("/tasks")
	e.events <- containerEvent("start", map[string]string{"name": "plain", "image": "nginx"})
	e.events <- containerEvent("die", nil)
	if u, ok := w.next(t, 700*time.Millisecond); ok {
		t.Errorf("a plain container's events sent %+v", u)
	}
	if n := e.calls("/tasks") - before; n != 0 {
		t.Errorf("a plain container's events polled %d times", n)
	}
	if got := w.events(); len(got) != 0 {
		t.Errorf("OnEvent got %v for plain containers", got)
	}
	e.events <- containerEvent("start", map[string]string{"com.docker.swarm.task.id": hostTaskID})
	if _, ok := w.next(t, time.Second); !ok {
		t.Error("a task container's event did not poll within 1s")
	}
	if got := w.events(); !slices.Equal(got, []string{"container start"}) {
		t.Errorf("OnEvent got %v", got)
	}
}

// Without events, the poll interval still polls.
func TestWatchPollsOnItsInterval(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: 100 * time.Millisecond})
	for i := range 3 {
		if u, ok := w.next(t, 2*time.Second); !ok || !u.Full || len(u.Workloads) != 2 {
			t.Fatalf("poll %d: %+v (sent %v)", i+1, u, ok)
		}
	}
	w.stop(t)
	// Every poll costs two requests; the node list was read once, the engine info once.
	if n, s := e.calls("/nodes"), e.calls("/services"); n != 1 || s < 3 || e.calls("/tasks") != s || e.calls("/info") != 1 {
		t.Errorf("requests: %v", e.recorded())
	}
}

// An engine unreachable from the start: Watch sends nothing (not an empty set), keeps trying,
// and returns nil when cancelled.
func TestWatchUnreachableKeepsQuiet(t *testing.T) {
	e := newFakeSwarm(t)
	e.stop()
	w := startWatch(t, e, Options{Poll: 50 * time.Millisecond})
	if u, ok := w.next(t, 1500*time.Millisecond); ok {
		t.Errorf("an unreachable engine sent %+v", u)
	}
	w.stop(t)
}

// An engine lost after the first update: no empty update follows; the last set stays in force.
// When it comes back, Watch resyncs with a Full update.
func TestWatchEngineLostKeepsQuiet(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: 50 * time.Millisecond})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	// The manager starts failing every request (as a restarting engine's proxy would).
	e.set(func(e *fakeSwarm) {
		for _, p := range []string{"/info", "/services", "/tasks", "/nodes", "/events"} {
			e.failures[p] = fakeFailure{http.StatusInternalServerError, "engine restarting"}
		}
	})
	time.Sleep(200 * time.Millisecond)
	w.drain() // polls that were under way
	deadline := time.After(time.Second)
	for quiet := true; quiet; {
		select {
		case u := <-w.out:
			t.Errorf("update while the engine fails: Full %v, %d workloads", u.Full, len(u.Workloads))
		case <-deadline:
			quiet = false
		}
	}
	e.set(func(e *fakeSwarm) { e.failures = map[string]fakeFailure{} })
	u, ok := w.next(t, 15*time.Second)
	if !ok || !u.Full || len(u.Workloads) != 2 {
		t.Errorf("after recovery: %+v (sent %v), want a Full update of 2 workloads", u, ok)
	}
}

// The engine's refusals: a worker's, and one from a node without a Swarm node, are ErrNotManager;
// a manager being prepared (or cut off from its cluster) is an outage.
func TestListRefusals(t *testing.T) {
	for _, tt := range []struct {
		msg        string
		notManager bool
	}{
		{notManagerMessage, true},
		{noSwarmMessage, true},
		{preparingMessage, false},
	} {
		e := newFakeSwarm(t)
		e.set(func(e *fakeSwarm) { e.failures["/tasks"] = fakeFailure{http.StatusServiceUnavailable, tt.msg} })
		_, err := New(e.client(), Options{Log: quiet}).List(context.Background())
		if err == nil || errors.Is(err, ErrNotManager) != tt.notManager || !strings.Contains(err.Error(), "list tasks") {
			t.Errorf("refusal %q: List = %v, want ErrNotManager %v", tt.msg, err, tt.notManager)
		}
	}
}

// A manager's engine restarting passes through "pending", "error" and (with autolock) "locked":
// Watch sends nothing meanwhile, does not give up, and resyncs when the manager is back.
func TestWatchWaitsOutNodeStates(t *testing.T) {
	for _, info := range []string{pendingInfo, errorInfo, lockedInfo} {
		e := newFakeSwarm(t)
		e.set(func(e *fakeSwarm) { e.info = []byte(info) })
		w := startWatch(t, e, Options{Poll: time.Minute})
		if u, ok := w.next(t, 700*time.Millisecond); ok {
			t.Errorf("%s: sent %+v", info, u)
		}
		select {
		case err := <-w.done:
			t.Fatalf("%s: Watch gave up: %v", info, err)
		default:
		}
		if e.calls("/info") < 2 {
			t.Errorf("%s: not retried (%d info requests)", info, e.calls("/info"))
		}
		e.set(func(e *fakeSwarm) { e.info = []byte(managerInfo) })
		if u, ok := w.next(t, 5*time.Second); !ok || !u.Full || len(u.Workloads) != 2 {
			t.Errorf("%s, then a manager: %+v (sent %v), want a Full update", info, u, ok)
		}
		w.stop(t)
	}
}

// Mid-watch refusals are checked against the engine's own state: a manager between two runs of its
// Swarm node, or being prepared, is waited for; a node demoted to worker ends Watch.
func TestWatchRefusalMidWatch(t *testing.T) {
	t.Run("reconnecting", func(t *testing.T) {
		e := newFakeSwarm(t)
		w := startWatch(t, e, Options{Poll: 50 * time.Millisecond})
		if _, ok := w.next(t, 2*time.Second); !ok {
			t.Fatal("no first update")
		}
		e.set(func(e *fakeSwarm) {
			e.info = []byte(errorInfo)
			e.failures["/services"] = fakeFailure{http.StatusServiceUnavailable, noSwarmMessage}
		})
		time.Sleep(150 * time.Millisecond)
		w.drain()
		if u, ok := w.next(t, 700*time.Millisecond); ok {
			t.Errorf("sent %+v while the node reconnects", u)
		}
		select {
		case err := <-w.done:
			t.Fatalf("Watch gave up on a reconnecting manager: %v", err)
		default:
		}
		e.set(func(e *fakeSwarm) { e.info, e.failures = []byte(managerInfo), map[string]fakeFailure{} })
		if u, ok := w.next(t, 5*time.Second); !ok || !u.Full || len(u.Workloads) != 2 {
			t.Errorf("after the reconnect: %+v (sent %v)", u, ok)
		}
	})
	t.Run("being prepared", func(t *testing.T) {
		e := newFakeSwarm(t)
		w := startWatch(t, e, Options{Poll: 50 * time.Millisecond})
		if _, ok := w.next(t, 2*time.Second); !ok {
			t.Fatal("no first update")
		}
		e.set(func(e *fakeSwarm) {
			e.failures["/tasks"] = fakeFailure{http.StatusServiceUnavailable, preparingMessage}
		})
		time.Sleep(150 * time.Millisecond)
		w.drain()
		select {
		case err := <-w.done:
			t.Fatalf("Watch gave up on a manager being prepared: %v", err)
		case u := <-w.out:
			t.Errorf("sent %+v while the manager is being prepared", u)
		case <-time.After(700 * time.Millisecond):
		}
		e.set(func(e *fakeSwarm) { e.failures = map[string]fakeFailure{} })
		if u, ok := w.next(t, 5*time.Second); !ok || !u.Full {
			t.Errorf("after the manager is ready: %+v (sent %v)", u, ok)
		}
	})
	t.Run("demoted", func(t *testing.T) {
		e := newFakeSwarm(t)
		w := startWatch(t, e, Options{Poll: 50 * time.Millisecond})
		if _, ok := w.next(t, 2*time.Second); !ok {
			t.Fatal("no first update")
		}
		e.set(func(e *fakeSwarm) {
			e.info = []byte(workerInfo)
			e.failures["/services"] = fakeFailure{http.StatusServiceUnavailable, notManagerMessage}
		})
		select {
		case err := <-w.done:
			if !errors.Is(err, ErrNotManager) || !strings.Contains(err.Error(), "worker") {
				t.Errorf("Watch = %v, want ErrNotManager naming the worker", err)
			}
			close(w.done)
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not give up on a node demoted to worker")
		}
	})
}

// A storm of events (a service scaled: each task's container created and started, the service
// updated) costs a poll per eventGap and the burst's tail, not a poll per event.
func TestWatchEventStormCoalesced(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	before := e.calls("/tasks")
	start := time.Now()
	for i := range 30 {
		e.events <- containerEvent("start", map[string]string{"com.docker.swarm.task.id": fmt.Sprint("t", i)})
		time.Sleep(5 * time.Millisecond)
	}
	storm := time.Since(start)
	time.Sleep(50 * time.Millisecond)
	during := e.calls("/tasks") - before
	// One poll at once, then at most one per eventGap.
	if limit := 2 + int(storm/eventGap); during > limit {
		t.Errorf("%d polls during a %v storm of 30 events, want at most %d", during, storm.Round(time.Millisecond), limit)
	}
	if during < 1 {
		t.Error("the storm did not poll")
	}
	time.Sleep(burst[len(burst)-1] + 500*time.Millisecond) // the burst's tail after the last event
	total := e.calls("/tasks") - before
	t.Logf("30 events in %v: %d polls during the storm, %d in all with the burst's tail (%d API requests)",
		storm.Round(time.Millisecond), during, total, 2*total)
	if total > during+len(burst) {
		t.Errorf("%d polls in all, want at most %d", total, during+len(burst))
	}
	if got := len(w.events()); got != 30 {
		t.Errorf("OnEvent called %d times, want 30", got)
	}
}

// A lone event shortly after a poll is not lost: it polls eventGap after that poll.
func TestWatchEventJustAfterAPoll(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	e.events <- events.Message{Type: events.ServiceEventType, Action: "update"}
	if _, ok := w.next(t, time.Second); !ok {
		t.Fatal("no poll after the first event")
	}
	before := e.calls("/tasks")
	e.events <- events.Message{Type: events.ServiceEventType, Action: "update"} // within eventGap
	if _, ok := w.next(t, 500*time.Millisecond); !ok || e.calls("/tasks") == before {
		t.Error("an event right after a poll did not poll within 500ms")
	}
}
