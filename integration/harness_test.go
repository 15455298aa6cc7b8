// Package integration drives the real thing: a real dockerd, real nginx, and the vhost-gen binary
// built from this tree. TestMain installs and starts what is missing (scripts/env.sh), builds the
// binary and the FROM-scratch echo image, and removes whatever a crashed run left behind.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/integration/echoimage"
)

// labelKey marks everything the tests create; its value names the test.
const labelKey = "vhost-gen.test"

const echoImage = "vhost-gen-echo:test"

var (
	vhostGen string // the binary under test
	runID    string
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "integration setup failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	removeLabelled(labelKey + "=" + runID)
	os.Exit(code)
}

func setup() error {
	env := exec.Command("bash", "../scripts/env.sh")
	env.Stdout, env.Stderr = os.Stderr, os.Stderr
	if err := env.Run(); err != nil {
		return fmt.Errorf("scripts/env.sh (installs and starts dockerd and nginx): %w", err)
	}
	runID = strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	removeStale() // whatever an earlier, crashed run left behind
	dir, err := os.MkdirTemp("", "vhost-gen-it-")
	if err != nil {
		return err
	}
	vhostGen = filepath.Join(dir, "vhost-gen")
	if out, err := exec.Command("go", "build", "-o", vhostGen, "../cmd/vhost-gen").CombinedOutput(); err != nil {
		return fmt.Errorf("build vhost-gen: %v\n%s", err, out)
	}
	return echoimage.Build("echo", dir, echoImage)
}

// removeStale removes test containers and networks older than an hour: left by a crashed run,
// and never those of a run going on beside this one.
func removeStale() {
	for _, kind := range [][]string{{"ps", "-a"}, {"network", "ls"}} {
		out, _ := exec.Command("docker", append(kind, "--filter", "label="+labelKey, "--format", "{{.ID}} {{.CreatedAt}}")...).Output()
		var stale []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			id, created, ok := strings.Cut(line, " ")
			// The CLI prints "2006-01-02 15:04:05 -0700 MST", possibly with fractional seconds.
			at, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", created)
			if ok && err == nil && time.Since(at) > time.Hour {
				stale = append(stale, id)
			}
		}
		if len(stale) == 0 {
			continue
		}
		if kind[0] == "ps" {
			exec.Command("docker", append([]string{"rm", "-f"}, stale...)...).Run()
		} else {
			exec.Command("docker", append([]string{"network", "rm"}, stale...)...).Run()
		}
	}
}

// removeLabelled removes containers, then networks, with the label filter.
func removeLabelled(filter string) {
	if ids, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+filter).Output(); len(bytes.TrimSpace(ids)) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
	}
	if ids, _ := exec.Command("docker", "network", "ls", "-q", "--filter", "label="+filter).Output(); len(bytes.TrimSpace(ids)) > 0 {
		exec.Command("docker", append([]string{"network", "rm"}, strings.Fields(string(ids))...)...).Run()
	}
}

// env is one test's world: its own proxy (nginx or HAProxy) and vhost-gen, seeing only the
// test's containers.
type env struct {
	t      testing.TB
	proxy  string // "nginx" or "haproxy"
	label  string // this test's value of labelKey; also in its names and host names
	dir    string
	port   int    // the proxy's HTTP port on 127.0.0.1
	admin  string // vhost-gen's admin address
	out    string // the rendered config
	vg     *exec.Cmd
	vgLog  *syncBuffer
	vgDone chan struct{}
	vars   []string // extra environment for vhost-gen
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// proxies are the proxies every scenario of the core runs against.
var proxies = []string{"nginx", "haproxy"}

// forEachProxy runs a scenario once per proxy, as subtests named after the proxy.
func forEachProxy(t *testing.T, scenario func(t *testing.T, proxy string)) {
	for _, p := range proxies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			scenario(t, p)
		})
	}
}

// newEnv starts nginx and vhost-gen watch; extra flags override the defaults.
func newEnv(t testing.TB, extra ...string) *env {
	t.Helper()
	return newEnvWith(t, nil, extra...)
}

// newEnvWith is newEnv with extra environment variables for vhost-gen.
func newEnvWith(t testing.TB, vars []string, extra ...string) *env {
	t.Helper()
	return newProxyEnv(t, "nginx", vars, extra...)
}

