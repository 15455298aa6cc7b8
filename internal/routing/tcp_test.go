package routing

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

var tcpOpts = Options{ProxyNetworks: []string{"proxy"}, TCP: true}

var tcpT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// tcpWL is a workload asking for a TCP port, exposing 5432, in service svc, created at t0+age.
func tcpWL(name, ip, svc string, age time.Duration, labels ...string) discovery.Workload {
	w := wl(name, ip, labels...)
	w.Ports = []discovery.Port{{Port: 5432, Proto: "tcp"}}
	w.Service, w.Created = svc, tcpT0.Add(age)
	return w
}

// permutations calls f with every order of ws.
func permutations(ws []discovery.Workload, f func([]discovery.Workload)) {
	var rec func(int)
	rec = func(k int) {
		if k == len(ws) {
			f(slices.Clone(ws))
			return
		}
		for i := k; i < len(ws); i++ {
			ws[k], ws[i] = ws[i], ws[k]
			rec(k + 1)
			ws[k], ws[i] = ws[i], ws[k]
		}
	}
	rec(0)
}

func TestTCPReplicasShareOnePort(t *testing.T) {
	ws := []discovery.Workload{
		tcpWL("db-2", "10.0.0.3", "shop_db", time.Minute, "VIRTUAL_TCP_PORT=5432"),
		tcpWL("db-1", "10.0.0.2", "shop_db", 0, "VIRTUAL_TCP_PORT=5432"),
		tcpWL("cache", "10.0.0.4", "cache", 0, "VIRTUAL_TCP_PORT=6379", "VIRTUAL_PORT=6379", "VIRTUAL_WEIGHT=3"),
	}
	tab := Build(ws, tcpOpts)
	if len(tab.Problems) != 0 || len(tab.Sites) != 0 {
		t.Fatalf("problems %v sites %v", tab.Problems, siteHosts(tab))
	}
	want := []TCPService{
		{Port: 5432, Service: "shop_db", Backend: Backend{Name: "tcp:5432", Proto: "tcp", Servers: []Server{
			{Name: "db-1", Address: "10.0.0.2:5432", IP: "10.0.0.2", Port: 5432, Weight: 1, Workload: "db-1", WorkloadID: "id-db-1",
				Via: ViaSharedNetwork, ViaDetail: "network proxy"},
			{Name: "db-2", Address: "10.0.0.3:5432", IP: "10.0.0.3", Port: 5432, Weight: 1, Workload: "db-2", WorkloadID: "id-db-2",
				Via: ViaSharedNetwork, ViaDetail: "network proxy"},
		}}},
		{Port: 6379, Service: "cache", Backend: Backend{Name: "tcp:6379", Proto: "tcp", Servers: []Server{
			{Name: "cache", Address: "10.0.0.4:6379", IP: "10.0.0.4", Port: 6379, Weight: 3, Workload: "cache", WorkloadID: "id-cache",
				Via: ViaSharedNetwork, ViaDetail: "network proxy"},
		}}},
	}
	if !reflect.DeepEqual(tab.TCP, want) {
		t.Errorf("TCP services\n%+v\nwant\n%+v", tab.TCP, want)
	}
}

