package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
)

// startHAProxy starts HAProxy in master-worker mode, in the foreground, on a minimal config that
// vhost-gen's first apply replaces; its master CLI is e.dir/master.sock.
func (e *env) startHAProxy() {
	e.out = filepath.Join(e.dir, "haproxy.cfg")
	initial := fmt.Sprintf(`global
    stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http
    bind 127.0.0.1:%[2]d
    http-request return status 503
`, e.dir, e.port)
	if err := os.WriteFile(e.out, []byte(initial), 0o644); err != nil {
		e.t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(e.dir, "haproxy.log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-W", "-S", filepath.Join(e.dir, "master.sock"), "-f", e.out, "-p", filepath.Join(e.dir, "haproxy.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	e.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		log.Close()
		if e.t.Failed() {
			out, _ := os.ReadFile(filepath.Join(e.dir, "haproxy.log"))
			e.t.Logf("haproxy log:\n%s", out)
		}
	})
	e.waitFor("haproxy's master CLI", func() error {
		_, err := e.master("show proc")
		return err
	})
}

// master sends one command to HAProxy's master CLI.
func (e *env) master(cmd string) (string, error) {
	return (&haproxy.Runtime{Socket: filepath.Join(e.dir, "master.sock")}).Do(context.Background(), cmd)
}

// runtimeAPI sends one command to HAProxy's runtime API (the worker's stats socket).
func (e *env) runtimeAPI(cmd string) (string, error) {
	return (&haproxy.Runtime{Socket: filepath.Join(e.dir, "admin.sock")}).Do(context.Background(), cmd)
}

// masterReloads is how many times HAProxy's master has reloaded, from "show proc". While the
// master re-executes itself for a reload its CLI refuses connections for a moment: that is waited
// out.
func (e *env) masterReloads() int {
	e.t.Helper()
	n := 0
	e.waitFor("HAProxy's master CLI to answer show proc", func() error {
		out, err := e.master("show proc")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[1] == "master" {
				n, err = strconv.Atoi(f[2])
				return err
			}
		}
		return fmt.Errorf("no master line in show proc:\n%s", out)
	})
	return n
}
