package integration

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The operator's files on both proxies, against the real components: the snippets directory
// (--snippets-dir, nginx-proxy's vhost.d names for nginx, HOST_backend, default_backend and
// frontend for HAProxy) and nginx-proxy's htpasswd directory (--htpasswd-dir). Both directories
// are always given explicitly: the defaults are under /etc.

// TestSnippets: with snippets in the directory at start, a host's server-level (nginx) or backend
// (HAProxy) snippet, a per-path one that wins for its path, the default one for hosts without
// their own, nginx's default_location and a location_override that replaces the location, and
// HAProxy's frontend snippet, all shape real responses. A snippet the proxy's check refuses takes
// its site alone out (503, gone from the table and the config, a problem on its workload quoting
// the proxy's message) while the running proxy (same master process) keeps answering for the
// others, without one failed request; a snippet file added later takes effect without any
// container change (and the broken site is held again after that re-render); fixing the broken
// snippet brings its site back with the fix's effect.
func TestSnippets(t *testing.T) {
	forEachProxy(t, snippetsScenario)
}

// filesResp is a response a test expects: its status, the echo's name ("" not checked; "-" for a
// response the echo did not make), a substring of its body, and headers: "Name: value" must
// have that value, "Name:" must be absent.
type filesResp struct {
	host, path string
	code       int
	name, body string
	headers    []string
}

func (r filesResp) check(e *env, reqHeaders ...string) error {
	code, body, hdr := e.fetch(r.host, r.path, reqHeaders...)
	where := fmt.Sprintf("%s%s", r.host, r.path)
	if code != r.code {
		return fmt.Errorf("%s: status %d (%q), want %d", where, code, strings.TrimSpace(body), r.code)
	}
	switch r.name {
	case "":
	case "-":
		if n := hdr.Get("X-Echo-Name"); n != "" {
			return fmt.Errorf("%s: answered by echo %q, want the proxy's own answer", where, n)
		}
	default:
		if n := field(body, "name"); n != r.name {
			return fmt.Errorf("%s: answered by %q (%q), want %q", where, n, strings.TrimSpace(body), r.name)
		}
	}
	if !strings.Contains(body, r.body) {
		return fmt.Errorf("%s: body %q lacks %q", where, body, r.body)
	}
	for _, h := range r.headers {
		k, v, _ := strings.Cut(h, ":")
		v = strings.TrimSpace(v)
		got, present := hdr.Get(k), len(hdr.Values(k)) > 0
		switch {
		case v == "" && present:
			return fmt.Errorf("%s: header %s %q, want none", where, k, got)
		case v != "" && got != v:
			return fmt.Errorf("%s: header %s %q, want %q (headers %v)", where, k, got, v, hdr)
		}
	}
	return nil
}

// filesWait polls cond until it returns nil, for up to 90 seconds: a change of a watched
// directory is seen within two polls of 2 s, then debounced, checked (bisected, when the check
// refuses it) and applied, on a machine shared with other tests.
func filesWait(e *env, what string, cond func() error) {
	e.t.Helper()
	waitWithin(e.t, what, 90*time.Second, cond)
}

// filesSHA1 is nginx-proxy's hash in file names, computed here rather than by the code under test.
func filesSHA1(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// filesPoller keeps sending requests for one host until it is ended, counting those answered 200
// by the wanted echo and keeping the others.
type filesPoller struct {
	stop, done chan struct{}
	once       sync.Once
	mu         sync.Mutex
	ok         int
	bad        []string
}

func filesPoll(e *env, host, name string) *filesPoller {
	p := &filesPoller{stop: make(chan struct{}), done: make(chan struct{})}
	e.t.Cleanup(func() { p.end() }) // a test that stops early
	// A slow answer (the machine is shared) is not a failure: only a refused, broken or wrong one.
	c := &http.Client{Timeout: 2 * time.Minute}
	url := fmt.Sprintf("http://127.0.0.1:%d/", e.port)
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			resp, err := c.Do(req)
			result := ""
			if err != nil {
				result = err.Error()
			} else {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case rerr != nil:
					result = "reading the body: " + rerr.Error()
				case resp.StatusCode != 200 || field(string(b), "name") != name:
					result = fmt.Sprintf("%d %q", resp.StatusCode, strings.TrimSpace(string(b)))
				}
			}
			p.mu.Lock()
			if result == "" {
				p.ok++
			} else {
				p.bad = append(p.bad, time.Now().Format("15:04:05.000")+" "+result)
			}
			p.mu.Unlock()
			time.Sleep(25 * time.Millisecond)
		}
	}()
	return p
}

