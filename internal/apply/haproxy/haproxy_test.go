package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// realHAProxy is an HAProxy in master-worker mode, as vhost-gen runs it, on a config of ours.
type realHAProxy struct {
	t      *testing.T
	dir    string
	cfg    string // the config file
	port   int    // the frontend's port
	admin  string // the runtime API (the worker's stats socket)
	master string // the master CLI
}

func startHAProxy(t *testing.T, port int, dir, cfg string) *realHAProxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("this test needs a real HAProxy (2.6 or later) on PATH, installed by scripts/env.sh (make env): %v", err)
	}
	h := &realHAProxy{t: t, dir: dir, cfg: filepath.Join(dir, "h.cfg"), port: port,
		admin: filepath.Join(dir, "admin.sock"), master: filepath.Join(dir, "master.sock")}
	h.write(cfg)
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-W", "-S", h.master, "-f", h.cfg, "-p", filepath.Join(dir, "pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("haproxy's output:\n%s", out)
		}
	})
	h.waitFor("HAProxy's runtime API and master CLI", func() error {
		if _, err := unixCmd(h.admin, "show info"); err != nil {
			return err
		}
		_, err := unixCmd(h.master, "show proc")
		return err
	})
	return h
}

func (h *realHAProxy) write(cfg string) {
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *realHAProxy) waitFor(what string, f func() error) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unixCmd sends one command to an HAProxy CLI socket, independently of Runtime.Do.
func unixCmd(path, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	c.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(c)
	return string(out), err
}

// srvState is one server as "show servers state" has it.
type srvState struct {
	addr   string // ip:port
	admin  int    // srv_admin_state: 0 ready, bit 0x01 forced maintenance...
	op     int    // srv_op_state: 0 stopped, 2 running
	weight int    // srv_uweight
}

func (h *realHAProxy) servers(backend string) map[string]srvState {
	h.t.Helper()
	out, err := unixCmd(h.admin, "show servers state "+backend)
	if err != nil {
		h.t.Fatalf("show servers state: %v", err)
	}
	// be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight
	// srv_time_since_last_change srv_check_status srv_check_result srv_check_health
	// srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port ...
	m := map[string]srvState{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 19 || f[1] != backend {
			continue
		}
		n := func(i int) int {
			v, err := strconv.Atoi(f[i])
			if err != nil {
				h.t.Fatalf("show servers state: field %d of %q: %v", i, line, err)
			}
			return v
		}
		m[f[3]] = srvState{addr: net.JoinHostPort(f[4], f[18]), op: n(5), admin: n(6), weight: n(7)}
	}
	return m
}

// wantServers asserts that the backend's servers at runtime are the config's, ready (not in
// maintenance) and up, and that the config's servers are exactly those.
func (h *realHAProxy) wantServers(cfg, backend string) {
	h.t.Helper()
	p, err := parse([]byte(cfg))
	if err != nil {
		h.t.Fatal(err)
	}
	want := map[string]srvState{}
	for _, s := range p.sections {
		if s.name != backend {
			continue
		}
		for _, srv := range s.servers {
			want[srv.name] = srvState{addr: net.JoinHostPort(srv.ip, strconv.Itoa(srv.port)), op: 2, weight: srv.weight}
		}
	}
	var got map[string]srvState
	h.waitFor("the servers to be up", func() error { // an added server is up once checked
		got = h.servers(backend)
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("runtime servers of %s:\n got %+v\nwant %+v", backend, got, want)
		}
		return nil
	})
}

// masterReloads is how many times HAProxy's master has reloaded, from "show proc".
func (h *realHAProxy) masterReloads() int {
	h.t.Helper()
	n, err := h.masterReloadsErr()
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *realHAProxy) masterReloadsErr() (int, error) {
	out, err := unixCmd(h.master, "show proc")
	if err != nil {
		return 0, fmt.Errorf("master CLI: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "master" {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("no master line in show proc:\n%s", out)
}

// get fetches path through HAProxy's frontend on a new connection; it returns the body and the
// sticky cookie HAProxy set.
func (h *realHAProxy) get(path string) (string, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", h.port, path))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	cookie := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == "SRV" {
			cookie = ck.Value
		}
	}
	return string(b), cookie, err
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backendServer is an HTTP server that says its name; /slow answers once release is closed.
func backendServer(t *testing.T, name string, release chan struct{}) (*httptest.Server, string) {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "name="+name)
	}))
	t.Cleanup(s.Close)
	return s, s.Listener.Addr().String()
}

