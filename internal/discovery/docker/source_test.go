package docker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

const (
	plainID  = "e79f2e545edc8b36a0ee12f1ce092e00707317a6db9a32fab4f99dac48220b44"
	pausedID = "fffca86c3f950d7cfdda917db1466c34868aecc45b3f0c9cf1ce1cb1bae233da"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The resync keeps a container's cached inspect while its list entry's fingerprint equals the
// fingerprint of that inspect: for the real engine's answers they must be equal, or every resync
// re-inspects every container.
func TestFingerprintOfListMatchesInspect(t *testing.T) {
	inspected := map[string]*container.InspectResponse{}
	for _, n := range fixtureNames {
		c := loadInspect(t, n)
		inspected[c.ID] = c
	}
	running := 0
	for _, s := range loadList(t) {
		if s.State != "running" {
			continue
		}
		running++
		c, ok := inspected[s.ID]
		if !ok {
			t.Fatalf("no inspect fixture for %v", s.Names)
		}
		w, ok := FromInspect(c, "127.0.0.1")
		if !ok {
			t.Fatalf("%v: FromInspect not ok", s.Names)
		}
		if got, want := fingerprint(&s), workloadFingerprint(&w); got != want {
			t.Errorf("%v: fingerprint(list entry) = %q, workloadFingerprint(inspect) = %q", s.Names, got, want)
		}
	}
	if running != 6 {
		t.Errorf("list.json has %d running containers, want 6 (plain, published, hostnet, multinet, unhealthy, starting)", running)
	}
}

// The fingerprint is not trivially equal for different states: each routing-relevant change shows.
func TestFingerprintSeesRoutingChanges(t *testing.T) {
	base := func() container.Summary {
		for _, s := range loadList(t) {
			if s.Names[0] == "/vgt-published" {
				return s
			}
		}
		t.Fatal("vgt-published not in list.json")
		return container.Summary{}
	}
	ref := base()
	want := "running||bridge=172.17.0.5,|80/tcp=127.0.0.1:18081|8080/tcp=0.0.0.0:18082|8080/tcp=:::18082"
	if got := fingerprint(&ref); got != want {
		t.Fatalf("fingerprint = %q, want %q", got, want)
	}
	changes := map[string]func(s *container.Summary){
		"health": func(s *container.Summary) { s.Status += " (unhealthy)" },
		"paused": func(s *container.Summary) { s.State, s.Status = "paused", s.Status+" (Paused)" },
		"ip":     func(s *container.Summary) { s.NetworkSettings.Networks["bridge"].IPAddress = "172.17.0.99" },
		"network connected": func(s *container.Summary) {
			s.NetworkSettings.Networks["extra"] = &network.EndpointSettings{IPAddress: "10.9.0.2"}
		},
		"network disconnected": func(s *container.Summary) { delete(s.NetworkSettings.Networks, "bridge") },
		"published port":       func(s *container.Summary) { s.Ports[0].PublicPort = 28081 },
		"host ip":              func(s *container.Summary) { s.Ports[0].IP = "0.0.0.0" },
		"new binding": func(s *container.Summary) {
			s.Ports = append(s.Ports, container.Port{PrivatePort: 9090, PublicPort: 19090, Type: "udp", IP: "0.0.0.0"})
		},
	}
	for name, change := range changes {
		s := base()
		change(&s)
		if fingerprint(&s) == want {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	// Order of ports in the list entry does not matter; unbound ports do not count.
	s := base()
	slices.Reverse(s.Ports)
	s.Ports = append(s.Ports, container.Port{PrivatePort: 7000, Type: "tcp"})
	if got := fingerprint(&s); got != want {
		t.Errorf("reordered ports + unbound port: fingerprint = %q, want %q", got, want)
	}
	// Nil network settings do not panic.
	s.NetworkSettings = nil
	if got := fingerprint(&s); !strings.HasPrefix(got, "running||80/tcp") {
		t.Errorf("nil NetworkSettings: fingerprint = %q", got)
	}
}

func TestHealthOf(t *testing.T) {
	tests := map[string]string{
		"Up 3 minutes (healthy)":           discovery.HealthHealthy,
		"Up 3 minutes (unhealthy)":         discovery.HealthUnhealthy,
		"Up 5 seconds (health: starting)":  discovery.HealthStarting,
		"Up 2 seconds":                     discovery.HealthNone,
		"Up 17 seconds (Paused)":           discovery.HealthNone,
		"Exited (137) 1 second ago":        discovery.HealthNone,
		"":                                 discovery.HealthNone,
		"Up About an hour (healthy)":       "healthy",
		"Restarting (1) 2 seconds ago":     "",
		"Up 3 minutes (unhealthy) trailer": "", // the health is always the suffix
	}
	for status, want := range tests {
		if got := healthOf(status); got != want {
			t.Errorf("healthOf(%q) = %q, want %q", status, got, want)
		}
	}
	if healthOf("Up 3 minutes (unhealthy)") == healthOf("Up 3 minutes (healthy)") {
		t.Error("healthy and unhealthy read the same")
	}
}

func TestEventFilters(t *testing.T) {
	f := eventFilters()
	types := f.Get("type")
	slices.Sort(types)
	if want := []string{"container", "network"}; !slices.Equal(types, want) {
		t.Errorf("type filter = %v, want %v", types, want)
	}
	for _, ev := range []string{"start", "die", "destroy", "pause", "unpause", "rename", "health_status", "kill", "connect", "disconnect"} {
		if !f.ExactMatch("event", ev) {
			t.Errorf("event %q not asked for", ev)
		}
	}
	// Frequent events that cannot change routing are not asked for.
	for _, ev := range []string{"exec_create", "exec_start", "exec_die", "attach", "resize", "top", "commit", "copy", "export", "create"} {
		if f.ExactMatch("event", ev) {
			t.Errorf("event %q asked for", ev)
		}
	}
	if keys := f.Keys(); len(keys) != 2 {
		t.Errorf("filter keys = %v, want only type and event", keys)
	}
	// It survives the trip to the engine (query parameter encoding).
	if _, err := filters.ToJSON(f); err != nil {
		t.Fatal(err)
	}
}

func TestMatches(t *testing.T) {
	attrs := []map[string]string{
		nil,
		{},
		{"k": "v"},
		{"k": ""},
		{"k": "w"},
		{"other": "v", "name": "x"},
		{"k": "v=w"},
	}
	tests := []struct {
		filter string
		want   []bool // per attrs entry
	}{
		{"", []bool{true, true, true, true, true, true, true}},
		{"k", []bool{false, false, true, true, true, false, true}},
		{"k=v", []bool{false, false, true, false, false, false, false}},
		{"k=", []bool{false, false, false, true, false, false, false}},
		{"k=v=w", []bool{false, false, false, false, false, false, true}},
	}
	for _, tt := range tests {
		s := &Source{opt: Options{LabelFilter: tt.filter}}
		for i, a := range attrs {
			if got := s.matches(a); got != tt.want[i] {
				t.Errorf("LabelFilter %q, attrs %v: matches = %v, want %v", tt.filter, a, got, tt.want[i])
			}
		}
	}
}

func names(ws []discovery.Workload) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	slices.Sort(out)
	return out
}

var runningNames = []string{"vgt-hostnet", "vgt-multinet", "vgt-plain", "vgt-published", "vgt-starting", "vgt-unhealthy"}

// A resync inspects only containers that are new or changed since the last one.
func TestListInspectsOnlyNewOrChanged(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{NodeAddress: "10.0.0.1", Log: quiet})
	ctx := context.Background()

	ws, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ws); !slices.Equal(got, runningNames) {
		t.Errorf("List = %v, want %v (paused excluded)", got, runningNames)
	}
	for _, w := range ws {
		if w.NodeAddress != "10.0.0.1" || w.Source != "docker" {
			t.Errorf("%s: NodeAddress %q Source %q", w.Name, w.NodeAddress, w.Source)
		}
	}
	if n := e.inspects(); n != 7 {
		t.Fatalf("first List inspected %d containers, want 7 (all listed, paused included)", n)
	}

	again, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.inspects(); n != 7 {
		t.Errorf("an unchanged resync inspected %d more containers, want 0", n-7)
	}
	if len(again) != len(ws) {
		t.Fatalf("second List has %d workloads, want %d", len(again), len(ws))
	}
	for i := range ws {
		if !again[i].Equal(&ws[i]) {
			t.Errorf("cached workload differs: %+v vs %+v", again[i], ws[i])
		}
	}

	// One container's IP changes in the list: only it is inspected again.
	e.mu.Lock()
	e.list = []byte(strings.Replace(string(e.list), `"IPAddress": "172.17.0.4"`, `"IPAddress": "172.17.0.44"`, 1))
	e.mu.Unlock()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(func(r string) bool { return strings.HasPrefix(r, "GET /v1.41/containers/"+plainID+"/json") }); n != 2 {
		t.Errorf("vgt-plain inspected %d times, want 2", n)
	}
	if n := e.inspects(); n != 8 {
		t.Errorf("after one change: %d inspects in all, want 8", n)
	}
}

