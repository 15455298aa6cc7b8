package etcd_test

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/etcd"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// flatUnsafe are the bytes that must never reach a server address or a site host.
const flatUnsafe = " ;{}'\"$\n\r\t"

var flatValueSeeds = []string{
	"10.0.0.5:80", "10.0.0.5:80\n", " [fd00::5]:8080 \r\n", "[::ffff:10.0.0.5]:80", "Web.Internal.:80",
	"", "\n", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:99999", "10.0.0.5:080", "10.0.0.5:+80",
	"10.0.0.5:80; include /etc/passwd", "a.com:80 {", "'10.0.0.5:80'", "\"a\":80", "$host:80",
	"10.0.0.5:80\nserver evil 1.2.3.4:80", "\xff:80", "0.0.0.0:80", "[::]:80", "224.0.0.1:80",
	"[fe80::1%eth0]:80", "fd00::5:80", "[::ffff:0.0.0.0]:1", "[::ffff:224.0.0.1]:80", "*.a.com:80", "a.*:80", "shop.example.com, b.com",
	"5432", "70000", "\u2028", strings.Repeat("a", 300) + ":80", strings.Repeat("1", 1025),
}

var flatSuffixSeeds = []string{
	"web2", "good", "_host", "_tcp_port", "_x", "", "/", "a/b", "evil\nkey", "\x1b[31m", "m\u00fcller",
	"host1:redis:6379", `"quoted"`, "a b",
}

// flatCheckFuzz checks what every decoder promises, and that routing makes nothing unsafe of
// the workloads.
func flatCheckFuzz(t *testing.T, ws []discovery.Workload) {
	t.Helper()
	for i, w := range ws {
		if i > 0 && ws[i-1].ID >= w.ID {
			t.Errorf("workloads not sorted by unique ID: %q then %q", ws[i-1].ID, w.ID)
		}
		if w.Problem == "" {
			if addr, err := routing.ParseEndpoint(w.Address); err != nil || addr != w.Address {
				t.Errorf("%s: address %q without a problem: ParseEndpoint gives %q, %v", w.Name, w.Address, addr, err)
			}
		} else if w.Address != "" {
			t.Errorf("%s: both an address %q and a problem %q", w.Name, w.Address, w.Problem)
		}
		flatCheckLogSafe(t, "name", w.Name)
		flatCheckLogSafe(t, "problem", w.Problem)
		for _, s := range []string{w.Name, w.Problem} { // everything shown is escaped to ASCII
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x7f {
					t.Errorf("%q: non-ASCII byte at %d", s, i)
				}
			}
		}
	}
	tab := routing.Build(ws, routing.Options{TCP: true})
	check := func(what, s string) {
		if strings.ContainsAny(s, flatUnsafe) {
			t.Errorf("%s %q has an unsafe character", what, s)
		}
	}
	for _, s := range tab.Sites {
		if routing.IsRegexHost(s.Host) {
			// A regular expression has its own rules (routing.ParseHost): it must parse to itself.
			if h, err := routing.ParseHost(s.Host); err != nil || h != s.Host {
				t.Errorf("site host %q does not parse to itself: %q, %v", s.Host, h, err)
			}
		} else {
			check("site host", s.Host)
		}
		for _, r := range s.Routes {
			for _, srv := range r.Backend.Servers {
				check("server address", srv.Address)
				flatCheckLogSafe(t, "server workload", srv.Workload)
			}
		}
	}
	for _, ts := range tab.TCP {
		for _, srv := range ts.Backend.Servers {
			check("TCP server address", srv.Address)
		}
	}
	for _, p := range tab.Problems {
		flatCheckLogSafe(t, "problem", p.String())
	}
}

// flatCheckLogSafe fails on anything that could start a new log line.
func flatCheckLogSafe(t *testing.T, what, s string) {
	t.Helper()
	flatCheckPrintable(t, what, s)
	if strings.ContainsAny(s, "\u0085\u2028\u2029") {
		t.Errorf("%s %q has a Unicode line break", what, s)
	}
}

// FuzzDecodeFlatDir puts one fuzzed key (DIR/ + suffix) and value beside a good server and a _host
// key, and decodes the directory as read from its keys, by a flag's host and by a flag's port.
func FuzzDecodeFlatDir(f *testing.F) {
	for i, v := range flatValueSeeds {
		f.Add(flatSuffixSeeds[i%len(flatSuffixSeeds)], []byte(v))
	}
	f.Fuzz(func(t *testing.T, suffix string, value []byte) {
		const dir = "/app/servers"
		m := map[string][]byte{
			dir + "/good":  []byte("10.0.0.1:80\n"),
			dir + "/_host": []byte("shop.example.com"),
		}
		m[dir+"/"+suffix] = value
		for _, d := range []etcd.FlatDir{{Dir: dir}, {Dir: dir, Host: "a.example.com"}, {Dir: dir, TCPPort: 5432}} {
			ws := etcd.DecodeFlatDir(d, m)
			flatCheckFuzz(t, ws)
			byKeys := d.Host == "" && d.TCPPort == 0
			if suffix == "good" || byKeys && (suffix == "_host" || suffix == "_tcp_port") {
				continue // the fuzzed key replaced the good server, or changed the mapping
			}
			if !flatHasServer(ws, dir+"/good", "10.0.0.1:80") {
				t.Errorf("%+v: the good server is lost: %+v", d, ws)
			}
		}
	})
}

// FuzzDecodeVHosts puts one fuzzed key (/vhosts/ + suffix) and value beside a good server.
func FuzzDecodeVHosts(f *testing.F) {
	suffixes := []string{
		"shop.example.com/services/web/w2", "good.example.com/services/web/w1", "evil;x/services/a/b",
		"a,b/services/x/y", "a.com/services/x/_y", "evil\n.com/services/x/y", "a.com/services/x/y/z",
		"*.a.com/services/x/y", "/services/x/y", "a.com/services//y", "A.COM./services/x/y",
	}
	for i, v := range flatValueSeeds {
		f.Add(suffixes[i%len(suffixes)], []byte(v))
	}
	f.Fuzz(func(t *testing.T, suffix string, value []byte) {
		const good = "/vhosts/good.example.com/services/web/w1"
		m := map[string][]byte{good: []byte("10.0.0.1:80")}
		m["/vhosts/"+suffix] = value
		ws := etcd.DecodeVHosts("/vhosts", m)
		flatCheckFuzz(t, ws)
		if "/vhosts/"+suffix != good && !flatHasServer(ws, good, "10.0.0.1:80") {
			t.Errorf("the good server is lost: %+v", ws)
		}
	})
}

func flatHasServer(ws []discovery.Workload, key, addr string) bool {
	for _, w := range ws {
		if w.ID == "etcd:"+key {
			return w.Address == addr && w.Problem == ""
		}
	}
	return false
}
