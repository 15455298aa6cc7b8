package enginesim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
)

// binDir holds the vhost-gen binary the smoke tests build, once.
var (
	binDir   string
	binOnce  sync.Once
	binErr   error
	vhostGen string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildVhostGen builds the binary from this tree (skipped with -short: it takes a while).
func buildVhostGen(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds vhost-gen")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "enginesim-bin-"); binErr != nil {
			return
		}
		vhostGen = filepath.Join(binDir, "vhost-gen")
		out, err := exec.Command("go", "build", "-o", vhostGen, "../../cmd/vhost-gen").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return vhostGen
}

// vhostGenCmd runs vhost-gen against the simulator, with none of this environment's VHOST_GEN_*
// or DOCKER_* settings.
func vhostGenCmd(t *testing.T, sim *enginesim.Sim, args ...string) *exec.Cmd {
	cmd := exec.Command(buildVhostGen(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VHOST_GEN_") && !strings.HasPrefix(kv, "DOCKER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DOCKER_HOST="+sim.Host())
	return cmd
}

// One-shot commands over 1000 containers: every host routed, at one list and one inspect per
// container.
func TestSmokeOneShot(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	const n = 1000
	if _, err := sim.AddContainers(n, enginesim.DefaultContainer); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := vhostGenCmd(t, sim, "routes", "--json", "--proxy-networks", "frontend")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vhost-gen routes: %v\n%s", err, stderr.String())
	}
	var table struct {
		Sites []struct {
			Host   string
			Routes []struct {
				Backend struct{ Servers []struct{ Address string } }
			}
		}
		Problems []any
	}
	if err := json.Unmarshal(stdout.Bytes(), &table); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]string{}
	for _, s := range table.Sites {
		if len(s.Routes) == 1 && len(s.Routes[0].Backend.Servers) == 1 {
			hosts[s.Host] = s.Routes[0].Backend.Servers[0].Address
		}
	}
	for i := range n {
		if h := fmt.Sprintf("app-%05d.example", i); !strings.HasPrefix(hosts[h], "172.18.") || !strings.HasSuffix(hosts[h], ":80") {
			t.Fatalf("routes: %s has server %q, want one on the frontend network at port 80 (%d sites, %d problems)", h, hosts[h], len(table.Sites), len(table.Problems))
		}
	}
	want := map[string]int64{"GET /containers/json": 1, "GET /containers/{id}/json": n}
	if got := apiCalls(sim); got["GET /containers/json"] != 1 || got["GET /containers/{id}/json"] != n || len(got) != 2 {
		t.Errorf("routes made %v, want %v (and pings)", got, want)
	}

	stdout.Reset()
	render := vhostGenCmd(t, sim, "render", "--check-cmd", "none", "--proxy-networks", "frontend")
	render.Stdout, render.Stderr = &stdout, &stderr
	if err := render.Run(); err != nil {
		t.Fatalf("vhost-gen render: %v\n%s", err, stderr.String())
	}
	for i := range n {
		if h := fmt.Sprintf("app-%05d.example", i); !strings.Contains(stdout.String(), h) {
			t.Fatalf("render: %s is not in the config", h)
		}
	}
}

// watch follows the simulator's events into the file it writes.
func TestSmokeWatch(t *testing.T) {
	sim := enginesim.Start(t, enginesim.Options{})
	if _, err := sim.AddContainers(100, enginesim.DefaultContainer); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "vhost-gen.conf")
	var logs syncBuffer
	cmd := vhostGenCmd(t, sim, "watch", "--out", out, "--check-cmd", "none", "--reload-cmd", "none", "--admin-addr", "",
		"--proxy-networks", "frontend", "--wait", "10ms:100ms")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("vhost-gen's log:\n%s", logs.String())
		}
	}()
	waitFile := func(what string, ok func(conf string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if b, err := os.ReadFile(out); err == nil && ok(string(b)) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: never in %s", what, out)
	}
	waitFile("the first 100 hosts", func(c string) bool { return strings.Contains(c, "app-00099.example") })
	sim.ResetRequests()

	id, err := sim.Start(enginesim.DefaultContainer(100))
	if err != nil {
		t.Fatal(err)
	}
	waitFile("a started container", func(c string) bool { return strings.Contains(c, "app-00100.example") })
	if got := apiCalls(sim); got["GET /containers/{id}/json"] != 1 || len(got) != 1 {
		t.Errorf("a start cost %v, want one inspect", got)
	}
	sim.Stop(id)
	waitFile("a stopped container's removal", func(c string) bool { return !strings.Contains(c, "app-00100.example") })
	sim.SetHealth(sim.Containers()[0], "unhealthy")
	waitFile("an unhealthy container's removal", func(c string) bool { return !strings.Contains(c, "app-00000.example") })
}

// syncBuffer is a bytes.Buffer safe for the process's two writers.
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