// The service created first keeps the port, whatever order the workloads come in; every
// workload of a later rival gets one problem naming the setting and the owner.
func TestTCPLaterRivalGetsAProblem(t *testing.T) {
	cases := []struct {
		name   string
		ws     []discovery.Workload
		owner  string
		rivals []string
	}{
		{"rival created later", []discovery.Workload{
			tcpWL("db-1", "10.0.0.2", "zeta_db", 0, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("db-2", "10.0.0.3", "zeta_db", time.Minute, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("alpha", "10.0.0.4", "alpha_db", time.Hour, "VIRTUAL_TCP_PORT=5432"),
		}, "zeta_db", []string{"alpha"}},
		// A service's earliest workload counts: a replica started after the rival (a scale-up,
		// a replaced container) does not lose the port.
		{"owner's newer replica", []discovery.Workload{
			tcpWL("db-1", "10.0.0.2", "db", 0, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("db-2", "10.0.0.3", "db", 2*time.Hour, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("other-1", "10.0.0.4", "other", time.Hour, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("other-2", "10.0.0.5", "other", 3*time.Hour, "VIRTUAL_TCP_PORT=5432"),
		}, "db", []string{"other-1", "other-2"}},
		{"equal creation: service name decides", []discovery.Workload{
			tcpWL("z", "10.0.0.2", "b_svc", 0, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("y", "10.0.0.3", "a_svc", 0, "VIRTUAL_TCP_PORT=5432"),
			tcpWL("x", "10.0.0.4", "c_svc", 0, "VIRTUAL_TCP_PORT=5432"),
		}, "a_svc", []string{"x", "z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var first Table
			permutations(c.ws, func(ws []discovery.Workload) {
				tab := Build(ws, tcpOpts)
				if first.TCP == nil {
					first = tab
				} else if !reflect.DeepEqual(tab.TCP, first.TCP) || !reflect.DeepEqual(tab.Problems, first.Problems) {
					t.Fatalf("order %v: a different table", names(ws))
				}
				if len(tab.TCP) != 1 || tab.TCP[0].Service != c.owner {
					t.Fatalf("order %v: TCP %+v, want port 5432 held by %s", names(ws), tab.TCP, c.owner)
				}
				for _, s := range tab.TCP[0].Backend.Servers {
					if slices.Contains(c.rivals, s.Workload) {
						t.Errorf("order %v: rival %s is a server", names(ws), s.Workload)
					}
				}
				var got []string
				for _, p := range tab.Problems {
					got = append(got, p.Workload)
					if p.Setting != SettingTCPPort || p.Value != "5432" || p.Origin != discovery.FromLabel ||
						!strings.Contains(p.Reason, "port 5432") || !strings.Contains(p.Reason, `service "`+c.owner+`"`) {
						t.Errorf("problem %q: want it to name VIRTUAL_TCP_PORT, the port and the owner %s", p.String(), c.owner)
					}
				}
				if !slices.Equal(got, c.rivals) {
					t.Errorf("order %v: problems on %v, want %v", names(ws), got, c.rivals)
				}
			})
		})
	}
}

func names(ws []discovery.Workload) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return out
}

func TestTCPProblems(t *testing.T) {
	reserved := Options{ProxyNetworks: []string{"proxy"}, TCP: true, ReservedPorts: map[int]string{80: "--listen", 8404: "--haproxy-stats"}}
	cases := []struct {
		name   string
		opt    Options
		labels []string
		reason string
	}{
		{"nginx", proxyOpts, []string{"VIRTUAL_TCP_PORT=5432"}, "TCP services need --proxy haproxy"},
		{"nginx, with a host too", proxyOpts, []string{"VIRTUAL_TCP_PORT=5432", "VIRTUAL_HOST=db.example.com"}, "TCP services need --proxy haproxy"},
		{"the HTTP port", reserved, []string{"VIRTUAL_TCP_PORT=80"}, "port 80 is the proxy's --listen port"},
		{"the stats port", reserved, []string{"VIRTUAL_TCP_PORT=8404"}, "port 8404 is the proxy's --haproxy-stats port"},
		{"zero", tcpOpts, []string{"VIRTUAL_TCP_PORT=0"}, "must be a port number"},
		{"too large", tcpOpts, []string{"VIRTUAL_TCP_PORT=65536"}, "must be a port number"},
		{"not a number", tcpOpts, []string{"VIRTUAL_TCP_PORT=5432/tcp"}, "must be a port number"},
		{"injection", tcpOpts, []string{"VIRTUAL_TCP_PORT=5432\n    bind :22"}, "must be a port number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := Build([]discovery.Workload{tcpWL("db", "10.0.0.2", "db", 0, c.labels...)}, c.opt)
			if len(tab.TCP) != 0 || len(tab.Sites) != 0 {
				t.Errorf("TCP %+v sites %v: want the workload left out", tab.TCP, siteHosts(tab))
			}
			if tab.TCP == nil {
				t.Error("TCP is nil, want empty")
			}
			ps := problemsOf(tab, "db")
			if len(ps) != 1 || ps[0].Setting != SettingTCPPort || !strings.Contains(ps[0].Reason, c.reason) {
				t.Errorf("problems %v, want one on VIRTUAL_TCP_PORT saying %q", ps, c.reason)
			}
		})
	}
}

// A workload with VIRTUAL_HOST and VIRTUAL_TCP_PORT serves both, from the same address.
func TestTCPWithHost(t *testing.T) {
	w := tcpWL("solr", "10.0.0.2", "solr", 0, "VIRTUAL_TCP_PORT=8983", "VIRTUAL_HOST=solr.example.com", "VIRTUAL_PORT=8983")
	tab := Build([]discovery.Workload{w}, tcpOpts)
	if len(tab.Problems) != 0 {
		t.Fatalf("problems %v", tab.Problems)
	}
	r := route(t, tab, "solr.example.com", "/")
	if len(tab.TCP) != 1 || tab.TCP[0].Port != 8983 || !reflect.DeepEqual(tab.TCP[0].Backend.Servers, r.Backend.Servers) {
		t.Errorf("TCP %+v, HTTP servers %+v: want port 8983 served by the HTTP route's server", tab.TCP, r.Backend.Servers)
	}
	if got := addresses(r); !slices.Equal(got, []string{"10.0.0.2:8983"}) {
		t.Errorf("HTTP servers %v", got)
	}
}

func TestTCPJSON(t *testing.T) {
	b, err := json.Marshal(Build(nil, tcpOpts))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"tcp":[]`) {
		t.Errorf("JSON %s: want an empty tcp array", b)
	}
	b, err = json.Marshal(Build([]discovery.Workload{tcpWL("db", "10.0.0.2", "db", 0, "VIRTUAL_TCP_PORT=5432")}, tcpOpts))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"tcp":[{"port":5432,"service":"db","backend":{"name":"tcp:5432","proto":"tcp"`) {
		t.Errorf("JSON %s", b)
	}
}

func TestNameServers(t *testing.T) {
	ss := []Server{{Workload: "db.1"}, {Workload: "db 1"}, {Workload: "db_1"}, {Workload: ""}, {Workload: "Db-1"}, {Workload: "é"}, {Workload: "db_1-2"}}
	nameServers(ss)
	want := []string{"db.1", "db_1", "db_1-2", "server", "Db-1", "_", "db_1-2-2"}
	seen := map[string]bool{}
	for i, s := range ss {
		if s.Name != want[i] {
			t.Errorf("server %d (%q): name %q, want %q", i, s.Workload, s.Name, want[i])
		}
		if seen[s.Name] {
			t.Errorf("name %q given twice", s.Name)
		}
		seen[s.Name] = true
		if strings.Trim(s.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			t.Errorf("name %q has characters HAProxy does not take", s.Name)
		}
	}
}
