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

// TestEngineRestart stops dockerd while vhost-gen watches: the config keeps its routes (an
// unreachable engine is not "no containers"), the outage is logged once, and after dockerd is
// back the route serves again. It is not parallel: Go runs it while the parallel tests wait.
func TestEngineRestart(t *testing.T) {
	e := newEnv(t, "--proxy-networks", "bridge")
	h := e.host("survivor")
	e.run("survivor", "--restart", "always", "-e", "VIRTUAL_HOST="+h)
	e.waitBody(h, "/", "name=survivor")
	server := e.servers(h)[0]

	argv := stopDockerd(t)
	t.Cleanup(func() { ensureDockerd(t, argv) }) // even if the test fails half-way
	time.Sleep(3 * time.Second)                 // several reconnect attempts
	if !strings.Contains(e.config(), "server "+server) {
		t.Errorf("with the engine down the config lost %s:\n%s", server, e.config())
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
