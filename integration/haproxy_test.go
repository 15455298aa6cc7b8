package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpGreeting connects to a TCP service through the proxy, reads the echo's greeting, and checks
// that a line comes back.
func tcpGreeting(port int) (string, error) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("greeting: %w", err)
	}
	fmt.Fprintf(c, "ping\n")
	if back, err := r.ReadString('\n'); err != nil || back != "ping\n" {
		return "", fmt.Errorf("echo: %q, %v", back, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(greeting, "name=")), nil
}

// TestTCPService: the ambassador pattern. Two replicas behind VIRTUAL_TCP_PORT are reached round
// robin through HAProxy; a rival service asking for the same port later gets a problem and
// changes nothing; nginx reports the setting as a problem.
func TestTCPService(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "haproxy", nil, "--proxy-networks", "bridge")
	port := freePort(t)
	tcp := []string{"-e", "ECHO_TCP_PORTS=5432", "-e", "VIRTUAL_PORT=5432", "-e", "VIRTUAL_TCP_PORT=" + strconv.Itoa(port)}
	e.run("db1", tcp...)
	e.run("db2", tcp...)
	e.waitFor("both replicas to answer on the TCP port", func() error {
		seen := map[string]bool{}
		for range 6 {
			name, err := tcpGreeting(port)
			if err != nil {
				return err
			}
			seen[name] = true
		}
		if !seen["db1"] || !seen["db2"] {
			return fmt.Errorf("seen %v in 6 connections", seen)
		}
		return nil
	})
	// A rival: another service (a Compose service label) asking for the same port, created later.
	e.run("rival", append(tcp, "--label", "com.docker.compose.project=p", "--label", "com.docker.compose.service=rival")...)
	e.waitFor("a problem on the rival", func() error {
		if p := e.problem("rival"); !strings.Contains(p, "VIRTUAL_TCP_PORT") || !strings.Contains(p, "already served") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
	for range 6 {
		if name, err := tcpGreeting(port); err != nil || name == "rival" {
			t.Fatalf("after the rival: connection reached %q, %v", name, err)
		}
	}
	// Stopping one replica leaves the service on the other.
	e.docker("stop", "-t", "1", e.name("db1"))
	e.waitFor("only db2 on the TCP port", func() error {
		for range 4 {
			if name, err := tcpGreeting(port); err != nil || name != "db2" {
				return fmt.Errorf("got %q, %v", name, err)
			}
		}
		return nil
	})

	n := newProxyEnv(t, "nginx", nil, "--proxy-networks", "bridge")
	n.run("db", tcp...)
	n.waitFor("nginx's problem for VIRTUAL_TCP_PORT", func() error {
		if p := n.problem("db"); !strings.Contains(p, "--proxy haproxy") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
}

// TestRuntimeAPI: scaling a backend up and down goes through HAProxy's runtime API: traffic
// reaches the new servers and leaves the removed ones, the master never reloads, and the file
// holds the same servers, so that a reload at any time serves the same.
func TestRuntimeAPI(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "haproxy", nil, "--proxy-networks", "bridge")
	h := e.host("web")
	e.run("web1", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=web1")
	reloads := e.masterReloads()

	e.run("web2", "-e", "VIRTUAL_HOST="+h)
	e.run("web3", "-e", "VIRTUAL_HOST="+h, "-e", "VIRTUAL_WEIGHT=2")
	e.waitFor("three replicas to answer", func() error {
		if seen := e.names(h, 20); len(seen) != 3 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	if got := e.masterReloads(); got != reloads {
		t.Errorf("scale up: HAProxy's master reloaded %d times, want 0", got-reloads)
	}
	if n := e.metric("vhostgen_applies_total", `result="updated"`); n < 1 {
		t.Errorf("applies through the runtime API = %v, want at least 1", n)
	}
	cfg := e.config()
	for _, s := range []string{"server " + e.name("web2") + " ", "server " + e.name("web3") + " ", " weight 2 "} {
		if !strings.Contains(cfg, s) {
			t.Errorf("the file lacks %q after a runtime update:\n%s", s, cfg)
		}
	}

	e.docker("rm", "-f", e.name("web1"), e.name("web2"))
	e.waitFor("only web3 to answer", func() error {
		if seen := e.names(h, 10); len(seen) != 1 || seen["web3"] != 10 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	if got := e.masterReloads(); got != reloads {
		t.Errorf("scale down: HAProxy's master reloaded %d times, want 0", got-reloads)
	}
	// Removed servers leave the rotation at once (maintenance) and are deleted once their last
	// connection (HAProxy keeps idle ones for a few seconds) is gone.
	state, err := e.runtimeAPI("show servers state")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(state, "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && (f[3] == e.name("web1") || f[3] == e.name("web2")) {
			if admin, _ := strconv.Atoi(f[6]); admin&1 == 0 {
				t.Errorf("removed server %s is still in rotation (admin state %s):\n%s", f[3], f[6], state)
			}
		}
	}
	// A reload from the file serves the same.
	pid, err := os.ReadFile(filepath.Join(e.dir, "haproxy.pid"))
	if err != nil {
		t.Fatal(err)
	}
	master, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	syscall.Kill(master, syscall.SIGUSR2)
	e.waitFor("the manual reload", func() error {
		if e.masterReloads() == reloads {
			return fmt.Errorf("not reloaded yet")
		}
		return nil
	})
	if seen := e.names(h, 10); len(seen) != 1 || seen["web3"] != 10 {
		t.Errorf("after a reload from the file: seen %v, want web3 only", seen)
	}
	reloads = e.masterReloads()

	// A new site is more than servers: a reload.
	e.run("blog", "-e", "VIRTUAL_HOST="+e.host("blog"))
	e.waitBody(e.host("blog"), "/", "name=blog")
	if got := e.masterReloads(); got <= reloads {
		t.Errorf("a new site did not reload HAProxy")
	}
}

// TestRuntimeAPIOff: with --haproxy-runtime-api=false every change reloads the master.
func TestRuntimeAPIOff(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "haproxy", nil, "--proxy-networks", "bridge", "--haproxy-runtime-api=false")
	h := e.host("web")
	e.run("web1", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=web1")
	reloads := e.masterReloads()
	e.run("web2", "-e", "VIRTUAL_HOST="+h)
	e.waitFor("two replicas", func() error {
		if seen := e.names(h, 10); len(seen) != 2 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})
	if e.masterReloads() == reloads {
		t.Error("scaling up did not reload HAProxy with the runtime API off")
	}
	if n := e.metric("vhostgen_applies_total", `result="updated"`); n != 0 {
		t.Errorf("runtime updates = %v with the runtime API off", n)
	}
}

// TestDrainOnStop: a container being stopped leaves the rotation when it gets its stop signal,
// while it still runs and serves, so that no new request reaches it.
func TestDrainOnStop(t *testing.T) {
	forEachProxy(t, func(t *testing.T, proxy string) {
		e := newProxyEnv(t, proxy, nil, "--proxy-networks", "bridge")
		h := e.host("app")
		e.run("slow", "-e", "VIRTUAL_HOST="+h, "-e", "ECHO_STOP_GRACE=5s")
		e.run("fast", "-e", "VIRTUAL_HOST="+h)
		e.waitFor("both replicas", func() error {
			if seen := e.names(h, 10); len(seen) != 2 {
				return fmt.Errorf("seen %v", seen)
			}
			return nil
		})
		slowIP := e.ip("slow", "bridge")
		stopped := make(chan string, 1)
		go func() {
			out, err := execDocker("stop", "-t", "20", e.name("slow"))
			stopped <- fmt.Sprint(out, err)
		}()
		e.waitFor("slow to leave the routes", func() error {
			if slices.ContainsFunc(e.servers(h), func(s string) bool { return strings.HasPrefix(s, slowIP+":") }) {
				return fmt.Errorf("servers %v", e.servers(h))
			}
			return nil
		})
		e.waitFor("slow to leave the proxy's rotation", func() error {
			if seen := e.names(h, 10); seen["slow"] != 0 || seen["fast"] != 10 {
				return fmt.Errorf("seen %v, want fast only", seen)
			}
			return nil
		})
		// Without the drain, slow would serve until it exits, 5 s after its stop signal.
		if running := e.docker("inspect", "-f", "{{.State.Running}}", e.name("slow")); running != "true" {
			t.Errorf("slow left the rotation only when it stopped (running=%s), not at its stop signal", running)
		}
		<-stopped
	})
}

// execDocker runs the docker CLI from any goroutine (e.docker may only run on the test's).
func execDocker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
