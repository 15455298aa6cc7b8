package etcd_test

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/etcd"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

func TestParseFlatFlag(t *testing.T) {
	tests := []struct {
		in   string
		want etcd.FlatDir
	}{
		{"/app/servers", etcd.FlatDir{Dir: "/app/servers"}},
		{"/app//servers/", etcd.FlatDir{Dir: "/app/servers"}},
		{"/app/servers=Shop.Example.com.", etcd.FlatDir{Dir: "/app/servers", Host: "shop.example.com"}},
		{"/services/web=a.com, b.com,,a.com", etcd.FlatDir{Dir: "/services/web", Host: "a.com,b.com"}},
		{"/services/web=*.example.com", etcd.FlatDir{Dir: "/services/web", Host: "*.example.com"}},
		{"/backends/db=tcp:5432", etcd.FlatDir{Dir: "/backends/db", TCPPort: 5432}},
		{"/registrator/redis=tcp:6379", etcd.FlatDir{Dir: "/registrator/redis", TCPPort: 6379}},
	}
	for _, tt := range tests {
		got, err := etcd.ParseFlatFlag(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseFlatFlag(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseFlatFlagErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "must be absolute"},
		{"app/servers=a.com", "must be absolute"},
		{"=a.com", "must be absolute"},
		{"/", "is the root"},
		{"/..=a.com", "is the root"},
		{"/app servers=a.com", "character ' ' not allowed"},
		{"/app\nservers", `character '\n' not allowed`},
		{"/app=", "nothing after '='"},
		{"/app=tcp:", "TCP port \"\": must be a port number"},
		{"/app=tcp:0", "must be a port number from 1 to 65535"},
		{"/app=tcp:70000", "must be a port number from 1 to 65535"},
		{"/app=tcp:+80", "must be a port number"},
		{"/app=TCP:80", "host list"},
		{"/app=evil.com; include /etc/passwd", "character ';' not allowed"},
		{"/app=a.com\nserver {", "host list"},
		{"/app= , ", "no host names"},
	}
	for _, tt := range tests {
		_, err := etcd.ParseFlatFlag(tt.in)
		if err == nil {
			t.Errorf("ParseFlatFlag(%q): no error; want %q", tt.in, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "--etcd-flat ") || !strings.Contains(msg, tt.want) {
			t.Errorf("ParseFlatFlag(%q): error %q; want it to name the flag and say %q", tt.in, msg, tt.want)
		}
		if strings.ContainsAny(msg, "\n\r") {
			t.Errorf("ParseFlatFlag(%q): error %q has a line break", tt.in, msg)
		}
	}
}

// flatWant is one expected workload: its raw key, and either its address and settings or words
// its problem must contain.
type flatWant struct {
	key     string
	addr    string
	labels  map[string]string
	problem []string
}

func flatHost(h string) map[string]string { return map[string]string{routing.SettingHost: h} }
func flatTCP(p string) map[string]string  { return map[string]string{routing.SettingTCPPort: p} }

// flatCheck compares decoded workloads with the expected ones, in order (sorted by ID).
func flatCheck(t *testing.T, got []discovery.Workload, service func(key string) string, want []flatWant) {
	t.Helper()
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for i, w := range got {
			ids[i] = w.ID
		}
		t.Fatalf("got %d workloads %q; want %d", len(got), ids, len(want))
	}
	for i, w := range got {
		wt := want[i]
		if w.ID != "etcd:"+wt.key || w.Source != "etcd" || w.Service != service(wt.key) {
			t.Errorf("workload %d: ID %q source %q service %q; want key %q, service %q", i, w.ID, w.Source, w.Service, wt.key, service(wt.key))
		}
		if w.Address != wt.addr {
			t.Errorf("%s: address %q; want %q (problem %q)", w.Name, w.Address, wt.addr, w.Problem)
		}
		if wt.labels != nil && !maps.Equal(w.Labels, wt.labels) {
			t.Errorf("%s: labels %v; want %v", w.Name, w.Labels, wt.labels)
		}
		if (w.Problem == "") != (len(wt.problem) == 0) {
			t.Errorf("%s: problem %q; want one saying %q", w.Name, w.Problem, wt.problem)
		}
		for _, s := range wt.problem {
			if !strings.Contains(w.Problem, s) {
				t.Errorf("%s: problem %q; want it to contain %q", w.Name, w.Problem, s)
			}
		}
		flatCheckPrintable(t, "name", w.Name)
		flatCheckPrintable(t, "problem", w.Problem)
	}
}

// flatCheckPrintable fails on control bytes, which could forge log lines.
func flatCheckPrintable(t *testing.T, what, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			t.Errorf("%s %q: control byte at %d", what, s, i)
			return
		}
	}
}

