package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// registryPrefix is where the publishers write (the default --etcd-prefix).
const registryPrefix = "/vhost-gen/v1/"

// TestEtcdTwoGateways: one publisher, two gateways on other processes (nginx, the same flags
// but their ports). A container started on the publisher's engine is served by both, and both
// render the same bytes (but for their own listen address, see normalisedConfig). The publisher
// killed with SIGKILL (so its lease is not revoked): its routes leave both gateways once its lease
// expires (--etcd-ttl 3s), and its keys are gone.
func TestEtcdTwoGateways(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	flags := etcdFlags(etcd.endpoint, "--proxy-networks", "bridge")
	g1 := newProxyEnv(t, "nginx", nil, flags...)
	g2 := newProxyEnv(t, "nginx", nil, flags...)
	pub := startPublisher(t, etcd, labelKey+"="+g1.label, "--publisher-id", "a", "--etcd-ttl", "3s")
	h := g1.host("shop")
	g1.run("shop", "-e", "VIRTUAL_HOST="+h)
	ip := g1.ip("shop", "bridge")
	g1.waitBody(h, "/", "name=shop")
	g2.waitBody(h, "/", "name=shop")
	for _, g := range []*env{g1, g2} {
		if got := g.servers(h); !slices.Equal(got, []string{ip + ":80"}) {
			t.Errorf("gateway %s: servers %v, want [%s:80]", g.admin, got, ip)
		}
	}
	waitUntil(t, "both gateways to render the same bytes", func() error {
		if a, b := g1.normalisedConfig(), g2.normalisedConfig(); a != b {
			return fmt.Errorf("configs differ:\n--- gateway 1\n%s\n--- gateway 2\n%s", a, b)
		}
		return nil
	})

	pub.signal(syscall.SIGKILL)
	g1.waitStatus(h, "/", 503)
	g2.waitStatus(h, "/", 503)
	for _, dir := range []string{"workloads/", "publishers/"} {
		if ks := etcd.keys(registryPrefix + dir); len(ks) != 0 {
			t.Errorf("keys left after the publisher's lease expired: %v", ks)
		}
	}
	if g1.docker("inspect", "-f", "{{.State.Running}}", g1.name("shop")) != "true" {
		t.Errorf("the container stopped: the 503 proves nothing")
	}
}

// TestEtcdPublisherRestart: a publisher restarted (within its TTL) after changes made while it was
// down (one container removed, one added) reconciles with exactly one put and one delete: the
// unchanged key is not rewritten (same mod revision), no stale key is left; then resyncs with
// nothing changed write nothing. A gateway serves the result.
func TestEtcdPublisherRestart(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	e := newProxyEnv(t, "nginx", nil, etcdFlags(etcd.endpoint, "--proxy-networks", "bridge")...)
	filter := labelKey + "=" + e.label
	keep := e.run("keep", "-e", "VIRTUAL_HOST="+e.host("keep"))
	gone := e.run("gone", "-e", "VIRTUAL_HOST="+e.host("gone"))
	pfx := registryPrefix + "workloads/a/"
	p1 := startPublisher(t, etcd, filter, "--publisher-id", "a", "--etcd-ttl", "30s")
	wantKeys(t, etcd, pfx, keep, gone)
	e.waitBody(e.host("gone"), "/", "name=gone")
	keepRev := modRevision(t, etcd, pfx+keep)

	p1.stop() // SIGTERM: the lease is not revoked, so the keys stay while the publisher is down
	e.docker("rm", "-f", e.name("gone"))
	added := e.run("added", "-e", "VIRTUAL_HOST="+e.host("added"))
	p2 := startPublisher(t, etcd, filter, "--publisher-id", "a", "--etcd-ttl", "30s", "--resync", "1s")
	wantKeys(t, etcd, pfx, keep, added)
	if r := modRevision(t, etcd, pfx+keep); r != keepRev {
		t.Errorf("the unchanged key was rewritten: mod revision %d, was %d", r, keepRev)
	}
	var puts, dels float64
	waitUntil(t, "the restart's reconcile to write one put and one delete", func() error {
		// The counters move just after the transaction that the keys show: poll.
		puts, dels = p2.metric("vhostgen_etcd_writes_total", `op="put"`), p2.metric("vhostgen_etcd_writes_total", `op="delete"`)
		if puts != 1 || dels != 1 {
			return fmt.Errorf("%v puts and %v deletes, want 1 and 1", puts, dels)
		}
		return nil
	})
	if p2.count("taking over the previous run's lease") != 1 {
		t.Errorf("the restarted publisher did not take over the previous lease")
	}
	e.waitBody(e.host("added"), "/", "name=added")
	e.waitStatus(e.host("gone"), "/", 503)
	e.waitBody(e.host("keep"), "/", "name=keep")

	// Resyncs (every second) with nothing changed write nothing.
	n := p2.count("etcd: reconciled")
	waitUntil(t, "three more resyncs", func() error {
		if c := p2.count("etcd: reconciled"); c < n+3 {
			return fmt.Errorf("%d reconciles", c)
		}
		return nil
	})
	if p, d := p2.metric("vhostgen_etcd_writes_total", `op="put"`), p2.metric("vhostgen_etcd_writes_total", `op="delete"`); p != puts || d != dels {
		t.Errorf("resyncs with nothing changed wrote: puts %v → %v, deletes %v → %v", puts, p, dels, d)
	}
	wantKeys(t, etcd, pfx, keep, added)
}

