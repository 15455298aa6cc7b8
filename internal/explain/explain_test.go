package explain

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// wl is a docker workload with labels ("K=V"), on the "proxy" network at ip, exposing 80/tcp.
func wl(name, ip string, labels ...string) discovery.Workload {
	w := discovery.Workload{ID: "id-" + name + "-0123456789abcdef", Name: name, Source: "docker", Labels: map[string]string{},
		Networks: []discovery.Network{{Name: "proxy", IP: ip}}, Ports: []discovery.Port{{Port: 80, Proto: "tcp"}}}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		w.Labels[k] = v
	}
	return w
}

var opts = routing.Options{ProxyNetworks: []string{"proxy"}, TCP: true,
	HostAddress: routing.HostAddress{Address: "192.168.1.1", Origin: "--host-address"}}

// shop is a small world around shop.example.com: servers found by every address rule, and a
// workload left out for every reason.
func shop() []discovery.Workload {
	back := wl("api", "10.0.0.3", "VIRTUAL_HOST=shop.example.com", "VIRTUAL_PATH=/api", "VIRTUAL_DEST=/", "VIRTUAL_NETWORK=back")
	back.Networks = append(back.Networks, discovery.Network{Name: "back", IP: "10.1.0.3"})
	hostnet := wl("hostnet", "", "VIRTUAL_HOST=shop.example.com", "VIRTUAL_PORT=8080")
	hostnet.Networks, hostnet.NetworkMode, hostnet.NodeAddress = nil, "host", "192.168.1.1"
	published := wl("published", "", "VIRTUAL_HOST=shop.example.com")
	published.Networks, published.NodeAddress = nil, "192.168.1.1"
	published.Ports = []discovery.Port{{Port: 80, Proto: "tcp", HostPort: 30080}}
	sick := wl("sick", "10.0.0.6", "VIRTUAL_HOST=shop.example.com")
	sick.Health = discovery.HealthUnhealthy
	return []discovery.Workload{
		wl("shop-1", "10.0.0.2", "VIRTUAL_HOST=shop.example.com,www.shop.example.com"),
		back, hostnet, published, sick,
		wl("blue", "10.0.0.4", "VIRTUAL_HOST=shop.example.com", "VIRTUAL_WEIGHT=0"),
		wl("badport", "10.0.0.5", "VIRTUAL_HOST=shop.example.com", "VIRTUAL_PORT=eighty"),
		wl("zz-tls", "10.0.0.7", "VIRTUAL_HOST=shop.example.com", "VIRTUAL_PROTO=https"),
		wl("wild", "10.0.0.8", "VIRTUAL_HOST=*.example.com"),
		wl("trail", "10.0.0.9", "VIRTUAL_HOST=shop.*"),
		wl("db", "10.0.0.10", "VIRTUAL_TCP_PORT=5432", "VIRTUAL_PORT=5432"),
		wl("other", "10.0.0.11", "VIRTUAL_HOST=other.test"),
	}
}

// summary is a host's explanation in a few comparable strings.
type summary struct {
	site, match string
	asked       []string // workload@host, "+" when served
	servers     []string // path workload address via
	leftOut     []string // workload@host why
	notes       int
}

func summarize(h Host) summary {
	s := summary{site: h.Site, match: h.Match, notes: len(h.Notes)}
	for _, a := range h.Asked {
		v := a.Workload + "@" + a.Host
		if a.Served {
			v += "+"
		}
		s.asked = append(s.asked, v)
	}
	for _, r := range h.Routes {
		for _, sv := range r.Servers {
			s.servers = append(s.servers, r.Path+" "+sv.Workload+" "+sv.Address+" "+sv.Via)
		}
	}
	for _, e := range h.LeftOut {
		s.leftOut = append(s.leftOut, e.Workload+"@"+e.Host+" "+e.Why)
	}
	return s
}

