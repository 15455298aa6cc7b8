package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseNetworkAccess(t *testing.T) {
	for in, want := range map[string]bool{"internal": true, " Internal ": true, "external": false, "EXTERNAL": false} {
		if got, err := ParseNetworkAccess(in); err != nil || got != want {
			t.Errorf("ParseNetworkAccess(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "private", "internal;", "internal allow all"} {
		if _, err := ParseNetworkAccess(in); err == nil {
			t.Errorf("ParseNetworkAccess(%q): want an error", in)
		}
	}
}

// TestBackendProtoSettings: each protocol's route, VIRTUAL_ROOT for FastCGI only (with
// nginx-proxy's default), VIRTUAL_DEST for HTTP only, and a protocol the proxy cannot speak.
func TestBackendProtoSettings(t *testing.T) {
	tests := []struct {
		name     string
		labels   []string
		opt      Options
		proto    string
		root     string
		problem  string // a substring of the one problem; "" for none
		warning  bool
		excluded bool
	}{
		{name: "uwsgi", labels: []string{"VIRTUAL_PROTO=uwsgi"}, proto: "uwsgi"},
		{name: "fastcgi default root", labels: []string{"VIRTUAL_PROTO=fastcgi"}, proto: "fastcgi", root: DefaultFastCGIRoot},
		{name: "fastcgi root", labels: []string{"VIRTUAL_PROTO=FastCGI", "VIRTUAL_ROOT=/srv/app"}, proto: "fastcgi", root: "/srv/app"},
		{name: "bad root", labels: []string{"VIRTUAL_PROTO=fastcgi", "VIRTUAL_ROOT=/srv/a;b"}, problem: "not allowed in a path", excluded: true},
		{name: "root without fastcgi", labels: []string{"VIRTUAL_ROOT=/srv/app"}, proto: "http", problem: "used with VIRTUAL_PROTO=fastcgi only", warning: true},
		{name: "grpc", labels: []string{"VIRTUAL_PROTO=grpc"}, proto: "grpc"},
		{name: "grpcs", labels: []string{"VIRTUAL_PROTO=grpcs"}, proto: "grpcs"},
		{name: "dest with grpc", labels: []string{"VIRTUAL_PROTO=grpc", "VIRTUAL_DEST=/x/"}, problem: "http and https only", excluded: true},
		{name: "dest with https", labels: []string{"VIRTUAL_PROTO=https", "VIRTUAL_DEST=/x/"}, proto: "https"},
		{name: "unknown", labels: []string{"VIRTUAL_PROTO=scgi"}, problem: "must be one of http, https, uwsgi, fastcgi, grpc, grpcs", excluded: true},
		{name: "unsupported", labels: []string{"VIRTUAL_PROTO=uwsgi"}, opt: Options{UnsupportedProtos: map[string]string{"uwsgi": "not here"}},
			problem: "not here", excluded: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.ProxyNetworks = proxyOpts.ProxyNetworks
			tab := Build([]discovery.Workload{wl("app", "10.0.0.2", append([]string{"VIRTUAL_HOST=app.example.com"}, tc.labels...)...)}, opt)
			switch {
			case tc.problem == "" && len(tab.Problems) > 0:
				t.Fatalf("problems %+v, want none", tab.Problems)
			case tc.problem != "" && (len(tab.Problems) != 1 || !strings.Contains(tab.Problems[0].Reason, tc.problem) || tab.Problems[0].Warning != tc.warning):
				t.Fatalf("problems %+v, want one (warning %v) saying %q", tab.Problems, tc.warning, tc.problem)
			}
			if tc.excluded {
				if len(tab.Sites) != 0 {
					t.Fatalf("sites %v, want none", siteHosts(tab))
				}
				return
			}
			r := route(t, tab, "app.example.com", "/")
			if r.Backend.Proto != tc.proto || r.Root != tc.root {
				t.Errorf("route proto %q root %q, want %q %q", r.Backend.Proto, r.Root, tc.proto, tc.root)
			}
		})
	}
}

// TestNetworkAccessRoutes: NETWORK_ACCESS is per route; a workload that differs from the route's
// first is left out with a conflict.
func TestNetworkAccessRoutes(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("a-site", "10.0.0.2", "VIRTUAL_HOST=app.example.com"),
		wl("b-admin", "10.0.0.3", "VIRTUAL_HOST=app.example.com", "VIRTUAL_PATH=/admin/", "NETWORK_ACCESS=internal"),
		wl("c-admin", "10.0.0.4", "VIRTUAL_HOST=app.example.com", "VIRTUAL_PATH=/admin/", "NETWORK_ACCESS=external"),
		wl("d-bad", "10.0.0.5", "VIRTUAL_HOST=bad.example.com", "NETWORK_ACCESS=intern"),
	}, proxyOpts)
	if route(t, tab, "app.example.com", "/").Internal || !route(t, tab, "app.example.com", "/admin/").Internal {
		t.Errorf("routes %+v: want /admin/ internal only", site(t, tab, "app.example.com").Routes)
	}
	if n := len(route(t, tab, "app.example.com", "/admin/").Backend.Servers); n != 1 {
		t.Errorf("/admin/ has %d servers, want b-admin's alone", n)
	}
	var reasons []string
	for _, p := range tab.Problems {
		reasons = append(reasons, p.Workload+": "+p.Setting+" "+p.Reason)
	}
	want := []string{
		"c-admin:  left out of app.example.com/admin/: NETWORK_ACCESS external differs from the other servers' internal",
		"d-bad: NETWORK_ACCESS must be internal or external",
	}
	if strings.Join(reasons, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(reasons, "\n"), strings.Join(want, "\n"))
	}
}
