package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func ports(ps ...discovery.Port) []discovery.Port { return ps }

func tcp(port int) discovery.Port { return discovery.Port{Port: port, Proto: "tcp"} }

func pub(port int, hostIP string, hostPort int) discovery.Port {
	return discovery.Port{Port: port, Proto: "tcp", HostIP: hostIP, HostPort: hostPort}
}

func TestChoosePort(t *testing.T) {
	tests := []struct {
		name    string
		setPort int
		ports   []discovery.Port
		want    int
		wantErr string // substring of the reason; "" for no error
	}{
		{"VIRTUAL_PORT wins over exposed", 9000, ports(tcp(80), tcp(8080)), 9000, ""},
		{"VIRTUAL_PORT need not be exposed", 1234, nil, 1234, ""},
		{"VIRTUAL_PORT with several non-80", 8081, ports(tcp(8080), tcp(8081)), 8081, ""},
		{"single exposed port", 0, ports(tcp(3000)), 3000, ""},
		{"single exposed port, with udp", 0, ports(tcp(3000), discovery.Port{Port: 53, Proto: "udp"}), 3000, ""},
		{"same port twice (two bindings)", 0, ports(pub(3000, "0.0.0.0", 1), pub(3000, "::", 1)), 3000, ""},
		{"several including 80", 0, ports(tcp(80), tcp(443), tcp(8080)), 80, ""},
		{"none exposed", 0, nil, 80, ""},
		{"only udp exposed", 0, ports(discovery.Port{Port: 53, Proto: "udp"}), 80, ""},
		{"several without 80", 0, ports(tcp(8080), tcp(9090)), 0, "several ports are exposed (8080, 9090) none of which is 80: set VIRTUAL_PORT"},
	}
	for _, tt := range tests {
		w := discovery.Workload{Ports: tt.ports}
		s := Settings{Port: tt.setPort}
		got, aerr := choosePort(&w, &s)
		if tt.wantErr == "" {
			if aerr != nil || got != tt.want {
				t.Errorf("%s: choosePort = %d, %+v; want %d", tt.name, got, aerr, tt.want)
			}
			continue
		}
		if aerr == nil {
			t.Errorf("%s: choosePort = %d, want an error", tt.name, got)
			continue
		}
		if aerr.setting != SettingPort || !strings.Contains(aerr.reason, tt.wantErr) {
			t.Errorf("%s: error %+v; want setting VIRTUAL_PORT, reason containing %q", tt.name, aerr, tt.wantErr)
		}
	}
}