// TestEtcdOutage: etcd stopped: the gateway keeps serving its last table, /healthz answers 200
// and says "degraded"; etcd back: it converges on a change made after. Then the gateway is cut
// from etcd (its connection runs through a relay), changes are made and etcd is compacted past
// its revision; restored, it reads everything again and ends with the bytes of a freshly started
// gateway.
func TestEtcdOutage(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	relay := newTCPRelay(t, "127.0.0.1:"+strconv.Itoa(etcd.client))
	flags := etcdFlags(relay.url(), "--proxy-networks", "bridge")
	e := newProxyEnv(t, "nginx", nil, flags...)
	startPublisher(t, etcd, labelKey+"="+e.label, "--publisher-id", "a")
	h1, h2, h3 := e.host("one"), e.host("two"), e.host("three")
	one := e.run("one", "-e", "VIRTUAL_HOST="+h1)
	e.waitBody(h1, "/", "name=one")

	healthz := func() (int, string) { return httpGet("http://"+e.admin+"/healthz", "") }
	etcd.stop()
	served := 0
	check := func() string {
		t.Helper()
		if code, body := e.get(h1, "/"); code != 200 {
			t.Fatalf("request %d while etcd is down: %d %q", served, code, body)
		}
		served++
		code, body := healthz()
		if code != 200 {
			t.Fatalf("/healthz while etcd is down: %d %q", code, body)
		}
		return body
	}
	e.waitFor("/healthz to say degraded", func() error {
		if body := check(); !strings.Contains(body, "degraded") {
			return fmt.Errorf("/healthz: %q", body)
		}
		return nil
	})
	for range 10 {
		if body := check(); !strings.Contains(body, "degraded") {
			t.Fatalf("/healthz while etcd is down: %q", body)
		}
	}
	etcd.start()
	e.waitFor("/healthz to say ok", func() error {
		if code, body := healthz(); code != 200 || strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("/healthz: %d %q", code, body)
		}
		return nil
	})
	e.run("two", "-e", "VIRTUAL_HOST="+h2)
	e.waitBody(h2, "/", "name=two")

	// Cut, change, compact, restore.
	if n := e.metric("vhostgen_source_events_total", `source="etcd"`, `action="compacted"`); n != 0 {
		t.Fatalf("compacted %v times before any compaction", n)
	}
	relay.cut()
	e.docker("rm", "-f", e.name("one"))
	three := e.run("three", "-e", "VIRTUAL_HOST="+h3)
	waitUntil(t, "the publisher to write the changes", func() error {
		ks := etcd.keys(registryPrefix + "workloads/a/")
		if slices.Contains(ks, registryPrefix+"workloads/a/"+one) || !slices.Contains(ks, registryPrefix+"workloads/a/"+three) {
			return fmt.Errorf("keys %v", ks)
		}
		return nil
	})
	_, rev := etcd.get(registryPrefix)
	etcd.ctl("", "compact", strconv.FormatInt(rev, 10))
	relay.restore()
	e.waitFor("the gateway to see the compaction", func() error {
		if n := e.metric("vhostgen_source_events_total", `source="etcd"`, `action="compacted"`); n < 1 {
			return fmt.Errorf("compacted %v", n)
		}
		return nil
	})
	if !strings.Contains(e.vgLog.String(), "compacted") {
		t.Errorf("the compaction is not logged")
	}
	e.waitBody(h3, "/", "name=three")
	e.waitStatus(h1, "/", 503)
	e.waitBody(h2, "/", "name=two")
	fresh := newProxyEnv(t, "nginx", nil, flags...)
	fresh.waitBody(h3, "/", "name=three")
	waitUntil(t, "the gateway to render the bytes of a fresh one", func() error {
		if a, b := e.normalisedConfig(), fresh.normalisedConfig(); a != b {
			return fmt.Errorf("configs differ:\n--- after the compaction\n%s\n--- fresh\n%s", a, b)
		}
		return nil
	})
}

