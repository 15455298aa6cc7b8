package routing

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// unsafeByte reports the first byte of s that could break out of, or inject into, an nginx or
// HAProxy config (or a log line), or -1. Non-ASCII and control bytes count as unsafe.
func unsafeByte(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte(";{}\"'$#\\ ", c) >= 0 {
			return i
		}
	}
	return -1
}

func checkSafe(t *testing.T, what, v string) {
	t.Helper()
	if i := unsafeByte(v); i >= 0 {
		t.Errorf("%s %q accepted with unsafe byte %q at %d", what, v, v[i], i)
	}
}

var hostSeeds = []string{
	"a.com", "A.COM.", "*.example.com", "example.*", "a.com, ,b.com,", ",,", "", " ", "*", "*.*.com",
	"a.*.com", "a.com; include /etc/passwd", "a.com\nserver {", "a.com\r\n", "a\tb.com", "a b.com",
	"{", "}", `"a.com"`, "'a'", "$host", "a.com#", `a\.com`, "\x00", "bücher.de", "\u212Aa.com",
	"xn--bcher-kva.de", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 130), "-a.com", "a_b.com",
	`~^api\d+\.example\.com$`, `~^(?:www\.)?a{2}\.com$`, `~^a(?<n>b)$`, `~a\"b`, `~a\\b`, "~a;b", "~(", "~",
}

