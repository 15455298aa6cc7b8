package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nginx-proxy's VIRTUAL_HOST_MULTIPORTS on both proxies, nginx's conf.d checked with vhost-gen's
// output, and a broken snippet every site shares, against the real components. The snippets and
// htpasswd directories are always given explicitly: the defaults are under /etc.

// mpProblem is a problem as /routes lists it, with its warning flag (the harness's routesDoc has
// none).
type mpProblem struct {
	Workload string `json:"workload"`
	Setting  string `json:"setting"`
	Value    string `json:"value"`
	Reason   string `json:"reason"`
	Warning  bool   `json:"warning"`
}

func (p mpProblem) String() string {
	return fmt.Sprintf("%s warning=%v: %s", p.Setting, p.Warning, p.Reason)
}

// mpProblems lists a workload's problems (by its short name) from /routes.
func mpProblems(e *env, workload string) []mpProblem {
	e.t.Helper()
	_, body := httpGet("http://"+e.admin+"/routes?format=json", "")
	var d struct {
		Problems []mpProblem `json:"problems"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		e.t.Fatalf("/routes: %v\n%s", err, body)
	}
	var out []mpProblem
	for _, p := range d.Problems {
		if p.Workload == e.name(workload) {
			out = append(out, p)
		}
	}
	return out
}

// mpServers lists the servers of one route (host and path) in /routes, as "workload@address",
// sorted.
func mpServers(e *env, host, path string) []string {
	var out []string
	for _, s := range e.routes().Sites {
		if s.Host != host {
			continue
		}
		for _, r := range s.Routes {
			if r.Path == path {
				for _, sv := range r.Backend.Servers {
					out = append(out, strings.TrimPrefix(sv.Workload, e.label+"-")+"@"+sv.Address)
				}
			}
		}
	}
	slices.Sort(out) // by workload: the table's order is the proxy's concern
	return out
}

// mpHasSite says whether /routes lists a site for host.
func mpHasSite(e *env, host string) bool {
	for _, s := range e.routes().Sites {
		if s.Host == host {
			return true
		}
	}
	return false
}

// mpHealthz is /healthz's status and body.
func mpHealthz(e *env) (int, string) {
	code, body := httpGet("http://"+e.admin+"/healthz", "")
	return code, strings.TrimSpace(body)
}

// mpSettle waits until vhost-gen is healthy, with every given host in /routes, and its applies
// have stopped for a second: a reload counted after that is a new one. (A proxy can answer from
// a reload a moment before vhost-gen, whose reload has yet to return, counts it.)
func mpSettle(e *env, hosts ...string) {
	e.t.Helper()
	prev := -1.0
	filesWait(e, "vhost-gen to settle", func() error {
		if code, body := mpHealthz(e); code != 200 {
			return fmt.Errorf("/healthz %d %q", code, body)
		}
		for _, h := range hosts {
			if !mpHasSite(e, h) {
				return fmt.Errorf("%s not in /routes", h)
			}
		}
		if n := e.metric("vhostgen_applies_total"); n != prev {
			prev = n
			time.Sleep(time.Second)
			return fmt.Errorf("%v applies, still moving", n)
		}
		return nil
	})
}

// TestMultiports: VIRTUAL_HOST_MULTIPORTS in YAML (several hosts; one with "/" on port 8000,
// "/v2/" on port 9000 with dest "/", and "/py/" on a uwsgi port) and in JSON (from a label),
// beside a plain container with VIRTUAL_HOST and VIRTUAL_PORT=8000 for the same host, which joins
// the multiports "/" route's upstream: every route answers from its own port, /v2/x arrives as
// /x, both containers share "/", and the VIRTUAL_HOST and VIRTUAL_PORT beside MULTIPORTS are
// warnings (their host is not served). Each invalid form (bad YAML, a host or a path given twice,
// an unknown key, a port out of range, external_https_port) is a problem naming its line, its
// container left out whole, the others served. nginx serves the uwsgi path; on HAProxy it is a
// problem while the container's other routes are served.
func TestMultiports(t *testing.T) {
	forEachProxy(t, multiportsScenario)
}

func multiportsScenario(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--snippets-dir", t.TempDir(), "--htpasswd-dir", t.TempDir())
	www, api, ignored := e.host("www"), e.host("api"), e.host("ignored")
	jsonA, jsonB := e.host("json-a"), e.host("json-b")

	multi := fmt.Sprintf(`%s:
%s:
  "/":
    port: 8000
  "/v2/":
    port: 9000
    dest: "/"
  "/py/":
    port: 7000
    proto: uwsgi
`, www, api)
	e.run("multi", "-e", "ECHO_PORTS=80,8000,9000", "-e", "ECHO_UWSGI_PORTS=7000",
		"-e", "VIRTUAL_HOST_MULTIPORTS="+multi, "-e", "VIRTUAL_HOST="+ignored, "-e", "VIRTUAL_PORT=1")
	jsonDoc := fmt.Sprintf(`{"%s": {"/": {"port": 8000}}, "%s": {"/api/": {"port": "9000", "dest": "/v1/"}}}`, jsonA, jsonB)
	e.run("json", "-e", "ECHO_PORTS=8000,9000", "--label", "VIRTUAL_HOST_MULTIPORTS="+jsonDoc)
	e.run("plain", "-e", "ECHO_PORTS=8000", "-e", "VIRTUAL_HOST="+api, "-e", "VIRTUAL_PORT=8000")

	// The invalid forms, each in a container of its own, each naming hosts that nothing else
	// serves.
	type badCase struct {
		name, value, want string
		hosts             []string
	}
	h := func(n string) string { return e.host(n) }
	bad := []badCase{
		{"bad-yaml", h("bad-yaml-a") + ":\n" + h("bad-yaml") + ":\n  \"/\":\n    port: 80\n    dest: /x: y\n",
			"not YAML or JSON: line 5: mapping values are not allowed in this context", []string{h("bad-yaml-a"), h("bad-yaml")}},
		{"dup-host", h("dup-host") + ":\n" + h("dup-host-b") + ":\n" + strings.ToUpper(h("dup-host")) + ":\n  \"/\": {port: 80}\n",
			"line 3: host " + h("dup-host") + " again (first on line 1)", []string{h("dup-host"), h("dup-host-b")}},
		{"dup-path", h("dup-path") + ":\n  /x/: {port: 80}\n  /y/: {port: 80}\n  /x/: {port: 8000}\n",
			"line 4: host " + h("dup-path") + ": path /x/ again (first on line 2)", []string{h("dup-path")}},
		{"unknown-key", h("unknown-key") + ":\n  \"/\":\n    port: 80\n    pot: 1\n",
			"line 4: host " + h("unknown-key") + ` path /: pot "1": unknown key (port, proto, dest)`, []string{h("unknown-key")}},
		{"port-range", h("port-range") + ":\n  \"/\":\n    proto: http\n    port: 70000\n",
			"line 4: host " + h("port-range") + ` path /: port "70000": `, []string{h("port-range")}},
		{"ext-https", h("ext-https") + ":\n  \"/\":\n    port: 80\n  external_https_port: 8443\n",
			"line 4: host " + h("ext-https") + ": external_https_port is not supported", []string{h("ext-https")}},
	}
	for _, b := range bad {
		e.run(b.name, "-e", "VIRTUAL_HOST_MULTIPORTS="+b.value)
	}

	// Every valid route answers from its own port.
	e.waitBody(www, "/", "name=multi port=80 ")
	e.waitBody(api, "/v2/x", "name=multi port=9000 ")
	e.waitBody(jsonA, "/", "name=json port=8000 ")
	e.waitBody(jsonB, "/api/x", "name=json port=9000 ")
	checks := []filesResp{
		{host: www, path: "/", code: 200, name: "multi", body: "port=80 "},
		// dest "/": /v2/x arrives as /x.
		{host: api, path: "/v2/x", code: 200, name: "multi", body: "port=9000 host=" + api + " path=/x "},
		{host: api, path: "/v2/", code: 200, name: "multi", body: "port=9000 host=" + api + " path=/ "},
		{host: jsonA, path: "/", code: 200, name: "json", body: "port=8000 "},
		// The JSON's port was a string, its dest /v1/: /api/x arrives as /v1/x.
		{host: jsonB, path: "/api/x", code: 200, name: "json", body: "port=9000 host=" + jsonB + " path=/v1/x "},
		// The VIRTUAL_HOST beside MULTIPORTS is ignored: not served.
		{host: ignored, path: "/", code: 503},
	}
	for _, c := range checks {
		if err := c.check(e); err != nil {
			t.Error(err)
		}
	}

	// "/" on api: the multiports container and the plain one share the upstream, both on 8000.
	e.waitFor("multi and plain both answering "+api+"/", func() error {
		seen := map[string]int{}
		for range 30 {
			code, body := e.get(api, "/")
			if code != 200 || field(body, "port") != "8000" {
				return fmt.Errorf("%s/: %d %q, want port=8000", api, code, body)
			}
			seen[field(body, "name")]++
		}
		if len(seen) != 2 || seen["multi"] == 0 || seen["plain"] == 0 {
			return fmt.Errorf("30 requests reached %v, want multi and plain", seen)
		}
		return nil
	})
	if got := mpServers(e, api, "/"); len(got) != 2 || !strings.HasPrefix(got[0], "multi@") || !strings.HasPrefix(got[1], "plain@") ||
		!strings.HasSuffix(got[0], ":8000") || !strings.HasSuffix(got[1], ":8000") {
		t.Errorf("%s/ servers %v, want multi's and plain's, both on port 8000", api, got)
	}
	if got := mpServers(e, api, "/v2/"); len(got) != 1 || !strings.HasPrefix(got[0], "multi@") || !strings.HasSuffix(got[0], ":9000") {
		t.Errorf("%s/v2/ servers %v, want multi's on port 9000", api, got)
	}
	if got := mpServers(e, www, "/"); len(got) != 1 || !strings.HasSuffix(got[0], ":80") {
		t.Errorf("%s/ servers %v, want multi's on port 80", www, got)
	}

	// The uwsgi path: nginx speaks it; HAProxy does not, a problem, while multi's other routes
	// are served (/py/x falls to "/").
	uwsgiProblem := "host " + api + " path /py/: proto uwsgi: HAProxy does not speak uwsgi"
	if proxy == "nginx" {
		e.waitBody(api, "/py/x", "name=multi port=7000 ")
		if code, body := e.get(api, "/py/x"); code != 200 || !strings.Contains(body, "proto=uwsgi") {
			t.Errorf("%s/py/x: %d %q, want an answer over uwsgi", api, code, body)
		}
	} else {
		code, body := e.get(api, "/py/x")
		if code != 200 || strings.Contains(body, "proto=uwsgi") || field(body, "port") != "8000" {
			t.Errorf("%s/py/x: %d %q, want \"/\"'s answer (port 8000) with the uwsgi route left out", api, code, body)
		}
		if got := mpServers(e, api, "/py/"); len(got) != 0 {
			t.Errorf("%s/py/ servers %v, want none on HAProxy", api, got)
		}
	}

	// multi's problems: the settings MULTIPORTS replaces are warnings; on HAProxy, the uwsgi
	// route is a problem (not a warning).
	want := []string{
		"VIRTUAL_HOST warning=true: ignored: VIRTUAL_HOST_MULTIPORTS replaces it",
		"VIRTUAL_PORT warning=true: ignored: VIRTUAL_HOST_MULTIPORTS replaces it",
	}
	if proxy == "haproxy" {
		want = append(want, "VIRTUAL_HOST_MULTIPORTS warning=false: "+uwsgiProblem)
	}
	var got []string
	for _, p := range mpProblems(e, "multi") {
		got = append(got, p.String())
	}
	if !mpSameLines(got, want) {
		t.Errorf("multi's problems:\n%s\nwant (each beginning so):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range []string{"json", "plain"} {
		if ps := mpProblems(e, n); len(ps) != 0 {
			t.Errorf("%s: problems %v, want none", n, ps)
		}
	}

	// Each invalid form: one problem naming its line; its container left out whole.
	e.waitFor("a problem on each invalid container", func() error {
		for _, b := range bad {
			if len(mpProblems(e, b.name)) == 0 {
				return fmt.Errorf("%s: no problem yet", b.name)
			}
		}
		return nil
	})
	for _, b := range bad {
		ps := mpProblems(e, b.name)
		if len(ps) != 1 || ps[0].Setting != "VIRTUAL_HOST_MULTIPORTS" || ps[0].Warning || !strings.HasPrefix(ps[0].Reason, b.want) {
			t.Errorf("%s: problems %v, want one error on VIRTUAL_HOST_MULTIPORTS beginning %q", b.name, ps, b.want)
		} else {
			t.Logf("%s: %s", b.name, ps[0].Reason)
		}
		for _, host := range b.hosts {
			if mpHasSite(e, host) {
				t.Errorf("%s: %s is in /routes, want the container left out", b.name, host)
			}
			if code, body := e.get(host, "/"); code != 503 {
				t.Errorf("%s: %s/ %d %q, want 503 (not served)", b.name, host, code, strings.TrimSpace(body))
			}
		}
	}
	if cfg := e.config(); strings.Contains(cfg, ignored) || strings.Contains(cfg, "bad-yaml") || strings.Contains(cfg, "external_https_port") {
		t.Errorf("an ignored host or an invalid container reached the config:\n%s", cfg)
	}
	// The others are still served, the problems notwithstanding.
	for _, c := range checks {
		if err := c.check(e); err != nil {
			t.Errorf("at the end: %v", err)
		}
	}
	if code, body := mpHealthz(e); code != 200 {
		t.Errorf("/healthz %d %q, want 200", code, body)
	}
}

// mpSameLines says whether got has as many lines as want, each beginning with its want, in
// sorted order.
func mpSameLines(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			return false
		}
	}
	return true
}

// TestConfDChecked (nginx): the harness's nginx.conf includes conf.d/*.conf, where vhost-gen's
// --out lives. An operator's extra.conf added there is checked with the output, its SHA-256
// written in the config, and in effect after the reload (its server answers with its map's
// value). A broken.conf added next fails every apply: /healthz says 503 with nginx's message
// naming broken.conf, the live config and serving are unchanged (same file, same master, no
// reload, the site answering throughout), nothing is quarantined, and a container started
// meanwhile is not served; removing broken.conf recovers by itself: /healthz 200 and the new
// container served.
func TestConfDChecked(t *testing.T) {
	e := newProxyEnv(t, "nginx", nil, "--proxy-networks", "bridge", "--snippets-dir", t.TempDir(), "--htpasswd-dir", t.TempDir())
	site, late := e.host("site"), e.host("late")
	confD := filepath.Dir(e.out)
	e.run("site", "-e", "VIRTUAL_HOST="+site)
	e.waitBody(site, "/", "name=site ")

	// A valid extra.conf: checked, hashed into the config, loaded by the reload.
	extraPort := freePort(t)
	extra := fmt.Sprintf(`map $host $vhost_gen_test_extra { default 1; }
server {
    listen 127.0.0.1:%d;
    location / { return 200 "extra=$vhost_gen_test_extra\n"; }
}
`, extraPort)
	writeFile(t, filepath.Join(confD, "extra.conf"), extra)
	sum := sha256.Sum256([]byte(extra))
	extraLine := "extra.conf " + hex.EncodeToString(sum[:])
	extraURL := "http://127.0.0.1:" + strconv.Itoa(extraPort) + "/"
	extraOK := func() error {
		if code, body := httpGet(extraURL, ""); code != 200 || strings.TrimSpace(body) != "extra=1" {
			return fmt.Errorf("extra.conf's server: %d %q, want 200 \"extra=1\"", code, body)
		}
		return nil
	}
	filesWait(e, "extra.conf in the config and in effect", func() error {
		if !strings.Contains(e.config(), extraLine) {
			return fmt.Errorf("the config does not list %q", extraLine)
		}
		if code, body := mpHealthz(e); code != 200 {
			return fmt.Errorf("/healthz %d %q", code, body)
		}
		return extraOK()
	})
	e.waitBody(site, "/", "name=site ")
	mpSettle(e, site)

	// broken.conf: every apply fails; the live config stays.
	pid, reloads, cfg := filesProxyPID(e), e.reloads(), e.config()
	poll := filesPoll(e, site, "site")
	writeFile(t, filepath.Join(confD, "broken.conf"), "this is not nginx;\n")
	const nginxMsg = `unknown directive "this"`
	failing := func() error {
		code, body := mpHealthz(e)
		if code != 503 || !strings.Contains(body, "last apply failed") || !strings.Contains(body, nginxMsg) || !strings.Contains(body, "broken.conf") {
			return fmt.Errorf("/healthz %d %q, want 503 with nginx's %s naming broken.conf", code, body, nginxMsg)
		}
		return nil
	}
	filesWait(e, "/healthz to report the failed apply", failing)
	_, hz := mpHealthz(e)
	t.Logf("/healthz with broken.conf: %s", hz)

	// A container started meanwhile: its apply is blocked too.
	e.run("late", "-e", "VIRTUAL_HOST="+late)
	filesWait(e, "late in the table (an apply attempted with it)", func() error {
		if !mpHasSite(e, late) {
			return fmt.Errorf("%s not in /routes", late)
		}
		return nil
	})
	checkFailed := e.metric("vhostgen_applies_total", `result="check_failed"`)
	filesWait(e, "another failed attempt (the apply is retried)", func() error {
		if n := e.metric("vhostgen_applies_total", `result="check_failed"`); n <= checkFailed {
			return fmt.Errorf("check_failed applies %v", n)
		}
		return nil
	})
	if err := failing(); err != nil {
		t.Error(err)
	}
	if code, body := e.get(late, "/"); code != 503 {
		t.Errorf("%s/ %d %q while broken.conf blocks the apply, want 503 (not served yet)", late, code, strings.TrimSpace(body))
	}
	if now := e.config(); now != cfg {
		t.Errorf("the live config changed while broken.conf blocks the apply:\n%s", now)
	}
	if code, body := e.get(site, "/"); code != 200 || field(body, "name") != "site" {
		t.Errorf("%s/ %d %q while broken.conf blocks the apply, want site's answer", site, code, body)
	}
	if err := extraOK(); err != nil {
		t.Error(err)
	}
	if now := filesProxyPID(e); now != pid {
		t.Errorf("nginx's master process changed from %q to %q", pid, now)
	}
	if n := e.reloads(); n != reloads {
		t.Errorf("%v reloads while every apply fails, want none", n-reloads)
	}
	if n := e.metric("vhostgen_quarantined_sites"); n != 0 {
		t.Errorf("vhostgen_quarantined_sites %v, want 0: no site explains broken.conf", n)
	}
	for _, n := range []string{"site", "late"} {
		if ps := mpProblems(e, n); len(ps) != 0 {
			t.Errorf("%s: problems %v, want none", n, ps)
		}
	}

	// broken.conf removed: it recovers by itself.
	if err := os.Remove(filepath.Join(confD, "broken.conf")); err != nil {
		t.Fatal(err)
	}
	filesWait(e, "recovery: /healthz 200 and late served", func() error {
		if code, body := mpHealthz(e); code != 200 {
			return fmt.Errorf("/healthz %d %q", code, body)
		}
		if code, body := e.get(late, "/"); code != 200 || field(body, "name") != "late" {
			return fmt.Errorf("%s/ %d %q", late, code, strings.TrimSpace(body))
		}
		return nil
	})
	if cfg := e.config(); strings.Contains(cfg, "broken.conf") || !strings.Contains(cfg, extraLine) || !strings.Contains(cfg, late) {
		t.Errorf("the config after recovery should list extra.conf (not broken.conf) and serve %s:\n%s", late, cfg)
	}
	if err := extraOK(); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	ok, badAnswers := poll.end()
	if len(badAnswers) > 0 || ok == 0 {
		t.Errorf("%s while broken.conf came and went: %d requests answered, %d not:\n%s", site, ok, len(badAnswers), strings.Join(badAnswers, "\n"))
	} else {
		t.Logf("%s answered all %d requests while broken.conf came and went", site, ok)
	}
	if now := filesProxyPID(e); now != pid || pid == "" {
		t.Errorf("nginx's master process changed from %q to %q", pid, now)
	}
}

// TestSharedSnippetBroken: with two sites served, the snippet every site shares (nginx's
// default, HAProxy's default_backend) is broken. Every site fails the check on its own, so no
// site explains it: nothing is quarantined, the live config stays (same file, same master
// process, both sites answering throughout with the old snippet's effect), /healthz reports the
// failed apply with the check's message, and the apply is retried. Fixing the snippet makes it
// healthy again, with the fixed snippet's effect.
func TestSharedSnippetBroken(t *testing.T) {
	forEachProxy(t, sharedSnippetBroken)
}

func sharedSnippetBroken(t *testing.T, proxy string) {
	type files struct {
		name        string
		good        func(v string) string
		broken, msg string
	}
	f := map[string]files{
		"nginx": {name: "default", good: func(v string) string { return "add_header X-Shared " + v + " always;\n" },
			broken: "this is not a directive;\n", msg: `unknown directive "this"`},
		"haproxy": {name: "default_backend", good: func(v string) string { return "http-response set-header X-Shared " + v + "\n" },
			broken: "not-a-keyword\n", msg: "unknown keyword 'not-a-keyword'"},
	}[proxy]
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, f.name), f.good("one"))
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--snippets-dir", dir, "--htpasswd-dir", t.TempDir())
	a, b := e.host("a"), e.host("b")
	e.run("a", "-e", "VIRTUAL_HOST="+a)
	e.run("b", "-e", "VIRTUAL_HOST="+b)
	served := func(v string) func() error {
		return func() error {
			for _, r := range []filesResp{
				{host: a, path: "/", code: 200, name: "a", headers: []string{"X-Shared: " + v}},
				{host: b, path: "/", code: 200, name: "b", headers: []string{"X-Shared: " + v}},
			} {
				if err := r.check(e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	filesWait(e, "both sites with the shared snippet", served("one"))
	mpSettle(e, a, b)

	pid, reloads, cfg := filesProxyPID(e), e.reloads(), e.config()
	pa, pb := filesPoll(e, a, "a"), filesPoll(e, b, "b")
	checkFailed := e.metric("vhostgen_applies_total", `result="check_failed"`)
	writeFile(t, filepath.Join(dir, f.name), f.broken)
	failing := func() error {
		code, body := mpHealthz(e)
		if code != 503 || !strings.Contains(body, "last apply failed") || !strings.Contains(body, f.msg) {
			return fmt.Errorf("/healthz %d %q, want 503 with the check's %s", code, body, f.msg)
		}
		return nil
	}
	filesWait(e, "/healthz to report the failed apply", failing)
	_, hz := mpHealthz(e)
	t.Logf("/healthz with the shared snippet broken: %s", hz)
	// Retried, and still failing as a whole: nothing held.
	filesWait(e, "the apply retried", func() error {
		if n := e.metric("vhostgen_applies_total", `result="check_failed"`); n < checkFailed+2 {
			return fmt.Errorf("check_failed applies %v, want at least %v", n, checkFailed+2)
		}
		return nil
	})
	if err := failing(); err != nil {
		t.Error(err)
	}
	if err := served("one")(); err != nil {
		t.Errorf("with the shared snippet broken, the live config should serve both sites as before: %v", err)
	}
	if n := e.metric("vhostgen_quarantined_sites"); n != 0 {
		t.Errorf("vhostgen_quarantined_sites %v, want 0: the cause is shared", n)
	}
	for _, n := range []string{"a", "b"} {
		if ps := mpProblems(e, n); len(ps) != 0 {
			t.Errorf("%s: problems %v, want none (nothing quarantined)", n, ps)
		}
	}
	for _, host := range []string{a, b} {
		if !mpHasSite(e, host) {
			t.Errorf("%s is gone from /routes, want it kept", host)
		}
	}
	if now := e.config(); now != cfg {
		t.Errorf("the live config changed with the shared snippet broken:\n%s", now)
	}
	if n := e.reloads(); n != reloads {
		t.Errorf("%v reloads while every apply fails, want none", n-reloads)
	}
	if now := filesProxyPID(e); now != pid {
		t.Errorf("the proxy's master process changed from %q to %q", pid, now)
	}

	// Fixed: healthy again, with the fix's effect.
	writeFile(t, filepath.Join(dir, f.name), f.good("two"))
	filesWait(e, "both sites with the fixed snippet", served("two"))
	filesWait(e, "/healthz 200", func() error {
		if code, body := mpHealthz(e); code != 200 {
			return fmt.Errorf("/healthz %d %q", code, body)
		}
		return nil
	})
	if n := e.metric("vhostgen_quarantined_sites"); n != 0 {
		t.Errorf("vhostgen_quarantined_sites %v after the fix, want 0", n)
	}
	for _, p := range []struct {
		host string
		poll *filesPoller
	}{{a, pa}, {b, pb}} {
		ok, bad := p.poll.end()
		if len(bad) > 0 || ok == 0 {
			t.Errorf("%s while the shared snippet was broken and fixed: %d requests answered, %d not:\n%s", p.host, ok, len(bad), strings.Join(bad, "\n"))
		} else {
			t.Logf("%s answered all %d requests while the shared snippet was broken and fixed", p.host, ok)
		}
	}
	if now := filesProxyPID(e); now != pid || pid == "" {
		t.Errorf("the proxy's master process changed from %q to %q", pid, now)
	}
}
