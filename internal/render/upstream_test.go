package render

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Each balancing method in each proxy's terms; HAProxy's hashing is always consistent (its
// runtime API adds servers to dynamic backends only).
func TestBalanceFuncs(t *testing.T) {
	vars := map[string]string{"SID": "vhost_gen_sticky_12345678"}
	tests := []struct {
		label   string
		nginx   string
		haproxy []string
	}{
		{"", "", []string{"balance roundrobin"}},
		{"round_robin", "", []string{"balance roundrobin"}},
		{"least_conn;", "least_conn;", []string{"balance leastconn"}},
		{"ip_hash", "ip_hash;", []string{"balance source", "hash-type consistent"}},
		{"hash $remote_addr consistent", "hash $remote_addr consistent;", []string{"balance source", "hash-type consistent"}},
		{"hash $remote_addr", "hash $remote_addr;", []string{"balance source", "hash-type consistent"}},
		{"hash $cookie_SID consistent", "hash $vhost_gen_sticky_12345678 consistent;", []string{"balance hash req.cook(SID)", "hash-type consistent"}},
		{"hash $cookie_SID", "hash $vhost_gen_sticky_12345678;", []string{"balance hash req.cook(SID)", "hash-type consistent"}},
		{"random", "random;", []string{"balance random"}},
		{"random two least_conn;", "random two least_conn;", []string{"balance random(2)"}},
	}
	for _, tt := range tests {
		lb, err := routing.ParseLoadBalance(tt.label)
		if err != nil {
			t.Fatal(err)
		}
		b := routing.Backend{Name: "b", Balance: lb}
		if got, err := nginxBalance(b, vars); err != nil || got != tt.nginx {
			t.Errorf("%q: nginx %q, %v; want %q", tt.label, got, err, tt.nginx)
		}
		if got, err := haproxyBalance(b); err != nil || strings.Join(got, "|") != strings.Join(tt.haproxy, "|") {
			t.Errorf("%q: haproxy %q, %v; want %q", tt.label, got, err, tt.haproxy)
		}
	}
	// What routing never makes fails the render rather than reach a config.
	for _, lb := range []routing.Balance{
		{Method: "least_time header"},
		{Method: routing.BalanceHash, Hash: "request_uri"},
		{Method: routing.BalanceHash, Hash: routing.HashCookie, Cookie: "x) if TRUE"},
	} {
		b := routing.Backend{Name: "b", Balance: lb}
		if got, err := nginxBalance(b, vars); err == nil {
			t.Errorf("%+v: nginx %q, want an error", lb, got)
		}
		if got, err := haproxyBalance(b); err == nil {
			t.Errorf("%+v: haproxy %q, want an error", lb, got)
		}
	}
}

func TestReuseFunc(t *testing.T) {
	for keepalive, want := range map[string]string{
		"": "", "auto": "http-reuse safe", "32": "http-reuse safe", "disabled": "http-reuse never|option http-server-close",
	} {
		if got := strings.Join(haproxyReuse(routing.Backend{Keepalive: keepalive}), "|"); got != want {
			t.Errorf("keepalive %q: %q, want %q", keepalive, got, want)
		}
	}
}

func TestRootFuncs(t *testing.T) {
	tests := []struct {
		root           routing.DefaultRoot
		nginx, backend string
		rule           string
	}{
		{routing.DefaultRoot{}, "return 404;", "vhost-gen:404", "http-request return status 404"},
		{routing.DefaultRoot{Status: 404}, "return 404;", "vhost-gen:404", "http-request return status 404"},
		{routing.DefaultRoot{Status: 418}, "return 418;", "vhost-gen:root", "http-request return status 418"},
		{routing.DefaultRoot{Status: 444}, "return 444;", "vhost-gen:root", "http-request reject"},
		{routing.DefaultRoot{None: true}, "", "", "http-request return status 404"},
		{routing.DefaultRoot{Status: 301, URL: "https://example.com/a%20b"}, `return 301 "https://example.com/a%20b";`, "vhost-gen:root",
			"http-request redirect location https://example.com/a%%20b code 301"},
	}
	for _, tt := range tests {
		if got, err := nginxRoot(tt.root); err != nil || got != tt.nginx {
			t.Errorf("%+v: nginx %q, %v; want %q", tt.root, got, err, tt.nginx)
		}
		if got := haproxyRoot(tt.root); got != tt.backend {
			t.Errorf("%+v: haproxy backend %q, want %q", tt.root, got, tt.backend)
		}
		if tt.root.None {
			continue
		}
		if got, err := haproxyRootRule(tt.root); err != nil || got != tt.rule {
			t.Errorf("%+v: haproxy rule %q, %v; want %q", tt.root, got, err, tt.rule)
		}
	}
	// A DefaultRoot routing would refuse (built by hand) fails the render.
	for _, r := range []routing.DefaultRoot{
		{Status: 301, URL: "https://example.com/$host"},
		{Status: 301, URL: "https://example.com/; return 200"},
		{Status: 404, URL: "https://example.com/"},
		{Status: 301},
		{Status: 99},
	} {
		if got, err := nginxRoot(r); err == nil {
			t.Errorf("%+v: nginx %q, want an error", r, got)
		}
		if got, err := haproxyRootRule(r); err == nil {
			t.Errorf("%+v: haproxy %q, want an error", r, got)
		}
	}
}

// The loadbalance values that were refused appear in no config; the others' sites are there.
func TestBadTuningNeverReachesConfig(t *testing.T) {
	sc := scenarioNamed("upstream-tuning")
	for _, p := range proxies {
		r, err := Load(p.name, "")
		if err != nil {
			t.Fatal(err)
		}
		d := p.scenarioData(sc, sc.workloads, goldenRoot)
		out := string(renderData(t, r, d))
		for _, bad := range []string{"passwd", "include /", "lots"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s config contains %q from a refused label", p.name, bad)
			}
		}
		for _, host := range []string{"bad.example.com", "sticky.example.com", "lc.example.com"} {
			if !strings.Contains(out, host) {
				t.Errorf("%s config lacks %s", p.name, host)
			}
		}
		// lc-3's ip_hash conflicts with lc-1's least_conn: lc-3 is left out of the backend.
		if strings.Contains(out, "10.0.5.5") {
			t.Errorf("%s: the conflicting lc-3 was routed", p.name)
		}
		var warnings, errs int
		for _, pr := range d.Problems {
			if pr.Warning {
				warnings++
			} else {
				errs++
			}
		}
		if warnings != 3 || errs != 1 {
			t.Errorf("%s: %d warnings and %d problems, want 3 and 1: %v", p.name, warnings, errs, d.Problems)
		}
	}
}

// The default site: none, or the one DEFAULT_HOST marked.
func TestDefaultSite(t *testing.T) {
	if s := defaultSite([]routing.Site{{Host: "a"}, {Host: "b"}}); s != nil {
		t.Errorf("no default: got %s", s.Host)
	}
	if s := defaultSite([]routing.Site{{Host: "a"}, {Host: "b", Default: true}}); s == nil || s.Host != "b" {
		t.Errorf("want b, got %v", s)
	}
}