// checkRegexHost: a regular-expression host that parsed is safe in nginx's double quotes and
// HAProxy's single quotes (no white space, quote, ';', '#', '`', no escape nginx reads), and
// compiles.
func checkRegexHost(t *testing.T, v, h string) {
	t.Helper()
	re := h[1:]
	if re == "" || len(re) > MaxRegexHost {
		t.Errorf("ParseHosts(%q): regex host %q of bad length", v, h)
	}
	for i := 0; i < len(re); i++ {
		c := re[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'`;#,", c) >= 0 {
			t.Errorf("ParseHosts(%q): regex host %q has %q", v, h, c)
		}
		if c == '\\' && (i+1 == len(re) || strings.IndexByte("\\\"'trn", re[i+1]) >= 0) {
			t.Errorf("ParseHosts(%q): regex host %q has an escape nginx reads", v, h)
		}
	}
	if strings.Contains(strings.ReplaceAll(re, "(?:", ""), "(?") {
		t.Errorf("ParseHosts(%q): regex host %q has a group with options or a name", v, h)
	}
	if _, err := regexp.Compile(re); err != nil {
		t.Errorf("ParseHosts(%q): regex host %q does not compile: %v", v, h, err)
	}
	if again, err := ParseHost(h); err != nil || again != h {
		t.Errorf("ParseHost(%q) = %q, %v; want itself", h, again, err)
	}
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range hostSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		hosts, err := ParseHosts(v)
		if err != nil {
			if hosts != nil {
				t.Errorf("ParseHosts(%q) = %q with error %v", v, hosts, err)
			}
			return
		}
		if len(hosts) == 0 {
			t.Fatalf("ParseHosts(%q): no hosts and no error", v)
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if IsRegexHost(h) {
				checkRegexHost(t, v, h)
				seen[h] = true
				continue
			}
			checkSafe(t, "host", h)
			if h == "" || len(h) > 253 || h != strings.ToLower(h) || strings.HasSuffix(h, ".") {
				t.Errorf("ParseHosts(%q): bad host %q", v, h)
			}
			if strings.Count(h, "*") > 1 || strings.Contains(h, "*") && !strings.HasPrefix(h, "*.") && !strings.HasSuffix(h, ".*") {
				t.Errorf("ParseHosts(%q): bad wildcard %q", v, h)
			}
			if strings.ContainsAny(h, ",") {
				t.Errorf("ParseHosts(%q): comma in %q", v, h)
			}
			for _, l := range strings.Split(h, ".") {
				if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
					t.Errorf("ParseHosts(%q): bad label %q in %q", v, l, h)
				}
			}
			if seen[h] {
				t.Errorf("ParseHosts(%q): duplicate %q", v, h)
			}
			seen[h] = true
			// A parsed name parses to itself.
			if again, err := ParseHost(h); err != nil || again != h {
				t.Errorf("ParseHost(%q) = %q, %v; want itself", h, again, err)
			}
		}
		// Idempotent: the parsed list, joined, parses to itself.
		if again, err := ParseHosts(strings.Join(hosts, ",")); err != nil || !reflect.DeepEqual(again, hosts) {
			t.Errorf("ParseHosts(join(%q)) = %q, %v", hosts, again, err)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/", "/api", "/api/", " /x ", "", "api", "/a b", "/a;b", "/$uri", "/{", "/}", "/a\nb", "/a\rb", "/a\tb",
		`/"`, "/'", "/#", `/\`, "/\x00", "/ü", "/%20", "/a:b@c!d+e,f=g~h", "//", "/" + strings.Repeat("a", 1023),
		"/" + strings.Repeat("a", 1024), "~ ^/", "=/x", "@x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p, err := ParsePath(v)
		if err != nil {
			if p != "" {
				t.Errorf("ParsePath(%q) = %q with error %v", v, p, err)
			}
			return
		}
		checkSafe(t, "path", p)
		if !strings.HasPrefix(p, "/") || len(p) > 1024 {
			t.Errorf("ParsePath(%q) = %q", v, p)
		}
		if !strings.Contains(v, p) {
			t.Errorf("ParsePath(%q) = %q: not a substring of the input", v, p)
		}
		if again, err := ParsePath(p); err != nil || again != p {
			t.Errorf("ParsePath(%q) = %q, %v; want itself", p, again, err)
		}
	})
}

// FuzzSettings puts fuzzed values in every setting of one workload, next to a valid neighbour,
// and checks that Build never panics, never lets an unsafe byte into the table, and excludes the
// fuzzed workload alone.
func FuzzSettings(f *testing.F) {
	type seed struct {
		host, port, proto, path, dest, network, weight, sticky string
		where, mode                                            uint8
	}
	seeds := []seed{
		{"a.com", "80", "http", "/", "", "", "1", "", 0, 0},
		{"a.com,b.com", "8080", "https", "/api", "/", "back", "0", "SRV", 1, 1},
		{"*.a.com, a.*", "", "HTTPS", "/x/", "/y", "front", "256", "srv_id", 2, 2},
		{"neighbour.test", "", "", "", "", "", "", "", 0, 0},
		{"neighbour.test", "", "https", "", "/d", "", "", "S", 1, 0},
		{"a.com; include /etc/passwd", "80;", "ftp", "/a b", "/$uri", "a b", "257", "a=b", 0, 0},
		{"a.com\n}\nserver {", "65536", "http\n", "/{", "/}", "n;", "-1", "a\nb", 1, 1},
		{`"a.com"`, "+80", "https ", `/"`, "/'", "n{", "1e2", `a"`, 2, 2},
		{"a.com", "80 ", " http", "/#", `/\`, "-n", "1 ", "$a", 0, 0},
		{"a.com\x00", "0", "", "/\x00", "/ü", "nét", "", "é", 1, 0},
		{"", "", "", "", "", "", "", "", 0, 0},
		{",", "8o", "tcp", "api", "dest", "_n", "x", " ", 2, 1},
		{"*", "99999", "h2", "/a\tb", "/a\rb", "ingress", "3", strings.Repeat("c", 65), 0, 2},
		{"\u212Aa.com", "\u00a080", "http", "/", "", "back", "1", "", 0, 0},
	}
	for _, s := range seeds {
		f.Add(s.host, s.port, s.proto, s.path, s.dest, s.network, s.weight, s.sticky, s.where, s.mode)
	}
	f.Fuzz(func(t *testing.T, host, port, proto, path, dest, network, weight, sticky string, where, mode uint8) {
		settings := map[string]string{SettingHost: host}
		for k, v := range map[string]string{
			SettingPort: port, SettingProto: proto, SettingPath: path, SettingDest: dest,
			SettingNetwork: network, SettingWeight: weight, SettingSticky: sticky,
		} {
			if v != "" { // "" leaves the setting out, so that defaults are explored too
				settings[k] = v
			}
		}
		w := discovery.Workload{
			ID: "fuzzid", Name: "fuzz", Source: "docker",
			Networks: []discovery.Network{
				{Name: "back", ID: "b", IP: "10.1.0.5"},
				{Name: "front", ID: "f", IP: "10.0.0.5"},
				{Name: "ingress", ID: "i", IP: "10.255.0.5"},
			},
			Ports: []discovery.Port{
				{Port: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080},
				{Port: 8080, Proto: "tcp", HostIP: "::", HostPort: 8081},
			},
			NodeAddress: "192.168.1.9",
		}
		switch where % 3 {
		case 0:
			w.Labels = settings
		case 1:
			w.Env = settings
			w.Labels = map[string]string{"unrelated": "x"}
		case 2:
			w.ServiceLabels = settings
			w.Env = map[string]string{SettingHost: "env-loses.test"}
		}
		neighbour := wl("aaa-neighbour", "10.0.0.2", "VIRTUAL_HOST=neighbour.test")
		neighbour.Networks[0].Name = "front"
		neighbour.NodeAddress = "192.168.1.2"
		neighbour.Ports = []discovery.Port{{Port: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 9080}}
		wantNeighbour := "10.0.0.2:80"
		opt := Options{ProxyNetworks: []string{"front"}, Mode: []AddressMode{ModeAuto, ModeNetwork, ModeHostPort, ""}[mode%4]}
		if mode%4 == 3 {
			opt.ProxyNetworks = nil
			opt.ProxyContainer = "no-such-proxy"
		}
		if opt.Mode == ModeHostPort || opt.ProxyNetworks == nil {
			wantNeighbour = "192.168.1.2:9080"
		}

		s, parseProblems, routed := ParseSettings(&w)
		if !routed {
			t.Fatalf("VIRTUAL_HOST set but not routed")
		}
		if len(parseProblems) == 0 {
			for _, h := range s.Hosts {
				if IsRegexHost(h) {
					checkRegexHost(t, host, h)
					continue
				}
				checkSafe(t, "host", h)
			}
			for what, v := range map[string]string{"path": s.Path, "dest": s.Dest, "network": s.Network, "sticky": s.Sticky, "proto": s.Proto} {
				checkSafe(t, what, v)
			}
			if s.Port < 0 || s.Port > 65535 || s.Weight < 0 || s.Weight > MaxWeight {
				t.Errorf("out-of-range numbers accepted: port %d weight %d", s.Port, s.Weight)
			}
			if !slices.Contains(Protos, s.Proto) {
				t.Errorf("proto %q accepted", s.Proto)
			}
		}

		tab := Build([]discovery.Workload{w, neighbour}, opt)

		fuzzRouted := false
		for _, site := range tab.Sites {
			if !IsRegexHost(site.Host) {
				checkSafe(t, "site host", site.Host)
			}
			for _, r := range site.Routes {
				checkSafe(t, "route path", r.Path)
				checkSafe(t, "route dest", r.Dest)
				checkSafe(t, "backend name", r.Backend.Name)
				checkSafe(t, "backend sticky", r.Backend.Sticky)
				checkSafe(t, "backend proto", r.Backend.Proto)
				if len(r.Backend.Servers) == 0 {
					t.Errorf("%s%s: a route without servers", site.Host, r.Path)
				}
				for _, srv := range r.Backend.Servers {
					checkSafe(t, "server address", srv.Address)
					if srv.Port < 1 || srv.Port > 65535 || srv.Weight < 0 || srv.Weight > MaxWeight {
						t.Errorf("server %+v out of range", srv)
					}
					if srv.Workload == "fuzz" {
						fuzzRouted = true
					}
				}
			}
		}
		checkBackendNames(t, tab)

		// The neighbour is routed whatever the fuzzed workload says.
		if got := addresses(route(t, tab, "neighbour.test", "/")); !slices.Contains(got, wantNeighbour) {
			t.Errorf("neighbour not routed: %v, want %s among them", got, wantNeighbour)
		}
		if ps := problemsOf(tab, "aaa-neighbour"); len(ps) != 0 {
			t.Errorf("neighbour has problems: %v", ps)
		}
		// An invalid setting excludes the workload; a workload that is nowhere has a problem.
		if len(parseProblems) > 0 && fuzzRouted {
			t.Errorf("workload with problems %v was routed", parseProblems)
		}
		if !fuzzRouted && len(problemsOf(tab, "fuzz")) == 0 {
			t.Errorf("workload neither routed nor a problem")
		}
		for _, p := range tab.Problems {
			if strings.ContainsAny(p.String(), "\n\r\x00") {
				t.Errorf("problem string spans lines: %q", p.String())
			}
		}
		// Order does not matter.
		if again := Build([]discovery.Workload{neighbour, w}, opt); !reflect.DeepEqual(again, tab) {
			t.Errorf("Build depends on input order")
		}
	})
}
