package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nginx-proxy's gateway settings DEFAULT_HOST, DEFAULT_ROOT and SERVER_TOKENS, and its
// loadbalance and keepalive labels, on both proxies.

const (
	lbLabel = "com.github.nginx-proxy.nginx-proxy.loadbalance"
	kaLabel = "com.github.nginx-proxy.nginx-proxy.keepalive"
)

// noRedirects is a client that shows redirects rather than follows them.
var noRedirects = &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// fetch sends one request through the proxy with the Host header (none: the proxy's address) and
// extra headers ("Name: value"), and returns the status, the body and the headers; a request that
// fails is status 0 with the error as its body.
func (e *env) fetch(host, path string, header ...string) (int, string, http.Header) {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", e.port, path), nil)
	if host != "" {
		req.Host = host
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// problemsOf lists a workload's problems (by its short name; "" for the table's own) as
// "SETTING: reason".
func (e *env) problemsOf(workload string) []string {
	want := ""
	if workload != "" {
		want = e.name(workload)
	}
	var out []string
	for _, p := range e.routes().Problems {
		if p.Workload == want {
			out = append(out, p.Setting+": "+p.Reason)
		}
	}
	return out
}

var versionInServer = regexp.MustCompile(`[0-9]+\.[0-9]+`)

// TestDefaultHostAndRoot: with DEFAULT_HOST, DEFAULT_ROOT and SERVER_TOKENS from nginx-proxy's
// environment, a host no site claims gets DEFAULT_HOST's site (every path of it), "/" on a host
// whose containers all have a VIRTUAL_PATH answers DEFAULT_ROOT, and nginx tells no version; with
// DEFAULT_HOST's containers gone, unknown hosts get 503 again and the table warns. Then, by
// flags: a DEFAULT_HOST whose site has paths only, and a DEFAULT_ROOT that redirects.
func TestDefaultHostAndRoot(t *testing.T) {
	forEachProxy(t, defaultHostAndRoot)
}

func defaultHostAndRoot(t *testing.T, proxy string) {
	const www, paths, other = "www.defaults.test", "paths.defaults.test", "other.defaults.test"
	e := newProxyEnv(t, proxy, []string{"DEFAULT_HOST=" + www, "DEFAULT_ROOT=418", "SERVER_TOKENS=off"}, "--proxy-networks", "bridge")
	e.run("www", "-e", "VIRTUAL_HOST="+www)
	e.run("www-api", "-e", "VIRTUAL_HOST="+www, "-e", "VIRTUAL_PATH=/api/")
	e.run("paths", "--label", "VIRTUAL_HOST="+paths, "--label", "VIRTUAL_PATH=/app/")
	e.run("other", "-e", "VIRTUAL_HOST="+other)
	e.waitBody(www, "/", "name=www ")
	e.waitBody(www, "/api/x", "name=www-api ")
	e.waitBody(paths, "/app/x", "name=paths ")
	e.waitBody(other, "/", "name=other ")

	// Unknown hosts, and a request without a Host header of a site's, get DEFAULT_HOST's site,
	// each of its paths; the other sites are still their own.
	for _, h := range []string{"unknown.example.com", "10.9.8.7", ""} {
		if code, body, _ := e.fetch(h, "/"); code != 200 || field(body, "name") != "www" {
			t.Errorf("host %q /: got %d %q, want DEFAULT_HOST's www", h, code, body)
		}
		if code, body, _ := e.fetch(h, "/api/v1"); code != 200 || field(body, "name") != "www-api" {
			t.Errorf("host %q /api/v1: got %d %q, want DEFAULT_HOST's www-api", h, code, body)
		}
	}
	if code, body, _ := e.fetch(other, "/"); code != 200 || field(body, "name") != "other" {
		t.Errorf("other: got %d %q", code, body)
	}
	// DEFAULT_ROOT on a host with paths only: "/" and every path but its own.
	for _, p := range []string{"/", "/index.html", "/apps"} {
		if code, body, _ := e.fetch(paths, p); code != 418 {
			t.Errorf("%s%s: got %d %q, want DEFAULT_ROOT's 418", paths, p, code, body)
		}
	}
	// SERVER_TOKENS=off: no version in the Server header (HAProxy sends none of its own).
	for _, h := range []string{paths, "unknown.example.com"} {
		_, _, hdr := e.fetch(h, "/")
		if s := hdr.Get("Server"); versionInServer.MatchString(s) {
			t.Errorf("%s: Server %q tells a version with SERVER_TOKENS=off", h, s)
		}
	}
	if ps := e.problemsOf(""); len(ps) != 0 {
		t.Errorf("table problems %v, want none", ps)
	}

	// DEFAULT_HOST's containers gone: unknown hosts get 503, with a warning; the others are
	// untouched.
	e.docker("rm", "-f", e.name("www"), e.name("www-api"))
	e.waitStatus("unknown.example.com", "/", 503)
	e.waitFor("a warning about DEFAULT_HOST", func() error {
		if ps := e.problemsOf(""); len(ps) != 1 || !strings.HasPrefix(ps[0], "DEFAULT_HOST: no site has this name") {
			return fmt.Errorf("table problems %v", ps)
		}
		return nil
	})
	e.waitBody(other, "/", "name=other ")
	e.waitStatus(paths, "/", 418)

	t.Run("flags", func(t *testing.T) {
		const target = "https://elsewhere.example/start?from=root&x=%2F"
		e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--default-host", "PATHS.defaults.test",
			"--default-root", "302 "+target, "--server-tokens", "on")
		e.run("paths", "-e", "VIRTUAL_HOST="+paths, "-e", "VIRTUAL_PATH=/app/")
		e.run("other", "-e", "VIRTUAL_HOST="+other)
		e.waitBody(paths, "/app/x", "name=paths ")
		e.waitBody(other, "/", "name=other ")
		// DEFAULT_HOST's site has paths only: unknown hosts get its path, and its "/" redirects.
		e.waitBody("unknown.example.com", "/app/y", "name=paths ")
		for _, h := range []string{paths, "unknown.example.com"} {
			code, body, hdr := e.fetch(h, "/")
			if code != 302 || hdr.Get("Location") != target {
				t.Errorf("%s /: got %d Location %q %q, want 302 to %s", h, code, hdr.Get("Location"), body, target)
			}
		}
		if code, body, _ := e.fetch(other, "/"); code != 200 || field(body, "name") != "other" {
			t.Errorf("other: got %d %q", code, body)
		}
		if proxy == "nginx" { // --server-tokens on: nginx's default, its version shown
			if _, _, hdr := e.fetch(paths, "/"); !versionInServer.MatchString(hdr.Get("Server")) {
				t.Errorf("Server %q: want nginx's version with --server-tokens on", hdr.Get("Server"))
			}
		}
	})
	// DEFAULT_ROOT=none: "/" on a site with paths only is not served by vhost-gen, and never by
	// another site whose name also matches (a wildcard), as nginx picks one server per request.
	t.Run("none", func(t *testing.T) {
		const wild = "*.none.test"
		e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--default-root", "none")
		e.run("paths", "-e", "VIRTUAL_HOST=paths.none.test", "-e", "VIRTUAL_PATH=/app/")
		e.run("wild", "-e", "VIRTUAL_HOST="+wild)
		e.waitBody("paths.none.test", "/app/x", "name=paths ")
		e.waitBody("else.none.test", "/", "name=wild ")
		if code, body, _ := e.fetch("paths.none.test", "/"); code == 200 || strings.Contains(body, "name=") {
			t.Errorf("paths.none.test /: got %d %q, want no site's answer", code, body)
		}
	})
}

// TestLoadBalanceKeepalive: nginx-proxy's loadbalance and keepalive labels, read into forms both
// proxies render. ip_hash sends every request of one client to one server while round robin
// alternates; a cookie hash keeps each cookie on one server; a workload whose value conflicts
// with its backend's is left out with a problem; a value that is not one of the forms is a
// problem naming the label, its site served as by default, and appears nowhere in the config.
// With HAProxy, an ip_hash backend still scales through the runtime API (consistent hashing), and
// least_conn sends new requests away from a server that is busy.
func TestLoadBalanceKeepalive(t *testing.T) {
	forEachProxy(t, loadBalanceKeepalive)
}

func loadBalanceKeepalive(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	ip, rr, ck, lc, bad := e.host("ip"), e.host("rr"), e.host("ck"), e.host("lc"), e.host("bad")
	for i := 1; i <= 3; i++ {
		n := strconv.Itoa(i)
		e.run("ip-"+n, "-e", "VIRTUAL_HOST="+ip, "--label", lbLabel+"=ip_hash;", "--label", kaLabel+"=4")
		e.run("rr-"+n, "-e", "VIRTUAL_HOST="+rr)
		e.run("ck-"+n, "-e", "VIRTUAL_HOST="+ck, "--label", lbLabel+"=hash $cookie_SID consistent")
	}
	e.run("lc-1", "-e", "VIRTUAL_HOST="+lc, "--label", lbLabel+"=least_conn", "--label", kaLabel+"=disabled")
	e.run("lc-2", "-e", "VIRTUAL_HOST="+lc, "--label", lbLabel+"= least_conn ; ")
	e.run("lc-x", "-e", "VIRTUAL_HOST="+lc, "--label", lbLabel+"=random two least_conn")
	e.run("bad", "-e", "VIRTUAL_HOST="+bad, "--label", lbLabel+"=least_conn; include /etc/passwd", "--label", kaLabel+"=lots")

	e.waitFor("every server in the table", func() error {
		for _, h := range []string{ip, rr, ck} {
			if n := len(e.servers(h)); n != 3 {
				return fmt.Errorf("%s: %d servers", h, n)
			}
		}
		if n := len(e.servers(lc)); n != 2 {
			return fmt.Errorf("%s: %d servers", lc, n)
		}
		return nil
	})
	// Round robin: every server, in turn.
	e.waitFor("round robin over the three", func() error {
		seen := e.names(rr, 30)
		for _, n := range []string{"rr-1", "rr-2", "rr-3"} {
			if seen[n] < 8 {
				return fmt.Errorf("30 requests: %v, want each of three about 10 times", seen)
			}
		}
		return nil
	})
	// ip_hash: this client (127.0.0.1) always reaches one server.
	e.waitFor("ip_hash to answer", func() error {
		if code, body := e.get(ip, "/"); code != 200 {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	if seen := e.names(ip, 30); len(seen) != 1 {
		t.Errorf("ip_hash: 30 requests from one client reached %v, want one server", seen)
	}
	// A cookie hash: one server per cookie value; the values spread.
	spread := map[string]bool{}
	for _, v := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		got := map[string]bool{}
		for range 4 {
			code, body, _ := e.fetch(ck, "/", "Cookie: SID="+v)
			if code != 200 {
				t.Fatalf("cookie %s: %d %q", v, code, body)
			}
			got[field(body, "name")] = true
		}
		if len(got) != 1 {
			t.Errorf("cookie SID=%s reached %v, want one server", v, got)
		}
		for n := range got {
			spread[n] = true
		}
	}
	if len(spread) < 2 {
		t.Errorf("12 cookie values all reached %v, want them spread", spread)
	}
	// The conflicting workload is left out, with a problem naming the label; least_conn's two
	// servers share the traffic.
	e.waitFor("a problem on lc-x", func() error {
		if ps := e.problemsOf("lc-x"); len(ps) != 1 || !strings.Contains(ps[0], lbLabel+` "random two least_conn" differs from the other servers' "least_conn"`) {
			return fmt.Errorf("problems %v", ps)
		}
		return nil
	})
	if seen := e.names(lc, 20); seen["lc-x"] != 0 || seen["lc-1"] == 0 || seen["lc-2"] == 0 {
		t.Errorf("least_conn: 20 requests reached %v, want lc-1 and lc-2 only", seen)
	}
	// A value that is none of the forms: a problem naming the label and the value; its site is
	// served as by default.
	e.waitBody(bad, "/", "name=bad ")
	ps := strings.Join(e.problemsOf("bad"), "\n")
	for _, want := range []string{lbLabel + ": must be one of", kaLabel + ": must be auto, disabled or a number"} {
		if !strings.Contains(ps, want) {
			t.Errorf("bad: problems %q, want %q", ps, want)
		}
	}
	cfg := e.config()
	if strings.Contains(cfg, "passwd") || strings.Contains(cfg, "lots") {
		t.Errorf("a refused label's value reached the config:\n%s", cfg)
	}
	wantCfg := map[string][]string{
		"nginx":   {"ip_hash;", "hash $vhost_gen_sticky_", "least_conn;", "keepalive 4;", "# From the keepalive label (disabled)"},
		"haproxy": {"balance source", "hash-type consistent", "balance hash req.cook(SID)", "balance leastconn", "http-reuse never", "option http-server-close"},
	}
	for _, s := range wantCfg[proxy] {
		if !strings.Contains(cfg, s) {
			t.Errorf("the config lacks %q", s)
		}
	}
	if proxy != "haproxy" {
		return
	}

	// HAProxy: an ip_hash backend hashes consistently, so a new server goes in through the
	// runtime API, without a reload.
	reloads := e.masterReloads()
	e.run("ip-4", "-e", "VIRTUAL_HOST="+ip, "--label", lbLabel+"=ip_hash", "--label", kaLabel+"=4")
	e.waitFor("ip-4 in HAProxy", func() error {
		state, err := e.runtimeAPI("show servers state")
		if err != nil || !strings.Contains(state, " "+e.name("ip-4")+" ") {
			return fmt.Errorf("show servers state: %v\n%s", err, state)
		}
		return nil
	})
	if got := e.masterReloads(); got != reloads {
		t.Errorf("a server added to an ip_hash backend: HAProxy's master reloaded %d times, want 0", got-reloads)
	}
	if seen := e.names(ip, 20); len(seen) != 1 {
		t.Errorf("ip_hash after scaling: 20 requests reached %v, want one server", seen)
	}

	// HAProxy: least_conn avoids a server that holds a request (one whose body is still coming:
	// HAProxy passes the headers on at once, nginx buffers the body first).
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(e.port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\nx", lc)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the held request: %v", err)
	}
	held := resp.Header.Get("X-Echo-Name")
	if held != "lc-1" && held != "lc-2" {
		t.Fatalf("the held request reached %q", held)
	}
	if seen := e.names(lc, 10); seen[held] != 0 {
		t.Errorf("least_conn: with a request held on %s, 10 requests reached %v, want the other server only", held, seen)
	}
}