func TestExplainHost(t *testing.T) {
	cases := []struct {
		name  string
		ws    []discovery.Workload
		query string
		want  summary
	}{
		{"exact: every address rule, every reason to be left out", shop(), "shop.example.com", summary{
			site: "shop.example.com", match: MatchExact,
			asked: []string{"api@shop.example.com+", "badport@shop.example.com", "blue@shop.example.com+", "hostnet@shop.example.com+",
				"published@shop.example.com+", "shop-1@shop.example.com+", "sick@shop.example.com", "zz-tls@shop.example.com"},
			servers: []string{
				"/ shop-1 10.0.0.2:80 shared network", "/ blue 10.0.0.4:80 shared network",
				"/ hostnet 192.168.1.1:8080 host network", "/ published 192.168.1.1:30080 published port",
				"/api api 10.1.0.3:80 VIRTUAL_NETWORK"},
			leftOut: []string{"badport@shop.example.com problem", "sick@shop.example.com health", "zz-tls@shop.example.com conflict"},
		}},
		{"upper case, trailing dot and port", shop(), "Shop.Example.COM.:8080", summary{site: "shop.example.com", match: MatchExact}},
		{"a leading wildcard answers", shop(), "cart.example.com", summary{
			site: "*.example.com", match: MatchLeading, asked: []string{"wild@*.example.com+"},
			servers: []string{"/ wild 10.0.0.8:80 shared network"}, notes: 1}},
		{"the longest leading wildcard wins", append(shop(), wl("wild2", "10.0.0.12", "VIRTUAL_HOST=*.cart.example.com")), "a.cart.example.com", summary{
			site: "*.cart.example.com", match: MatchLeading, asked: []string{"wild2@*.cart.example.com+"},
			servers: []string{"/ wild2 10.0.0.12:80 shared network"}, notes: 1}},
		{"a trailing wildcard answers", shop(), "shop.org", summary{
			site: "shop.*", match: MatchTrailing, asked: []string{"trail@shop.*+"},
			servers: []string{"/ trail 10.0.0.9:80 shared network"}, notes: 1}},
		{"a name left out entirely falls to a wildcard", append(shop(), func() discovery.Workload {
			w := wl("cart", "10.0.0.13", "VIRTUAL_HOST=cart.example.com")
			w.Health = discovery.HealthStarting
			return w
		}()), "cart.example.com", summary{
			site: "*.example.com", match: MatchLeading, asked: []string{"cart@cart.example.com", "wild@*.example.com+"},
			servers: []string{"/ wild 10.0.0.8:80 shared network"}, leftOut: []string{"cart@cart.example.com health"}, notes: 1}},
		{"no site, nobody asked", shop(), "nobody.test", summary{match: MatchNone, notes: 1}},
		{"no site, everybody left out", []discovery.Workload{func() discovery.Workload {
			w := wl("far", "10.0.0.2", "VIRTUAL_HOST=far.test")
			w.Networks[0].Name = "elsewhere"
			return w
		}()}, "far.test", summary{match: MatchNone, asked: []string{"far@far.test"}, leftOut: []string{"far@far.test no address"}, notes: 1}},
		{"a bad VIRTUAL_HOST still counts as asking", []discovery.Workload{
			wl("typo", "10.0.0.2", "VIRTUAL_HOST=typo.test,bad host"),
		}, "typo.test", summary{match: MatchNone, asked: []string{"typo@typo.test"}, leftOut: []string{"typo@ problem"}, notes: 1}},
		{"a path-only site: no route for /", []discovery.Workload{
			wl("api", "10.0.0.2", "VIRTUAL_HOST=api.test", "VIRTUAL_PATH=/v1"),
		}, "api.test", summary{site: "api.test", match: MatchExact, asked: []string{"api@api.test+"},
			servers: []string{"/v1 api 10.0.0.2:80 shared network"}, notes: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab := routing.Build(tc.ws, opts)
			r := Explain(tab, Query{Hosts: []string{tc.query}}, nil)
			if len(r.Hosts) != 1 {
				t.Fatalf("hosts %+v", r.Hosts)
			}
			got := summarize(r.Hosts[0])
			if tc.name == "upper case, trailing dot and port" {
				if r.Hosts[0].Host != "shop.example.com" || got.site != tc.want.site {
					t.Errorf("host %q site %q", r.Hosts[0].Host, got.site)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n %#v\nwant\n %#v\nnotes %q", got, tc.want, r.Hosts[0].Notes)
			}
			for _, e := range r.Hosts[0].LeftOut {
				if e.Reason == "" {
					t.Errorf("left out without a reason: %+v", e)
				}
			}
		})
	}
}

// The reasons are routing's own, with the setting, its value and where it came from.
func TestExplainHostReasons(t *testing.T) {
	r := Explain(routing.Build(shop(), opts), Query{Hosts: []string{"shop.example.com"}}, nil)
	want := map[string]string{
		"badport": `VIRTUAL_PORT "eighty" (label): must be a port number from 1 to 65535`,
		"sick":    "health is unhealthy: left out until healthy (--include-unhealthy routes it anyway)",
		"zz-tls":  "VIRTUAL_PROTO https differs from the other servers' http (blue came first)",
	}
	for _, e := range r.Hosts[0].LeftOut {
		if e.Reason != want[e.Workload] {
			t.Errorf("%s: reason %q, want %q", e.Workload, e.Reason, want[e.Workload])
		}
	}
	if h := r.Hosts[0].LeftOut[2]; h.Holder != "blue" {
		t.Errorf("conflict holder %q, want blue", h.Holder)
	}
}

// A site the proxy's check refused is gone from the table after routing: its workloads' problems
// say why.
func TestExplainHostQuarantined(t *testing.T) {
	tab := routing.Build([]discovery.Workload{wl("web", "10.0.0.2", "VIRTUAL_HOST=q.test")}, opts)
	tab.Sites = nil
	tab.Problems = append(tab.Problems, routing.Problem{Source: "docker", Workload: "web", WorkloadID: "id-web-0123456789abcdef",
		Reason: "left out of q.test: the proxy's check refuses its config (the other sites are applied): boom"})
	h := Explain(tab, Query{Hosts: []string{"q.test"}}, nil).Hosts[0]
	if len(h.LeftOut) != 1 || !strings.Contains(h.LeftOut[0].Reason, "the proxy's check refuses") || h.LeftOut[0].Why != routing.ExcludedProblem {
		t.Errorf("left out %+v", h.LeftOut)
	}
}

func TestExplainWorkload(t *testing.T) {
	tab := routing.Build(shop(), opts)
	cases := []struct {
		query    string
		names    []string
		serves   []string // host+path or tcp port, address, via
		leftOut  []string
		problems int
		parsed   bool
	}{
		{"shop-1", []string{"shop-1"}, []string{"shop.example.com/ 10.0.0.2:80 shared network", "www.shop.example.com/ 10.0.0.2:80 shared network"}, nil, 0, true},
		{"id-api-0123", []string{"api"}, []string{"shop.example.com/api 10.1.0.3:80 VIRTUAL_NETWORK"}, nil, 0, true},
		{"id-hostnet-0123456789abcdef", []string{"hostnet"}, []string{"shop.example.com/ 192.168.1.1:8080 host network"}, nil, 0, true},
		{"sick", []string{"sick"}, nil, []string{"shop.example.com/ health"}, 1, true},
		{"badport", []string{"badport"}, nil, []string{"shop.example.com/ problem"}, 1, true},
		{"zz-tls", []string{"zz-tls"}, nil, []string{"shop.example.com/ conflict"}, 1, true},
		{"db", []string{"db"}, []string{":5432 10.0.0.10:5432 shared network"}, nil, 0, true},
		{"id-", nil, nil, nil, 0, false},    // an ambiguous prefix
		{"nobody", nil, nil, nil, 0, false}, // no such workload
		{"id-s", nil, nil, nil, 0, false},   // ambiguous: shop-1, sick
		{"id-si", []string{"sick"}, nil, []string{"shop.example.com/ health"}, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			ws := Explain(tab, Query{Workloads: []string{tc.query}}, nil).Workloads
			var names, serves, leftOut []string
			problems := 0
			for _, x := range ws {
				if x.Workload != "" {
					names = append(names, x.Workload)
				}
				for _, s := range x.Serves {
					where := s.Host + s.Path
					if s.TCPPort != 0 {
						where = ":5432"
					}
					serves = append(serves, where+" "+s.Server.Address+" "+s.Server.Via)
				}
				for _, e := range x.LeftOut {
					leftOut = append(leftOut, e.Host+e.Path+" "+e.Why)
				}
				problems += len(x.Problems)
				if (x.Parsed != nil) != tc.parsed {
					t.Errorf("parsed %+v", x.Parsed)
				}
			}
			if !slices.Equal(names, tc.names) || !slices.Equal(serves, tc.serves) || !slices.Equal(leftOut, tc.leftOut) || problems != tc.problems {
				t.Errorf("workloads %q serve %q, left out %q, %d problems; want %q, %q, %q, %d",
					names, serves, leftOut, problems, tc.names, tc.serves, tc.leftOut, tc.problems)
			}
			if len(tc.names) == 0 && (len(ws) != 1 || len(ws[0].Notes) == 0) {
				t.Errorf("no match: %+v, want one entry with a note", ws)
			}
		})
	}
}

