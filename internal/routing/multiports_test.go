package routing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseMultiports(t *testing.T) {
	valid := map[string][]RouteSpec{
		// nginx-proxy's documented examples, YAML and JSON.
		"www.example.org:\nservice1.example.org:\n  \"/\":\n    port: 8000\nservice2.example.org:\n  \"/\":\n    port: 9000\n": {
			{Host: "www.example.org", Path: "/", Proto: "http"},
			{Host: "service1.example.org", Path: "/", Port: 8000, Proto: "http"},
			{Host: "service2.example.org", Path: "/", Port: 9000, Proto: "http"},
		},
		`{ "www.example.org": {}, "service1.example.org": { "/": { "port": 8000, "dest": "" } } }`: {
			{Host: "www.example.org", Path: "/", Proto: "http"},
			{Host: "service1.example.org", Path: "/", Port: 8000, Proto: "http"},
		},
		"www.example.org:\n  \"/\":\n  \"/service1\":\n    port: 8000\n    dest: \"/\"\n  \"/service2\":\n    port: 9443\n    proto: \"https\"\n    dest: \"/\"\n": {
			{Host: "www.example.org", Path: "/", Proto: "http"},
			{Host: "www.example.org", Path: "/service1", Port: 8000, Proto: "http", Dest: "/"},
			{Host: "www.example.org", Path: "/service2", Port: 9443, Proto: "https", Dest: "/"},
		},
		"API.Example.COM:\n  /v1/: {port: \"8080\", proto: grpc}\n": {{Host: "api.example.com", Path: "/v1/", Port: 8080, Proto: "grpc"}},
		`~^api\d+\.example\.com$: {"/": {port: default}}`:           {{Host: `~^api\d+\.example\.com$`, Path: "/", Proto: "http"}},
	}
	for in, want := range valid {
		got, err := ParseMultiports(in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseMultiports(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	invalid := map[string]string{
		"":                                           "empty",
		"just text":                                  "line 1: want a mapping of host names",
		"- a.com\n- b.com\n":                         "line 1: want a mapping",
		"a.com: [1, 2]\n":                            "line 1: host a.com: want a mapping of paths",
		"a.com:\nb.com:\nA.com:\n":                   "line 3: host a.com again (first on line 1)",
		"a.com:\n  /x: {}\n  /x: {}\n":               "line 3: host a.com: path /x again (first on line 2)",
		"a.com:\n  x: {}\n":                          "line 2: host a.com: path \"x\"",
		"a.com:\n  /x: {port: 0}\n":                  "line 2: host a.com path /x: port \"0\"",
		"a.com:\n  /x: {port: 8080, pot: 1}":         "unknown key",
		"a.com:\n  /x: {proto: ftp}\n":               "proto \"ftp\"",
		"a.com:\n  /x: {dest: \"a b\"}\n":            "dest \"a b\"",
		"a.com:\n  /x: {proto: grpc, dest: /y/}\n":   "dest works with proto http and https only",
		"a.com:\n  external_https_port: 8443\n":      "external_https_port is not supported",
		"a.com; include x:\n":                        "line 1: host \"a.com; include x\"",
		"a.com: &x {/: {port: 1}}\nb.com: *x\n":      "anchors and aliases are not allowed",
		"a.com:\n  /x: {port: [1]}\n":                "port: want a value",
		"{a.com: {/: {port: 1}}, a.com: {}}":         "host a.com again",
		"a.com:\n  /x:\n    port: 80\n   bad indent": "not YAML or JSON",
	}
	for in, want := range invalid {
		got, err := ParseMultiports(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMultiports(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}

// TestMultiportsRoutes: one container's several ports and hosts, merged with plain containers'
// VIRTUAL_HOST routes for the same host and path; the settings it replaces are warnings; a
// protocol the proxy cannot speak leaves that route out alone.
func TestMultiportsRoutes(t *testing.T) {
	multi := wl("multi", "10.0.0.2", "VIRTUAL_HOST_MULTIPORTS=www.example.org:\napi.example.org:\n  \"/\":\n    port: 8000\n  \"/v2/\":\n    port: 9000\n    dest: /\n  \"/py/\":\n    proto: uwsgi\n    port: 7000\n",
		"VIRTUAL_HOST=ignored.example.org", "VIRTUAL_PORT=1")
	multi.Ports = append(multi.Ports, discovery.Port{Port: 8000, Proto: "tcp"}, discovery.Port{Port: 9000, Proto: "tcp"})
	plain := wl("plain", "10.0.0.3", "VIRTUAL_HOST=api.example.org", "VIRTUAL_PORT=8000")
	opt := proxyOpts
	opt.UnsupportedProtos = map[string]string{"uwsgi": "not here"}
	tab := Build([]discovery.Workload{multi, plain}, opt)
	if got := strings.Join(siteHosts(tab), ","); got != "api.example.org,www.example.org" {
		t.Fatalf("sites %s", got)
	}
	servers := func(host, path string) string {
		var out []string
		for _, s := range route(t, tab, host, path).Backend.Servers {
			out = append(out, s.Workload+"@"+s.Address)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct{ host, path, want string }{
		{"api.example.org", "/", "multi@10.0.0.2:8000,plain@10.0.0.3:8000"},
		{"api.example.org", "/v2/", "multi@10.0.0.2:9000"},
		{"www.example.org", "/", "multi@10.0.0.2:80"},
	} {
		if got := servers(c.host, c.path); got != c.want {
			t.Errorf("%s%s: servers %s, want %s", c.host, c.path, got, c.want)
		}
	}
	if d := route(t, tab, "api.example.org", "/v2/").Dest; d != "/" {
		t.Errorf("/v2/ dest %q, want /", d)
	}
	var got []string
	for _, p := range tab.Problems {
		got = append(got, fmt.Sprintf("%s %s warning=%v: %s", p.Workload, p.Setting, p.Warning, p.Reason))
	}
	want := []string{
		"multi VIRTUAL_HOST warning=true: ignored: VIRTUAL_HOST_MULTIPORTS replaces it",
		"multi VIRTUAL_HOST_MULTIPORTS warning=false: host api.example.org path /py/: proto uwsgi: not here",
		"multi VIRTUAL_PORT warning=true: ignored: VIRTUAL_HOST_MULTIPORTS replaces it",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bad := wl("bad", "10.0.0.4", "VIRTUAL_HOST_MULTIPORTS=a.example.org:\n  /x: {port: 99999}\n")
	tab = Build([]discovery.Workload{bad, plain}, proxyOpts)
	if len(tab.Problems) != 1 || !strings.Contains(tab.Problems[0].Reason, "line 2: host a.example.org path /x: port") || len(tab.Sites) != 1 {
		t.Errorf("bad multiports: problems %+v, sites %v; want one problem naming the line, plain's site served", tab.Problems, siteHosts(tab))
	}
}

// FuzzParseMultiports: whatever the text, the result is routes that each setting's own parser
// accepts, or an error; never a panic.
func FuzzParseMultiports(f *testing.F) {
	for _, s := range []string{"a.com:\n", "a.com:\n  /x: {port: 80, proto: https, dest: /}\n", `{"a.com": {"/": {"port": 8000}}}`,
		"a: &x [*x]\n", "a.com: {/: {port: 1e9}}", "? a\n: b\n", "!!binary a: b", "a.com:\n  /x: !!str 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		specs, err := ParseMultiports(v)
		if err != nil {
			return
		}
		for _, sp := range specs {
			if h, err := ParseHost(sp.Host); err != nil || h != sp.Host {
				t.Errorf("host %q not valid: %v", sp.Host, err)
			}
			if p, err := ParsePath(sp.Path); err != nil || p != sp.Path {
				t.Errorf("path %q not valid: %v", sp.Path, err)
			}
			if sp.Dest != "" {
				if _, err := ParsePath(sp.Dest); err != nil {
					t.Errorf("dest %q not valid", sp.Dest)
				}
			}
			if _, err := ParseProto(sp.Proto); err != nil || sp.Port < 0 || sp.Port > 65535 {
				t.Errorf("spec %+v not valid", sp)
			}
		}
	})
}