// TestEtcdMergedSources: two publishers (a and b, each picking its own containers by label) and
// the gateway's own docker source (--source docker --source etcd): all three served; a bad
// setting is a problem that says which source it came from. The same workload published twice
// (publisher c with a's label filter) is one server; when a's keys expire, c's copy keeps it.
func TestEtcdMergedSources(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	label := testLabel(t)
	const role = "vhost-gen.test-role"
	local, fromA, fromB := role+"="+label+"-local", role+"="+label+"-a", role+"="+label+"-b"
	e := newProxyEnv(t, "nginx", nil, "--source", "docker", "--source", "etcd", "--etcd-endpoints", etcd.endpoint,
		"--proxy-networks", "bridge", "--label-filter", local)
	pa := startPublisher(t, etcd, fromA, "--publisher-id", "a", "--etcd-ttl", "3s")
	startPublisher(t, etcd, fromB, "--publisher-id", "b")
	e.run("local", "--label", local, "-e", "VIRTUAL_HOST="+e.host("local"))
	e.run("pa", "--label", fromA, "-e", "VIRTUAL_HOST="+e.host("pa"))
	e.run("pb", "--label", fromB, "-e", "VIRTUAL_HOST="+e.host("pb"))
	e.run("bada", "--label", fromA, "-e", "VIRTUAL_HOST="+e.host("bada"), "-e", "VIRTUAL_PORT=99999")
	e.run("badlocal", "--label", local, "-e", "VIRTUAL_HOST="+e.host("badlocal"), "-e", "VIRTUAL_PORT=99999")
	for _, n := range []string{"local", "pa", "pb"} {
		e.waitBody(e.host(n), "/", "name="+n)
	}
	e.waitFor("problems for bada (etcd) and badlocal (docker)", func() error {
		got := map[string]string{}
		for _, p := range routesAt(t, e.admin).Problems {
			if p.Setting == "VIRTUAL_PORT" {
				got[p.Workload] = p.Source
			}
		}
		if got[e.name("bada")] != "etcd" || got[e.name("badlocal")] != "docker" {
			return fmt.Errorf("VIRTUAL_PORT problems by workload → source: %v", got)
		}
		return nil
	})

	// Published twice: counted once.
	puts := e.metric("vhostgen_source_events_total", `source="etcd"`, `action="put"`)
	startPublisher(t, etcd, fromA, "--publisher-id", "c")
	if ks := etcd.keys(registryPrefix + "workloads/c/"); len(ks) != 2 {
		t.Fatalf("publisher c wrote %v, want pa and bada", ks)
	}
	e.waitFor("the gateway to read c's two keys", func() error {
		if n := e.metric("vhostgen_source_events_total", `source="etcd"`, `action="put"`); n < puts+2 {
			return fmt.Errorf("put events %v, were %v", n, puts)
		}
		return nil
	})
	if got := e.servers(e.host("pa")); len(got) != 1 {
		t.Errorf("pa published twice: servers %v, want one", got)
	}
	if n := countProblems(t, e.admin, e.name("bada")); n != 1 {
		t.Errorf("bada published twice: %d problems, want one", n)
	}
	// a dies: its keys go with its lease, and c's copy still routes pa, once.
	pa.signal(syscall.SIGKILL)
	waitUntil(t, "a's keys to expire", func() error {
		if ks := etcd.keys(registryPrefix + "workloads/a/"); len(ks) != 0 {
			return fmt.Errorf("keys %v", ks)
		}
		return nil
	})
	e.waitFor("the gateway to read a's deletions", func() error {
		if n := e.metric("vhostgen_source_events_total", `source="etcd"`, `action="delete"`); n < 2 {
			return fmt.Errorf("delete events %v", n)
		}
		return nil
	})
	e.waitBody(e.host("pa"), "/", "name=pa")
	if got := e.servers(e.host("pa")); len(got) != 1 {
		t.Errorf("pa after a died: servers %v, want one", got)
	}
}