func TestExplainWorkloadByService(t *testing.T) {
	ws := []discovery.Workload{wl("shop_web.1", "10.0.0.2", "VIRTUAL_HOST=a.test"), wl("shop_web.2", "10.0.0.3", "VIRTUAL_HOST=a.test")}
	ws[0].Service, ws[1].Service = "shop_web", "shop_web"
	got := Explain(routing.Build(ws, opts), Query{Workloads: []string{"shop_web"}}, nil).Workloads
	if len(got) != 2 || got[0].Workload != "shop_web.1" || got[1].Workload != "shop_web.2" {
		t.Errorf("by service: %+v", got)
	}
}

func TestExplainWorkloadSettings(t *testing.T) {
	w := wl("web", "10.0.0.2", "VIRTUAL_HOST=a.test", "VIRTUAL_PATH=/x")
	w.Env = map[string]string{"VIRTUAL_PORT": "8080", "VIRTUAL_HOST": "ignored.test", "PATH": "/bin"}
	x := Explain(routing.Build([]discovery.Workload{w}, opts), Query{Workloads: []string{"web"}}, nil).Workloads[0]
	want := []Setting{{"VIRTUAL_HOST", "a.test", discovery.FromLabel}, {"VIRTUAL_PATH", "/x", discovery.FromLabel}, {"VIRTUAL_PORT", "8080", discovery.FromEnv}}
	if !reflect.DeepEqual(x.Settings, want) {
		t.Errorf("settings %+v, want %+v", x.Settings, want)
	}
	if p := x.Parsed; p == nil || !slices.Equal(p.Hosts, []string{"a.test"}) || p.Path != "/x" || p.Port != 8080 || p.Weight != 1 || p.Proto != "http" {
		t.Errorf("parsed %+v", x.Parsed)
	}
}