// A container that disappears between the list and its inspect is skipped, not an error.
func TestListSkipsContainerGoneSinceTheList(t *testing.T) {
	e := newFakeEngine(t)
	e.gone[plainID] = true
	ws, err := New(e.client(), Options{Log: quiet}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(runningNames), func(n string) bool { return n == "vgt-plain" })
	if got := names(ws); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestListErrorWhenEngineDown(t *testing.T) {
	e := newFakeEngine(t)
	cli := e.client()
	e.srv.Close()
	if _, err := New(cli, Options{Log: quiet}).List(context.Background()); err == nil || !strings.Contains(err.Error(), "list containers") {
		t.Errorf("List with the engine down: err = %v", err)
	}
}

func TestListSendsLabelFilter(t *testing.T) {
	e := newFakeEngine(t)
	if _, err := New(e.client(), Options{Log: quiet, LabelFilter: "vhost-gen.helper=1"}).List(context.Background()); err != nil {
		t.Fatal(err)
	}
	var listReq string
	for _, r := range e.recorded() {
		if strings.HasPrefix(r, "GET /v1.41/containers/json") {
			listReq = r
		}
	}
	_, rawQuery, _ := strings.Cut(listReq, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		t.Fatalf("list request %q: filters: %v", listReq, err)
	}
	if got := f.Get("label"); !slices.Equal(got, []string{"vhost-gen.helper=1"}) {
		t.Errorf("label filter sent = %v (request %q)", got, listReq)
	}

	// Without a filter, no filters parameter.
	e2 := newFakeEngine(t)
	if _, err := New(e2.client(), Options{Log: quiet}).List(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range e2.recorded() {
		if strings.HasPrefix(r, "GET /v1.41/containers/json") && strings.Contains(r, "filters") {
			t.Errorf("unfiltered list sent filters: %q", r)
		}
	}
}

func containerEvent(action, id string, attrs map[string]string) events.Message {
	return events.Message{Type: events.ContainerEventType, Action: events.Action(action),
		Actor: events.Actor{ID: id, Attributes: attrs}}
}

func recv(t *testing.T, out chan discovery.Update) (discovery.Update, bool) {
	t.Helper()
	select {
	case u := <-out:
		return u, true
	default:
		return discovery.Update{}, false
	}
}

// An event inspects its container once, and that inspect counts for the next resync.
func TestHandleStartThenResync(t *testing.T) {
	e := newFakeEngine(t)
	var actions []string
	s := New(e.client(), Options{NodeAddress: "n", Log: quiet, OnEvent: func(a string) { actions = append(actions, a) }})
	ctx := context.Background()
	out := make(chan discovery.Update, 4)

	if err := s.handle(ctx, containerEvent("start", plainID, map[string]string{"name": "vgt-plain"}), out); err != nil {
		t.Fatal(err)
	}
	u, ok := recv(t, out)
	if !ok || u.Full || u.Source != "docker" || len(u.Workloads) != 1 || u.Workloads[0].Name != "vgt-plain" || len(u.Removed) != 0 {
		t.Fatalf("update after start = %+v (sent %v)", u, ok)
	}
	if !slices.Equal(actions, []string{"start"}) {
		t.Errorf("OnEvent got %v", actions)
	}
	if n := e.inspects(); n != 1 {
		t.Fatalf("start inspected %d times, want 1", n)
	}
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(func(r string) bool { return strings.HasPrefix(r, "GET /v1.41/containers/"+plainID) }); n != 1 {
		t.Errorf("the resync inspected vgt-plain again (%d inspects), though the event had", n)
	}
	if n := e.inspects(); n != 7 {
		t.Errorf("inspects after event + resync = %d, want 7", n)
	}
}

func TestHandleDieNeedsNoInspect(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.inspects()
	out := make(chan discovery.Update, 4)
	for _, action := range []string{"die", "destroy"} {
		if err := s.handle(ctx, containerEvent(action, plainID, nil), out); err != nil {
			t.Fatal(err)
		}
		u, ok := recv(t, out)
		if !ok || !slices.Equal(u.Removed, []string{plainID}) || len(u.Workloads) != 0 || u.Full {
			t.Errorf("%s: update = %+v (sent %v)", action, u, ok)
		}
	}
	if e.inspects() != before {
		t.Error("die/destroy inspected the container")
	}
	s.mu.Lock()
	_, cached := s.cache[plainID]
	s.mu.Unlock()
	if cached {
		t.Error("a dead container stays cached")
	}
}

func TestHandlePausedAndGone(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	out := make(chan discovery.Update, 4)

	if err := s.handle(ctx, containerEvent("pause", pausedID, nil), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); !ok || !slices.Equal(u.Removed, []string{pausedID}) || len(u.Workloads) != 0 {
		t.Errorf("pause: update = %+v (sent %v), want a removal", u, ok)
	}

	e.gone[plainID] = true
	if err := s.handle(ctx, containerEvent("start", plainID, nil), out); err != nil {
		t.Fatalf("start of a container gone since: %v", err)
	}
	if u, ok := recv(t, out); !ok || !slices.Equal(u.Removed, []string{plainID}) {
		t.Errorf("start of a gone container: update = %+v (sent %v), want a removal", u, ok)
	}
}

func TestHandleLabelFilter(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet, LabelFilter: "proxy=a"})
	ctx := context.Background()
	out := make(chan discovery.Update, 4)
	if err := s.handle(ctx, containerEvent("start", plainID, map[string]string{"proxy": "b"}), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); ok {
		t.Errorf("event of a container without the label sent %+v", u)
	}
	if e.inspects() != 0 {
		t.Error("event of a container without the label was inspected")
	}
	if err := s.handle(ctx, containerEvent("start", plainID, map[string]string{"proxy": "a"}), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); !ok || len(u.Workloads) != 1 {
		t.Errorf("event of a labelled container: %+v (sent %v)", u, ok)
	}
}

