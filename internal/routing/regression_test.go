package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// A path that looks like a hashed backend name must not steal the name another route needs.
func TestBackendNameHashCollision(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("x", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x"),
		wl("trap", "10.0.0.3", "VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/x-f6631c0d"),
		wl("underscore", "10.0.0.4", "VIRTUAL_HOST=a.com_x"),
	}, proxyOpts)
	seen := map[string]bool{}
	for _, s := range tab.Sites {
		for _, r := range s.Routes {
			if seen[r.Backend.Name] {
				t.Fatalf("backend name %q used twice", r.Backend.Name)
			}
			seen[r.Backend.Name] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("want 3 backends, got %v", seen)
	}
}

func TestHostKelvinSignRejected(t *testing.T) {
	if _, err := ParseHost("\u212Aa.com"); err == nil || !strings.Contains(err.Error(), "non-ASCII") {
		t.Errorf("want a non-ASCII error, got %v", err)
	}
}

func TestVirtualNetworkIngressIsAProblem(t *testing.T) {
	w := wl("meshy", "10.0.0.2", "VIRTUAL_HOST=a.com", "VIRTUAL_NETWORK=ingress")
	w.Networks = append(w.Networks, discovery.Network{Name: "ingress", IP: "10.255.0.5"})
	tab := Build([]discovery.Workload{w}, proxyOpts)
	ps := problemsOf(tab, "meshy")
	if len(tab.Sites) != 0 || len(ps) != 1 || ps[0].Setting != SettingNetwork {
		t.Fatalf("want one VIRTUAL_NETWORK problem and no site, got sites %v problems %v", siteHosts(tab), ps)
	}
}

// An address problem that concerns no setting must not pick up a variable with an empty name.
func TestAddressProblemHasNoValueWithoutSetting(t *testing.T) {
	w := wl("lost", "", "VIRTUAL_HOST=a.com")
	w.Networks = nil
	w.Env = map[string]string{"": "secret"}
	ps := problemsOf(Build([]discovery.Workload{w}, proxyOpts), "lost")
	if len(ps) != 1 || ps[0].Value != "" || ps[0].Origin != "" {
		t.Fatalf("want one problem with no value, got %+v", ps)
	}
}

// Rule 2 picks the first shared network by name, whatever order the source listed them in.
func TestSharedNetworkByNameWhateverTheOrder(t *testing.T) {
	w := wl("two", "", "VIRTUAL_HOST=a.com")
	w.Networks = []discovery.Network{{Name: "zeta", IP: "10.0.2.2"}, {Name: "alpha", IP: "10.0.1.2"}}
	tab := Build([]discovery.Workload{w}, Options{ProxyNetworks: []string{"zeta", "alpha"}})
	if got := addresses(route(t, tab, "a.com", "/")); len(got) != 1 || got[0] != "10.0.1.2:80" {
		t.Fatalf("want the alpha address, got %v", got)
	}
}

func TestProxyLabel(t *testing.T) {
	proxyA := wl("proxy-a", "", "role=edge")
	proxyA.Networks = []discovery.Network{{Name: "front", IP: "10.1.0.2"}, {Name: "ingress", IP: "10.255.0.2"}}
	proxyB := wl("proxy-b", "", "role=edge")
	proxyB.Networks = []discovery.Network{{Name: "back", IP: "10.2.0.2"}}
	other := wl("not-proxy", "", "role=db")
	other.Networks = []discovery.Network{{Name: "secret", IP: "10.3.0.2"}}
	web := wl("web", "", "VIRTUAL_HOST=a.com")
	web.Networks = []discovery.Network{{Name: "back", IP: "10.2.0.9"}}
	for _, label := range []string{"role=edge", "role"} {
		tab := Build([]discovery.Workload{proxyA, proxyB, other, web}, Options{ProxyLabel: label})
		want := []string{"back", "front"}
		if label == "role" {
			want = []string{"back", "front", "secret"}
		}
		if strings.Join(tab.ProxyNetworks, ",") != strings.Join(want, ",") {
			t.Errorf("label %s: proxy networks %v, want %v", label, tab.ProxyNetworks, want)
		}
		if got := addresses(route(t, tab, "a.com", "/")); len(got) != 1 || got[0] != "10.2.0.9:80" {
			t.Errorf("label %s: servers %v", label, got)
		}
	}
	tab := Build([]discovery.Workload{web}, Options{ProxyLabel: "role=edge"})
	if len(tab.Problems) != 2 || !strings.Contains(tab.Problems[0].Reason, "proxy label role=edge") {
		t.Errorf("no proxy: want a table problem naming the label, got %v", tab.Problems)
	}
}