func TestChooseAddress(t *testing.T) {
	nets := func(ns ...string) []discovery.Network {
		var out []discovery.Network
		for _, n := range ns {
			name, ip, _ := strings.Cut(n, "=")
			out = append(out, discovery.Network{Name: name, ID: "id-" + name, IP: ip})
		}
		return out
	}
	tests := []struct {
		name      string
		w         discovery.Workload
		network   string // VIRTUAL_NETWORK
		port      int
		mode      AddressMode
		proxyNets []string
		want      string // ip:port
		// on error: the setting and a substring of the reason
		errSetting string
		errReason  string
	}{
		// Rule 1: VIRTUAL_NETWORK.
		{
			name: "VIRTUAL_NETWORK attached", network: "back",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5", "front=10.0.0.5")},
			port: 80, mode: ModeAuto, proxyNets: []string{"front"}, want: "10.0.1.5:80",
		},
		{
			name: "VIRTUAL_NETWORK wins over published and host networking", network: "back",
			w: discovery.Workload{Networks: nets("back=10.0.1.5"), NetworkMode: "host", NodeAddress: "192.168.1.1",
				Ports: ports(pub(80, "0.0.0.0", 8080))},
			port: 80, mode: ModeAuto, want: "10.0.1.5:80",
		},
		{
			name: "VIRTUAL_NETWORK applies in network mode", network: "back",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5", "front=10.0.0.5")},
			port: 8080, mode: ModeNetwork, proxyNets: []string{"front"}, want: "10.0.1.5:8080",
		},
		{
			name: "VIRTUAL_NETWORK not attached", network: "other",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5", "front=10.0.0.5"), Ports: ports(pub(80, "0.0.0.0", 8080)), NodeAddress: "192.168.1.1"},
			port: 80, mode: ModeAuto, proxyNets: []string{"front"},
			errSetting: SettingNetwork, errReason: "not attached to this network (attached: back, front)",
		},
		{
			name: "VIRTUAL_NETWORK not attached, no networks", network: "other",
			w:    discovery.Workload{},
			port: 80, mode: ModeAuto,
			errSetting: SettingNetwork, errReason: "(attached: none)",
		},
		{
			name: "VIRTUAL_NETWORK without an IP", network: "back",
			w:    discovery.Workload{Networks: nets("back=")},
			port: 80, mode: ModeAuto,
			errSetting: SettingNetwork, errReason: "no address on this network",
		},
		{
			name: "VIRTUAL_NETWORK ignored in host-port mode", network: "back",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5"), NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 8080))},
			port: 80, mode: ModeHostPort, want: "192.168.1.1:8080",
		},
		// Rule 2: shared networks.
		{
			name: "first shared network by name",
			w:    discovery.Workload{Networks: nets("a=10.0.0.1", "b=10.0.1.1", "c=10.0.2.1")},
			port: 80, mode: ModeAuto, proxyNets: []string{"c", "b"}, want: "10.0.1.1:80",
		},
		{
			name: "shared network wins over published port",
			w:    discovery.Workload{Networks: nets("proxy=10.0.0.7"), NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 8080))},
			port: 80, mode: ModeAuto, proxyNets: []string{"proxy"}, want: "10.0.0.7:80",
		},
		{
			name: "shared network wins over host networking",
			w:    discovery.Workload{Networks: nets("proxy=10.0.0.7"), NetworkMode: "host", NodeAddress: "192.168.1.1"},
			port: 80, mode: ModeAuto, proxyNets: []string{"proxy"}, want: "10.0.0.7:80",
		},
		{
			name: "ingress is never used, even when shared",
			w:    discovery.Workload{Networks: nets("ingress=10.255.0.5", "proxy=10.0.0.7")},
			port: 80, mode: ModeAuto, proxyNets: []string{"ingress", "proxy"}, want: "10.0.0.7:80",
		},
		{
			name: "ingress only: falls through to published port",
			w:    discovery.Workload{Networks: nets("ingress=10.255.0.5"), NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 30080))},
			port: 80, mode: ModeAuto, proxyNets: []string{"ingress"}, want: "192.168.1.1:30080",
		},
		{
			name: "ingress only in network mode: problem",
			w:    discovery.Workload{Networks: nets("ingress=10.255.0.5")},
			port: 80, mode: ModeNetwork, proxyNets: []string{"ingress"},
			errReason: "shares no network with the proxy (proxy: ingress; attached: ingress)",
		},
		{
			name: "shared network without IP is skipped",
			w:    discovery.Workload{Networks: nets("a=", "b=10.0.1.1")},
			port: 80, mode: ModeAuto, proxyNets: []string{"a", "b"}, want: "10.0.1.1:80",
		},
		{
			name: "network mode: no shared network",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5"), NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 8080))},
			port: 80, mode: ModeNetwork, proxyNets: []string{"front"},
			errReason: "no address: shares no network with the proxy (proxy: front; attached: back)",
		},
		{
			name: "network mode: proxy networks unknown",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5")},
			port: 80, mode: ModeNetwork,
			errReason: "the proxy's networks are unknown",
		},
		{
			name: "network mode ignores host networking",
			w:    discovery.Workload{NetworkMode: "host", NodeAddress: "192.168.1.1"},
			port: 80, mode: ModeNetwork, proxyNets: []string{"proxy"},
			errReason: "shares no network with the proxy (proxy: proxy; attached: none)",
		},
		{
			name: "proxy found on no network",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5")},
			port: 80, mode: ModeNetwork, proxyNets: []string{},
			errReason: "shares no network with the proxy (proxy: none; attached: back)",
		},
		{
			name: "host-port mode skips shared networks",
			w:    discovery.Workload{Networks: nets("proxy=10.0.0.7"), NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 8080))},
			port: 80, mode: ModeHostPort, proxyNets: []string{"proxy"}, want: "192.168.1.1:8080",
		},
		// Rule 3: host networking.
		{
			name: "host networking",
			w:    discovery.Workload{NetworkMode: "host", NodeAddress: "192.168.1.1", Networks: nets("host=")},
			port: 8080, mode: ModeAuto, proxyNets: []string{"proxy", "host"}, want: "192.168.1.1:8080",
		},
		{
			name: "host networking in host-port mode",
			w:    discovery.Workload{NetworkMode: "host", NodeAddress: "192.168.1.1"},
			port: 80, mode: ModeHostPort, want: "192.168.1.1:80",
		},
		{
			name: "host networking wins over published port",
			w:    discovery.Workload{NetworkMode: "host", NodeAddress: "192.168.1.1", Ports: ports(pub(80, "127.0.0.1", 8080))},
			port: 80, mode: ModeAuto, want: "192.168.1.1:80",
		},
		{
			name: "host networking, node address unknown",
			w:    discovery.Workload{NetworkMode: "host"},
			port: 80, mode: ModeAuto,
			errReason: "host networking, but the node's address is unknown",
		},
		// Rule 4: published ports.
		{
			name: "published on 0.0.0.0: node address",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(80, "0.0.0.0", 8080))},
			port: 80, mode: ModeAuto, proxyNets: []string{"proxy"}, want: "192.168.1.1:8080",
		},
		{
			name: "published on empty HostIP (Swarm): node address",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(80, "", 30001))},
			port: 80, mode: ModeAuto, want: "192.168.1.1:30001",
		},
		{
			name: "published on a specific IP: kept",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(80, "127.0.0.1", 8080))},
			port: 80, mode: ModeAuto, want: "127.0.0.1:8080",
		},
		{
			name: "IPv4 binding preferred over IPv6 listed first",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(80, "::1", 8081), pub(80, "10.1.1.1", 8080))},
			port: 80, mode: ModeAuto, want: "10.1.1.1:8080",
		},
		{
			name: "IPv4 node address for :: binding preferred over specific IPv6",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(80, "fd00::1", 8081), pub(80, "::", 8080))},
			port: 80, mode: ModeAuto, want: "192.168.1.1:8080",
		},
		{
			name: "IPv6 only binding is used, bracketed",
			w:    discovery.Workload{Ports: ports(pub(80, "fd00::1", 8081))},
			port: 80, mode: ModeAuto, want: "[fd00::1]:8081",
		},
		{
			name: "first IPv6 binding kept when there is no IPv4 one",
			w:    discovery.Workload{Ports: ports(pub(80, "fd00::1", 8081), pub(80, "fd00::2", 8082))},
			port: 80, mode: ModeAuto, want: "[fd00::1]:8081",
		},
		{
			name: "only the chosen port's binding counts",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(pub(443, "", 8443), pub(80, "", 8080))},
			port: 80, mode: ModeAuto, want: "192.168.1.1:8080",
		},
		{
			name: "udp binding of the same port does not count",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(discovery.Port{Port: 80, Proto: "udp", HostPort: 8080})},
			port: 80, mode: ModeAuto, proxyNets: []string{"proxy"},
			errReason: "port 80/tcp is not published on the host",
		},
		{
			name: "exposed but not published",
			w:    discovery.Workload{NodeAddress: "192.168.1.1", Ports: ports(tcp(80))},
			port: 80, mode: ModeHostPort,
			errReason: "no address: port 80/tcp is not published on the host",
		},
		{
			name: "published on 0.0.0.0 but node address unknown",
			w:    discovery.Workload{Ports: ports(pub(80, "0.0.0.0", 8080))},
			port: 80, mode: ModeHostPort,
			errReason: "port 80/tcp is not published on the host",
		},
		// Rule 5: nothing.
		{
			name: "auto: nothing, proxy networks known",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5"), Ports: ports(tcp(8080))},
			port: 8080, mode: ModeAuto, proxyNets: []string{"front"},
			errReason: "no address: shares no network with the proxy (proxy: front; attached: back), and port 8080/tcp is not published on the host",
		},
		{
			name: "auto: nothing, proxy networks unknown",
			w:    discovery.Workload{Networks: nets("back=10.0.1.5")},
			port: 80, mode: ModeAuto,
			errReason: "the proxy's networks are unknown (run vhost-gen in the proxy's container, or set --proxy-networks or --proxy-container) and VIRTUAL_NETWORK is not set (attached: back), and port 80/tcp is not published on the host",
		},
	}
	for _, tt := range tests {
		s := Settings{Network: tt.network}
		got, aerr := chooseAddress(&tt.w, &s, tt.port, Options{Mode: tt.mode}, tt.proxyNets)
		if tt.errReason == "" {
			if aerr != nil || got.String() != tt.want {
				t.Errorf("%s: chooseAddress = %s, %+v; want %s", tt.name, got, aerr, tt.want)
			}
			continue
		}
		if aerr == nil {
			t.Errorf("%s: chooseAddress = %s, want an error", tt.name, got)
			continue
		}
		if aerr.setting != tt.errSetting || !strings.Contains(aerr.reason, tt.errReason) {
			t.Errorf("%s: error {setting %q, reason %q}; want setting %q, reason containing %q", tt.name, aerr.setting, aerr.reason, tt.errSetting, tt.errReason)
		}
	}
}

