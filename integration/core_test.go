package integration

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestTwoHostsAndUnknownHost(t *testing.T) {
	forEachProxy(t, twoHostsAndUnknownHost)
}

func twoHostsAndUnknownHost(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	e.run("shop", "-e", "VIRTUAL_HOST="+e.host("shop"))
	e.run("blog", "--label", "VIRTUAL_HOST="+e.host("blog"))
	e.waitBody(e.host("shop"), "/", "name=shop")
	e.waitBody(e.host("blog"), "/", "name=blog")
	if code, body := e.get(e.host("nobody"), "/"); code != 503 {
		t.Errorf("unknown host: got %d %q, want 503 from the catch-all", code, body)
	}
	// Stopping a container removes its route; the other site is untouched.
	e.docker("stop", "-t", "1", e.name("shop"))
	e.waitStatus(e.host("shop"), "/", 503)
	e.waitBody(e.host("blog"), "/", "name=blog")
}

func TestSeveralHostsAndEmptyEntries(t *testing.T) {
	forEachProxy(t, severalHostsAndEmptyEntries)
}

func severalHostsAndEmptyEntries(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	e.run("multi", "-e", fmt.Sprintf("VIRTUAL_HOST= %s, ,%s,,", e.host("one"), e.host("two")))
	e.waitBody(e.host("one"), "/", "name=multi")
	e.waitBody(e.host("two"), "/", "name=multi")
	if p := e.problem("multi"); p != "" {
		t.Errorf("empty entries should be ignored, got problem %q", p)
	}
}

func TestPortSelection(t *testing.T) {
	forEachProxy(t, portSelection)
}