func flatDirOf(key string) string { return key[:strings.LastIndexByte(key, '/')] }

func flatKVs(pairs ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = []byte(pairs[i+1])
	}
	return m
}

func TestDecodeFlatDir(t *testing.T) {
	long := strings.Repeat("1", 2000)
	tests := []struct {
		name string
		dir  etcd.FlatDir
		kvs  map[string][]byte
		want []flatWant
	}{
		{
			name: "confd+HAProxy /app/servers by flag; the flag wins over _host; deeper, sibling and metadata keys ignored",
			dir:  etcd.FlatDir{Dir: "/app/servers", Host: "shop.example.com"},
			kvs: flatKVs(
				"/app/servers/web1", "10.0.0.5:49156",
				"/app/servers/web2", "10.0.0.6:49157\n", // etcdctl put with a trailing newline
				"/app/servers/web3", " \t10.0.0.7:80\r\n",
				"/app/servers/_host", "other.example.com",
				"/app/servers/_weight", "5",
				"/app/servers/sub/web4", "10.0.0.8:80",
				"/app/servers/", "10.0.0.9:80",
				"/app/servers", "10.0.0.9:80",
				"/app/servers2/web5", "10.0.0.9:80",
				"/app/serversweb6", "10.0.0.9:80",
			),
			want: []flatWant{
				{key: "/app/servers/web1", addr: "10.0.0.5:49156", labels: flatHost("shop.example.com")},
				{key: "/app/servers/web2", addr: "10.0.0.6:49157", labels: flatHost("shop.example.com")},
				{key: "/app/servers/web3", addr: "10.0.0.7:80", labels: flatHost("shop.example.com")},
			},
		},
		{
			name: "confd+HAProxy /app/servers by _host",
			dir:  etcd.FlatDir{Dir: "/app/servers"},
			kvs: flatKVs(
				"/app/servers/_host", "Shop.Example.com, www.shop.example.com\n",
				"/app/servers/web1", "10.0.0.5:49156",
			),
			want: []flatWant{{key: "/app/servers/web1", addr: "10.0.0.5:49156", labels: flatHost("shop.example.com,www.shop.example.com")}},
		},
		{
			name: "docker-register /services/<name>: IPv6, mapped IPv4, DNS names",
			dir:  etcd.FlatDir{Dir: "/services/web/"}, // a trailing slash from a caller is tolerated
			kvs: flatKVs(
				"/services/web/_host", "web.example.com",
				"/services/web/c1", "[fd00::5]:8080",
				"/services/web/c2", "[::ffff:10.0.0.9]:80\n",
				"/services/web/c3", "Web.Internal.:8080",
				"/services/web/c4", "[FD00:0::6]:80",
				"/services/api/c1", "10.0.0.1:80",
			),
			want: []flatWant{
				{key: "/services/web/c1", addr: "[fd00::5]:8080", labels: flatHost("web.example.com")},
				{key: "/services/web/c2", addr: "10.0.0.9:80"},
				{key: "/services/web/c3", addr: "web.internal:8080"},
				{key: "/services/web/c4", addr: "[fd00::6]:80"},
			},
		},
		{
			name: "registrator <prefix>/<service>/<id> by flag tcp (ids have colons)",
			dir:  etcd.FlatDir{Dir: "/registrator/redis", TCPPort: 6379},
			kvs: flatKVs(
				"/registrator/redis/host1:redis1:6379", "10.0.0.5:32768",
				"/registrator/redis/host2:redis2:6379", "10.0.0.6:32768",
			),
			want: []flatWant{
				{key: "/registrator/redis/host1:redis1:6379", addr: "10.0.0.5:32768", labels: flatTCP("6379")},
				{key: "/registrator/redis/host2:redis2:6379", addr: "10.0.0.6:32768", labels: flatTCP("6379")},
			},
		},
		{
			name: "ambassador /backends/<service> by _tcp_port",
			dir:  etcd.FlatDir{Dir: "/backends/db"},
			kvs: flatKVs(
				"/backends/db/_tcp_port", "5432\n",
				"/backends/db/pg1", "10.0.0.5:5432",
				"/backends/cache/_tcp_port", "6379",
			),
			want: []flatWant{{key: "/backends/db/pg1", addr: "10.0.0.5:5432", labels: flatTCP("5432")}},
		},
		{
			name: "malformed values next to a good one",
			dir:  etcd.FlatDir{Dir: "/app/servers", Host: "shop.example.com"},
			kvs: flatKVs(
				"/app/servers/a-good", "10.0.0.5:80",
				"/app/servers/no-port", "10.0.0.5",
				"/app/servers/big-port", "10.0.0.5:99999",
				"/app/servers/zero-port", "10.0.0.5:0",
				"/app/servers/padded-port", "10.0.0.5:080",
				"/app/servers/semicolon", "10.0.0.5:80; include /etc/passwd",
				"/app/servers/brace", "a.com:80 {",
				"/app/servers/quotes", "'10.0.0.5:80'",
				"/app/servers/newline", "10.0.0.5:80\nserver evil 1.2.3.4:80",
				"/app/servers/empty", "",
				"/app/servers/blank", " \n",
				"/app/servers/long", long,
				"/app/servers/binary", "\xff\xfe:80",
				"/app/servers/unspecified", "0.0.0.0:80",
				"/app/servers/bare-ipv6", "fd00::5:80",
				"/app/servers/zone", "[fe80::1%eth0]:80",
				"/app/servers/dollar", "$host:80",
				"/app/servers/wildcard", "*.a.com:80",
				"/app/servers/mapped-unspecified", "[::ffff:0.0.0.0]:80",
				"/app/servers/zone-control", "[::1%\x01\n]:80",
				"/app/servers/mapped-multicast", "[::ffff:224.0.0.1]:80",
			),
			want: []flatWant{
				{key: "/app/servers/a-good", addr: "10.0.0.5:80"},
				{key: "/app/servers/bare-ipv6", problem: []string{`value "fd00::5:80"`, "not HOST:PORT", "[fd00::5]:8080"}},
				{key: "/app/servers/big-port", problem: []string{"key /app/servers/big-port:", `value "10.0.0.5:99999"`, "from 1 to 65535"}},
				{key: "/app/servers/binary", problem: []string{`value "\xff\xfe:80" is not UTF-8`}},
				{key: "/app/servers/blank", problem: []string{`value ""`, "not HOST:PORT"}},
				{key: "/app/servers/brace", problem: []string{`value "a.com:80 {"`}},
				{key: "/app/servers/dollar", problem: []string{`value "$host:80"`, "neither an IP address nor a host name"}},
				{key: "/app/servers/empty", problem: []string{`value ""`}},
				{key: "/app/servers/long", problem: []string{"value of 2000 bytes", "longer than 1 KiB", `"` + long[:80] + `"...`}},
				{key: "/app/servers/mapped-multicast", problem: []string{`value "[::ffff:224.0.0.1]:80": "::ffff:224.0.0.1" is not a server's address`}},
				{key: "/app/servers/mapped-unspecified", problem: []string{`value "[::ffff:0.0.0.0]:80": "::ffff:0.0.0.0" is not a server's address`}},
				{key: "/app/servers/newline", problem: []string{`value "10.0.0.5:80\nserver evil 1.2.3.4:80"`}},
				{key: "/app/servers/no-port", problem: []string{`value "10.0.0.5": not HOST:PORT`}},
				{key: "/app/servers/padded-port", problem: []string{`port "080"`}},
				{key: "/app/servers/quotes", problem: []string{`value "'10.0.0.5:80'"`}},
				{key: "/app/servers/semicolon", problem: []string{`value "10.0.0.5:80; include /etc/passwd"`}},
				{key: "/app/servers/unspecified", problem: []string{`"0.0.0.0" is not a server's address`}},
				{key: "/app/servers/wildcard", problem: []string{`value "*.a.com:80"`}},
				{key: "/app/servers/zero-port", problem: []string{"from 1 to 65535"}},
				{key: "/app/servers/zone", problem: []string{"is not a server's address"}},
				{key: "/app/servers/zone-control", problem: []string{`value "[::1%\x01\n]:80": "::1%\x01\n" is not a server's address`}},
			},
		},
		{
			name: "hostile keys are named quoted, and still route",
			dir:  etcd.FlatDir{Dir: "/app/servers", Host: "shop.example.com"},
			kvs: flatKVs(
				"/app/servers/evil\nkey", "10.0.0.5:80",
				"/app/servers/\x1b[31mred", "10.0.0.6:80",
				"/app/servers/m\u00fcller", "10.0.0.7:80; x",
			),
			want: []flatWant{
				{key: "/app/servers/\x1b[31mred", addr: "10.0.0.6:80"},
				{key: "/app/servers/evil\nkey", addr: "10.0.0.5:80"},
				{key: "/app/servers/m\u00fcller", problem: []string{`key "/app/servers/m\u00fcller":`}},
			},
		},
		{
			name: "no mapping",
			dir:  etcd.FlatDir{Dir: "/app/servers"},
			kvs:  flatKVs("/app/servers/web1", "10.0.0.5:80", "/app/servers/web2", "bad"),
			want: []flatWant{
				{key: "/app/servers/web1", problem: []string{"no host name or TCP port for the servers under /app/servers", "--etcd-flat /app/servers=HOST", "--etcd-flat /app/servers=tcp:PORT", "/app/servers/_host", "/app/servers/_tcp_port"}},
				{key: "/app/servers/web2", problem: []string{"no host name or TCP port"}},
			},
		},
		{
			name: "both _host and _tcp_port",
			dir:  etcd.FlatDir{Dir: "/app/servers"},
			kvs:  flatKVs("/app/servers/_host", "a.com", "/app/servers/_tcp_port", "80", "/app/servers/web1", "10.0.0.5:80"),
			want: []flatWant{{key: "/app/servers/web1", problem: []string{"both /app/servers/_host and /app/servers/_tcp_port are set"}}},
		},
		{
			name: "bad _host",
			dir:  etcd.FlatDir{Dir: "/app/servers"},
			kvs:  flatKVs("/app/servers/_host", "evil.com; include /etc/passwd\n", "/app/servers/web1", "10.0.0.5:80"),
			want: []flatWant{{key: "/app/servers/web1", problem: []string{`key /app/servers/_host: value "evil.com; include /etc/passwd" is not a host name list`, "';' not allowed"}}},
		},
		{
			name: "empty _host",
			dir:  etcd.FlatDir{Dir: "/app/servers"},
			kvs:  flatKVs("/app/servers/_host", " , ", "/app/servers/web1", "10.0.0.5:80"),
			want: []flatWant{{key: "/app/servers/web1", problem: []string{"/app/servers/_host", "no host names"}}},
		},
		{
			name: "bad _tcp_port",
			dir:  etcd.FlatDir{Dir: "/backends/db"},
			kvs:  flatKVs("/backends/db/_tcp_port", "70000", "/backends/db/pg1", "10.0.0.5:5432"),
			want: []flatWant{{key: "/backends/db/pg1", problem: []string{`key /backends/db/_tcp_port: value "70000" is not a TCP port`}}},
		},
		{
			name: "a mapping with both a host and a port",
			dir:  etcd.FlatDir{Dir: "/backends/db", Host: "a.com", TCPPort: 5432},
			kvs:  flatKVs("/backends/db/pg1", "10.0.0.5:5432"),
			want: []flatWant{{key: "/backends/db/pg1", problem: []string{"both a host and a TCP port"}}},
		},
		{
			name: "nothing under the directory",
			dir:  etcd.FlatDir{Dir: "/app/servers", Host: "a.com"},
			kvs:  flatKVs("/app/servers/_host", "a.com", "/other/x", "10.0.0.5:80"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flatCheck(t, etcd.DecodeFlatDir(tt.dir, tt.kvs), flatDirOf, tt.want)
		})
	}
}

