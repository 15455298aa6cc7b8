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