// Address selection seen through Build: the server's address, and the problem's setting, origin
// and value.
func TestBuildAddressProblems(t *testing.T) {
	tests := []struct {
		name       string
		w          discovery.Workload
		opt        Options
		want       string // server address, or "" for a problem
		setting    string
		origin     discovery.Origin
		value      string
		reasonPart string
	}{
		{
			name: "VIRTUAL_NETWORK not attached names the setting, its origin and value",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com"), Env: kv("VIRTUAL_NETWORK=nope"),
				Networks: []discovery.Network{{Name: "proxy", IP: "10.0.0.2"}}},
			opt:     proxyOpts,
			setting: SettingNetwork, origin: discovery.FromEnv, value: "nope", reasonPart: "not attached to this network (attached: proxy)",
		},
		{
			name: "several ports without 80 is a VIRTUAL_PORT problem",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com"),
				Networks: []discovery.Network{{Name: "proxy", IP: "10.0.0.2"}}, Ports: ports(tcp(8080), tcp(9090))},
			opt:     proxyOpts,
			setting: SettingPort, reasonPart: "set VIRTUAL_PORT",
		},
		{
			name: "no address: a reason, no setting",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com"),
				Networks: []discovery.Network{{Name: "back", IP: "10.0.0.2"}}},
			opt:        proxyOpts,
			reasonPart: "shares no network with the proxy (proxy: proxy; attached: back)",
		},
		{
			name: "VIRTUAL_PORT used on the shared network",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com", "VIRTUAL_PORT=3000"),
				Networks: []discovery.Network{{Name: "proxy", IP: "10.0.0.2"}}, Ports: ports(tcp(80))},
			opt:  proxyOpts,
			want: "10.0.0.2:3000",
		},
		{
			name: "host-port mode via Options",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com"), NodeAddress: "192.168.0.9",
				Networks: []discovery.Network{{Name: "proxy", IP: "10.0.0.2"}}, Ports: ports(pub(80, "0.0.0.0", 8001))},
			opt:  Options{Mode: ModeHostPort, ProxyNetworks: []string{"proxy"}},
			want: "192.168.0.9:8001",
		},
		{
			name: "empty mode means auto",
			w: discovery.Workload{Name: "web", ID: "w1", Labels: kv("VIRTUAL_HOST=a.com"), NodeAddress: "192.168.0.9",
				Ports: ports(pub(80, "0.0.0.0", 8001))},
			opt:  Options{},
			want: "192.168.0.9:8001",
		},
	}
	for _, tt := range tests {
		tab := Build([]discovery.Workload{tt.w}, tt.opt)
		if tt.want != "" {
			if len(tab.Problems) != 0 {
				t.Errorf("%s: problems %v", tt.name, tab.Problems)
				continue
			}
			if got := addresses(route(t, tab, "a.com", "/")); len(got) != 1 || got[0] != tt.want {
				t.Errorf("%s: servers %v, want [%s]", tt.name, got, tt.want)
			}
			continue
		}
		if len(tab.Sites) != 0 || len(tab.Problems) != 1 {
			t.Errorf("%s: sites %v problems %v; want no site and one problem", tt.name, siteHosts(tab), tab.Problems)
			continue
		}
		p := tab.Problems[0]
		if p.Workload != "web" || p.WorkloadID != "w1" || p.Setting != tt.setting || p.Origin != tt.origin ||
			p.Value != tt.value || !strings.Contains(p.Reason, tt.reasonPart) {
			t.Errorf("%s: problem %+v; want setting %q origin %q value %q reason containing %q", tt.name, p, tt.setting, tt.origin, tt.value, tt.reasonPart)
		}
	}
}

// TestIPv6Addresses: on a dual-stack network IPv4 is preferred unless PREFER_IPV6_NETWORK; an
// IPv6-only network is reached on IPv6; the server's address is written [v6]:port.
func TestIPv6Addresses(t *testing.T) {
	dual := discovery.Workload{Networks: []discovery.Network{{Name: "front", IP: "10.0.0.2", IPv6: "fd00::2"}}}
	v6only := discovery.Workload{Networks: []discovery.Network{{Name: "front", IPv6: "fd00::3"}}}
	for _, c := range []struct {
		w      discovery.Workload
		prefer bool
		want   string
	}{
		{dual, false, "10.0.0.2:80"},
		{dual, true, "[fd00::2]:80"},
		{v6only, false, "[fd00::3]:80"},
		{v6only, true, "[fd00::3]:80"},
	} {
		got, aerr := chooseAddress(&c.w, &Settings{}, 80, Options{Mode: ModeAuto, PreferIPv6: c.prefer}, []string{"front"})
		if aerr != nil || got.String() != c.want {
			t.Errorf("%+v prefer %v: %s, %+v; want %s", c.w.Networks, c.prefer, got, aerr, c.want)
		}
	}
}