func countProblems(t *testing.T, admin, workload string) int {
	n := 0
	for _, p := range routesAt(t, admin).Problems {
		if p.Workload == workload {
			n++
		}
	}
	return n
}

// TestEtcdSeedLayouts: the layouts older setups write with etcdctl, read by an HAProxy gateway:
// a flat HTTP directory (--etcd-flat DIR=HOST), a TCP one (DIR=tcp:PORT), the ambassador's vhosts
// tree (--etcd-vhosts), and a directory mapped by its own DIR/_host key. The values are the echo
// containers' real addresses. Malformed and hostile entries beside the good ones are each a
// problem naming their key; the good ones are served, and nothing hostile reaches the config.
func TestEtcdSeedLayouts(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	label := testLabel(t)
	host := func(n string) string { return n + "." + label + ".test" }
	tcpPort := freePort(t)
	e := newProxyEnv(t, "haproxy", nil, etcdFlags(etcd.endpoint,
		"--etcd-flat", "/app/servers="+host("servers"),
		"--etcd-flat", "/backends/db=tcp:"+strconv.Itoa(tcpPort),
		"--etcd-flat", "/app/mapped",
		"--etcd-vhosts", "/vhosts")...)
	for _, n := range []string{"web1", "web2", "vh1", "m1"} {
		e.run(n)
	}
	e.run("db1", "-e", "ECHO_TCP_PORTS=5432")
	ip := func(n string) string { return e.ip(n, "bridge") }

	etcd.put("/app/servers/web1", ip("web1")+":80")
	etcd.put("/app/servers/web2", ip("web2")+":80\n") // etcdctl users leave newlines
	etcd.put("/backends/db/db1", ip("db1")+":5432")
	etcd.put("/vhosts/"+host("vhost")+"/services/web/vh1", ip("vh1")+":80")
	etcd.put("/app/mapped/_host", host("mapped"))
	etcd.put("/app/mapped/m1", ip("m1")+":80")
	bad := map[string]string{
		"/app/servers/not-an-address": "not-an-address",
		"/app/servers/bad-port":       "1.2.3.4:99999",
		"/app/servers/injected":       ip("web1") + ":80; include /etc/passwd",
		"/app/servers/newline":        ip("web1") + ":80\n    server evil " + ip("web2") + ":80",
		"/backends/db/injected":       ip("db1") + ":5432 check\nlisten evil",
		"/app/servers/evil key\"\n":   ip("web1") + ":80 x",
	}
	for k, v := range bad {
		etcd.put(k, v)
	}
	huge := "/app/servers/huge"
	etcd.ctl(strings.Repeat("9", 100<<10), "put", "--", huge) // the value from stdin
	bad[huge] = ""

	e.waitFor("web1 and web2 to serve "+host("servers"), func() error {
		if seen := e.names(host("servers"), 8); seen["web1"] == 0 || seen["web2"] == 0 || len(seen) != 2 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	e.waitBody(host("vhost"), "/", "name=vh1")
	e.waitBody(host("mapped"), "/", "name=m1")
	e.waitFor("the TCP service", func() error {
		if name, err := tcpGreeting(tcpPort); err != nil || name != "db1" {
			return fmt.Errorf("got %q, %v", name, err)
		}
		return nil
	})
	e.waitFor("a problem naming each bad key", func() error {
		var missing []string
		problems := routesAt(t, e.admin).Problems
		for k := range bad {
			name := k
			if strings.ContainsAny(k, " \"\n") {
				name = strconv.QuoteToASCII(k) // a hostile key is shown quoted, never raw
			}
			if !slices.ContainsFunc(problems, func(p problemDoc) bool {
				return p.Workload == name && p.Source == "etcd" && strings.Contains(p.Reason, "key "+name+":")
			}) {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("no problem naming %v; problems %+v", missing, problems)
		}
		return nil
	})
	r := routesAt(t, e.admin)
	for _, s := range r.Sites {
		if s.Host == host("servers") && len(s.Routes[0].Backend.Servers) != 2 {
			t.Errorf("%s: servers %+v, want web1 and web2 only", s.Host, s.Routes[0].Backend.Servers)
		}
	}
	if len(r.TCP) != 1 || len(r.TCP[0].Backend.Servers) != 1 || r.TCP[0].Backend.Servers[0].Address != ip("db1")+":5432" {
		t.Errorf("TCP services %+v, want db1 alone", r.TCP)
	}
	for _, s := range []string{"/etc/passwd", "evil", "99999", "listen evil"} {
		if strings.Contains(e.config(), s) {
			t.Errorf("the config contains %q:\n%s", s, e.config())
		}
	}

	// Changes in the seeds follow: a server removed, a directory remapped.
	etcd.ctl("", "del", "/app/servers/web1")
	etcd.put("/app/mapped/_host", host("remapped"))
	e.waitFor("web2 alone on "+host("servers"), func() error {
		if seen := e.names(host("servers"), 6); seen["web2"] != 6 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	e.waitBody(host("remapped"), "/", "name=m1")
	e.waitStatus(host("mapped"), "/", 503)
}

// TestEtcdPublishFlat: publish --publish-flat writes DIR/<service>/<name> = ADDRESS:PORT as its
// flags route the container (--address-mode host-port: the published port); a gateway that reads
// only that flat directory (--etcd-registry=false) serves it, and loses it with the container.
func TestEtcdPublishFlat(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	label := testLabel(t)
	legacy := "legacy." + label + ".test"
	// The container is the Compose service "shop_web": its flat directory is /app/servers/shop_web.
	e := newProxyEnv(t, "nginx", nil, etcdFlags(etcd.endpoint, "--etcd-registry=false",
		"--etcd-flat", "/app/servers/shop_web="+legacy)...)
	startPublisher(t, etcd, labelKey+"="+e.label, "--publisher-id", "a",
		"--publish-flat", "/app/servers", "--address-mode", "host-port")
	e.run("pf", "-p", "127.0.0.1::80", "--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web",
		"-e", "VIRTUAL_HOST="+e.host("shop"))
	addr := e.docker("port", e.name("pf"), "80")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("docker port: %q", addr)
	}
	key := "/app/servers/shop_web/" + e.name("pf")
	waitUntil(t, "the flat key", func() error {
		kvs, _ := etcd.get("/app/servers/")
		if len(kvs) != 1 || kvs[0].Key != key || kvs[0].Value != addr {
			return fmt.Errorf("flat keys %+v, want %s = %s", kvs, key, addr)
		}
		return nil
	})
	e.waitBody(legacy, "/", "name=pf")
	if got := e.servers(legacy); !slices.Equal(got, []string{addr}) {
		t.Errorf("servers %v, want [%s]", got, addr)
	}
	e.docker("rm", "-f", e.name("pf"))
	e.waitStatus(legacy, "/", 503)
	if ks := etcd.keys("/app/servers/"); len(ks) != 0 {
		t.Errorf("flat keys left: %v", ks)
	}
}

// TestEtcdGatewaysList: `vhost-gen gateways --json` with two gateways (g1, g2, proxy-less, the
// same flags) that agree; g2 stopped (SIGSTOP: its record stays until its lease expires) and a
// change made: g1 shows the hash of its new bytes and agrees, g2 lags. Continued, g2 catches up.
func TestEtcdGatewaysList(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	e := containerEnv(t)
	startPublisher(t, etcd, labelKey+"="+e.label, "--publisher-id", "a")
	one := e.run("one", "-e", "VIRTUAL_HOST="+e.host("one"))
	wantKeys(t, etcd, registryPrefix+"workloads/a/", one)
	// A TTL far longer than the test's steps, so that the stopped gateway's record outlives them.
	common := []string{"--proxy-networks", "bridge", "--etcd-ttl", "30s"}
	_, out1 := startBareGateway(t, etcd.endpoint, append(common, "--gateway-id", "g1")...)
	g2, out2 := startBareGateway(t, etcd.endpoint, append(common, "--gateway-id", "g2")...)
	list := func() map[string]struct{ state, sha string } {
		t.Helper()
		stdout, stderr, err := vhostGenCmd(t, "gateways", "--etcd-endpoints", etcd.endpoint, "--json")
		if err != nil {
			t.Fatalf("vhost-gen gateways: %v\n%s", err, stderr)
		}
		var d gatewaysDoc
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatalf("gateways --json: %v\n%s", err, stdout)
		}
		m := map[string]struct{ state, sha string }{}
		for _, g := range d.Gateways {
			m[g.ID] = struct{ state, sha string }{g.State, g.SHA256}
		}
		return m
	}
	waitUntil(t, "g1 and g2 to agree", func() error {
		m := list()
		if len(m) != 2 || m["g1"].state != "agrees" || m["g2"].state != "agrees" ||
			m["g1"].sha != fileSHA(t, out1) || m["g2"].sha != fileSHA(t, out2) {
			return fmt.Errorf("gateways %+v (file hashes %s, %s)", m, fileSHA(t, out1), fileSHA(t, out2))
		}
		return nil
	})
	old := fileSHA(t, out2)
	if !strings.Contains(readFile(t, out1), e.host("one")) {
		t.Fatalf("g1's config does not route one:\n%s", readFile(t, out1))
	}

	g2.signal(syscall.SIGSTOP)
	e.run("two", "-e", "VIRTUAL_HOST="+e.host("two"))
	waitUntil(t, "g1 to apply the change and g2 to lag", func() error {
		if !strings.Contains(readFile(t, out1), e.host("two")) {
			return fmt.Errorf("g1 has not applied the change yet")
		}
		m := list()
		if m["g1"].state != "agrees" || m["g1"].sha != fileSHA(t, out1) || m["g1"].sha == old ||
			m["g2"].state != "lags" || m["g2"].sha != old {
			return fmt.Errorf("gateways %+v (g1's file %s, g2's old %s)", m, fileSHA(t, out1), old)
		}
		return nil
	})
	g2.signal(syscall.SIGCONT)
	waitUntil(t, "g2 to catch up", func() error {
		if m := list(); m["g1"].state != "agrees" || m["g2"].state != "agrees" || m["g2"].sha != m["g1"].sha {
			return fmt.Errorf("gateways %+v", m)
		}
		return nil
	})
}

// TestEtcdAmbassadorImage: the ambassador end to end in the gateway image: supervised HAProxy
// with --source etcd (host networking, to reach this test's etcd on 127.0.0.1) and
// --etcd-flat /backends/db=tcp:PORT; a connection to 127.0.0.1:PORT reaches the echo's TCP
// greeting, and follows the keys.
func TestEtcdAmbassadorImage(t *testing.T) {
	t.Parallel()
	etcd := startEtcd(t)
	port := freePort(t)
	g := startGateway(t, gatewaySpec{proxy: "haproxy", source: "etcd", hostNet: true,
		flags: []string{"--etcd-endpoints", etcd.endpoint, "--etcd-flat", "/backends/db=tcp:" + strconv.Itoa(port)}})
	for _, n := range []string{"db1", "db2"} {
		g.run(n, "-e", "ECHO_TCP_PORTS=5432")
	}
	etcd.put("/backends/db/db1", g.ip("db1", "bridge")+":5432")
	g.waitFor("db1's greeting on the ambassador's port", func() error {
		if name, err := tcpGreeting(port); err != nil || name != "db1" {
			return fmt.Errorf("got %q, %v", name, err)
		}
		return nil
	})
	etcd.put("/backends/db/db2", g.ip("db2", "bridge")+":5432")
	etcd.ctl("", "del", "/backends/db/db1")
	g.waitFor("db2 alone", func() error {
		for range 4 {
			if name, err := tcpGreeting(port); err != nil || name != "db2" {
				return fmt.Errorf("got %q, %v", name, err)
			}
		}
		return nil
	})
}

// wantKeys waits until the keys under prefix are exactly prefix+id for the ids.
func wantKeys(t *testing.T, etcd *etcdServer, prefix string, ids ...string) {
	t.Helper()
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = prefix + id
	}
	slices.Sort(want)
	waitUntil(t, "the keys under "+prefix, func() error {
		if got := etcd.keys(prefix); !slices.Equal(got, want) {
			return fmt.Errorf("keys %v, want %v", got, want)
		}
		return nil
	})
}

func modRevision(t *testing.T, etcd *etcdServer, key string) int64 {
	t.Helper()
	kvs, _ := etcd.get(key)
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.ModRevision
		}
	}
	t.Fatalf("no key %s", key)
	return 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileSHA(t *testing.T, path string) string {
	sum := sha256.Sum256([]byte(readFile(t, path)))
	return hex.EncodeToString(sum[:])
}
