package routing

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Every address rule records itself on the server it chose, with what it found.
func TestServerVia(t *testing.T) {
	cases := []struct {
		name       string
		w          func() discovery.Workload
		opt        Options
		addr       string
		via        string
		viaDetail  string
		detailPart bool // viaDetail need only be contained
	}{
		{"VIRTUAL_NETWORK", func() discovery.Workload {
			w := wl("w", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_NETWORK=back")
			w.Networks = append(w.Networks, discovery.Network{Name: "back", IP: "10.1.0.2"})
			return w
		}, proxyOpts, "10.1.0.2:80", ViaNetworkSetting, "network back", false},
		{"shared network", func() discovery.Workload {
			return wl("w", "10.0.0.2", "VIRTUAL_HOST=a.com")
		}, proxyOpts, "10.0.0.2:80", ViaSharedNetwork, "network proxy", false},
		{"shared network, the first of several", func() discovery.Workload {
			w := wl("w", "10.0.0.2", "VIRTUAL_HOST=a.com")
			w.Networks = append(w.Networks, discovery.Network{Name: "alpha", IP: "10.9.0.2"})
			return w
		}, Options{ProxyNetworks: []string{"proxy", "alpha"}}, "10.9.0.2:80", ViaSharedNetwork,
			"network alpha (the first by name of the proxy's networks it is on: alpha, proxy)", false},
		{"host network", func() discovery.Workload {
			w := wl("w", "", "VIRTUAL_HOST=a.com", "VIRTUAL_PORT=8080")
			w.Networks, w.NetworkMode, w.NodeAddress = nil, "host", "192.168.1.1"
			return w
		}, proxyOpts, "192.168.1.1:8080", ViaHostNetwork, "the node's address 192.168.1.1 (network mode host)", false},
		{"published on all addresses", func() discovery.Workload {
			w := wl("w", "", "VIRTUAL_HOST=a.com")
			w.Networks, w.NodeAddress, w.Ports = nil, "192.168.1.1", ports(pub(80, "0.0.0.0", 30080))
			return w
		}, proxyOpts, "192.168.1.1:30080", ViaPublishedPort, "port 80/tcp published on 0.0.0.0:30080, reached at the node's address", false},
		{"published on one address", func() discovery.Workload {
			w := wl("w", "", "VIRTUAL_HOST=a.com")
			w.Networks, w.NodeAddress, w.Ports = nil, "192.168.1.1", ports(pub(80, "10.5.0.1", 8080))
			return w
		}, proxyOpts, "10.5.0.1:8080", ViaPublishedPort, "port 80/tcp published on 10.5.0.1:8080", false},
		{"host-port mode skips the shared network", func() discovery.Workload {
			w := wl("w", "10.0.0.2", "VIRTUAL_HOST=a.com")
			w.NodeAddress, w.Ports = "192.168.1.1", ports(pub(80, "", 30080))
			return w
		}, Options{ProxyNetworks: []string{"proxy"}, Mode: ModeHostPort}, "192.168.1.1:30080", ViaPublishedPort, "published on 0.0.0.0:30080", true},
		{"the source's address", func() discovery.Workload {
			w := wl("w", "", "VIRTUAL_HOST=a.com")
			w.Source, w.Networks, w.Address = "etcd", nil, "10.7.0.1:9000"
			return w
		}, proxyOpts, "10.7.0.1:9000", ViaSource, "the address etcd gave", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tab := Build([]discovery.Workload{tc.w()}, tc.opt)
			if len(tab.Problems) != 0 || len(tab.Excluded) != 0 {
				t.Fatalf("problems %v, excluded %v", tab.Problems, tab.Excluded)
			}
			s := route(t, tab, "a.com", "/").Backend.Servers
			if len(s) != 1 {
				t.Fatalf("servers %+v", s)
			}
			ok := s[0].ViaDetail == tc.viaDetail || (tc.detailPart && strings.Contains(s[0].ViaDetail, tc.viaDetail))
			if s[0].Address != tc.addr || s[0].Via != tc.via || !ok {
				t.Errorf("server %s via %q (%q), want %s via %q (%q)", s[0].Address, s[0].Via, s[0].ViaDetail, tc.addr, tc.via, tc.viaDetail)
			}
		})
	}
}

