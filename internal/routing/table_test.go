package routing

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestBuildEmpty(t *testing.T) {
	for _, ws := range [][]discovery.Workload{nil, {}, {{Name: "plain", ID: "1"}}} {
		tab := Build(ws, Options{})
		if tab.Sites == nil || tab.Problems == nil || len(tab.Sites) != 0 || len(tab.Problems) != 0 {
			t.Errorf("Build(%v): sites %#v problems %#v; want empty, non-nil", ws, tab.Sites, tab.Problems)
		}
		if tab.ProxyNetworks != nil {
			t.Errorf("Build(%v): proxy networks %#v, want nil (unknown)", ws, tab.ProxyNetworks)
		}
		b, err := json.Marshal(tab)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"sites":[]`) || !strings.Contains(string(b), `"problems":[]`) {
			t.Errorf("JSON %s: want empty arrays, not null", b)
		}
	}
}

// Workloads without VIRTUAL_HOST are not routed and not problems, but templates still see them.
func TestBuildKeepsRawWorkloads(t *testing.T) {
	ws := []discovery.Workload{
		wl("web", "10.0.0.2", "VIRTUAL_HOST=a.com"),
		{Name: "db", ID: "db1", Source: "docker"},
	}
	in := slices.Clone(ws)
	tab := Build(ws, proxyOpts)
	if len(tab.Problems) != 0 || len(tab.Sites) != 1 {
		t.Fatalf("sites %v problems %v", siteHosts(tab), tab.Problems)
	}
	if len(tab.Workloads) != 2 || tab.Workloads[0].Name != "db" || tab.Workloads[1].Name != "web" {
		t.Errorf("raw workloads %+v: want both, sorted by name", tab.Workloads)
	}
	if !reflect.DeepEqual(ws, in) {
		t.Errorf("Build reordered or changed its input")
	}
}

func TestBuildReplicasMerge(t *testing.T) {
	ws := []discovery.Workload{
		wl("web.3", "10.0.0.3", "VIRTUAL_HOST=a.com"),
		wl("web.1", "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_WEIGHT=5"),
		wl("web.2", "10.0.0.2", "VIRTUAL_HOST=A.com."),
	}
	tab := Build(ws, proxyOpts)
	if len(tab.Problems) != 0 || len(tab.Sites) != 1 || len(tab.Sites[0].Routes) != 1 {
		t.Fatalf("sites %+v problems %v; want one site with one route", tab.Sites, tab.Problems)
	}
	r := route(t, tab, "a.com", "/")
	want := []Server{
		{Name: "web.1", Address: "10.0.0.1:80", IP: "10.0.0.1", Port: 80, Weight: 5, Workload: "web.1", WorkloadID: "id-web.1",
			Via: ViaSharedNetwork, ViaDetail: "network proxy"},
		{Name: "web.2", Address: "10.0.0.2:80", IP: "10.0.0.2", Port: 80, Weight: 1, Workload: "web.2", WorkloadID: "id-web.2",
			Via: ViaSharedNetwork, ViaDetail: "network proxy"},
		{Name: "web.3", Address: "10.0.0.3:80", IP: "10.0.0.3", Port: 80, Weight: 1, Workload: "web.3", WorkloadID: "id-web.3",
			Via: ViaSharedNetwork, ViaDetail: "network proxy"},
	}
	if !reflect.DeepEqual(r.Backend.Servers, want) {
		t.Errorf("servers %+v\nwant %+v", r.Backend.Servers, want)
	}
	if r.Backend.Proto != "http" || r.Backend.Name != "a.com" || r.Dest != "" || r.Backend.Sticky != "" {
		t.Errorf("backend %+v", r.Backend)
	}
}

// Blue/green: weight 0 drains a server but keeps it in the backend.
func TestBuildWeightZeroKept(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("blue", "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_WEIGHT=0"),
		wl("green", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_WEIGHT=256"),
	}, proxyOpts)
	s := route(t, tab, "a.com", "/").Backend.Servers
	if len(s) != 2 || s[0].Workload != "blue" || s[0].Weight != 0 || s[1].Weight != 256 {
		t.Errorf("servers %+v", s)
	}
}

// Two workloads at the same address (e.g. Swarm ingress-mode tasks on one node) are one server.
func TestBuildSameAddressOnce(t *testing.T) {
	a := wl("svc.1", "", "VIRTUAL_HOST=a.com")
	b := wl("svc.2", "", "VIRTUAL_HOST=a.com")
	for _, w := range []*discovery.Workload{&a, &b} {
		w.Networks = nil
		w.NodeAddress = "192.168.1.1"
		w.Ports = ports(pub(80, "", 30080))
	}
	tab := Build([]discovery.Workload{b, a}, Options{})
	s := route(t, tab, "a.com", "/").Backend.Servers
	if len(s) != 1 || s[0].Address != "192.168.1.1:30080" || s[0].Workload != "svc.1" {
		t.Errorf("servers %+v; want one, svc.1's", s)
	}
}

func TestBuildServersSortedByAddress(t *testing.T) {
	var ws []discovery.Workload
	ips := []string{"10.0.0.9", "10.0.1.1", "10.0.0.10", "10.0.0.1", "fd00::1"}
	for i, ip := range ips {
		ws = append(ws, wl(fmt.Sprintf("w%d", i), ip, "VIRTUAL_HOST=a.com"))
	}
	tab := Build(ws, proxyOpts)
	got := addresses(route(t, tab, "a.com", "/"))
	if len(got) != len(ips) {
		t.Fatalf("servers %v", got)
	}
	if !slices.IsSortedFunc(route(t, tab, "a.com", "/").Backend.Servers, func(a, b Server) int { return strings.Compare(a.IP, b.IP) }) {
		t.Errorf("servers not sorted by address: %v", got)
	}
}

func TestBuildSeveralHosts(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("web", "10.0.0.2", "VIRTUAL_HOST=b.com, a.com,*.c.com,c.*"),
	}, proxyOpts)
	if len(tab.Problems) != 0 {
		t.Fatalf("problems %v", tab.Problems)
	}
	wantHosts := []string{"*.c.com", "a.com", "b.com", "c.*"}
	if got := siteHosts(tab); !reflect.DeepEqual(got, wantHosts) {
		t.Errorf("sites %q, want %q (sorted)", got, wantHosts)
	}
	for _, h := range wantHosts {
		if got := addresses(route(t, tab, h, "/")); !reflect.DeepEqual(got, []string{"10.0.0.2:80"}) {
			t.Errorf("%s: servers %v", h, got)
		}
	}
}

func TestBuildPathRouting(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("api", "10.0.0.3", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/api", "VIRTUAL_DEST=/", "VIRTUAL_PORT=8080"),
		wl("static", "10.0.0.4", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/static/"),
		wl("front", "10.0.0.2", "VIRTUAL_HOST=a.com"),
	}, proxyOpts)
	if len(tab.Problems) != 0 || len(tab.Sites) != 1 {
		t.Fatalf("sites %v problems %v", siteHosts(tab), tab.Problems)
	}
	var paths []string
	for _, r := range tab.Sites[0].Routes {
		paths = append(paths, r.Path)
	}
	if want := []string{"/", "/api", "/static/"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
	api := route(t, tab, "a.com", "/api")
	if api.Dest != "/" || !reflect.DeepEqual(addresses(api), []string{"10.0.0.3:8080"}) || api.Backend.Name != "a.com_api" {
		t.Errorf("api route %+v", api)
	}
	if st := route(t, tab, "a.com", "/static/"); st.Backend.Name != "a.com_static" {
		t.Errorf("static backend name %q", st.Backend.Name)
	}
	if root := route(t, tab, "a.com", "/"); !reflect.DeepEqual(addresses(root), []string{"10.0.0.2:80"}) {
		t.Errorf("root route %+v", root)
	}
}

func TestBuildConflicts(t *testing.T) {
	tests := []struct {
		name   string
		first  []string // labels of "a-first"
		second []string // labels of "b-second"
		reason string
	}{
		{"proto", []string{"VIRTUAL_PROTO=http"}, []string{"VIRTUAL_PROTO=https"}, "left out of a.com/: VIRTUAL_PROTO https differs from the other servers' http"},
		{"dest", []string{"VIRTUAL_DEST=/x"}, nil, `left out of a.com/: VIRTUAL_DEST "" differs from the other servers' "/x"`},
		{"sticky", nil, []string{"VIRTUAL_STICKY=SRV"}, `left out of a.com/: VIRTUAL_STICKY "SRV" differs from the other servers' ""`},
	}
	for _, tt := range tests {
		first := wl("a-first", "10.0.0.1", append([]string{"VIRTUAL_HOST=a.com"}, tt.first...)...)
		second := wl("b-second", "10.0.0.2", append([]string{"VIRTUAL_HOST=a.com,b.com"}, tt.second...)...)
		other := wl("c-other", "10.0.0.3", append([]string{"VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/other"}, tt.second...)...)
		for _, order := range [][]discovery.Workload{{first, second, other}, {other, second, first}} {
			tab := Build(order, proxyOpts)
			if got := addresses(route(t, tab, "a.com", "/")); !reflect.DeepEqual(got, []string{"10.0.0.1:80"}) {
				t.Errorf("%s: a.com/ servers %v, want only a-first's", tt.name, got)
			}
			// Left out of that route only: still routed on its other host.
			if got := addresses(route(t, tab, "b.com", "/")); !reflect.DeepEqual(got, []string{"10.0.0.2:80"}) {
				t.Errorf("%s: b.com/ servers %v, want b-second's", tt.name, got)
			}
			// A different path of the same host is another route: no conflict.
			if got := addresses(route(t, tab, "a.com", "/other")); !reflect.DeepEqual(got, []string{"10.0.0.3:80"}) {
				t.Errorf("%s: a.com/other servers %v", tt.name, got)
			}
			if len(tab.Problems) != 1 {
				t.Errorf("%s: problems %v, want one", tt.name, tab.Problems)
				continue
			}
			p := tab.Problems[0]
			if p.Workload != "b-second" || p.WorkloadID != "id-b-second" || p.Reason != tt.reason {
				t.Errorf("%s: problem %+v; want on b-second, reason %q", tt.name, p, tt.reason)
			}
		}
	}
}

