package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEngineRestart stops dockerd while vhost-gen watches. dockerd stops its containers (and
// reports their deaths) before its API goes away; from then on vhost-gen must change nothing: the
// outage is logged once, no config is applied until the engine is back, and after the restart the
// route serves again (the container has a restart policy). It is not parallel: Go runs it while
// the parallel tests wait. TestEngineUnreachable covers an outage with live containers.
func TestEngineRestart(t *testing.T) {
	e := newEnv(t, "--proxy-networks", "bridge")
	h := e.host("survivor")
	e.run("survivor", "--restart", "always", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=survivor")

	argv := stopDockerd(t)
	t.Cleanup(func() { ensureDockerd(t, argv) }) // even if the test fails half-way
	e.waitFor("the outage to be logged", func() error {
		if !strings.Contains(e.vgLog.String(), "docker engine unreachable") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	during, applied := e.config(), strings.Count(e.vgLog.String(), "msg=\"applied: ")
	time.Sleep(3 * time.Second) // several reconnect attempts
	if e.config() != during || strings.Count(e.vgLog.String(), "msg=\"applied: ") != applied {
		t.Errorf("a config was applied while the engine was unreachable")
	}
	if n := strings.Count(e.vgLog.String(), "docker engine unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}
	select {
	case <-e.vgDone:
		t.Fatalf("vhost-gen exited while the engine was down")
	default:
	}

	ensureDockerd(t, argv)
	e.waitBody(h, "/", "name=survivor")
	e.waitFor("the reconnection to be logged", func() error {
		if !strings.Contains(e.vgLog.String(), "docker engine reachable again") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
}

// TestEngineUnreachable cuts vhost-gen off from a running engine (its API socket goes through a
// relay the test controls, as a remote engine behind a failing network would): the containers
// keep running, so the last table must stay and traffic must keep flowing; after the link is
// back vhost-gen resyncs and follows events again.
func TestEngineUnreachable(t *testing.T) {
	t.Parallel()
	relay := newSocketRelay(t, "/var/run/docker.sock")
	e := newEnvWith(t, []string{"DOCKER_HOST=unix://" + relay.addr}, "--proxy-networks", "bridge")
	h := e.host("alive")
	e.run("alive", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=alive")
	before := e.config()

	relay.cut()
	e.waitFor("the outage to be logged", func() error {
		if !strings.Contains(e.vgLog.String(), "docker engine unreachable") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	for i := range 20 { // 2 seconds of traffic during the outage
		if code, body := e.get(h, "/"); code != 200 {
			t.Fatalf("request %d during the outage: %d %q", i, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if e.config() != before {
		t.Errorf("the config changed while the engine was unreachable")
	}
	if n := strings.Count(e.vgLog.String(), "docker engine unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once", n)
	}

	relay.restore()
	e.waitFor("the reconnection", func() error {
		if !strings.Contains(e.vgLog.String(), "docker engine reachable again") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	e.run("later", "-e", "VIRTUAL_HOST="+e.host("later"))
	e.waitBody(e.host("later"), "/", "name=later")
}

// stopDockerd stops the running dockerd and returns its command line, to start it again.
func stopDockerd(t *testing.T) []string {
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("dockerd pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("dockerd command line: %v", err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop dockerd: %v", err)
	}
	for i := 0; i < 300; i++ {
		if syscall.Kill(pid, 0) != nil {
			return argv
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dockerd (pid %d) did not stop in 30s", pid)
	return nil
}

// ensureDockerd starts dockerd with argv unless it answers already, and waits for it.
func ensureDockerd(t *testing.T, argv []string) {
	if exec.Command("docker", "info").Run() == nil {
		return
	}
	log, err := os.OpenFile("/var/log/vhost-gen-dockerd.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the test binary
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd again: %v", err)
	}
	cmd.Process.Release()
	for i := 0; i < 120; i++ {
		if exec.Command("docker", "info").Run() == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("dockerd did not come back in 30s; see /var/log/vhost-gen-dockerd.log")
}
