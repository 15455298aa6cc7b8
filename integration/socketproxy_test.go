package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// readEndpoints are the Docker API endpoints vhost-gen reads, as the README lists them: a socket
// proxy that allows these GETs and nothing else is enough for every feature but
// --reload-container (which signals a container: POST /containers/{id}/kill).
var readEndpoints = regexp.MustCompile(`^(/v[0-9.]+)?/(_ping|version|info|events|containers/json|containers/[a-zA-Z0-9_.-]+/json|networks|networks/[a-zA-Z0-9_.-]+|services|tasks|nodes)$`)

// socketProxy is a GET-only filtering proxy in front of the engine's socket, like the common
// hardening for anything that mounts it (Tecnativa's docker-socket-proxy and its kind).
type socketProxy struct {
	path    string
	mu      sync.Mutex
	allowed map[string]int // "GET /path template" → count
	denied  []string
}

func startSocketProxy(t *testing.T) *socketProxy {
	t.Helper()
	p := &socketProxy{path: filepath.Join(shortTempDir(t), "docker.sock"), allowed: map[string]int{}}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/var/run/docker.sock")
		}},
		FlushInterval: -1, // /events streams
	}
	ids := regexp.MustCompile(`/(containers|networks)/[a-zA-Z0-9_.-]+`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + ids.ReplaceAllStringFunc(r.URL.Path, func(m string) string {
			if strings.HasSuffix(m, "/json") {
				return m // the list, not an object called "json"
			}
			return m[:strings.LastIndexByte(m, '/')] + "/{id}"
		})
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !readEndpoints.MatchString(r.URL.Path) {
			p.mu.Lock()
			p.denied = append(p.denied, key)
			p.mu.Unlock()
			http.Error(w, "denied by the test's socket proxy", http.StatusForbidden)
			return
		}
		p.mu.Lock()
		p.allowed[key]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *socketProxy) report() (allowed []string, denied []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.allowed {
		allowed = append(allowed, k)
	}
	slices.Sort(allowed)
	return allowed, slices.Clone(p.denied)
}

// shortTempDir is a temporary directory with a path short enough for a unix socket.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "vg-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestSocketProxy: vhost-gen behind a GET-only socket proxy routes as usual, on the standalone
// engine (watch, through nginx) and on the Swarm (routes, one shot), and asks for nothing else.
func TestSocketProxy(t *testing.T) {
	t.Parallel()
	p := startSocketProxy(t)
	e := newProxyEnv(t, "nginx", []string{"DOCKER_HOST=unix://" + p.path}, "--proxy-networks", "bridge")
	host := e.host("app")
	e.run("app", "-e", "VIRTUAL_HOST="+host)
	e.waitBody(host, "/", "name=app")
	e.docker("rm", "-f", e.name("app"))
	e.waitStatus(host, "/", 503)

	// The Swarm source: services, tasks and nodes.
	label := testLabel(t)
	t.Cleanup(func() { removeServices(label) })
	svcHost := "svc." + label + ".test"
	if out, err := execDocker("service", "create", "--detach", "--quiet", "--name", label+"-svc",
		"--label", labelKey+"="+label, "--label", "VIRTUAL_HOST="+svcHost, "--label", "VIRTUAL_PORT=8080",
		"--publish", "mode=host,target=8080", echoImage); err != nil {
		t.Fatalf("docker service create: %v\n%s", err, out)
	}
	var out []byte
	e.waitFor("the service's task in routes --json through the socket proxy", func() error {
		cmd := exec.Command(vhostGen, "routes", "--source", "swarm", "--json", "--label-filter", labelKey+"="+label)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+p.path)
		var err error
		if out, err = cmd.CombinedOutput(); err != nil {
			return err
		}
		if !strings.Contains(string(out), svcHost) || !strings.Contains(string(out), `"servers"`) {
			return fmt.Errorf("no site %s with servers yet:\n%s", svcHost, tail(string(out), 2000))
		}
		return nil
	})

	allowed, denied := p.report()
	t.Logf("endpoints vhost-gen read through the socket proxy: %s", strings.Join(allowed, ", "))
	if len(denied) > 0 {
		t.Errorf("vhost-gen asked the socket proxy for what it denies: %v", denied)
	}
	for _, want := range []string{"GET /containers/json", "GET /containers/{id}/json", "GET /events", "GET /services", "GET /tasks"} {
		if !slices.ContainsFunc(allowed, func(a string) bool { return strings.HasSuffix(a, strings.TrimPrefix(want, "GET ")) }) {
			t.Errorf("no %s through the socket proxy (read: %v)", want, allowed)
		}
	}
}
