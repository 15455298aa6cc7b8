package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// wl builds a docker workload with the given labels (key=value pairs), attached to the "proxy"
// network at ip, exposing port 80/tcp. Tests adjust the rest.
func wl(name, ip string, labels ...string) discovery.Workload {
	w := discovery.Workload{
		ID:       "id-" + name,
		Name:     name,
		Source:   "docker",
		Labels:   kv(labels...),
		Networks: []discovery.Network{{Name: "proxy", ID: "net-proxy", IP: ip}},
		Ports:    []discovery.Port{{Port: 80, Proto: "tcp"}},
	}
	return w
}

// kv turns "K=V" pairs into a map (nil when there are none).
func kv(pairs ...string) map[string]string {
	if len(pairs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			panic("kv: no '=' in " + p)
		}
		m[k] = v
	}
	return m
}

// proxyOpts routes over the "proxy" network.
var proxyOpts = Options{ProxyNetworks: []string{"proxy"}}

// site returns the named site of a table, failing the test when it is missing.
func site(t *testing.T, tab Table, host string) Site {
	t.Helper()
	for _, s := range tab.Sites {
		if s.Host == host {
			return s
		}
	}
	t.Fatalf("no site %q in table; sites: %v", host, siteHosts(tab))
	return Site{}
}

// route returns the route of a site at path, failing the test when it is missing.
func route(t *testing.T, tab Table, host, path string) Route {
	t.Helper()
	s := site(t, tab, host)
	for _, r := range s.Routes {
		if r.Path == path {
			return r
		}
	}
	t.Fatalf("no route %q on site %q; routes: %+v", path, host, s.Routes)
	return Route{}
}

func siteHosts(tab Table) []string {
	hosts := make([]string, 0, len(tab.Sites))
	for _, s := range tab.Sites {
		hosts = append(hosts, s.Host)
	}
	return hosts
}

// addresses lists the server addresses of a route's backend.
func addresses(r Route) []string {
	out := make([]string, 0, len(r.Backend.Servers))
	for _, s := range r.Backend.Servers {
		out = append(out, s.Address)
	}
	return out
}

// problemsOf returns the problems recorded against the named workload ("" for table-level ones).
func problemsOf(tab Table, workload string) []Problem {
	var out []Problem
	for _, p := range tab.Problems {
		if p.Workload == workload {
			out = append(out, p)
		}
	}
	return out
}