// TestHotAgainstHAProxy drives a real HAProxy 2.6 through scale up, drain, removal (one held
// back by an open connection) and a weight change, all without a reload, and checks that a
// reload of the final file afterwards loads the very servers the runtime API set up.
func TestHotAgainstHAProxy(t *testing.T) {
	dir := shortDir(t)
	release := make(chan struct{})
	var once bool
	releaseSlow := func() {
		if !once {
			once = true
			close(release)
		}
	}
	t.Cleanup(releaseSlow)
	_, addrA := backendServer(t, "a", release)
	_, addrB := backendServer(t, "b", release)
	port := freePort(t)
	conf := func(servers ...string) string {
		return fmt.Sprintf(`global
    stats socket %s/admin.sock mode 600 level admin expose-fd listeners

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend http
    bind 127.0.0.1:%d
    default_backend app

backend app
    balance roundrobin
    # No idle connections kept to servers: with them, a removed server can only be deleted
    # once HAProxy purges them (pool-purge-delay, about 15s here).
    http-reuse never
    cookie SRV insert indirect nocache dynamic
    dynamic-cookie-key test-secret
    server %s
`, dir, port, strings.Join(servers, "\n    server "))
	}
	v0 := conf("a " + addrA + " weight 1 check inter 200ms")
	h := startHAProxy(t, port, dir, v0)
	h.wantServers(v0, "app")
	if body, _, err := h.get("/"); err != nil || body != "name=a" {
		t.Fatalf("through HAProxy before any change: %q, %v; want name=a", body, err)
	}
	reloads := h.masterReloads()
	if reloads != 0 {
		t.Fatalf("master reloads at start = %d, want 0", reloads)
	}

	// A request in flight to a, held open.
	slow := make(chan error, 1)
	go func() {
		body, _, err := h.get("/slow")
		if err == nil && body != "name=a" {
			err = fmt.Errorf("body %q, want name=a", body)
		}
		slow <- err
	}()
	h.waitFor("the slow request to reach a", func() error {
		out, err := unixCmd(h.admin, "show stat")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			// pxname,svname,qcur,qmax,scur,...
			if f := strings.Split(line, ","); len(f) > 4 && f[0] == "app" && f[1] == "a" && f[4] != "0" {
				return nil
			}
		}
		return fmt.Errorf("no current session on app/a")
	})

	r := &Runtime{Socket: h.admin}
	ctx := context.Background()
	apply := func(prev, next string) {
		t.Helper()
		h.write(next) // as the Applier does: the file is in place before Hot
		ok, err := r.Hot(ctx, []byte(prev), []byte(next))
		if err != nil || !ok {
			t.Fatalf("Hot = %v, %v; want it applied", ok, err)
		}
	}

	// Scale up: b added; a drained.
	v1 := conf("a "+addrA+" weight 0 check inter 200ms", "b "+addrB+" weight 2 check inter 200ms")
	apply(v0, v1)
	h.wantServers(v1, "app")
	cookies := map[string]bool{}
	for range 6 {
		body, cookie, err := h.get("/")
		if err != nil || body != "name=b" {
			t.Fatalf("through HAProxy after adding b and draining a: %q, %v; want name=b", body, err)
		}
		if cookie == "" {
			t.Fatal("no SRV cookie from the added server: its dynamic cookie was not set")
		}
		cookies[cookie] = true
	}
	if len(cookies) != 1 {
		t.Errorf("SRV cookies %v: want one stable value for b", cookies)
	}

	// Scale down while a still serves the slow request: a goes to maintenance and waits for
	// deletion; b's weight changes.
	v2 := conf("b " + addrB + " weight 3 check inter 200ms")
	apply(v1, v2)
	got := h.servers("app")
	if b := got["b"]; b.weight != 3 || b.admin != 0 {
		t.Errorf("b after the second update: %+v, want weight 3 and ready", b)
	}
	if a, ok := got["a"]; ok {
		if a.admin&1 == 0 {
			t.Errorf("a after its removal: %+v, want it in maintenance while it waits for deletion", a)
		}
		if !reflect.DeepEqual(r.pending, []string{"app/a"}) {
			t.Errorf("pending = %q, want [app/a]", r.pending)
		}
	} else {
		t.Errorf("a deleted while a request was in flight on it (pending %q)", r.pending)
	}

	// The slow request finishes on a; the next update deletes a.
	releaseSlow()
	if err := <-slow; err != nil {
		t.Errorf("the request in flight on a removed server: %v", err)
	}
	v3 := conf("b " + addrB + " weight 4 check inter 200ms")
	start := time.Now()
	prev, next := v2, v3
	for {
		apply(prev, next)
		if len(r.pending) == 0 {
			break
		}
		if time.Since(start) > 10*time.Second {
			out, _ := unixCmd(h.admin, "show servers conn app")
			t.Fatalf("a still waits for deletion after %v:\n%s", time.Since(start), out)
		}
		time.Sleep(100 * time.Millisecond)
		// Still attached (an idle connection, say): tried again with the next update.
		prev, next = next, v3
		if prev == v3 {
			next = strings.Replace(v3, "weight 4", "weight 5", 1)
		}
	}
	h.wantServers(next, "app")
	for range 4 {
		if body, _, err := h.get("/"); err != nil || body != "name=b" {
			t.Fatalf("through HAProxy after removing a: %q, %v; want name=b", body, err)
		}
	}
	if got := h.masterReloads(); got != reloads {
		t.Errorf("HAProxy's master reloaded %d times, want none", got-reloads)
	}

	// The runtime matches what a reload of the file loads.
	before := h.servers("app")
	out, err := unixCmd(h.master, "reload")
	if err != nil {
		t.Fatalf("master CLI reload: %v (%s)", err, out)
	}
	h.waitFor("the reload", func() error { // the master re-executes itself: its CLI is away a moment
		if n, err := h.masterReloadsErr(); err != nil || n != reloads+1 {
			return fmt.Errorf("master reloads %d, %v", n, err)
		}
		return nil
	})
	h.wantServers(next, "app")
	if after := h.servers("app"); !reflect.DeepEqual(after, before) {
		t.Errorf("servers after a reload %+v, before %+v: the runtime API did not set up what the file says", after, before)
	}
}

