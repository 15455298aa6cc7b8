package integration

import (
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// nginx-proxy's regular-expression hosts, NETWORK_ACCESS and VIRTUAL_PROTO, through the real
// proxies.

// answeredBy is who answered a request: the echo's name on 200, else the status.
func answeredBy(code int, body string) string {
	if code == 200 {
		if n := field(body, "name"); n != "" {
			return n
		}
	}
	return strconv.Itoa(code)
}

// hostCase is a request's Host header and who must answer it: an echo's name, or a status.
type hostCase struct {
	host, want, why string
}

// regexHostCases are answered by the sites of regexHosts. Sites: exact api1.rx.test; leading
// wildcards *.rx.test and the longer *.eu.rx.test; trailing wildcards api1.* and the longer
// api1.eu.*; regular expressions ~^API\d+\.(?:ry|rz)\.test$ (re-api, in upper case as written:
// it matches in any case) and ~^(?:[a-z]+)\d+\.r[xy]\.test$ (re-any, sorted first: '(' < 'A').
var regexHostCases = []hostCase{
	{"api1.rx.test", "exact", "an exact name over *.rx.test, api1.* and re-any"},
	{"API1.Rx.TEST", "exact", "names match in any case"},
	{"api2.rx.test", "lead", "a leading wildcard over a regular expression (re-any)"},
	{"api1.foo.rx.test", "lead", "a leading wildcard over a trailing one (api1.*)"},
	{"api1.eu.rx.test", "long", "the longest leading wildcard"},
	{"api1.eu.zz.test", "long", "the longest trailing wildcard"},
	{"api1.ry.test", "trail", "a trailing wildcard over both regular expressions"},
	{"api2.ry.test", "re-any", "of two matching regular expressions the first in sorted order, not the first started nor the narrower"},
	{"WEB7.RY.TEST", "re-any", "a regular expression, in any case"},
	{"API3.RZ.TEST", "re-api", "a regular expression, in any case"},
	{"api3.rz.test:8080", "re-api", "a regular expression matches the host without the port"},
	{"xapi3.rz.test", "503", "^ anchors"},
	{"api3.rz.test.evil", "503", "$ anchors"},
	{"api.rz.test", "503", `\d+ needs a digit`},
	{"rx.test", "503", "*.rx.test is not rx.test"},
}

// badRegexHosts are VIRTUAL_HOST regular expressions that must be refused (a problem on their
// workload), by the workload's short name.
var badRegexHosts = map[string]string{
	"bad-paren": `~^(api`,
	"bad-look":  `~^a(?=b)`,
	"bad-space": `~^a b`,
	"bad-quote": `~^a"b`,
	"bad-semi":  `~^a;b`,
}

// TestRegexHosts: VIRTUAL_HOST regular expressions ("~...") on both proxies, with nginx's
// precedence: an exact name, then the longest leading wildcard, then the longest trailing one,
// then the regular expressions in sorted order (not the order the containers came in); they match
// in any case, anchored only where they say so. Invalid expressions are a VIRTUAL_HOST problem on
// their workload alone, never reach the config, and the proxy keeps taking new configs: a site
// added after them is served, and every other site still answers as before.
func TestRegexHosts(t *testing.T) {
	forEachProxy(t, regexHosts)
}

func regexHosts(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	// re-api before re-any: the sorted order, not the containers', decides between them.
	e.run("re-api", "-e", `VIRTUAL_HOST=~^API\d+\.(?:ry|rz)\.test$`)
	e.run("re-any", "-e", `VIRTUAL_HOST=~^(?:[a-z]+)\d+\.r[xy]\.test$`)
	e.run("exact", "-e", "VIRTUAL_HOST=api1.rx.test")
	e.run("lead", "-e", "VIRTUAL_HOST=*.rx.test")
	e.run("long", "-e", "VIRTUAL_HOST=*.eu.rx.test,api1.eu.*")
	e.run("trail", "-e", "VIRTUAL_HOST=api1.*")

	mismatches := func() []string {
		var bad []string
		for _, c := range regexHostCases {
			code, body, _ := e.fetch(c.host, "/")
			if got := answeredBy(code, body); got != c.want {
				bad = append(bad, fmt.Sprintf("Host %s: answered by %s (%d %q), want %s (%s)", c.host, got, code, strings.TrimSpace(body), c.want, c.why))
			}
		}
		return bad
	}
	e.waitFor("every host answered by its site", func() error {
		if bad := mismatches(); len(bad) > 0 {
			return fmt.Errorf("\n%s", strings.Join(bad, "\n"))
		}
		return nil
	})
	for _, n := range []string{"re-api", "re-any", "exact", "lead", "long", "trail"} {
		if ps := e.problemsOf(n); len(ps) != 0 {
			t.Errorf("%s: problems %q, want none", n, ps)
		}
	}
	cfg := e.config()
	want := map[string][]string{
		"nginx":   {`server_name "~^API\d+\.(?:ry|rz)\.test$";`, `server_name "~^(?:[a-z]+)\d+\.r[xy]\.test$";`},
		"haproxy": {`-m reg -i '^API\d+\.(?:ry|rz)\.test$'`, `-m reg -i '^(?:[a-z]+)\d+\.r[xy]\.test$'`},
	}[proxy]
	for _, s := range want {
		if !strings.Contains(cfg, s) {
			t.Errorf("the config lacks %s", s)
		}
	}

	// Invalid expressions: a problem each, on VIRTUAL_HOST.
	for n, h := range badRegexHosts {
		e.run(n, "-e", "VIRTUAL_HOST="+h)
	}
	e.waitFor("a VIRTUAL_HOST problem on each invalid expression", func() error {
		for n, h := range badRegexHosts {
			if ps := e.problemsOf(n); len(ps) != 1 || !strings.HasPrefix(ps[0], "VIRTUAL_HOST: ") {
				return fmt.Errorf("%s (VIRTUAL_HOST=%s): problems %q, want one on VIRTUAL_HOST", n, h, ps)
			}
		}
		return nil
	})
	// A site added now is served: the proxy took the config written with the invalid workloads
	// in the table. (Its braces need nginx's quotes.)
	e.run("late", "-e", `VIRTUAL_HOST=~^late\d{2}\.rw\.test$`)
	e.waitBody("late42.rw.test", "/", "name=late ")
	if code, body, _ := e.fetch("late5.rw.test", "/"); code != 503 {
		t.Errorf("late5.rw.test: got %d %q, want 503 (\\d{2} is two digits)", code, body)
	}
	for _, bad := range mismatches() {
		t.Error(bad)
	}
	cfg = e.config()
	for n, h := range badRegexHosts {
		if strings.Contains(cfg, strings.TrimPrefix(h, "~")) {
			t.Errorf("%s: its expression %s reached the config", n, h)
		}
	}
	for _, n := range []string{"re-api", "re-any", "exact", "lead", "long", "trail", "late"} {
		if ps := e.problemsOf(n); len(ps) != 0 {
			t.Errorf("%s: problems %q, want none", n, ps)
		}
	}
}

// accessVariant is how a gateway of TestNetworkAccess runs: with --trust-downstream-proxy (by
// nginx-proxy's TRUST_DOWNSTREAM_PROXY=true), and with a --network-internal file.
type accessVariant struct {
	name  string
	trust bool
	file  bool
}

var accessVariants = []accessVariant{
	{name: "open"},
	{name: "file", file: true},
	{name: "trust", trust: true},
	{name: "trust-file", trust: true, file: true},
}

// networkInternalFile is a --network-internal file in nginx-proxy's format: a network and an
// address, neither of them the test client's (loopback).
const networkInternalFile = `# Only the office.
allow 203.0.113.0/24;
allow 198.51.100.7;   # the VPN gateway
deny all;
`

var (
	defaultInternal = []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"}
	fileInternal    = []string{"203.0.113.0/24", "198.51.100.7/32"}
)

// xffCases are the X-Forwarded-For headers TestNetworkAccess sends ("": none).
var xffCases = []string{
	"", "8.8.8.8", "10.1.2.3", "8.8.8.8, 10.1.2.3", "10.1.2.3, 8.8.8.8", "172.31.0.9", "172.32.0.1",
	"203.0.113.9", "198.51.100.7", "198.51.100.8", "fd12::1", "2001:db8::1",
}

// internal says whether a request with this X-Forwarded-For comes from an internal client: the
// last address of it with trust, else the test's own address (loopback).
func (v accessVariant) internal(xff string) bool {
	client := "127.0.0.1"
	if v.trust && xff != "" {
		parts := strings.Split(xff, ",")
		client = strings.TrimSpace(parts[len(parts)-1])
	}
	nets := defaultInternal
	if v.file {
		nets = fileInternal
	}
	a := netip.MustParseAddr(client)
	for _, n := range nets {
		if netip.MustParsePrefix(n).Contains(a) {
			return true
		}
	}
	return false
}

// TestNetworkAccess: NETWORK_ACCESS=internal on a route (a host, and one path of another host
// whose "/" is public), on both proxies, four ways: the default internal networks or a
// --network-internal file, each with and without --trust-downstream-proxy. Without trust the
// connection's address decides (the test's loopback: internal by default, not with the file) and
// a client's X-Forwarded-For changes nothing; with trust the last address of X-Forwarded-For
// decides. Outsiders get 403, insiders the backend; public routes answer everyone. A workload
// whose NETWORK_ACCESS differs from its route's is left out with a problem (it never answers),
// and an invalid value is a problem that leaves its workload out.
func TestNetworkAccess(t *testing.T) {
	forEachProxy(t, func(t *testing.T, proxy string) {
		for _, v := range accessVariants {
			t.Run(v.name, func(t *testing.T) {
				t.Parallel()
				networkAccess(t, proxy, v)
			})
		}
	})
}

func networkAccess(t *testing.T, proxy string, v accessVariant) {
	var vars, flags []string
	if v.trust {
		vars = append(vars, "TRUST_DOWNSTREAM_PROXY=true")
	}
	flags = append(flags, "--proxy-networks", "bridge")
	if v.file {
		path := filepath.Join(t.TempDir(), "network_internal.conf")
		writeFile(t, path, networkInternalFile)
		flags = append(flags, "--network-internal", path)
	}
	e := newProxyEnv(t, proxy, vars, flags...)
	const intHost, mixHost, badHost = "int.na.test", "mix.na.test", "bad.na.test"
	e.run("int", "-e", "VIRTUAL_HOST="+intHost, "-e", "NETWORK_ACCESS=internal")
	// Sorted after "int": the later workload, whatever the order they come in.
	e.run("int-ext", "-e", "VIRTUAL_HOST="+intHost, "-e", "NETWORK_ACCESS=external")
	e.run("pub", "-e", "VIRTUAL_HOST="+mixHost, "-e", "NETWORK_ACCESS=External")
	e.run("admin", "-e", "VIRTUAL_HOST="+mixHost, "-e", "VIRTUAL_PATH=/admin/", "-e", "NETWORK_ACCESS=INTERNAL")
	if v.name == "open" {
		e.run("na-bad", "-e", "VIRTUAL_HOST="+badHost, "-e", "NETWORK_ACCESS=private")
	}

	type request struct{ host, path, name string } // name: who answers an internal client
	requests := []request{{intHost, "/", "int"}, {mixHost, "/admin/x", "admin"}, {mixHost, "/", "pub"}}
	mismatches := func(xff string) []string {
		var bad []string
		for _, r := range requests {
			want := r.name
			if r.name != "pub" && !v.internal(xff) {
				want = "403"
			}
			var hdr []string
			if xff != "" {
				hdr = append(hdr, "X-Forwarded-For: "+xff)
			}
			code, body, _ := e.fetch(r.host, r.path, hdr...)
			if got := answeredBy(code, body); got != want {
				bad = append(bad, fmt.Sprintf("%s%s with X-Forwarded-For %q: answered by %s (%d %q), want %s", r.host, r.path, xff, got, code, strings.TrimSpace(body), want))
			}
		}
		return bad
	}
	e.waitFor("a problem on int-ext", func() error {
		want := ": left out of " + intHost + "/: NETWORK_ACCESS external differs from the other servers' internal"
		if ps := e.problemsOf("int-ext"); len(ps) != 1 || ps[0] != want {
			return fmt.Errorf("problems %q, want [%q]", ps, want)
		}
		return nil
	})
	e.waitFor("the routes to answer a request without X-Forwarded-For", func() error {
		if bad := mismatches(""); len(bad) > 0 {
			return fmt.Errorf("\n%s", strings.Join(bad, "\n"))
		}
		return nil
	})
	for _, xff := range xffCases {
		for _, bad := range mismatches(xff) {
			t.Error(bad)
		}
	}
	for _, n := range []string{"int", "pub", "admin"} {
		if ps := e.problemsOf(n); len(ps) != 0 {
			t.Errorf("%s: problems %q, want none", n, ps)
		}
	}
	if v.name == "open" {
		e.waitFor("a problem on na-bad", func() error {
			if ps := e.problemsOf("na-bad"); len(ps) != 1 || !strings.HasPrefix(ps[0], "NETWORK_ACCESS: must be internal or external") {
				return fmt.Errorf("problems %q", ps)
			}
			return nil
		})
		if code, body, _ := e.fetch(badHost, "/"); code != 503 {
			t.Errorf("%s (NETWORK_ACCESS=private): got %d %q, want 503 (left out)", badHost, code, body)
		}
	}
	cfg := e.config()
	want, notWant := defaultInternal, fileInternal
	if v.file {
		want, notWant = fileInternal, defaultInternal
	}
	for _, n := range want {
		if !strings.Contains(cfg, " "+n) {
			t.Errorf("the config lacks the internal network %s", n)
		}
	}
	for _, n := range notWant {
		if strings.Contains(cfg, " "+n) {
			t.Errorf("the config has the internal network %s, not one of this gateway's", n)
		}
	}
}

// TestBackendProtos: VIRTUAL_PROTO to real backends of each protocol (the echo image's). nginx
// speaks uwsgi, FastCGI (VIRTUAL_ROOT, else /var/www/public, is the document root the backend
// gets, and the script's file name), gRPC in clear text and gRPC over TLS: each answers HTTP/1.1
// requests through it. HAProxy speaks gRPC and gRPCs (HTTP/2 to the server), and refuses uwsgi
// and FastCGI with a VIRTUAL_PROTO problem on their workloads, its other sites served. Whatever
// the protocol, the backend gets the same forwarded headers as over HTTP: without
// --trust-downstream-proxy a client's X-Forwarded-* and Proxy headers never reach it (the
// client's address is the X-Forwarded-For); with it, they are passed on, the client's address
// appended. VIRTUAL_DEST with gRPC is a problem; VIRTUAL_ROOT without FastCGI is a warning, its
// site served.
func TestBackendProtos(t *testing.T) {
	forEachProxy(t, func(t *testing.T, proxy string) {
		for _, trust := range []bool{false, true} {
			t.Run(map[bool]string{false: "untrusted", true: "trusted"}[trust], func(t *testing.T) {
				t.Parallel()
				backendProtos(t, proxy, trust)
			})
		}
	})
}

func backendProtos(t *testing.T, proxy string, trust bool) {
	var vars []string
	if trust {
		vars = []string{"TRUST_DOWNSTREAM_PROXY=true"}
	}
	e := newProxyEnv(t, proxy, vars, "--proxy-networks", "bridge")
	host := func(n string) string { return n + ".pr.test" }
	e.run("web", "-e", "VIRTUAL_HOST="+host("web"), "-e", "VIRTUAL_ROOT=/srv/ignored")
	e.run("uwsgi", "-e", "VIRTUAL_HOST="+host("uwsgi"), "-e", "VIRTUAL_PROTO=uwsgi", "-e", "VIRTUAL_PORT=9000", "-e", "ECHO_UWSGI_PORTS=9000")
	e.run("fcgi", "-e", "VIRTUAL_HOST="+host("fcgi"), "-e", "VIRTUAL_PROTO=fastcgi", "-e", "VIRTUAL_ROOT=/srv/app", "-e", "VIRTUAL_PORT=9000", "-e", "ECHO_FCGI_PORTS=9000")
	e.run("fcgi-def", "-e", "VIRTUAL_HOST="+host("fcgi-def"), "-e", "VIRTUAL_PROTO=FastCGI", "-e", "VIRTUAL_PORT=9000", "-e", "ECHO_FCGI_PORTS=9000")
	e.run("grpc", "-e", "VIRTUAL_HOST="+host("grpc"), "-e", "VIRTUAL_PROTO=grpc", "-e", "VIRTUAL_PORT=50051", "-e", "ECHO_H2C_PORTS=50051")
	e.run("grpcs", "-e", "VIRTUAL_HOST="+host("grpcs"), "-e", "VIRTUAL_PROTO=grpcs", "-e", "VIRTUAL_PORT=50051", "-e", "ECHO_H2TLS_PORTS=50051")
	e.run("grpc-dest", "-e", "VIRTUAL_HOST="+host("grpc-dest"), "-e", "VIRTUAL_PROTO=grpc", "-e", "VIRTUAL_DEST=/v1/", "-e", "VIRTUAL_PORT=50051", "-e", "ECHO_H2C_PORTS=50051")

	// served: each site the proxy serves, a path, and the fields its backend must answer.
	type served struct {
		name, path string
		fields     map[string]string
	}
	sites := []served{
		{"web", "/index.html", map[string]string{"proto": ""}},
		{"grpc", "/pkg.Svc/Call", map[string]string{"proto": "HTTP/2.0"}},
		{"grpcs", "/pkg.Svc/Call", map[string]string{"proto": "HTTP/2.0"}},
	}
	refused := []string{"grpc-dest"}
	if proxy == "nginx" {
		sites = append(sites,
			served{"uwsgi", "/hello", map[string]string{"proto": "uwsgi"}},
			served{"fcgi", "/index.php", map[string]string{"proto": "fastcgi", "root": "/srv/app", "script": "/srv/app/index.php"}},
			served{"fcgi-def", "/app.php", map[string]string{"proto": "fastcgi", "root": "/var/www/public", "script": "/var/www/public/app.php"}},
		)
	} else {
		refused = append(refused, "uwsgi", "fcgi", "fcgi-def")
	}
	for _, s := range sites {
		e.waitBody(host(s.name), s.path, "name="+s.name+" ")
	}
	// Each site, several times (connections to the backend are reused where the protocol lets
	// them), with a client's X-Forwarded-For.
	for _, s := range sites {
		for i := range 5 {
			code, body, _ := e.fetch(host(s.name), fmt.Sprintf("%s?i=%d", s.path, i), "X-Forwarded-For: 6.6.6.6")
			if code != 200 {
				t.Errorf("%s%s (request %d): got %d %q, want 200", host(s.name), s.path, i, code, body)
				break
			}
			want := map[string]string{"name": s.name, "host": host(s.name), "path": s.path}
			for k, v := range s.fields {
				want[k] = v
			}
			var bad []string
			for k, v := range want {
				if got := field(body, k); got != v {
					bad = append(bad, fmt.Sprintf("%s=%q, want %q", k, got, v))
				}
			}
			// The X-Forwarded-For the backend read: the client's address alone, or with trust
			// appended to the client's. (HAProxy appends its own header line, of which the echo
			// reads the first: its X-Forwarded-For with trust is checked below, all lines.)
			wantXFF := "127.0.0.1"
			if trust {
				wantXFF = "6.6.6.6, 127.0.0.1"
			}
			if got := echoXFF(body); got != wantXFF && (!trust || proxy == "nginx") {
				bad = append(bad, fmt.Sprintf("xff=%q, want %q", got, wantXFF))
			}
			if len(bad) > 0 {
				t.Errorf("%s%s (request %d): the backend answered %s: %q", host(s.name), s.path, i, strings.Join(bad, ", "), strings.TrimSpace(body))
				break
			}
		}
	}
	// The forwarded headers the backend gets, with spoofed ones (TestForwarded's) and without
	// any; not uwsgi's, whose echo answers no headers.
	connection := func(n string) map[string]string {
		return map[string]string{
			"X-Real-Ip":         "127.0.0.1",
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  host(n),
			"X-Forwarded-Port":  strconv.Itoa(e.port),
			"X-Forwarded-Ssl":   "off",
			"Proxy":             "",
		}
	}
	for _, s := range sites {
		if s.name == "uwsgi" {
			continue
		}
		want := connection(s.name)
		if trust {
			want = map[string]string{
				"X-Real-Ip":         "127.0.0.1",
				"X-Forwarded-For":   "1.2.3.4, 127.0.0.1",
				"X-Forwarded-Proto": "https",
				"X-Forwarded-Host":  "evil",
				"X-Forwarded-Port":  "1234",
				"X-Forwarded-Ssl":   "on",
				"Proxy":             "",
			}
		}
		for _, c := range []struct {
			what       string
			sent, want map[string]string
		}{{"spoofed", spoofed, want}, {"plain", nil, connection(s.name)}} {
			got := e.backendHeaders(host(s.name), c.sent)
			if got == nil {
				t.Errorf("%s/_headers (%s request): no answer", host(s.name), c.what)
				continue
			}
			if bad := diffHeaders(got, c.want); len(bad) > 0 {
				t.Errorf("%s, %s request: the backend got %s\n(all it got: %v)", host(s.name), c.what, strings.Join(bad, ", "), got)
			}
		}
	}

	wantProblems := map[string]string{
		"grpc-dest": "VIRTUAL_DEST: works with VIRTUAL_PROTO http and https only, not grpc",
		"uwsgi":     "VIRTUAL_PROTO: HAProxy does not speak uwsgi",
		"fcgi":      "VIRTUAL_PROTO: vhost-gen's HAProxy template does not speak FastCGI",
		"fcgi-def":  "VIRTUAL_PROTO: vhost-gen's HAProxy template does not speak FastCGI",
	}
	e.waitFor("the refused workloads' problems", func() error {
		for _, n := range refused {
			if ps := e.problemsOf(n); len(ps) != 1 || !strings.HasPrefix(ps[0], wantProblems[n]) {
				return fmt.Errorf("%s: problems %q, want one starting %q", n, ps, wantProblems[n])
			}
		}
		return nil
	})
	for _, n := range refused {
		if code, body, _ := e.fetch(host(n), "/"); code != 503 {
			t.Errorf("%s (refused): got %d %q, want 503", host(n), code, body)
		}
	}
	if ps := e.problemsOf("web"); len(ps) != 1 || !strings.HasPrefix(ps[0], "VIRTUAL_ROOT: used with VIRTUAL_PROTO=fastcgi only") {
		t.Errorf("web: problems %q, want a VIRTUAL_ROOT warning", ps)
	}
	for _, s := range sites {
		if s.name == "web" {
			continue
		}
		if ps := e.problemsOf(s.name); len(ps) != 0 {
			t.Errorf("%s: problems %q, want none", s.name, ps)
		}
	}
	cfg := e.config()
	wantCfg := map[string][]string{
		"nginx":   {"uwsgi_pass uwsgi://", "fastcgi_pass ", `root "/srv/app";`, `root "/var/www/public";`, "grpc_pass grpc://", "grpc_pass grpcs://"},
		"haproxy": {" proto h2 ", " alpn h2 "},
	}[proxy]
	for _, s := range wantCfg {
		if !strings.Contains(cfg, s) {
			t.Errorf("the config lacks %q", s)
		}
	}
	if proxy == "haproxy" {
		for _, n := range refused {
			if strings.Contains(cfg, host(n)) {
				t.Errorf("the config has the refused site %s", host(n))
			}
		}
	}
}

// echoXFF is the X-Forwarded-For an echo line reports (it may hold spaces: "a, b").
func echoXFF(body string) string {
	_, rest, _ := strings.Cut(body, " xff=")
	xff, _, _ := strings.Cut(rest, " hups=")
	return xff
}

// backendHeaders sends GET /_headers through the proxy for host with extra request headers and
// returns the headers the echo backend received, by canonical name; nil when it did not answer
// 200 (the answer is logged).
func (e *env) backendHeaders(host string, extra map[string]string) map[string]string {
	e.t.Helper()
	var hdr []string
	for k, v := range extra {
		hdr = append(hdr, k+": "+v)
	}
	code, body, _ := e.fetch(host, "/_headers", hdr...)
	if code != 200 {
		e.t.Logf("%s/_headers: %d %q", host, code, body)
		return nil
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			e.t.Logf("%s/_headers: not a header line: %q in\n%s", host, line, body)
			return nil
		}
		got[http.CanonicalHeaderKey(k)] = strings.TrimSpace(v)
	}
	return got
}

// diffHeaders lists the headers whose value differs from want's ("" wants none, or an empty one).
func diffHeaders(got, want map[string]string) []string {
	var bad []string
	for k, v := range want {
		if g := got[http.CanonicalHeaderKey(k)]; g != v {
			bad = append(bad, fmt.Sprintf("%s: %q (want %q)", k, g, v))
		}
	}
	slices.Sort(bad)
	return bad
}