func TestParseStat(t *testing.T) {
	data, err := os.ReadFile("testdata/show-stat-haproxy-2.6.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStat(string(data))
	if err != nil {
		t.Fatal(err)
	}
	want := States{
		"shop.example.com/shop-1": {Status: "UP", Check: "L4OK", CheckDetail: "Layer4 check passed", Since: 2},
		"shop.example.com/shop-2": {Status: "DOWN", Check: "L4CON", CheckDetail: "Layer4 connection problem: Connection refused", Since: 2},
		"shop.example.com/shop-3": {Status: "UP", Check: "L4OK", CheckDetail: "Layer4 check passed", Since: 2},
		"shop.example.com/shop-4": {Status: "MAINT", Since: 2},
		"tcp:5432/db":             {Status: "DOWN", Check: "L4CON", CheckDetail: "Layer4 connection problem: Connection refused", Since: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states\n %+v\nwant\n %+v", got, want)
	}
	for _, bad := range []string{"", "Unknown command\n", "# a,b,c\n1,2,3\n"} {
		if _, err := ParseStat(bad); err == nil {
			t.Errorf("ParseStat(%q): no error", bad)
		}
	}
	// A check in progress is marked "* "; a description may hold a comma (quoted).
	s, err := ParseStat("# pxname,svname,status,check_status,last_chk\nb,s,UP 1/3,* L4OK,\"a, b\"\n")
	if err != nil || s["b/s"] != (ServerState{Status: "UP 1/3", Check: "L4OK", CheckDetail: "a, b", Since: -1}) {
		t.Errorf("in progress: %+v %v", s, err)
	}
}

func TestLiveStatesOnServers(t *testing.T) {
	tab := routing.Build(shop(), opts)
	live := &Live{From: "test", States: States{
		"shop.example.com/shop-1": {Status: "UP", Check: "L4OK", Since: 60},
		"shop.example.com/blue":   {Status: "DOWN", Check: "L4CON", CheckDetail: "Connection refused", Since: 5},
	}}
	r := Explain(tab, Query{Hosts: []string{"shop.example.com"}, Workloads: []string{"blue"}}, live)
	states := map[string]string{}
	for _, rt := range r.Hosts[0].Routes {
		for _, s := range rt.Servers {
			if s.Live != nil {
				states[s.Workload] = s.Live.Status
			} else {
				states[s.Workload] = "?"
			}
		}
	}
	if want := map[string]string{"shop-1": "UP", "blue": "DOWN", "hostnet": "?", "published": "?", "api": "?"}; !reflect.DeepEqual(states, want) {
		t.Errorf("live %v, want %v", states, want)
	}
	if s := r.Workloads[0].Serves[0].Server; s.Live == nil || s.Live.Check != "L4CON" || !s.Drained {
		t.Errorf("blue serves %+v", s)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"live states: test", "UP for 1m0s, check L4OK", "DOWN for 5s, check L4CON (Connection refused)",
		"not in the proxy", "weight 0: drained"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
	// An unreadable source is said once, at the top; the servers then have no live column.
	r = Explain(tab, Query{Hosts: []string{"shop.example.com"}}, &Live{From: "HAProxy runtime API /x.sock", Error: "dial unix /x.sock: no such file"})
	buf.Reset()
	r.WriteText(&buf)
	if !strings.Contains(buf.String(), "live states: unavailable (HAProxy runtime API /x.sock): dial unix") || strings.Contains(buf.String(), "not in the proxy") {
		t.Errorf("text with an unreadable source:\n%s", buf.String())
	}
}

// The text: one block per host, the servers with address and rule, then the left out with
// reasons, then the routes; the workload block has its settings, what it serves and why not.
func TestWriteText(t *testing.T) {
	tab := routing.Build(shop(), opts)
	var buf bytes.Buffer
	if err := Explain(tab, Query{Hosts: []string{"shop.example.com", "nobody.test"}, Workloads: []string{"sick", "nobody"}}, nil).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	order := []string{
		"proxy networks: proxy",
		"host address: 192.168.1.1 (--host-address)",
		"host shop.example.com: site shop.example.com (exact name)",
		"asked for by: api, badport, blue, hostnet, published, shop-1, sick, zz-tls (5 serving, 3 left out)",
		"servers:",
		"shop-1     10.0.0.2:80        via shared network: network proxy",
		"hostnet    192.168.1.1:8080   via host network: the node's address 192.168.1.1 (network mode host)",
		"published  192.168.1.1:30080  via published port: port 80/tcp published on 0.0.0.0:30080, reached at the node's address",
		"/api  api        10.1.0.3:80        via VIRTUAL_NETWORK: network back",
		"left out:",
		`badport  shop.example.com/  problem: VIRTUAL_PORT "eighty" (label): must be a port number from 1 to 65535`,
		"sick     shop.example.com/  health: health is unhealthy",
		"zz-tls   shop.example.com/  conflict: VIRTUAL_PROTO https differs",
		"routes:",
		"/     -> backend shop.example.com, http, 4 servers",
		"/api  -> backend shop.example.com_api, http, to /, 1 server",
		"host nobody.test: no site answers it (the proxy answers 503)",
		"asked for by: no running workload",
		"note: no site answers this name and no running workload asks for it",
		"workload sick: docker, id id-sick-0123, health unhealthy",
		"settings:",
		"VIRTUAL_HOST  shop.example.com  (label)",
		"parsed: hosts shop.example.com; path /; port the single exposed port, else 80; proto http; weight 1",
		"attached: networks proxy 10.0.0.6; ports 80/tcp",
		"serves:",
		"nothing",
		"left out:",
		"shop.example.com/  health: health is unhealthy",
		"problems:",
		"workload nobody: not found",
	}
	at := 0
	for _, s := range order {
		i := strings.Index(out[at:], s)
		if i < 0 {
			t.Fatalf("text lacks %q after offset %d:\n%s", s, at, out)
		}
		at += i + len(s)
	}
}

// The JSON has stable names, and empty lists rather than null.
func TestReportJSON(t *testing.T) {
	tab := routing.Build(shop(), opts)
	b, err := json.Marshal(Explain(tab, Query{Hosts: []string{"nobody.test", "shop.example.com"}, Workloads: []string{"api"}}, &Live{From: "x", States: States{}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"host":"nobody.test","match":"none","asked":[],"routes":[],"leftOut":[]`,
		`"via":"VIRTUAL_NETWORK","viaDetail":"network back"`, `"live":{"from":"x"}`, `"hostAddress":{"address":"192.168.1.1","origin":"--host-address"}`,
		`"why":"health","reason":"health is unhealthy`, `"settings":[{"name":"VIRTUAL_HOST","value":"shop.example.com","origin":"label"}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

// TestWriteTextRouteAccess: a route's FastCGI root and NETWORK_ACCESS=internal are in its summary.
func TestWriteTextRouteAccess(t *testing.T) {
	ws := []discovery.Workload{{ID: "id-php", Name: "php", Source: "docker",
		Labels:   map[string]string{"VIRTUAL_HOST": "php.example.com", "VIRTUAL_PROTO": "fastcgi", "VIRTUAL_ROOT": "/srv/app", "NETWORK_ACCESS": "internal"},
		Networks: []discovery.Network{{Name: "proxy", IP: "10.0.0.9"}}, Ports: []discovery.Port{{Port: 9000, Proto: "tcp"}}}}
	var buf bytes.Buffer
	if err := Explain(routing.Build(ws, opts), Query{Hosts: []string{"php.example.com"}}, nil).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "/  -> backend php.example.com, fastcgi, root /srv/app, internal clients only, 1 server"; !strings.Contains(buf.String(), want) {
		t.Errorf("text lacks %q:\n%s", want, buf.String())
	}
}
