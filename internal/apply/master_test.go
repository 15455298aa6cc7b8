package apply

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A quick second reload is not lost: HAProxy 2.6's master ignores a USR2 that arrives while it is
// still busy with the previous one, and the reload waits for the new worker and signals again.
func TestHAProxyMasterReloadBackToBack(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatalf("haproxy is not installed (scripts/env.sh installs it): %v", err)
	}
	dir := t.TempDir()
	port := freePort(t)
	cfg, pidfile := filepath.Join(dir, "h.cfg"), filepath.Join(dir, "h.pid")
	write := func(body string) {
		conf := fmt.Sprintf("defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\nfrontend f\n  bind 127.0.0.1:%d\n  http-request return status 200 content-type text/plain string %s\n", port, body)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("v0")
	cmd := exec.Command("haproxy", "-W", "-f", cfg, "-p", pidfile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	get := func() string {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != "v0" {
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %s", get())
		}
		time.Sleep(20 * time.Millisecond)
	}
	reload := HAProxyMasterReload(pidfile, syscall.SIGUSR2)
	for i := 1; i <= 8; i++ {
		write("v" + strconv.Itoa(i))
		if err := reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
	}
	deadline = time.Now().Add(3 * time.Second)
	for got := get(); got != "v8"; got = get() {
		if time.Now().After(deadline) {
			t.Fatalf("after 8 back-to-back reloads HAProxy serves %q, want v8", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A process that never forks a new worker (not HAProxy in master-worker mode) is an error that
// says what to look at, after a bounded wait.
func TestHAProxyMasterReloadNoWorker(t *testing.T) {
	masterAttempts, masterWait = 2, 100*time.Millisecond
	t.Cleanup(func() { masterAttempts, masterWait = 4, 2*time.Second })
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pidfile := filepath.Join(t.TempDir(), "pid")
	os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	err := HAProxyMasterReload(pidfile, syscall.SIGCONT)(context.Background())
	if err == nil || !strings.Contains(err.Error(), "master-worker mode") {
		t.Errorf("err = %v, want one naming master-worker mode", err)
	}
	if err := HAProxyMasterReload(filepath.Join(t.TempDir(), "missing"), syscall.SIGUSR2)(context.Background()); err == nil {
		t.Error("a missing pid file is not an error")
	}
}

func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// Both ways: the kernel's lists of each thread's children (any thread may have forked it),
	// and the scan of every process, for kernels without those lists.
	for name, list := range map[string]func(int) (map[int]bool, error){"children": children, "scanChildren": scanChildren} {
		kids, err := list(os.Getpid())
		if err != nil || !kids[cmd.Process.Pid] {
			t.Errorf("%s(self) = %v, %v; want it to hold %d", name, kids, err, cmd.Process.Pid)
		}
	}
}

// BenchmarkChildren: a reload polls children every 20 ms; the scan reads every process's stat.
func BenchmarkChildren(b *testing.B) {
	for name, list := range map[string]func(int) (map[int]bool, error){"children": children, "scanChildren": scanChildren} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := list(os.Getpid()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