// end stops the poller and returns how many requests were answered as wanted, and the others.
func (p *filesPoller) end() (int, []string) {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.bad
}

// filesProxyPID is the proxy's master process, from its pid file.
func filesProxyPID(e *env) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, e.proxy+".pid"))
	return strings.TrimSpace(string(b))
}

func snippetsScenario(t *testing.T, proxy string) {
	const (
		srv  = "srv.snippets.test"  // its own snippet, and a per-path one on /p2/
		dflt = "dflt.snippets.test" // the default one
		ovr  = "ovr.snippets.test"  // nginx: its "/" location replaced
		brk  = "brk.snippets.test"  // broken, then fixed
		late = "late.snippets.test" // its own snippet comes later
	)
	p2 := filesSHA1("/p2/")
	override := "location / {\n    return 200 \"override\\n\";\n}\n"
	files := map[string]map[string]string{
		"nginx": {
			srv:                          "add_header X-Snippet server always;\n",
			srv + "_" + p2 + "_location": "add_header X-Snippet-Path p2 always;\n",
			"default":                    "add_header X-Default yes always;\n",
			// expires: a directive that leaves add_header's inheritance alone.
			"default_location":         "expires 1h;\n",
			ovr + "_location_override": override,
			brk:                        "add_header X-Brk ok always;\n",
		},
		"haproxy": {
			srv + "_backend":            "http-response set-header X-Snippet backend\n",
			srv + "_" + p2 + "_backend": "http-response set-header X-Snippet-Path p2\n",
			"default_backend":           "http-response set-header X-Default yes\n",
			"frontend":                  "http-request set-header X-From-Frontend yes\n",
			brk + "_backend":            "http-response set-header X-Brk ok\n",
			// nginx's name: HAProxy reads no such file.
			ovr + "_location_override": override,
		},
	}[proxy]
	dir := t.TempDir()
	for n, c := range files {
		writeFile(t, filepath.Join(dir, n), c)
	}
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--snippets-dir", dir, "--htpasswd-dir", t.TempDir())
	e.run("srv", "-e", "VIRTUAL_HOST="+srv)
	e.run("srv-p2", "-e", "VIRTUAL_HOST="+srv, "-e", "VIRTUAL_PATH=/p2/")
	e.run("dflt", "-e", "VIRTUAL_HOST="+dflt)
	e.run("ovr", "-e", "VIRTUAL_HOST="+ovr)
	e.run("brk", "-e", "VIRTUAL_HOST="+brk)
	e.run("late", "-e", "VIRTUAL_HOST="+late)

	var want []filesResp
	if proxy == "nginx" {
		want = []filesResp{
			// The host's server snippet, not the default; default_location in its "/" location.
			{host: srv, path: "/", code: 200, name: "srv", headers: []string{"X-Snippet: server", "X-Default:", "Cache-Control: max-age=3600"}},
			// The per-path location snippet wins over default_location; its add_header replaces
			// the server's (nginx's inheritance).
			{host: srv, path: "/p2/x", code: 200, name: "srv-p2", body: "path=/p2/x", headers: []string{"X-Snippet-Path: p2", "X-Snippet:", "Cache-Control:"}},
			{host: dflt, path: "/", code: 200, name: "dflt", headers: []string{"X-Default: yes", "X-Snippet:", "Cache-Control: max-age=3600"}},
			// The override is the whole location: no proxying, no default_location; the default
			// server snippet still applies.
			{host: ovr, path: "/", code: 200, name: "-", body: "override\n", headers: []string{"X-Default: yes", "Cache-Control:"}},
			{host: brk, path: "/", code: 200, name: "brk", headers: []string{"X-Brk: ok", "X-Default:"}},
			{host: late, path: "/", code: 200, name: "late", headers: []string{"X-Default: yes", "X-Late:"}},
		}
	} else {
		want = []filesResp{
			{host: srv, path: "/", code: 200, name: "srv", headers: []string{"X-Snippet: backend", "X-Default:"}},
			// The per-path backend snippet wins over the host's.
			{host: srv, path: "/p2/x", code: 200, name: "srv-p2", body: "path=/p2/x", headers: []string{"X-Snippet-Path: p2", "X-Snippet:"}},
			{host: dflt, path: "/", code: 200, name: "dflt", headers: []string{"X-Default: yes", "X-Snippet:"}},
			// The frontend snippet: the header reaches the backend.
			{host: dflt, path: "/_headers", code: 200, body: "X-From-Frontend: yes\n", headers: []string{"X-Default: yes"}},
			{host: srv, path: "/_headers", code: 200, body: "X-From-Frontend: yes\n", headers: []string{"X-Snippet: backend"}},
			{host: ovr, path: "/", code: 200, name: "ovr", headers: []string{"X-Default: yes"}},
			{host: brk, path: "/", code: 200, name: "brk", headers: []string{"X-Brk: ok", "X-Default:"}},
			{host: late, path: "/", code: 200, name: "late", headers: []string{"X-Default: yes", "X-Late:"}},
		}
	}
	checkAll := func(skip string) error {
		var bad []string
		for _, w := range want {
			if w.host == skip {
				continue
			}
			if err := w.check(e); err != nil {
				bad = append(bad, err.Error())
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("\n%s", strings.Join(bad, "\n"))
		}
		return nil
	}
	filesWait(e, "every site answering with its snippets", func() error { return checkAll("") })
	if d := e.routes(); len(d.Problems) != 0 {
		t.Errorf("problems %+v, want none", d.Problems)
	}
	cfg := e.config()
	for _, n := range []string{srv, "default"} {
		if !strings.Contains(cfg, "# The operator's snippet "+n) {
			t.Errorf("the config does not name the snippet %s", n)
		}
	}

	// Broken: the proxy's check refuses brk's snippet. brk alone is left out; the proxy is never
	// broken: dflt answers throughout, from the same master process.
	pid := filesProxyPID(e)
	poll := filesPoll(e, dflt, "dflt")
	broken := map[string][3]string{ // file, content, the proxy's message
		"nginx":   {brk, "this is not a directive;\n", `unknown directive "this"`},
		"haproxy": {brk + "_backend", "not-a-keyword\n", "unknown keyword 'not-a-keyword'"},
	}[proxy]
	writeFile(t, filepath.Join(dir, broken[0]), broken[1])
	quarantined := func() error {
		ps := e.problemsOf("brk")
		if len(ps) != 1 || !strings.Contains(ps[0], "left out of "+brk) || !strings.Contains(ps[0], broken[2]) {
			return fmt.Errorf("brk's problems %q, want one saying it is left out of %s with %q", ps, brk, broken[2])
		}
		if code, body, _ := e.fetch(brk, "/"); code != 503 {
			return fmt.Errorf("%s: %d %q, want 503", brk, code, strings.TrimSpace(body))
		}
		return nil
	}
	filesWait(e, "brk quarantined with the proxy's message", quarantined)
	t.Logf("brk's problem: %s", e.problemsOf("brk")[0])
	for _, s := range e.routes().Sites {
		if s.Host == brk {
			t.Errorf("the quarantined %s is still in /routes", brk)
		}
	}
	if cfg := e.config(); strings.Contains(cfg, brk) || strings.Contains(cfg, strings.TrimSpace(broken[1])) {
		t.Errorf("the quarantined site or its snippet reached the live config:\n%s", cfg)
	}
	if code, body := httpGet("http://"+e.admin+"/healthz", ""); code != 200 {
		t.Errorf("/healthz %d %q, want 200: the other sites are applied", code, body)
	}
	if n := e.metric("vhostgen_quarantined_sites"); n != 1 {
		t.Errorf("vhostgen_quarantined_sites %v, want 1", n)
	}
	if err := checkAll(brk); err != nil {
		t.Errorf("with brk quarantined, the others: %v", err)
	}
	for _, n := range []string{"srv", "srv-p2", "dflt", "ovr", "late"} {
		if ps := e.problemsOf(n); len(ps) != 0 {
			t.Errorf("%s: problems %q, want none", n, ps)
		}
	}

	// A snippet file added now, no container changed: late gets its own (which replaces the
	// default). The change releases the quarantine; brk, still broken, is held again.
	lateFile := map[string][2]string{
		"nginx":   {late, "add_header X-Late yes always;\n"},
		"haproxy": {late + "_backend", "http-response set-header X-Late yes\n"},
	}[proxy]
	writeFile(t, filepath.Join(dir, lateFile[0]), lateFile[1])
	lateWant := filesResp{host: late, path: "/", code: 200, name: "late", headers: []string{"X-Late: yes", "X-Default:"}}
	filesWait(e, "late's new snippet in effect", func() error { return lateWant.check(e) })
	for i := range want {
		if want[i].host == late {
			want[i] = lateWant
		}
	}
	filesWait(e, "brk held again after the re-render", quarantined)
	if err := checkAll(brk); err != nil {
		t.Errorf("after late's snippet, the others: %v", err)
	}

	// Fixed: the site is back, with the fixed snippet's effect.
	fixed := map[string]string{
		"nginx":   "add_header X-Brk fixed always;\n",
		"haproxy": "http-response set-header X-Brk fixed\n",
	}[proxy]
	writeFile(t, filepath.Join(dir, broken[0]), fixed)
	waitBrkFixed(e, brk)
	ok, bad := poll.end()
	if len(bad) > 0 || ok == 0 {
		t.Errorf("%s while brk was broken, quarantined, released and fixed: %d requests answered, %d not:\n%s", dflt, ok, len(bad), strings.Join(bad, "\n"))
	} else {
		t.Logf("%s answered all %d requests while brk was broken and fixed", dflt, ok)
	}
	if now := filesProxyPID(e); now != pid || pid == "" {
		t.Errorf("the proxy's master process changed from %q to %q", pid, now)
	}
	if err := checkAll(brk); err != nil {
		t.Errorf("at the end, the others: %v", err)
	}
}

// TestBasicAuth: nginx-proxy's htpasswd directory on both proxies, with files made by openssl
// passwd. A host's file asks for credentials on every path of the host (401 with the realm
// "Restricted HOST" without them or with a wrong password, 200 with the right one); a per-path
// file (HOST_SHA1-OF-PATH) wins for its path, with its own users and realm; a regular expression
// host's file is named by the SHA-1 of the expression; a host without a file is open. An $apr1$
// user is let in by nginx and refused by HAProxy (which cannot check it: the userlist leaves it
// out, with a comment and a warning), while a SHA-512 crypt user of the same file works on both.
// Removing the host's file opens the host again after the watch notices, while the per-path file
// still guards its path.
func TestBasicAuth(t *testing.T) {
	forEachProxy(t, basicAuthScenario)
}

// opensslPasswd hashes a password with openssl passwd (scheme "-6": SHA-512 crypt; "-apr1").
func opensslPasswd(t *testing.T, scheme, password string) string {
	t.Helper()
	out, err := exec.Command("openssl", "passwd", scheme, password).Output()
	if err != nil {
		t.Fatalf("openssl passwd %s: %v", scheme, err)
	}
	return strings.TrimSpace(string(out))
}

func basicCreds(user, password string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func basicAuthScenario(t *testing.T, proxy string) {
	const (
		auth  = "auth.basicauth.test"
		open  = "open.basicauth.test"
		reHit = "re42.basicauth.test"
	)
	reHost := `~^re\d+\.basicauth\.test$`
	// nginx's workers (not root) read the files at each request: a directory they can enter.
	dir, err := os.MkdirTemp("", "vhost-gen-htpasswd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(dir, auth)
	writeFile(t, hostFile, "# users of the whole host\nalice:"+opensslPasswd(t, "-6", "alice-pw")+"\ncarol:"+opensslPasswd(t, "-apr1", "carol-pw")+"\n")
	writeFile(t, filepath.Join(dir, auth+"_"+filesSHA1("/api/")), "bob:"+opensslPasswd(t, "-6", "bob-pw")+"\n")
	writeFile(t, filepath.Join(dir, filesSHA1(reHost)), "rex:"+opensslPasswd(t, "-6", "rex-pw")+"\n")

	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge", "--htpasswd-dir", dir, "--snippets-dir", t.TempDir())
	e.run("a-root", "-e", "VIRTUAL_HOST="+auth)
	e.run("a-api", "-e", "VIRTUAL_HOST="+auth, "-e", "VIRTUAL_PATH=/api/")
	e.run("re", "-e", "VIRTUAL_HOST="+reHost)
	e.run("open", "-e", "VIRTUAL_HOST="+open)
	e.waitBody(open, "/", "name=open ")

	alice, bob, carol, rex := basicCreds("alice", "alice-pw"), basicCreds("bob", "bob-pw"), basicCreds("carol", "carol-pw"), basicCreds("rex", "rex-pw")
	type tc struct {
		what string
		r    filesResp
		cred []string
	}
	realm := func(r string) string { return `WWW-Authenticate: Basic realm="` + r + `"` }
	carolCode := map[string]int{"nginx": 200, "haproxy": 401}[proxy]
	cases := []tc{
		{"host, no credentials", filesResp{host: auth, path: "/", code: 401, headers: []string{realm("Restricted " + auth)}}, nil},
		{"host, wrong password", filesResp{host: auth, path: "/", code: 401}, []string{basicCreds("alice", "wrong")}},
		{"host, unknown user", filesResp{host: auth, path: "/", code: 401}, []string{basicCreds("mallory", "alice-pw")}},
		{"host, SHA-512 user", filesResp{host: auth, path: "/x", code: 200, name: "a-root"}, []string{alice}},
		{"host, the per-path file's user", filesResp{host: auth, path: "/", code: 401}, []string{bob}},
		{"host, $apr1$ user", filesResp{host: auth, path: "/", code: carolCode}, []string{carol}},
		{"path, no credentials", filesResp{host: auth, path: "/api/x", code: 401, headers: []string{realm("Restricted " + auth + "/api/")}}, nil},
		{"path, its user", filesResp{host: auth, path: "/api/x", code: 200, name: "a-api"}, []string{bob}},
		{"path, the host file's user", filesResp{host: auth, path: "/api/x", code: 401}, []string{alice}},
		{"regex host, no credentials", filesResp{host: reHit, path: "/", code: 401}, nil},
		{"regex host, its user", filesResp{host: reHit, path: "/", code: 200, name: "re"}, []string{rex}},
		{"regex host, wrong password", filesResp{host: reHit, path: "/", code: 401}, []string{basicCreds("rex", "alice-pw")}},
		{"regex host, another file's user", filesResp{host: reHit, path: "/", code: 401}, []string{alice}},
		{"open host", filesResp{host: open, path: "/", code: 200, name: "open"}, nil},
	}
	if proxy == "nginx" {
		cases = append(cases, tc{"host, $apr1$ user (nginx)", filesResp{host: auth, path: "/", code: 200, name: "a-root"}, []string{carol}})
	}
	run := func() error {
		var bad []string
		for _, c := range cases {
			if err := c.r.check(e, c.cred...); err != nil {
				bad = append(bad, c.what+": "+err.Error())
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("\n%s", strings.Join(bad, "\n"))
		}
		return nil
	}
	filesWait(e, "basic authentication on every route", run)
	_, _, hdr := e.fetch(reHit, "/")
	t.Logf("the regex host's challenge: %q", hdr.Get("WWW-Authenticate"))
	if d := e.routes(); len(d.Problems) != 0 {
		t.Errorf("problems %+v, want none", d.Problems)
	}
	cfg := e.config()
	if proxy == "nginx" {
		if !strings.Contains(cfg, `auth_basic_user_file "`+hostFile+`"`) && !strings.Contains(cfg, "auth_basic_user_file "+hostFile+";") {
			t.Errorf("the config does not point nginx at %s", hostFile)
		}
	} else {
		if !strings.Contains(cfg, "user alice password") || strings.Contains(cfg, "user carol") || strings.Contains(cfg, "$apr1$") {
			t.Errorf("the userlist should hold alice and leave carol's $apr1$ entry out:\n%s", cfg)
		}
		if !strings.Contains(cfg, "# Left out, line 3: not a crypt(3) hash (_apr1_") {
			t.Errorf("the config should say that line 3 ($apr1$) is left out:\n%s", cfg)
		}
		if log := e.vgLog.String(); !strings.Contains(log, "htpasswd entry left out of HAProxy's userlist") || !strings.Contains(log, hostFile+": line 3") {
			t.Errorf("vhost-gen should warn about carol's $apr1$ entry:\n%s", log)
		}
	}

	// The host's file removed: the host is open again, its path still guarded by its own file.
	if err := os.Remove(hostFile); err != nil {
		t.Fatal(err)
	}
	openAgain := []tc{
		{"host, no credentials", filesResp{host: auth, path: "/", code: 200, name: "a-root", headers: []string{"WWW-Authenticate:"}}, nil},
		{"path, no credentials", filesResp{host: auth, path: "/api/x", code: 401, headers: []string{realm("Restricted " + auth + "/api/")}}, nil},
		{"path, its user", filesResp{host: auth, path: "/api/x", code: 200, name: "a-api"}, []string{bob}},
		{"regex host, no credentials", filesResp{host: reHit, path: "/", code: 401}, nil},
		{"regex host, its user", filesResp{host: reHit, path: "/", code: 200, name: "re"}, []string{rex}},
	}
	cases = openAgain
	filesWait(e, "the host open again without its file", run)
	// (The per-path file's name begins with the host file's.)
	if cfg := strings.ReplaceAll(e.config(), hostFile+"_", ""); strings.Contains(cfg, hostFile) {
		t.Errorf("the config still names the removed %s", hostFile)
	}
}

// waitBrkFixed waits for the brk site (workload "brk" at host) to answer again with its fixed
// snippet's header, its problem gone and nothing quarantined.
func waitBrkFixed(e *env, brk string) {
	e.t.Helper()
	brkWant := filesResp{host: brk, path: "/", code: 200, name: "brk", headers: []string{"X-Brk: fixed"}}
	filesWait(e, "brk back with the fixed snippet", func() error { return brkWant.check(e) })
	filesWait(e, "brk's problem gone and the quarantine empty", func() error {
		if ps := e.problemsOf("brk"); len(ps) != 0 {
			return fmt.Errorf("brk's problems %q", ps)
		}
		if n := e.metric("vhostgen_quarantined_sites"); n != 0 {
			return fmt.Errorf("vhostgen_quarantined_sites %v", n)
		}
		return nil
	})
}