// The backend's options come from the first workload by (source, name, ID), whatever the input order.
func TestBuildConflictFirstBySortedName(t *testing.T) {
	z := wl("zeta", "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_PROTO=https")
	a := wl("alpha", "10.0.0.2", "VIRTUAL_HOST=a.com")
	for _, ws := range [][]discovery.Workload{{z, a}, {a, z}} {
		tab := Build(ws, proxyOpts)
		r := route(t, tab, "a.com", "/")
		if r.Backend.Proto != "http" || !reflect.DeepEqual(addresses(r), []string{"10.0.0.2:80"}) {
			t.Errorf("route %+v; want alpha's http backend", r)
		}
		if ps := problemsOf(tab, "zeta"); len(ps) != 1 {
			t.Errorf("zeta problems %v", ps)
		}
	}
}

func TestBuildHealth(t *testing.T) {
	mk := func(name, ip, health string) discovery.Workload {
		w := wl(name, ip, "VIRTUAL_HOST=a.com")
		w.Health = health
		return w
	}
	ws := []discovery.Workload{
		mk("none", "10.0.0.1", discovery.HealthNone),
		mk("healthy", "10.0.0.2", discovery.HealthHealthy),
		mk("starting", "10.0.0.3", discovery.HealthStarting),
		mk("unhealthy", "10.0.0.4", discovery.HealthUnhealthy),
	}
	tab := Build(ws, proxyOpts)
	if got, want := addresses(route(t, tab, "a.com", "/")), []string{"10.0.0.1:80", "10.0.0.2:80"}; !reflect.DeepEqual(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
	for _, name := range []string{"starting", "unhealthy"} {
		ps := problemsOf(tab, name)
		if len(ps) != 1 || !strings.Contains(ps[0].Reason, "health is "+name) || !strings.Contains(ps[0].Reason, "--include-unhealthy") {
			t.Errorf("%s: problems %v", name, ps)
		}
	}
	if len(tab.Problems) != 2 {
		t.Errorf("problems %v, want two", tab.Problems)
	}

	opt := proxyOpts
	opt.IncludeUnhealthy = true
	tab = Build(ws, opt)
	if got := addresses(route(t, tab, "a.com", "/")); len(got) != 4 || len(tab.Problems) != 0 {
		t.Errorf("IncludeUnhealthy: servers %v problems %v; want all four, no problems", got, tab.Problems)
	}
}

// An invalid setting excludes that workload alone: the rest of the table is what it would be
// without it.
func TestBuildInvalidWorkloadExcludedAlone(t *testing.T) {
	good := []discovery.Workload{
		wl("web.1", "10.0.0.1", "VIRTUAL_HOST=a.com"),
		wl("web.2", "10.0.0.2", "VIRTUAL_HOST=a.com,b.com", "VIRTUAL_PATH=/x"),
		wl("other", "10.0.0.5", "VIRTUAL_HOST=c.com", "VIRTUAL_PROTO=https"),
	}
	bads := []discovery.Workload{
		wl("bad-host", "10.0.0.9", "VIRTUAL_HOST=a.com; include /etc/passwd"),
		wl("bad-second-host", "10.0.0.9", "VIRTUAL_HOST=a.com,b.com}"),
		wl("bad-port", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_PORT=65536"),
		wl("bad-proto", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_PROTO=ftp"),
		wl("bad-path", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x;"),
		wl("bad-dest", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_DEST=/$uri"),
		wl("bad-network", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_NETWORK=a b"),
		wl("bad-weight", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_WEIGHT=257"),
		wl("bad-sticky", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_STICKY=a\"b"),
		wl("no-address", "", "VIRTUAL_HOST=a.com"),
		wl("zz-conflicting-proto", "10.0.0.9", "VIRTUAL_HOST=c.com", "VIRTUAL_PROTO=http"),
	}
	want := Build(good, proxyOpts)
	if len(want.Problems) != 0 {
		t.Fatalf("good workloads have problems: %v", want.Problems)
	}
	for _, bad := range bads {
		tab := Build(append(slices.Clone(good), bad), proxyOpts)
		if !reflect.DeepEqual(tab.Sites, want.Sites) {
			t.Errorf("%s changed the table:\n got %+v\nwant %+v", bad.Name, tab.Sites, want.Sites)
		}
		if ps := problemsOf(tab, bad.Name); len(ps) != 1 || len(tab.Problems) != 1 {
			t.Errorf("%s: problems %v; want exactly one, on it", bad.Name, tab.Problems)
		}
	}
	// All at once.
	tab := Build(append(slices.Clone(good), bads...), proxyOpts)
	if !reflect.DeepEqual(tab.Sites, want.Sites) {
		t.Errorf("all bad workloads together changed the table:\n got %+v\nwant %+v", tab.Sites, want.Sites)
	}
	if len(tab.Problems) != len(bads) {
		t.Errorf("%d problems, want %d: %v", len(tab.Problems), len(bads), tab.Problems)
	}
	if !slices.IsSortedFunc(tab.Problems, compareProblems) {
		t.Errorf("problems not sorted: %v", tab.Problems)
	}
}

// A workload with several invalid settings has all of them in the table's problems.
func TestBuildReportsEveryInvalidSetting(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("bad", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_PORT=0", "VIRTUAL_WEIGHT=-1", "VIRTUAL_PATH=x"),
	}, proxyOpts)
	var settings []string
	for _, p := range tab.Problems {
		settings = append(settings, p.Setting)
	}
	if want := []string{SettingPath, SettingPort, SettingWeight}; !reflect.DeepEqual(settings, want) {
		t.Errorf("problem settings %v, want %v (sorted)", settings, want)
	}
	if len(tab.Sites) != 0 {
		t.Errorf("sites %v, want none", siteHosts(tab))
	}
}

// determinismSet is a varied set of workloads: replicas, paths, conflicts, problems, several
// sources, hosts and networks.
func determinismSet() []discovery.Workload {
	ws := []discovery.Workload{
		wl("web.1", "10.0.0.11", "VIRTUAL_HOST=a.com,b.com"),
		wl("web.2", "10.0.0.12", "VIRTUAL_HOST=b.com,a.com"),
		wl("web.3", "10.0.0.2", "VIRTUAL_HOST=A.com", "VIRTUAL_WEIGHT=3"),
		wl("api", "10.0.0.20", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/api", "VIRTUAL_PORT=8080"),
		wl("api-tls", "10.0.0.21", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/api", "VIRTUAL_PROTO=https"),
		wl("wild", "10.0.0.30", "VIRTUAL_HOST=*.a.com,a.*"),
		wl("bad", "10.0.0.40", "VIRTUAL_HOST=a.com;"),
		wl("noaddr", "", "VIRTUAL_HOST=c.com"),
		wl("sticky", "10.0.0.50", "VIRTUAL_HOST=c.com", "VIRTUAL_STICKY=SRV"),
		wl("collide", "10.0.0.60", "VIRTUAL_HOST=a.com_api"),
		wl("plain", "10.0.0.70"),
	}
	starting := wl("starting", "10.0.0.80", "VIRTUAL_HOST=a.com")
	starting.Health = discovery.HealthStarting
	swarmTask := wl("web.1", "10.0.0.90", "VIRTUAL_HOST=a.com")
	swarmTask.Source, swarmTask.ID = "swarm", "task1"
	swarmTask.ServiceLabels = kv("VIRTUAL_HOST=s.com", "VIRTUAL_PROTO=https")
	swarmTask2 := swarmTask
	swarmTask2.ID = "task2"
	swarmTask2.Networks = []discovery.Network{{Name: "ingress", IP: "10.255.0.3"}, {Name: "proxy", IP: "10.0.0.91"}}
	multi := wl("multi", "", "VIRTUAL_HOST=m.com")
	multi.Networks = []discovery.Network{{Name: "a", IP: "10.1.0.1"}, {Name: "b", IP: "10.2.0.1"}, {Name: "proxy", IP: "10.0.0.100"}}
	published := wl("pub", "", "VIRTUAL_HOST=p.com")
	published.Networks = nil
	published.NodeAddress = "192.168.1.10"
	published.Ports = ports(pub(80, "::", 8080), pub(80, "0.0.0.0", 8080))
	return append(ws, starting, swarmTask, swarmTask2, multi, published)
}

func TestBuildDeterministic(t *testing.T) {
	ws := determinismSet()
	want := Build(ws, proxyOpts)
	if len(want.Sites) < 5 || len(want.Problems) < 3 {
		t.Fatalf("set too small to be a test: %d sites, %d problems", len(want.Sites), len(want.Problems))
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300; i++ {
		shuffled := slices.Clone(ws)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		got := Build(shuffled, proxyOpts)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("permutation %d gave a different table:\n got %+v\nwant %+v", i, got, want)
		}
	}
	// And the JSON (what /routes shows and what a template would see) is byte-identical.
	a, _ := json.Marshal(want)
	slices.Reverse(ws)
	b, _ := json.Marshal(Build(ws, proxyOpts))
	if string(a) != string(b) {
		t.Errorf("JSON differs:\n%s\n%s", a, b)
	}
}

func TestBuildEverythingSorted(t *testing.T) {
	tab := Build(determinismSet(), Options{ProxyNetworks: []string{"proxy", "b", "a", "proxy"}})
	if !slices.IsSortedFunc(tab.Sites, func(a, b Site) int { return strings.Compare(a.Host, b.Host) }) {
		t.Errorf("sites not sorted: %v", siteHosts(tab))
	}
	for _, s := range tab.Sites {
		if !slices.IsSortedFunc(s.Routes, func(a, b Route) int { return strings.Compare(a.Path, b.Path) }) {
			t.Errorf("%s: routes not sorted", s.Host)
		}
		for _, r := range s.Routes {
			if !slices.IsSortedFunc(r.Backend.Servers, func(a, b Server) int { return strings.Compare(a.IP, b.IP) }) {
				t.Errorf("%s%s: servers not sorted: %v", s.Host, r.Path, addresses(r))
			}
		}
	}
	if want := []string{"a", "b", "proxy"}; !reflect.DeepEqual(tab.ProxyNetworks, want) {
		t.Errorf("proxy networks %v, want %v (sorted, deduplicated)", tab.ProxyNetworks, want)
	}
	if !slices.IsSortedFunc(tab.Problems, compareProblems) {
		t.Errorf("problems not sorted")
	}
}

func checkBackendNames(t *testing.T, tab Table) {
	t.Helper()
	seen := map[string]string{}
	for _, s := range tab.Sites {
		for _, r := range s.Routes {
			n := r.Backend.Name
			if n == "" {
				t.Errorf("%s%s: empty backend name", s.Host, r.Path)
			}
			for i := 0; i < len(n); i++ {
				c := n[i]
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
					t.Errorf("%s%s: backend name %q has %q", s.Host, r.Path, n, c)
				}
			}
			if prev, dup := seen[n]; dup {
				t.Errorf("backend name %q used by %s and %s%s", n, prev, s.Host, r.Path)
			}
			seen[n] = s.Host + r.Path
		}
	}
}

func TestBuildBackendNames(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("w1", "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x"),
		wl("w2", "10.0.0.2", "VIRTUAL_HOST=a.com_x"),
		wl("w3", "10.0.0.3", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x/"),
		wl("w4", "10.0.0.4", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/X"),
		wl("w5", "10.0.0.5", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x."),
		wl("w6", "10.0.0.6", "VIRTUAL_HOST=a.com.x"),
		wl("w7", "10.0.0.7", "VIRTUAL_HOST=*.a.com,_wildcard_.a.com,a.*,a._wildcard_"),
		wl("w8", "10.0.0.8", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/a:b@c!d+e,f=g~h%20"),
		wl("w9", "10.0.0.9", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/a_b_c_d_e_f_g~h_20"),
		wl("w10", "10.0.0.10", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/a_b_c_d_e_f_g_h_20"),
		wl("w11", "10.0.0.11", "VIRTUAL_HOST=a.com"),
		wl("w12", "10.0.0.12", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=//"),
	}, proxyOpts)
	if len(tab.Problems) != 0 {
		t.Fatalf("problems %v", tab.Problems)
	}
	checkBackendNames(t, tab)
	// Readable names: the first route of a name keeps it plain; the root path adds nothing.
	plain := map[string]string{
		"a.com /":            "a.com",
		"a.com /X":           "a.com_x", // "/X" sorts before "/x"
		"*.a.com /":          "_wildcard_.a.com",
		"a.* /":              "a._wildcard_",
		"a.com.x /":          "a.com.x",
		"a.com /x":           "a.com_x-",
		"a.com /x/":          "a.com_x-",
		"a.com_x /":          "a.com_x-",
		"_wildcard_.a.com /": "_wildcard_.a.com-",
	}
	names := map[string]string{}
	for _, s := range tab.Sites {
		for _, r := range s.Routes {
			names[s.Host+" "+r.Path] = r.Backend.Name
		}
	}
	for k, want := range plain {
		got := names[k]
		if strings.HasSuffix(want, "-") {
			if !strings.HasPrefix(got, want) || len(got) != len(want)+8 {
				t.Errorf("%s: backend name %q, want %q and an 8-digit hash", k, got, want)
			}
		} else if got != want {
			t.Errorf("%s: backend name %q, want %q", k, got, want)
		}
	}
}

// Many routes whose readable names collide still get unique, safe names, in any order.
func TestBuildBackendNamesManyCollisions(t *testing.T) {
	var ws []discovery.Workload
	paths := []string{"/", "/x", "/X", "/x/", "/x//", "/_x", "/.x", "/x.", "/x-", "/-x", "/~x", "/%x", "/:x", "/@x", "/!x", "/+x", "/,x", "/=x"}
	hosts := []string{"a.com", "a.com_x", "a.com__x", "a.com_", "*.a.com", "_wildcard_.a.com", "a.*", "a._wildcard_"}
	i := 0
	for _, h := range hosts {
		for _, p := range paths {
			i++
			ws = append(ws, wl(fmt.Sprintf("w%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), "VIRTUAL_HOST="+h, "VIRTUAL_PATH="+p))
		}
	}
	tab := Build(ws, proxyOpts)
	if len(tab.Problems) != 0 {
		t.Fatalf("problems %v", tab.Problems)
	}
	n := 0
	for _, s := range tab.Sites {
		n += len(s.Routes)
	}
	if n != len(ws) {
		t.Fatalf("%d routes, want %d", n, len(ws))
	}
	checkBackendNames(t, tab)
	rng := rand.New(rand.NewSource(2))
	for k := 0; k < 20; k++ {
		rng.Shuffle(len(ws), func(a, b int) { ws[a], ws[b] = ws[b], ws[a] })
		if got := Build(ws, proxyOpts); !reflect.DeepEqual(got.Sites, tab.Sites) {
			t.Fatalf("names depend on input order")
		}
	}
}

func TestBuildProxyContainer(t *testing.T) {
	proxy := discovery.Workload{
		Name: "nginx-proxy", ID: "0123456789abcdef0123456789abcdef", Source: "docker",
		Networks: []discovery.Network{{Name: "front", IP: "10.0.0.2"}, {Name: "ingress", IP: "10.255.0.2"}},
	}
	web := wl("web", "", "VIRTUAL_HOST=a.com")
	web.Networks = []discovery.Network{{Name: "back", IP: "10.1.0.5"}, {Name: "front", IP: "10.0.0.5"}, {Name: "ingress", IP: "10.255.0.5"}}
	for _, ref := range []string{"nginx-proxy", proxy.ID, proxy.ID[:12], proxy.ID[:20]} {
		tab := Build([]discovery.Workload{web, proxy}, Options{ProxyContainer: ref})
		if len(tab.Problems) != 0 {
			t.Errorf("%q: problems %v", ref, tab.Problems)
			continue
		}
		if !reflect.DeepEqual(tab.ProxyNetworks, []string{"front"}) {
			t.Errorf("%q: proxy networks %v, want [front] (ingress removed)", ref, tab.ProxyNetworks)
		}
		if got := addresses(route(t, tab, "a.com", "/")); !reflect.DeepEqual(got, []string{"10.0.0.5:80"}) {
			t.Errorf("%q: servers %v, want the front address", ref, got)
		}
	}

	// Given networks win over the proxy container.
	tab := Build([]discovery.Workload{web, proxy}, Options{ProxyContainer: "nginx-proxy", ProxyNetworks: []string{"back"}})
	if !reflect.DeepEqual(tab.ProxyNetworks, []string{"back"}) || !reflect.DeepEqual(addresses(route(t, tab, "a.com", "/")), []string{"10.1.0.5:80"}) {
		t.Errorf("ProxyNetworks did not win: %v %v", tab.ProxyNetworks, tab.Sites)
	}

	// A proxy on no network other than ingress: known, and empty.
	onlyIngress := proxy
	onlyIngress.Networks = []discovery.Network{{Name: "ingress", IP: "10.255.0.2"}}
	tab = Build([]discovery.Workload{web, onlyIngress}, Options{ProxyContainer: "nginx-proxy", Mode: ModeNetwork})
	if tab.ProxyNetworks == nil || len(tab.ProxyNetworks) != 0 {
		t.Errorf("proxy networks %#v, want empty and non-nil", tab.ProxyNetworks)
	}
	if ps := problemsOf(tab, "web"); len(ps) != 1 || !strings.Contains(ps[0].Reason, "shares no network with the proxy (proxy: none;") {
		t.Errorf("problems %v", tab.Problems)
	}
}

func TestBuildProxyContainerUnknown(t *testing.T) {
	proxy := discovery.Workload{Name: "nginx-proxy", ID: "0123456789abcdef0123456789abcdef", Networks: []discovery.Network{{Name: "front", IP: "10.0.0.2"}}}
	viaNetwork := wl("via-network", "", "VIRTUAL_HOST=a.com", "VIRTUAL_NETWORK=back")
	viaNetwork.Networks = []discovery.Network{{Name: "back", IP: "10.1.0.5"}, {Name: "front", IP: "10.0.0.5"}}
	viaFront := wl("via-front", "", "VIRTUAL_HOST=b.com")
	viaFront.Networks = []discovery.Network{{Name: "front", IP: "10.0.0.6"}}
	for _, ref := range []string{"other-proxy", "nginx", proxy.ID[:11], "123456789abc"} {
		tab := Build([]discovery.Workload{viaNetwork, viaFront, proxy}, Options{ProxyContainer: ref})
		if tab.ProxyNetworks != nil {
			t.Errorf("%q: proxy networks %v, want nil", ref, tab.ProxyNetworks)
		}
		if len(tab.Problems) != 2 {
			t.Errorf("%q: problems %v; want the table's and via-front's", ref, tab.Problems)
			continue
		}
		p := tab.Problems[0] // the table-level problem sorts first
		if p.Workload != "" || p.WorkloadID != "" || p.Setting != "" ||
			!strings.Contains(p.Reason, fmt.Sprintf("proxy container %q is not among the watched containers", ref)) {
			t.Errorf("%q: table problem %+v", ref, p)
		}
		if ps := problemsOf(tab, "via-front"); len(ps) != 1 || !strings.Contains(ps[0].Reason, "the proxy's networks are unknown") {
			t.Errorf("%q: via-front problems %v", ref, ps)
		}
		if got := addresses(route(t, tab, "a.com", "/")); !reflect.DeepEqual(got, []string{"10.1.0.5:80"}) {
			t.Errorf("%q: VIRTUAL_NETWORK workload servers %v", ref, got)
		}
	}
}

func TestSiteHasRoot(t *testing.T) {
	tests := []struct {
		paths []string
		want  bool
	}{
		{nil, false},
		{[]string{"/"}, true},
		{[]string{"/api"}, false},
		{[]string{"/api", "/static"}, false},
		{[]string{"/", "/api"}, true},
		{[]string{"//"}, false},
	}
	for _, tt := range tests {
		var s Site
		for _, p := range tt.paths {
			s.Routes = append(s.Routes, Route{Path: p})
		}
		if got := s.HasRoot(); got != tt.want {
			t.Errorf("HasRoot(%q) = %v, want %v", tt.paths, got, tt.want)
		}
	}
	// Through Build.
	tab := Build([]discovery.Workload{
		wl("api", "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/api"),
		wl("root", "10.0.0.2", "VIRTUAL_HOST=b.com"),
	}, proxyOpts)
	if site(t, tab, "a.com").HasRoot() || !site(t, tab, "b.com").HasRoot() {
		t.Errorf("HasRoot through Build wrong: %+v", tab.Sites)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{
			Problem{Source: "docker", Workload: "web", Setting: SettingPort, Origin: discovery.FromLabel, Value: "8o", Reason: "must be a port number from 1 to 65535"},
			`container web: VIRTUAL_PORT "8o" (label): must be a port number from 1 to 65535`,
		},
		{
			Problem{Workload: "web", Setting: SettingHost, Origin: discovery.FromEnv, Value: "a.com\n}\nserver {", Reason: "bad"},
			`container web: VIRTUAL_HOST "a.com\n}\nserver {" (env): bad`,
		},
		{
			Problem{Source: "swarm", Workload: "svc.1.abc", Setting: SettingHost, Origin: discovery.FromServiceLabel, Value: `"quoted"`, Reason: "bad"},
			`swarm svc.1.abc: VIRTUAL_HOST "\"quoted\"" (service label): bad`,
		},
		{
			Problem{Source: "etcd", Workload: "x", Reason: "no address"},
			`etcd x: no address`,
		},
		{
			Problem{Workload: "web", Setting: SettingPort, Reason: "not set, and several ports are exposed"},
			`container web: VIRTUAL_PORT "": not set, and several ports are exposed`,
		},
		{
			Problem{Reason: `proxy container "p" is not running`},
			`proxy container "p" is not running`,
		},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %s\nwant       %s", got, tt.want)
		}
	}
}

// Every problem Build records reads as one line, whatever the hostile value.
func TestBuildProblemStringsOneLine(t *testing.T) {
	hostile := []string{"a.com\nserver {", "a.com\r\nX: y", "a.com\x00", "a.com\u2028b", "a.com\x1b[31m"}
	var ws []discovery.Workload
	for i, v := range hostile {
		ws = append(ws, wl(fmt.Sprintf("w%d", i), "10.0.0.1", "VIRTUAL_HOST="+v))
		ws = append(ws, wl(fmt.Sprintf("p%d", i), "10.0.0.1", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/"+v))
	}
	tab := Build(ws, proxyOpts)
	if len(tab.Problems) != len(ws) {
		t.Fatalf("problems %v, want %d", tab.Problems, len(ws))
	}
	for _, p := range tab.Problems {
		s := p.String()
		if strings.ContainsAny(s, "\n\r\x00\x1b\u2028") {
			t.Errorf("problem string not one safe line: %q", s)
		}
		if !strings.HasPrefix(s, "container "+p.Workload+": VIRTUAL_") || !strings.Contains(s, "(label)") {
			t.Errorf("problem string %q does not name the container, setting and origin", s)
		}
	}
}
