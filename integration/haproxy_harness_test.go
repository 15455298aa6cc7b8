package integration

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
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

// master sends one command to HAProxy's master CLI. While the master re-executes itself for a
// reload its socket refuses or drops connections for a moment: that is retried.
func (e *env) master(cmd string) (string, error) {
	var out string
	var err error
	for range 20 {
		if out, err = unixCommand(filepath.Join(e.dir, "master.sock"), cmd); err == nil && out != "" {
			return out, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out, err
}

// runtimeAPI sends one command to HAProxy's runtime API (the worker's stats socket).
func (e *env) runtimeAPI(cmd string) (string, error) {
	return unixCommand(filepath.Join(e.dir, "admin.sock"), cmd)
}

func unixCommand(path, cmd string) (string, error) {
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

// masterReloads is how many times HAProxy's master has reloaded, from "show proc".
func (e *env) masterReloads() int {
	e.t.Helper()
	out, err := e.master("show proc")
	if err != nil {
		e.t.Fatalf("master CLI: %v", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "master" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				break
			}
			return n
		}
	}
	e.t.Fatalf("no master line in show proc:\n%s", out)
	return 0
}