// Network events name the container in an attribute; only cached (running) containers matter.
func TestHandleNetworkEvent(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	out := make(chan discovery.Update, 4)
	connect := events.Message{Type: events.NetworkEventType, Action: "connect",
		Actor: events.Actor{ID: bridgeID, Attributes: map[string]string{"container": plainID, "name": "bridge", "type": "bridge"}}}

	if err := s.handle(ctx, connect, out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); ok || e.inspects() != 0 {
		t.Errorf("network event for an unknown container: sent %+v, %d inspects", u, e.inspects())
	}
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.inspects()
	if err := s.handle(ctx, connect, out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); !ok || len(u.Workloads) != 1 || u.Workloads[0].ID != plainID {
		t.Errorf("connect of a known container: %+v (sent %v)", u, ok)
	}
	if e.inspects() != before+1 {
		t.Errorf("connect: %d inspects, want 1", e.inspects()-before)
	}
	// A network's own events (no container attribute) are ignored.
	destroy := events.Message{Type: events.NetworkEventType, Action: "destroy", Actor: events.Actor{ID: bridgeID}}
	if err := s.handle(ctx, destroy, out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); ok {
		t.Errorf("network destroy sent %+v", u)
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(nil, Options{})
	if s.opt.Resync <= 0 || s.opt.Log == nil || s.cache == nil {
		t.Errorf("New did not fill defaults: %+v", s.opt)
	}
	if s.Name() != "docker" || SourceName != "docker" {
		t.Errorf("Name = %q", s.Name())
	}
	var _ discovery.Source = s
}

// The list fixture decodes as the engine sent it (guards against a fixture edited by hand).
func TestListFixtureShape(t *testing.T) {
	var raw []map[string]any
	b, _ := json.Marshal(loadList(t))
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 7 {
		t.Fatalf("list.json: %d entries, err %v", len(raw), err)
	}
}

// The stop signal takes a container out of rotation at once, without an API call; events while it
// stops do not bring it back, and neither does a resync; it comes back when it starts again.
func TestHandleKillDrains(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	out := make(chan discovery.Update, 4)
	before := e.inspects()

	// A reload signal to the application changes nothing.
	if err := s.handle(ctx, containerEvent("kill", plainID, map[string]string{"signal": "1"}), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); ok {
		t.Errorf("kill -s HUP sent %+v, want nothing", u)
	}
	if err := s.handle(ctx, containerEvent("kill", plainID, map[string]string{"signal": "15"}), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); !ok || !slices.Equal(u.Removed, []string{plainID}) || len(u.Workloads) != 0 {
		t.Errorf("kill -s TERM: update = %+v (sent %v), want a removal", u, ok)
	}
	if err := s.handle(ctx, containerEvent("health_status", plainID, nil), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); ok {
		t.Errorf("health_status while stopping sent %+v, want nothing", u)
	}
	if e.inspects() != before {
		t.Errorf("kill and events while stopping inspected %d times, want 0", e.inspects()-before)
	}
	ws, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names(ws), "vgt-plain") {
		t.Error("a resync brought back a stopping container")
	}
	if err := s.handle(ctx, containerEvent("start", plainID, nil), out); err != nil {
		t.Fatal(err)
	}
	if u, ok := recv(t, out); !ok || len(u.Workloads) != 1 {
		t.Errorf("start after a stop: update = %+v (sent %v), want the workload back", u, ok)
	}
}

func TestStopSignal(t *testing.T) {
	tests := map[string]string{"": "", "SIGWINCH": "28", "winch": "28", "SIGUSR1": "10", "3": "3", "NOPE": ""}
	for in, want := range tests {
		if got := stopSignal(&container.Config{StopSignal: in}); got != want {
			t.Errorf("stopSignal(%q) = %q, want %q", in, got, want)
		}
	}
	if got := stopSignal(nil); got != "" {
		t.Errorf("stopSignal(nil) = %q", got)
	}
}