func portSelection(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	e.run("single", "-e", "VIRTUAL_HOST="+e.host("single"), "-e", "ECHO_PORTS=8080", "--expose", "8080")
	e.run("with80", "-e", "VIRTUAL_HOST="+e.host("with80"), "-e", "ECHO_PORTS=80,8080", "--expose", "80", "--expose", "8080")
	e.run("chosen", "-e", "VIRTUAL_HOST="+e.host("chosen"), "-e", "ECHO_PORTS=80,9000", "--expose", "80", "--expose", "9000", "-e", "VIRTUAL_PORT=9000")
	e.run("ambiguous", "-e", "VIRTUAL_HOST="+e.host("ambiguous"), "-e", "ECHO_PORTS=8080,9000", "--expose", "8080", "--expose", "9000")
	e.waitBody(e.host("single"), "/", "port=8080")
	e.waitBody(e.host("with80"), "/", "port=80 ")
	e.waitBody(e.host("chosen"), "/", "port=9000")
	e.waitFor("a problem on the ambiguous container", func() error {
		if p := e.problem("ambiguous"); !strings.Contains(p, "VIRTUAL_PORT") || !strings.Contains(p, "8080, 9000") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
	if code, _ := e.get(e.host("ambiguous"), "/"); code != 503 {
		t.Errorf("ambiguous port: got %d, want 503 (not routed)", code)
	}
}

// TestNetworks: the proxy is on net a and b; each backend gets one server, on the first network
// (by name) it shares with the proxy; a backend only on c is a problem and breaks nothing else.
func TestNetworks(t *testing.T) {
	forEachProxy(t, networks)
}

func networks(t *testing.T, proxy string) {
	a, b, c := "a", "b", "c"
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "") // set below, once the networks exist
	na, nb, nc := e.network(a), e.network(b), e.network(c)
	e.stopVhostGen()
	e.startVhostGen("--proxy-networks", na+","+nb)

	e.run("ona", "--network", na, "-e", "VIRTUAL_HOST="+e.host("ona"))
	e.run("onbc", "--network", nc, "-e", "VIRTUAL_HOST="+e.host("onbc"))
	e.docker("network", "connect", nb, e.name("onbc"))
	e.run("both", "--network", nb, "-e", "VIRTUAL_HOST="+e.host("both"))
	e.docker("network", "connect", na, e.name("both"))
	e.run("onc", "--network", nc, "-e", "VIRTUAL_HOST="+e.host("onc"))

	e.waitBody(e.host("ona"), "/", "name=ona")
	e.waitBody(e.host("onbc"), "/", "name=onbc")
	e.waitBody(e.host("both"), "/", "name=both")
	if got, want := e.servers(e.host("both")), []string{e.ip("both", na) + ":80"}; !slices.Equal(got, want) {
		t.Errorf("backend on a and b: servers %v, want %v (network a, first by name)", got, want)
	}
	if got, want := e.servers(e.host("onbc")), []string{e.ip("onbc", nb) + ":80"}; !slices.Equal(got, want) {
		t.Errorf("backend on b and c: servers %v, want %v (the shared network b)", got, want)
	}
	e.waitFor("a problem for the backend on c only", func() error {
		if p := e.problem("onc"); !strings.Contains(p, "shares no network with the proxy") {
			return fmt.Errorf("problem %q, want one about no shared network", p)
		}
		return nil
	})
	if code, _ := e.get(e.host("onc"), "/"); code != 503 {
		t.Errorf("unreachable backend: got %d, want 503", code)
	}

	// Live network changes: disconnect from b leaves onbc without an address; reconnect restores it.
	e.docker("network", "disconnect", nb, e.name("onbc"))
	e.waitStatus(e.host("onbc"), "/", 503)
	e.waitBody(e.host("ona"), "/", "name=ona")
	e.docker("network", "connect", nb, e.name("onbc"))
	e.waitBody(e.host("onbc"), "/", "name=onbc")
}

func TestStartStopLive(t *testing.T) {
	forEachProxy(t, startStopLive)
}

func startStopLive(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	h := e.host("live")
	e.waitStatus(h, "/", 503)
	e.run("live", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=live")
	e.docker("stop", "-t", "1", e.name("live"))
	e.waitStatus(h, "/", 503)
	e.docker("start", e.name("live"))
	e.waitBody(h, "/", "name=live")
	e.docker("rm", "-f", e.name("live"))
	e.waitStatus(h, "/", 503)
}

func TestPathRouting(t *testing.T) {
	forEachProxy(t, pathRouting)
}

func pathRouting(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	h := e.host("app")
	e.run("site", "-e", "VIRTUAL_HOST="+h)
	e.run("api", "-e", "VIRTUAL_HOST="+h, "-e", "VIRTUAL_PATH=/api/", "-e", "VIRTUAL_DEST=/")
	e.run("docs", "-e", "VIRTUAL_HOST="+e.host("docs"), "-e", "VIRTUAL_PATH=/v2/")
	e.waitBody(h, "/", "name=site")
	e.waitBody(h, "/api/users", "name=api")
	if _, body := e.get(h, "/api/users"); field(body, "path") != "/users" {
		t.Errorf("VIRTUAL_DEST=/ should strip /api/: backend saw %q", field(body, "path"))
	}
	e.waitBody(e.host("docs"), "/v2/page", "path=/v2/page")
	if code, _ := e.get(e.host("docs"), "/other"); code != 404 {
		t.Errorf("path outside every route: got %d, want 404", code)
	}
}

func TestReplicasLoadBalanced(t *testing.T) {
	forEachProxy(t, replicasLoadBalanced)
}

func replicasLoadBalanced(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	h := e.host("web")
	for i := 1; i <= 3; i++ {
		e.run(fmt.Sprintf("web%d", i), "-e", "VIRTUAL_HOST="+h)
	}
	// Round robin: once the proxy has the three servers, 30 requests reach each of them.
	e.waitFor("every replica to answer", func() error {
		seen := e.names(h, 30)
		for i := 1; i <= 3; i++ {
			if seen[fmt.Sprintf("web%d", i)] == 0 {
				return fmt.Errorf("replica web%d never answered in 30 requests: %v", i, seen)
			}
		}
		return nil
	})
}

// TestRestartNoReload: restarting a container into the same state renders the same bytes and
// never reloads. The debounce (2s) covers the restart's stop-to-start gap; a network of its own
// keeps other tests' containers from taking the address while it is stopped.
func TestRestartNoReload(t *testing.T) {
	forEachProxy(t, restartNoReload)
}

func restartNoReload(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--wait", "2s:10s")
	net := e.network("own")
	e.stopVhostGen()
	e.startVhostGen("--wait", "2s:10s", "--proxy-networks", net)
	h := e.host("steady")
	e.run("steady", "-e", "VIRTUAL_HOST="+h, "--network", net)
	e.waitBody(h, "/", "name=steady")
	// The proxy can serve the new route a moment before vhost-gen counts the reload.
	e.waitFor("the route's reload to be counted", func() error {
		if e.reloads() < 1 {
			return fmt.Errorf("no reload counted yet")
		}
		return nil
	})
	before, reloads := e.config(), e.reloads()
	masterReloads := 0
	if proxy == "haproxy" {
		masterReloads = e.masterReloads()
	}
	for range 5 {
		e.docker("restart", "-t", "1", e.name("steady"))
	}
	e.waitBody(h, "/", "name=steady")
	e.waitFor("the restarts' bursts to be applied", func() error {
		if n := e.metric("vhostgen_applies_total", `result="unchanged"`); n < 1 {
			return fmt.Errorf("no unchanged apply yet")
		}
		return nil
	})
	if after := e.config(); after != before {
		t.Errorf("rendered config changed across restarts:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := e.reloads(); got != reloads {
		t.Errorf("reloads went from %v to %v across 5 restarts, want no reload", reloads, got)
	}
	if proxy == "haproxy" {
		if got := e.masterReloads(); got != masterReloads {
			t.Errorf("HAProxy's master reloaded %d times across 5 restarts, want none", got-masterReloads)
		}
	}
}

func TestInvalidNextToValid(t *testing.T) {
	forEachProxy(t, invalidNextToValid)
}

func invalidNextToValid(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	e.run("good", "-e", "VIRTUAL_HOST="+e.host("good"))
	e.run("inject", "-e", "VIRTUAL_HOST="+e.host("bad")+"; include /etc/passwd")
	e.run("badport", "-e", "VIRTUAL_HOST="+e.host("badport"), "-e", "VIRTUAL_PORT=80; return 200")
	e.run("badpath", "-e", "VIRTUAL_HOST="+e.host("badpath"), "--label", "VIRTUAL_PATH=/x { }")
	e.waitBody(e.host("good"), "/", "name=good")
	e.waitFor("problems on the three bad containers", func() error {
		for _, c := range []string{"inject", "badport", "badpath"} {
			if e.problem(c) == "" {
				return fmt.Errorf("no problem for %s", c)
			}
		}
		return nil
	})
	if p := e.problem("badpath"); !strings.HasPrefix(p, "VIRTUAL_PATH") {
		t.Errorf("badpath problem %q should name VIRTUAL_PATH", p)
	}
	conf := e.config()
	for _, bad := range []string{"passwd", "return 200", "{ }", e.host("badport")} {
		if strings.Contains(conf, bad) {
			t.Errorf("config contains %q from a bad container", bad)
		}
	}
	if !strings.Contains(e.vgLog.String(), "routing problem: container "+e.name("inject")+": VIRTUAL_HOST") {
		t.Errorf("the log should name the container and the setting:\n%s", e.vgLog.String())
	}
}

// TestOneInspectPerEvent counts Docker API calls: after the initial list, each container event
// costs at most one inspect, and nothing is listed again. It runs once, against nginx: the Docker
// side of vhost-gen does not depend on the proxy.
func TestOneInspectPerEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "--proxy-networks", "bridge")
	lists, inspects, events := e.metric("vhostgen_docker_api_requests_total", `op="container_list"`),
		e.metric("vhostgen_docker_api_requests_total", `op="container_inspect"`), e.metric("vhostgen_source_events_total")
	for i := range 4 {
		e.run(fmt.Sprintf("c%d", i), "-e", "VIRTUAL_HOST="+e.host("count"))
	}
	e.waitFor("four servers", func() error {
		if s := e.servers(e.host("count")); len(s) != 4 {
			return fmt.Errorf("servers %v", s)
		}
		return nil
	})
	e.docker("rm", "-f", e.name("c0"), e.name("c1"))
	e.waitFor("two servers", func() error {
		if s := e.servers(e.host("count")); len(s) != 2 {
			return fmt.Errorf("servers %v", s)
		}
		return nil
	})
	dl := e.metric("vhostgen_docker_api_requests_total", `op="container_list"`) - lists
	di := e.metric("vhostgen_docker_api_requests_total", `op="container_inspect"`) - inspects
	de := e.metric("vhostgen_source_events_total") - events
	t.Logf("4 starts + 2 removals: %v events, %v inspects, %v lists", de, di, dl)
	if dl != 0 {
		t.Errorf("%v container lists during events, want 0 (no re-list)", dl)
	}
	if di > de || di < 4 {
		t.Errorf("%v inspects for %v events: want at most one per event, and one per started container", di, de)
	}
}

// TestMemoryLimit: the watch sets Go's soft memory limit (internal/memlimit): the floor while the
// heap is small, or nothing when the environment has GOMEMLIMIT or GOGC.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "--proxy-networks", "bridge")
	want := float64(64 << 20)
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		want = math.MaxInt64
	}
	if got := e.metric("go_gc_gomemlimit_bytes"); got != want {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want %v", got, want)
	}
}