// TestHotMovedServerTakesTrafficAtOnce: a server whose address was dead (down, by live traffic
// and by its checks) and is moved to a live one serves the very next request, as an added server
// would, rather than after its checks pass again; and live traffic still takes it down at once
// when its new address fails.
func TestHotMovedServerTakesTrafficAtOnce(t *testing.T) {
	dir := shortDir(t)
	_, live := backendServer(t, "a", nil)
	dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))) // closed: connection refused
	port := freePort(t)
	conf := func(addr string) string {
		// The shipped template's server line.
		return fmt.Sprintf(`global
    stats socket %s/admin.sock mode 600 level admin expose-fd listeners

defaults
    mode http
    timeout connect 500ms
    timeout client 30s
    timeout server 30s

frontend http
    bind 127.0.0.1:%d
    default_backend app

backend app
    balance roundrobin
    server a %s weight 1 check inter 2s fastinter 500ms observe layer4 error-limit 1 on-error mark-down
`, dir, port, addr)
	}
	v0 := conf(dead)
	h := startHAProxy(t, port, dir, v0)
	h.get("/") // refused: marks it down at once
	h.waitFor("app/a to be down", func() error {
		if a := h.servers("app")["a"]; a.op != 0 {
			return fmt.Errorf("app/a: %+v, want it down", a)
		}
		return nil
	})
	r := &Runtime{Socket: h.admin}
	apply := func(prev, next string) {
		t.Helper()
		h.write(next)
		if ok, err := r.Hot(context.Background(), []byte(prev), []byte(next)); err != nil || !ok {
			t.Fatalf("Hot = %v, %v; want it applied", ok, err)
		}
	}

	v1 := conf(live)
	apply(v0, v1)
	if body, _, err := h.get("/"); err != nil || body != "name=a" {
		t.Fatalf("the first request after moving a down server to a live address: %q, %v; want name=a at once", body, err)
	}
	if a := h.servers("app")["a"]; a.addr != live || a.op != 2 {
		t.Errorf("app/a after the move: %+v, want up at %s", a, live)
	}

	// Moved to a dead address again: the first request that fails there takes it down.
	dead2 := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	apply(v1, conf(dead2))
	if _, _, err := h.get("/"); err == nil {
		t.Fatal("a request to a server moved to a closed port succeeded")
	}
	if a := h.servers("app")["a"]; a.addr != dead2 || a.op != 0 {
		t.Errorf("app/a after a refused connection at its new address: %+v, want down at %s", a, dead2)
	}
	if n := h.masterReloads(); n != 0 {
		t.Errorf("HAProxy's master reloaded %d times, want none", n)
	}
}