// Hostile keys must not reach the name unescaped, and their names stay distinct.
func TestDecodeFlatDirKeyNames(t *testing.T) {
	ws := etcd.DecodeFlatDir(etcd.FlatDir{Dir: "/d", Host: "a.com"}, flatKVs(
		"/d/evil\nkey", "10.0.0.5:80",
		`/d/"evil\nkey"`, "10.0.0.5:80",
		"/d/m\u00fcller", "10.0.0.5:80",
		"/d/plain-key:1", "10.0.0.5:80",
		"/d/"+strings.Repeat("k", 1000), "10.0.0.5:80",
	))
	got := make([]string, len(ws))
	for i, w := range ws {
		got[i] = w.Name
	}
	want := []string{
		`"/d/\"evil\\nkey\""`,
		`"/d/evil\nkey"`,
		"/d/" + strings.Repeat("k", 509) + "...",
		`"/d/m\u00fcller"`,
		"/d/plain-key:1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("names %q\nwant %q", got, want)
	}
}

func TestDecodeVHosts(t *testing.T) {
	tests := []struct {
		name string
		root string
		kvs  map[string][]byte
		want []flatWant
	}{
		{
			name: "ambassador vhosts",
			root: "/vhosts",
			kvs: flatKVs(
				"/vhosts/shop.example.com/services/web/web1", "10.0.0.5:80",
				"/vhosts/shop.example.com/services/web/web2", "10.0.0.6:80\n",
				"/vhosts/api.example.com/services/api/a1", "[fd00::1]:8080",
				"/vhosts/*.example.com/services/catch/c1", "10.0.0.9:80",
				// ignored
				"/vhosts/shop.example.com/services/web", "10.0.0.1:80",
				"/vhosts/shop.example.com/services/web/_meta", "10.0.0.1:80",
				"/vhosts/shop.example.com/services/web/x/y", "10.0.0.1:80",
				"/vhosts/shop.example.com/other/web/x", "10.0.0.1:80",
				"/vhosts//services/web/x", "10.0.0.1:80",
				"/vhosts/shop.example.com/services//x", "10.0.0.1:80",
				"/vhosts/shop.example.com/services/web/", "10.0.0.1:80",
				"/vhosts/shop.example.com", "10.0.0.1:80",
				"/vhostsX/a.com/services/b/c", "10.0.0.1:80",
				"/backends/db/pg1", "10.0.0.1:5432",
			),
			want: []flatWant{
				{key: "/vhosts/*.example.com/services/catch/c1", addr: "10.0.0.9:80", labels: flatHost("*.example.com")},
				{key: "/vhosts/api.example.com/services/api/a1", addr: "[fd00::1]:8080", labels: flatHost("api.example.com")},
				{key: "/vhosts/shop.example.com/services/web/web1", addr: "10.0.0.5:80", labels: flatHost("shop.example.com")},
				{key: "/vhosts/shop.example.com/services/web/web2", addr: "10.0.0.6:80", labels: flatHost("shop.example.com")},
			},
		},
		{
			name: "hostile hosts and values next to a good one (routing validates the host)",
			root: "/vhosts/",
			kvs: flatKVs(
				"/vhosts/a.com,evil.com/services/x/y", "10.0.0.5:80",
				"/vhosts/evil.com;x/services/x/y", "10.0.0.5:80",
				"/vhosts/evil\n.com/services/x/y", "10.0.0.5:80",
				"/vhosts/good.com/services/x/bad", "10.0.0.5:80;",
				"/vhosts/good.com/services/x/good", "10.0.0.5:80",
			),
			want: []flatWant{
				{key: "/vhosts/a.com,evil.com/services/x/y", problem: []string{`host segment "a.com,evil.com" must be one host name`}},
				{key: "/vhosts/evil\n.com/services/x/y", addr: "10.0.0.5:80", labels: flatHost("evil\n.com")},
				{key: "/vhosts/evil.com;x/services/x/y", addr: "10.0.0.5:80", labels: flatHost("evil.com;x")},
				{key: "/vhosts/good.com/services/x/bad", problem: []string{"key /vhosts/good.com/services/x/bad:", `value "10.0.0.5:80;"`}},
				{key: "/vhosts/good.com/services/x/good", addr: "10.0.0.5:80"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flatCheck(t, etcd.DecodeVHosts(tt.root, tt.kvs), flatDirOf, tt.want)
		})
	}
}

// The decoded workloads route: good entries become servers at their address, TCP replicas of one
// directory share their port, and bad entries are problems naming their key.
func TestFlatRouting(t *testing.T) {
	var ws []discovery.Workload
	ws = append(ws, etcd.DecodeFlatDir(etcd.FlatDir{Dir: "/app/servers", Host: "shop.example.com"}, flatKVs(
		"/app/servers/web1", "10.0.0.5:49156\n",
		"/app/servers/web2", "[fd00::6]:49157",
		"/app/servers/bad", "10.0.0.7:80; include /etc/passwd",
	))...)
	ws = append(ws, etcd.DecodeFlatDir(etcd.FlatDir{Dir: "/backends/db"}, flatKVs(
		"/backends/db/_tcp_port", "5432",
		"/backends/db/pg1", "10.0.0.8:5432",
		"/backends/db/pg2", "10.0.0.9:5432",
	))...)
	ws = append(ws, etcd.DecodeFlatDir(etcd.FlatDir{Dir: "/services/orphan"}, flatKVs("/services/orphan/o1", "10.0.0.10:80"))...)
	ws = append(ws, etcd.DecodeVHosts("/vhosts", flatKVs(
		"/vhosts/api.example.com/services/api/a1", "10.0.0.11:8080",
		"/vhosts/evil.com;x/services/x/y", "10.0.0.12:80",
		"/vhosts/evil\n.com/services/x/y", "10.0.0.13:80",
	))...)
	tab := routing.Build(ws, routing.Options{TCP: true})

	servers := map[string][]string{} // site or tcp:PORT -> workload=address
	for _, s := range tab.Sites {
		for _, r := range s.Routes {
			for _, srv := range r.Backend.Servers {
				servers[s.Host] = append(servers[s.Host], srv.Workload+"="+srv.Address)
			}
		}
	}
	for _, ts := range tab.TCP {
		if ts.Service != "/backends/db" {
			t.Errorf("TCP service %d: service %q, want /backends/db", ts.Port, ts.Service)
		}
		for _, srv := range ts.Backend.Servers {
			servers[ts.Backend.Name] = append(servers[ts.Backend.Name], srv.Workload+"="+srv.Address)
		}
	}
	want := map[string][]string{
		"shop.example.com": {"/app/servers/web1=10.0.0.5:49156", "/app/servers/web2=[fd00::6]:49157"},
		"api.example.com":  {"/vhosts/api.example.com/services/api/a1=10.0.0.11:8080"},
		"tcp:5432":         {"/backends/db/pg1=10.0.0.8:5432", "/backends/db/pg2=10.0.0.9:5432"},
	}
	if !reflect.DeepEqual(servers, want) {
		t.Errorf("servers %q\nwant %q", servers, want)
	}

	problems := map[string]string{}
	for _, p := range tab.Problems {
		s := p.String()
		flatCheckPrintable(t, "problem", s)
		problems[p.Workload] = s
	}
	wantProblems := map[string][]string{
		"/app/servers/bad":                  {"etcd /app/servers/bad: key /app/servers/bad: value \"10.0.0.7:80; include /etc/passwd\""},
		"/services/orphan/o1":               {"no host name or TCP port", "--etcd-flat /services/orphan=HOST"},
		"/vhosts/evil.com;x/services/x/y":   {`VIRTUAL_HOST "evil.com;x"`, "';' not allowed"},
		`"/vhosts/evil\n.com/services/x/y"`: {`VIRTUAL_HOST "evil\n.com"`, "not allowed"},
	}
	if len(problems) != len(wantProblems) {
		t.Errorf("problems %q; want one for each of %q", problems, slices.Sorted(maps.Keys(wantProblems)))
	}
	for name, words := range wantProblems {
		for _, w := range words {
			if !strings.Contains(problems[name], w) {
				t.Errorf("problem of %s: %q; want it to contain %q", name, problems[name], w)
			}
		}
	}
}

func TestFlatEntries(t *testing.T) {
	got := etcd.FlatEntries("/vhost-gen/flat/", []etcd.FlatServer{
		{Service: "shop", Name: "web.2", Address: "10.0.0.6:80"},
		{Service: "shop", Name: "web.1", Address: "10.0.0.5:80"},
		{Service: "shop", Name: "web.1", Address: "10.0.0.5:80"}, // the same server twice: once
		{Service: "shop", Name: "web 1", Address: "10.0.0.4:80"}, // "web_1" twice: renamed
		{Service: "shop", Name: "web_1", Address: "10.0.0.3:80"},
		{Service: "shop", Name: "web_1-2", Address: "10.0.0.2:80"}, // keeps its name
		{Service: "shop", Name: "_hidden", Address: "10.0.0.7:80"}, // '_' would be metadata
		{Service: "shop", Name: "", Address: "10.0.0.8:80"},
		{Service: "api/v1", Name: "m\u00fcller", Address: "[fd00::1]:8080"},
		{Service: "..", Name: "..", Address: "10.0.0.9:80"}, // a cleaned DIR would lose ".."
	})
	want := []string{
		"/vhost-gen/flat/-./-.=10.0.0.9:80",
		"/vhost-gen/flat/api_v1/m_ller=[fd00::1]:8080",
		"/vhost-gen/flat/shop/-=10.0.0.8:80",
		"/vhost-gen/flat/shop/-hidden=10.0.0.7:80",
		"/vhost-gen/flat/shop/web.1=10.0.0.5:80",
		"/vhost-gen/flat/shop/web.2=10.0.0.6:80",
		"/vhost-gen/flat/shop/web_1=10.0.0.3:80",
		"/vhost-gen/flat/shop/web_1-2=10.0.0.2:80",
		"/vhost-gen/flat/shop/web_1-3=10.0.0.4:80",
	}
	if s := flatKVStrings(got); !slices.Equal(s, want) {
		t.Errorf("entries\n%q\nwant\n%q", s, want)
	}
	if s := flatKVStrings(etcd.FlatEntries("", []etcd.FlatServer{{"s", "n", "10.0.0.1:80"}})); !slices.Equal(s, []string{"/s/n=10.0.0.1:80"}) {
		t.Errorf("entries under the root: %q", s)
	}
	if got := etcd.FlatEntries("/d", nil); len(got) != 0 {
		t.Errorf("no servers: %q", flatKVStrings(got))
	}
}

func flatKVStrings(kvs []etcd.KV) []string {
	s := make([]string, len(kvs))
	for i, kv := range kvs {
		s[i] = kv.Key + "=" + string(kv.Value)
	}
	return s
}

// What publish writes, the reader reads back with --etcd-flat DIR/<service>=HOST.
func TestFlatEntriesRoundTrip(t *testing.T) {
	servers := []etcd.FlatServer{
		{Service: "shop", Name: "web.1", Address: "10.0.0.5:80"},
		{Service: "shop", Name: "web 2", Address: "[fd00::6]:8080"},
		{Service: "shop", Name: "_x", Address: "10.0.0.7:80"},
		{Service: "api/v1", Name: "a", Address: "api.internal:8080"},
	}
	m := map[string][]byte{}
	for _, kv := range etcd.FlatEntries("/vhost-gen/flat", servers) {
		m[kv.Key] = kv.Value
	}
	for service, want := range map[string][]string{
		"shop":   {"10.0.0.5:80", "10.0.0.7:80", "[fd00::6]:8080"},
		"api_v1": {"api.internal:8080"},
	} {
		d, err := etcd.ParseFlatFlag("/vhost-gen/flat/" + service + "=" + service + ".example.com")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range etcd.DecodeFlatDir(d, m) {
			if w.Problem != "" || w.Labels[routing.SettingHost] != service+".example.com" {
				t.Errorf("%s: problem %q labels %v", w.Name, w.Problem, w.Labels)
			}
			got = append(got, w.Address)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("service %s: addresses %q, want %q", service, got, want)
		}
	}
}