// Every place Build leaves a workload out of a route it asked for records an exclusion saying
// which route, why, and (for a conflict or a shared address) who holds it.
func TestExcluded(t *testing.T) {
	good := wl("good", "10.0.0.1", "VIRTUAL_HOST=a.com")
	cases := []struct {
		name string
		ws   func() []discovery.Workload
		opt  Options
		want []Exclusion
		// reason is contained in the first exclusion's Reason.
		reason string
	}{
		{"the source's problem", func() []discovery.Workload {
			w := wl("bad", "", "VIRTUAL_HOST=a.com")
			w.Source, w.Problem = "etcd", "malformed value"
			return []discovery.Workload{good, w}
		}, proxyOpts, []Exclusion{{Source: "etcd", Workload: "bad", WorkloadID: "id-bad", Host: "a.com", Path: "/", Why: ExcludedProblem}}, "malformed value"},
		{"a bad setting", func() []discovery.Workload {
			return []discovery.Workload{good, wl("bad", "10.0.0.2", "VIRTUAL_HOST=a.com,b.com", "VIRTUAL_PORT=eighty")}
		}, proxyOpts, []Exclusion{
			{Source: "docker", Workload: "bad", WorkloadID: "id-bad", Host: "a.com", Path: "/", Why: ExcludedProblem},
			{Source: "docker", Workload: "bad", WorkloadID: "id-bad", Host: "b.com", Path: "/", Why: ExcludedProblem},
		}, `VIRTUAL_PORT "eighty" (label): must be a port number`},
		{"a bad VIRTUAL_HOST: no host known", func() []discovery.Workload {
			return []discovery.Workload{good, wl("bad", "10.0.0.2", "VIRTUAL_HOST=a.com;x")}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "bad", WorkloadID: "id-bad", Why: ExcludedProblem}}, "VIRTUAL_HOST"},
		{"TCP on nginx", func() []discovery.Workload {
			return []discovery.Workload{good, wl("db", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_TCP_PORT=5432")}
		}, proxyOpts, []Exclusion{
			{Source: "docker", Workload: "db", WorkloadID: "id-db", Port: 5432, Why: ExcludedProblem},
			{Source: "docker", Workload: "db", WorkloadID: "id-db", Host: "a.com", Path: "/", Why: ExcludedProblem},
		}, "need --proxy haproxy"},
		{"a reserved port", func() []discovery.Workload {
			return []discovery.Workload{good, wl("db", "10.0.0.2", "VIRTUAL_TCP_PORT=443")}
		}, Options{ProxyNetworks: []string{"proxy"}, TCP: true, ReservedPorts: map[int]string{443: "HTTPS"}},
			[]Exclusion{{Source: "docker", Workload: "db", WorkloadID: "id-db", Port: 443, Why: ExcludedProblem}}, "the proxy's HTTPS port"},
		{"unhealthy", func() []discovery.Workload {
			w := wl("sick", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/api")
			w.Health = discovery.HealthUnhealthy
			return []discovery.Workload{good, w}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "sick", WorkloadID: "id-sick", Host: "a.com", Path: "/api", Why: ExcludedHealth}}, "health is unhealthy"},
		{"starting", func() []discovery.Workload {
			w := wl("new", "10.0.0.2", "VIRTUAL_HOST=a.com")
			w.Health = discovery.HealthStarting
			return []discovery.Workload{good, w}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "new", WorkloadID: "id-new", Host: "a.com", Path: "/", Why: ExcludedHealth}}, "health is starting"},
		{"unhealthy but --include-unhealthy", func() []discovery.Workload {
			w := wl("sick", "10.0.0.2", "VIRTUAL_HOST=a.com")
			w.Health = discovery.HealthUnhealthy
			return []discovery.Workload{good, w}
		}, Options{ProxyNetworks: []string{"proxy"}, IncludeUnhealthy: true}, nil, ""},
		{"no shared network", func() []discovery.Workload {
			w := wl("far", "10.0.0.2", "VIRTUAL_HOST=a.com")
			w.Networks[0].Name = "other"
			return []discovery.Workload{good, w}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "far", WorkloadID: "id-far", Host: "a.com", Path: "/", Why: ExcludedAddress}}, "shares no network with the proxy"},
		{"VIRTUAL_NETWORK not attached", func() []discovery.Workload {
			return []discovery.Workload{good, wl("far", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_NETWORK=back")}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "far", WorkloadID: "id-far", Host: "a.com", Path: "/", Why: ExcludedAddress}}, "not attached to this network"},
		{"loopback from a container", func() []discovery.Workload {
			w := wl("loop", "", "VIRTUAL_HOST=a.com")
			w.Networks, w.NodeAddress, w.Ports = nil, "192.168.1.1", ports(pub(80, "127.0.0.1", 8080))
			return []discovery.Workload{good, w}
		}, Options{ProxyNetworks: []string{"proxy"}, ProxyNetworkMode: "bridge"},
			[]Exclusion{{Source: "docker", Workload: "loop", WorkloadID: "id-loop", Host: "a.com", Path: "/", Why: ExcludedAddress}}, "is loopback"},
		{"a conflicting VIRTUAL_PROTO", func() []discovery.Workload {
			return []discovery.Workload{good, wl("zz-tls", "10.0.0.2", "VIRTUAL_HOST=a.com,b.com", "VIRTUAL_PROTO=https")}
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "zz-tls", WorkloadID: "id-zz-tls", Host: "a.com", Path: "/", Why: ExcludedConflict, Holder: "good"}},
			"VIRTUAL_PROTO https differs from the other servers' http (good came first)"},
		{"a rival for a TCP port", func() []discovery.Workload {
			return []discovery.Workload{
				tcpWL("db-old", "10.0.0.2", "old", 0, "VIRTUAL_TCP_PORT=5432"),
				tcpWL("db-new", "10.0.0.3", "new", 1, "VIRTUAL_TCP_PORT=5432"),
			}
		}, tcpOpts, []Exclusion{{Source: "docker", Workload: "db-new", WorkloadID: "id-db-new", Port: 5432, Why: ExcludedConflict, Holder: "db-old"}},
			`already served by service "old"`},
		{"the same address", func() []discovery.Workload {
			var ws []discovery.Workload
			for _, n := range []string{"svc.2", "svc.1"} {
				w := wl(n, "", "VIRTUAL_HOST=a.com")
				w.Networks, w.NodeAddress, w.Ports = nil, "192.168.1.1", ports(pub(80, "", 30080))
				ws = append(ws, w)
			}
			return ws
		}, proxyOpts, []Exclusion{{Source: "docker", Workload: "svc.2", WorkloadID: "id-svc.2", Host: "a.com", Path: "/", Why: ExcludedSameAddress, Holder: "svc.1"}},
			"its address 192.168.1.1:30080 is already svc.1's (found by published port)"},
		{"weight 0 is drained, not left out", func() []discovery.Workload {
			return []discovery.Workload{good, wl("blue", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_WEIGHT=0")}
		}, proxyOpts, nil, ""},
		{"no VIRTUAL_HOST: nothing asked, nothing left out", func() []discovery.Workload {
			return []discovery.Workload{good, wl("db", "10.0.0.2")}
		}, proxyOpts, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := tc.ws()
			tab := Build(ws, tc.opt)
			got := slices.Clone(tab.Excluded)
			if len(got) > 0 && !strings.Contains(got[0].Reason, tc.reason) {
				t.Errorf("reason %q, want it to contain %q", got[0].Reason, tc.reason)
			}
			for i := range got {
				if got[i].Reason == "" {
					t.Errorf("exclusion %+v has no reason", got[i])
				}
				got[i].Reason = ""
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("excluded\n %+v\nwant\n %+v", got, tc.want)
			}
			// Every exclusion but the same address has a problem too; the order of the input
			// does not matter.
			for _, e := range tab.Excluded {
				if e.Why != ExcludedSameAddress && len(problemsOf(tab, e.Workload)) == 0 {
					t.Errorf("%s is excluded but has no problem", e.Workload)
				}
			}
			slices.Reverse(ws)
			if again := Build(ws, tc.opt); !reflect.DeepEqual(again.Excluded, tab.Excluded) {
				t.Errorf("exclusions depend on the order: %+v, then %+v", tab.Excluded, again.Excluded)
			}
		})
	}
}