// newProxyEnv starts the proxy ("nginx" or "haproxy") and vhost-gen watch, with extra
// environment variables for vhost-gen and extra flags that override the defaults.
func newProxyEnv(t testing.TB, proxy string, vars []string, extra ...string) *env {
	t.Helper()
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "-"), "-")
	if len(name) > 30 {
		name = name[:30]
	}
	e := &env{t: t, proxy: proxy, label: "it" + runID + "-" + name, dir: t.TempDir(), port: freePort(t), vars: vars}
	e.admin = "127.0.0.1:" + strconv.Itoa(freePort(t))
	if proxy == "haproxy" {
		e.startHAProxy()
		t.Cleanup(func() { removeLabelled(labelKey + "=" + e.label) })
		e.startVhostGen(extra...)
		return e
	}
	os.MkdirAll(filepath.Join(e.dir, "conf.d"), 0o755)
	e.out = filepath.Join(e.dir, "conf.d", "vhost-gen.conf")
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    include %[1]s/conf.d/*.conf;
}
`, e.dir)
	if err := os.WriteFile(filepath.Join(e.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	e.nginx("") // start
	t.Cleanup(func() {
		e.nginx("quit")
		removeLabelled(labelKey + "=" + e.label)
	})
	e.startVhostGen(extra...)
	return e
}

func (e *env) nginx(signal string) {
	args := []string{"-c", filepath.Join(e.dir, "nginx.conf"), "-p", e.dir + "/", "-e", filepath.Join(e.dir, "error.log")}
	if signal != "" {
		args = append(args, "-s", signal)
	}
	if out, err := exec.Command("nginx", args...).CombinedOutput(); err != nil && signal == "" {
		e.t.Fatalf("start nginx: %v\n%s", err, out)
	}
}

func (e *env) startVhostGen(extra ...string) {
	args := []string{"watch",
		"--proxy", e.proxy,
		"--out", e.out,
		"--listen", "127.0.0.1:" + strconv.Itoa(e.port),
		"--reload-pidfile", filepath.Join(e.dir, e.proxy+".pid"),
		"--admin-addr", e.admin,
		"--label-filter", labelKey + "=" + e.label,
		"--wait", "50ms:500ms",
		"--log-level", "debug",
	}
	if e.proxy == "haproxy" {
		args = append(args, "--haproxy-socket", filepath.Join(e.dir, "admin.sock"))
	}
	args = append(args, extra...)
	log := &syncBuffer{}
	e.vgLog = log
	e.vg = exec.Command(vhostGen, args...)
	e.vg.Env = append(os.Environ(), e.vars...)
	e.vg.Stdout, e.vg.Stderr = log, log
	if err := e.vg.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.vgDone = make(chan struct{})
	go func() { e.vg.Wait(); close(e.vgDone) }()
	e.t.Cleanup(func() {
		e.stopVhostGen()
		if e.t.Failed() {
			e.t.Logf("vhost-gen log (%s):\n%s", strings.Join(args, " "), log.String())
		}
	})
	e.waitFor("vhost-gen's first apply (/healthz 200)", func() error {
		code, body := httpGet("http://"+e.admin+"/healthz", "")
		if code != 200 {
			return fmt.Errorf("healthz %d: %s", code, body)
		}
		return nil
	})
}

func (e *env) stopVhostGen() {
	if e.vg == nil || e.vg.Process == nil {
		return
	}
	e.vg.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.vgDone:
	case <-time.After(10 * time.Second):
		e.vg.Process.Kill()
		<-e.vgDone
	}
}

// docker runs the docker CLI and returns its trimmed standard output; a failure fails the test
// with everything it printed.
func (e *env) docker(args ...string) string {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// name is a container or network name unique to this test.
func (e *env) name(n string) string { return e.label + "-" + n }

// host is a host name unique to this test.
func (e *env) host(n string) string { return n + "." + e.label + ".test" }

// run starts an echo container; args go before the image, so they are docker run flags.
func (e *env) run(name string, args ...string) string {
	e.t.Helper()
	full := append([]string{"run", "-d", "--name", e.name(name), "--label", labelKey + "=" + e.label, "-e", "ECHO_NAME=" + name}, args...)
	return e.docker(append(full, echoImage)...)
}

func (e *env) network(name string) string {
	e.t.Helper()
	e.docker("network", "create", "--label", labelKey+"="+e.label, e.name(name))
	return e.name(name)
}

// get sends one request through nginx with the Host header.
func (e *env) get(host, path string) (int, string) {
	return httpGet(fmt.Sprintf("http://127.0.0.1:%d%s", e.port, path), host)
}

var client = &http.Client{Timeout: 3 * time.Second}

func httpGet(url, host string) (int, string) {
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it returns nil, for up to 20 seconds.
func (e *env) waitFor(what string, cond func() error) {
	e.t.Helper()
	waitWithin(e.t, what, 20*time.Second, cond)
}

// waitWithin polls cond until it returns nil; a condition still false after d fails the test.
func waitWithin(t testing.TB, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitBody waits until host answers 200 with a body containing want.
func (e *env) waitBody(host, path, want string) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s%s to answer %q", host, path, want), func() error {
		code, body := e.get(host, path)
		if code != 200 || !strings.Contains(body, want) {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
}

// waitStatus waits until host answers with code.
func (e *env) waitStatus(host, path string, want int) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%s%s to answer %d", host, path, want), func() error {
		if code, body := e.get(host, path); code != want {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
}

// names collects the distinct echo names that answer host over n requests.
func (e *env) names(host string, n int) map[string]int {
	seen := map[string]int{}
	for range n {
		code, body := e.get(host, "/")
		if code == 200 {
			seen[field(body, "name")]++
		}
	}
	return seen
}

// field reads key=value from an echo reply.
func field(body, key string) string {
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// metric sums the samples of a Prometheus metric whose labels contain every given "k=\"v\"".
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	_, body := httpGet("http://"+e.admin+"/metrics", "")
	return promSum(body, name, labels...)
}

func (e *env) reloads() float64 { return e.metric("vhostgen_reloads_total") }

type routesDoc struct {
	Sites []struct {
		Host   string `json:"host"`
		Routes []struct {
			Path    string `json:"path"`
			Backend struct {
				Servers []struct {
					Address  string `json:"address"`
					Workload string `json:"workload"`
				} `json:"servers"`
			} `json:"backend"`
		} `json:"routes"`
	} `json:"sites"`
	Problems []struct {
		Workload string `json:"workload"`
		Setting  string `json:"setting"`
		Reason   string `json:"reason"`
	} `json:"problems"`
}

func (e *env) routes() routesDoc {
	e.t.Helper()
	_, body := httpGet("http://"+e.admin+"/routes?format=json", "")
	var d routesDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		e.t.Fatalf("/routes: %v\n%s", err, body)
	}
	return d
}

// servers lists the server addresses routed for host "/".
func (e *env) servers(host string) []string {
	var out []string
	for _, s := range e.routes().Sites {
		if s.Host == host {
			for _, r := range s.Routes {
				for _, sv := range r.Backend.Servers {
					out = append(out, sv.Address)
				}
			}
		}
	}
	return out
}

// problem returns the first problem of a workload (by its short name), or "".
func (e *env) problem(workload string) string {
	for _, p := range e.routes().Problems {
		if p.Workload == e.name(workload) {
			return p.Setting + ": " + p.Reason
		}
	}
	return ""
}

func (e *env) config() string {
	b, _ := os.ReadFile(e.out)
	return string(b)
}

// ip returns a container's address on a network.
func (e *env) ip(container, network string) string {
	return e.docker("inspect", "-f", fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, network), e.name(container))
}

// freePort returns a port free on 127.0.0.1 that no other test of this run was given: a port
// closed here can come back from the kernel at once (one test once got the same port for its
// proxy and its admin server).
func freePort(t testing.TB) int { return freePortOn(t, "127.0.0.1:0") }

// freePortOn returns a port free at addr ("127.0.0.1:0", ":0") that no other test of this run
// was given.
func freePortOn(t testing.TB, addr string) int {
	for {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, taken := givenPorts.LoadOrStore(port, true); !taken {
			return port
		}
	}
}

var givenPorts sync.Map

// vhostGenCmd runs a one-shot vhost-gen command (render, routes) and returns stdout, stderr.
func vhostGenCmd(t *testing.T, args ...string) (string, string, error) {
	return vhostGenCmdEnv(t, nil, args...)
}

func vhostGenCmdEnv(t *testing.T, env []string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, vhostGen, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
