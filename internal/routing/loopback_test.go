package routing

import (
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// TestLoopbackOffHostNetwork: a proxy in a container off the host network cannot reach the host's
// loopback, so a server there is a problem naming the address; anywhere else it is routed.
func TestLoopbackOffHostNetwork(t *testing.T) {
	hostNet := func(node string) discovery.Workload {
		w := wl("app", "", "VIRTUAL_HOST=app.test", "VIRTUAL_PORT=8080")
		w.Networks, w.NetworkMode, w.NodeAddress = nil, "host", node
		return w
	}
	published := func(hostIP, node string) discovery.Workload {
		w := wl("app", "", "VIRTUAL_HOST=app.test")
		w.Networks, w.NetworkMode, w.NodeAddress = nil, "bridge", node
		w.Ports = ports(pub(80, hostIP, 8080))
		return w
	}
	proxy := func(mode string) discovery.Workload {
		w := wl("gw", "172.18.0.5")
		w.NetworkMode = mode
		return w
	}
	tests := []struct {
		name    string
		ws      []discovery.Workload
		opt     Options
		want    string // the server; "" for a problem naming wantBad
		wantBad string
	}{
		{"host network, proxy in a bridge container", []discovery.Workload{hostNet("127.0.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "", "127.0.0.1:8080"},
		{"host network, proxy on the host network", []discovery.Workload{hostNet("127.0.0.1")},
			Options{ProxyNetworkMode: "host"}, "127.0.0.1:8080", ""},
		{"host network, proxy unknown", []discovery.Workload{hostNet("127.0.0.1")},
			Options{}, "127.0.0.1:8080", ""},
		{"host network, gateway address", []discovery.Workload{hostNet("172.18.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "172.18.0.1:8080", ""},
		{"host network, localhost by name", []discovery.Workload{hostNet("localhost")},
			Options{ProxyNetworkMode: "edge"}, "", "localhost:8080"},
		{"published on 127.0.0.1, proxy container found", []discovery.Workload{published("127.0.0.1", "172.18.0.1"), proxy("edge")},
			Options{ProxyContainer: "gw"}, "", "127.0.0.1:8080"},
		{"published on 127.1.2.3, proxy container by ID prefix", []discovery.Workload{published("127.1.2.3", "172.18.0.1"), proxy("default")},
			Options{ProxyContainer: "id-gw"}, "", "127.1.2.3:8080"},
		{"published on ::1", []discovery.Workload{published("::1", "172.18.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "", "[::1]:8080"},
		{"published on IPv4-mapped loopback", []discovery.Workload{published("::ffff:127.0.0.1", "172.18.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "", "127.0.0.1"},
		{"published on 127.0.0.1, proxy container on the host network", []discovery.Workload{published("127.0.0.1", "127.0.0.1"), proxy("host")},
			Options{ProxyContainer: "gw"}, "127.0.0.1:8080", ""},
		{"published on 127.0.0.1, proxy container not watched", []discovery.Workload{published("127.0.0.1", "127.0.0.1")},
			Options{ProxyContainer: "gw"}, "127.0.0.1:8080", ""},
		{"published on all addresses, node is the gateway", []discovery.Workload{published("0.0.0.0", "172.18.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "172.18.0.1:8080", ""},
		{"published on all addresses, node is loopback", []discovery.Workload{published("", "127.0.0.1")},
			Options{ProxyNetworkMode: "bridge"}, "", "127.0.0.1:8080"},
		{"the given mode wins over the workload's", []discovery.Workload{published("127.0.0.1", "127.0.0.1"), proxy("bridge")},
			Options{ProxyContainer: "gw", ProxyNetworkMode: "host"}, "127.0.0.1:8080", ""},
		{"a shared network is never loopback", []discovery.Workload{wl("app", "172.18.0.9", "VIRTUAL_HOST=app.test")},
			Options{ProxyNetworks: []string{"proxy"}, ProxyNetworkMode: "bridge"}, "172.18.0.9:80", ""},
	}
	for _, tt := range tests {
		tab := Build(tt.ws, tt.opt)
		var got []string
		for _, s := range tab.Sites {
			got = append(got, addresses(s.Routes[0])...)
		}
		problems := problemsOf(tab, "app")
		if tt.want != "" {
			if !slices.Equal(got, []string{tt.want}) || len(problems) > 0 {
				t.Errorf("%s: servers %v, problems %+v; want %s", tt.name, got, problems, tt.want)
			}
			continue
		}
		if len(got) > 0 || len(problems) != 1 || !strings.Contains(problems[0].Reason, tt.wantBad) ||
			!strings.Contains(problems[0].Reason, "cannot reach the host's loopback") {
			t.Errorf("%s: servers %v, problems %+v; want one problem naming %s", tt.name, got, problems, tt.wantBad)
		}
	}
}

// TestLoopbackTCPService: a raw TCP service on loopback is refused the same way.
func TestLoopbackTCPService(t *testing.T) {
	w := wl("db", "", "VIRTUAL_HOST=db.test", "VIRTUAL_TCP_PORT=5432", "VIRTUAL_PORT=5432")
	w.Networks, w.Ports = nil, ports(pub(5432, "127.0.0.1", 15432))
	tab := Build([]discovery.Workload{w}, Options{TCP: true, ProxyNetworkMode: "bridge"})
	if len(tab.TCP) != 0 || len(problemsOf(tab, "db")) != 1 {
		t.Errorf("TCP %+v, problems %+v; want no service and one problem", tab.TCP, tab.Problems)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.255.0.9": true, "::1": true, "::ffff:127.0.0.1": true,
		"localhost": true, "LOCALHOST.": true, "app.localhost": true,
		"172.17.0.1": false, "::": false, "fd00::1": false, "docker.example.com": false, "localhost.example.com": false, "": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestTableHostAddress: the host address is shown in the table as given.
func TestTableHostAddress(t *testing.T) {
	h := HostAddress{Address: "172.18.0.1", Origin: "gateway of network edge"}
	if got := Build(nil, Options{HostAddress: h}).HostAddress; got != h {
		t.Errorf("HostAddress %+v, want %+v", got, h)
	}
}