func TestHealth(t *testing.T) {
	forEachProxy(t, health)
}

func health(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
	e.run("healthy", "-e", "VIRTUAL_HOST="+e.host("healthy"), "--health-cmd", "/echo health", "--health-interval", "500ms")
	e.run("sick", "-e", "VIRTUAL_HOST="+e.host("sick"), "--health-cmd", "/echo unhealthy", "--health-interval", "500ms", "--health-retries", "1")
	e.waitBody(e.host("healthy"), "/", "name=healthy")
	e.waitFor("the unhealthy container's problem", func() error {
		if p := e.problem("sick"); !strings.Contains(p, "health is unhealthy") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
	if code, _ := e.get(e.host("sick"), "/"); code != 503 {
		t.Errorf("unhealthy container routed: %d", code)
	}
}

func TestHostPortAndHostNetwork(t *testing.T) {
	forEachProxy(t, hostPortAndHostNetwork)
}

func hostPortAndHostNetwork(t *testing.T, proxy string) {
	e := newProxyEnv(t, proxy, nil, "--address-mode", "host-port")
	pub, hostNet := freePort(t), freePort(t)
	e.run("published", "-e", "VIRTUAL_HOST="+e.host("published"), "-p", fmt.Sprintf("127.0.0.1:%d:80", pub))
	e.run("hostnet", "-e", "VIRTUAL_HOST="+e.host("hostnet"), "--network", "host",
		"-e", fmt.Sprintf("ECHO_PORTS=%d", hostNet), "-e", fmt.Sprintf("VIRTUAL_PORT=%d", hostNet))
	e.run("unpublished", "-e", "VIRTUAL_HOST="+e.host("unpublished"))
	e.waitBody(e.host("published"), "/", "name=published")
	e.waitBody(e.host("hostnet"), "/", "name=hostnet")
	if got, want := e.servers(e.host("published")), []string{fmt.Sprintf("127.0.0.1:%d", pub)}; !slices.Equal(got, want) {
		t.Errorf("published: servers %v, want %v", got, want)
	}
	e.waitFor("a problem for the unpublished container", func() error {
		if p := e.problem("unpublished"); !strings.Contains(p, "not published") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
}

// TestCheckFailureKeepsLiveConfig: a template that renders a config the proxy's check rejects
// (nginx -t, haproxy -c) whatever sites are left out never reaches the live file; the error
// carries the proxy's own message; a later good render is applied. (A config that fails because
// of one site is the quarantine's: TestQuarantine.)
func TestCheckFailureKeepsLiveConfig(t *testing.T) {
	forEachProxy(t, checkFailureKeepsLiveConfig)
}

// badTemplates render a valid config, except when a container named "...-breaker" runs: then a
// directive the proxy does not know, outside any site, which its check reports with the message
// given.
var badTemplates = map[string]struct{ text, message string }{
	"nginx": {`{{ range .Workloads }}{{ if hasSuffix "-breaker" .Name }}this_is_not_a_directive;{{ end }}{{ end }}
server { listen {{ .Listen }}; {{ range .Sites }}location = /{{ .Host }} { return 200 "{{ .Host }}"; }{{ end }} }
`, "unknown directive"},
	"haproxy": {`global
    stats socket {{ .Runtime }} mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http
    bind {{ bindAddr .Listen }}
{{- range .Workloads }}{{ if hasSuffix "-breaker" .Name }}
    this_is_not_a_keyword{{ end }}{{ end }}
{{- range .Sites }}
    http-request return status 200 content-type text/plain string "{{ .Host }}" if { path /{{ .Host }} }
{{- end }}
    http-request return status 404
`, "unknown keyword 'this_is_not_a_keyword'"},
}

func checkFailureKeepsLiveConfig(t *testing.T, proxy string) {
	tmpl := t.TempDir() + "/bad.tmpl"
	writeFile(t, tmpl, badTemplates[proxy].text)
	e := newProxyEnv(t, proxy, nil, "--template", tmpl)
	// Host networking gives these containers an address without a shared network; each needs a
	// port of its own.
	e.run("fine", "-e", "VIRTUAL_HOST="+e.host("fine"), "--network", "host", "-e", fmt.Sprintf("ECHO_PORTS=%d", freePort(t)))
	e.waitBody("", "/"+e.host("fine"), e.host("fine"))
	good := e.config()
	e.run("breaker", "-e", "VIRTUAL_HOST="+e.host("broken"), "--network", "host", "-e", fmt.Sprintf("ECHO_PORTS=%d", freePort(t)))
	e.waitFor("a failed check", func() error {
		if e.metric("vhostgen_applies_total", `result="check_failed"`) < 1 {
			return fmt.Errorf("no check failure yet")
		}
		return nil
	})
	if e.config() != good {
		t.Errorf("the live config changed after a failed check")
	}
	if msg := badTemplates[proxy].message; !strings.Contains(e.vgLog.String(), msg) {
		t.Errorf("the log should carry %s's message (%q):\n%s", proxy, msg, e.vgLog.String())
	}
	if code, _ := httpGet("http://"+e.admin+"/healthz", ""); code != 503 {
		t.Errorf("/healthz after a failed apply: %d, want 503", code)
	}
	e.waitBody("", "/"+e.host("fine"), e.host("fine")) // the proxy still serves the last good config
	e.docker("rm", "-f", e.name("breaker"))
	e.waitFor("recovery", func() error {
		if code, body := httpGet("http://"+e.admin+"/healthz", ""); code != 200 {
			return fmt.Errorf("healthz %d %s", code, body)
		}
		return nil
	})
}

// TestRenderAndRoutesCommands runs once, against nginx: it tests the one-shot render and routes
// commands, which do not talk to the running proxy.
func TestRenderAndRoutesCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "--proxy-networks", "bridge")
	e.run("shown", "-e", "VIRTUAL_HOST="+e.host("shown"))
	e.run("wrong", "-e", "VIRTUAL_HOST="+e.host("wrong"), "-e", "VIRTUAL_WEIGHT=heavy")
	e.waitBody(e.host("shown"), "/", "name=shown")
	filter := labelKey + "=" + e.label
	out, errOut, err := vhostGenCmd(t, "render", "--label-filter", filter, "--proxy-networks", "bridge")
	if err != nil {
		t.Fatalf("render: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "server_name "+e.host("shown")+";") {
		t.Errorf("render output lacks the site:\n%s", out)
	}
	if !strings.Contains(errOut, "container "+e.name("wrong")+": VIRTUAL_WEIGHT \"heavy\" (env)") {
		t.Errorf("render should print the problem on stderr, got:\n%s", errOut)
	}
	out, _, err = vhostGenCmd(t, "routes", "--label-filter", filter, "--proxy-networks", "bridge", "--json")
	if err != nil || !strings.Contains(out, `"host": "`+e.host("shown")+`"`) || !strings.Contains(out, `"setting": "VIRTUAL_WEIGHT"`) {
		t.Errorf("routes --json: %v\n%s", err, out)
	}
	// An unreachable engine is an error, not an empty config.
	_, errOut, err = vhostGenCmd(t, "render", "--label-filter", filter)
	if err != nil {
		t.Fatalf("render: %v %s", err, errOut)
	}
	if out, errOut, err := vhostGenCmdEnv(t, []string{"DOCKER_HOST=unix:///nonexistent.sock"}, "render"); err == nil || out != "" {
		t.Errorf("render with no engine: err %v, stdout %q, stderr %q; want an error and no output", err, out, errOut)
	}
}
