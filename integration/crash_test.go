package integration

import (
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bridge: the echo containers run on Docker's default network, which the host reaches.
var bridge = []string{"--proxy-networks", "bridge"}

// crashWait polls cond until it returns nil, for up to d (the harness's waitFor gives 20 s; a
// timeout or a retry's backoff takes longer).
func crashWait(e *env, what string, d time.Duration, cond func() error) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// crashMarker is the applied-marker beside --out: the SHA-256 of the config the proxy loaded,
// or "pending ..." while an apply is under way.
func crashMarker(e *env) string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(e.out), "."+filepath.Base(e.out)+".applied"))
	return strings.TrimSpace(string(b))
}

// crashDigest is the marker's name for a config: its CRC-32C and length (internal/apply).
func crashDigest(s string) string {
	return fmt.Sprintf("crc32c-%08x-%d", crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli)), len(s))
}

// crashScript writes an executable shell script into the test's directory.
func crashScript(e *env, name, body string) string {
	e.t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// crashHealthz waits until /healthz answers code with a body holding every one of want.
func crashHealthz(e *env, d time.Duration, code int, want ...string) string {
	e.t.Helper()
	var body string
	crashWait(e, fmt.Sprintf("/healthz %d saying %q", code, want), d, func() error {
		var got int
		got, body = httpGet("http://"+e.admin+"/healthz", "")
		if got != code {
			return fmt.Errorf("healthz %d: %s", got, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("healthz %d: %s", got, body)
			}
		}
		return nil
	})
	return body
}

// crashNotServed asserts that host is not routed by the proxy (yet).
func crashNotServed(e *env, host, name string) {
	e.t.Helper()
	if code, body := e.get(host, "/"); strings.Contains(body, "name="+name) {
		e.t.Fatalf("%s is served (%d %q), want the proxy still on the older config", host, code, body)
	}
}

// TestCrashMidApply: vhost-gen is killed (SIGKILL) after the new config is in place but before
// the proxy reloaded it; started again under the same proxy and the same containers, it must
// reload, not take the file on disk for the config the proxy runs. Then SIGTERM in the same spot:
// the reload finishes before vhost-gen exits, and the next start has nothing to reload.
func TestCrashMidApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bridge...)
	e.run("old", "-e", "VIRTUAL_HOST="+e.host("old"))
	e.waitBody(e.host("old"), "/", "name=old")

	// A reload that takes its time, so that vhost-gen can be stopped in the middle of it.
	pidfile := filepath.Join(e.dir, "slow-reload.pid")
	slow := crashScript(e, "slow-reload.sh", fmt.Sprintf("echo $$ > %s\nsleep 3\nexec nginx -c %s -p %s/ -e %s -s reload\n",
		pidfile, filepath.Join(e.dir, "nginx.conf"), e.dir, filepath.Join(e.dir, "error.log")))
	slowFlags := append([]string{"--reload-pidfile", "", "--reload-cmd", slow}, bridge...)
	e.stopVhostGen()
	e.startVhostGen(slowFlags...)
	if _, err := os.Stat(pidfile); err == nil {
		t.Fatal("restarted under a proxy running the same config, vhost-gen reloaded it")
	}

	// A new site: the file goes in place, the reload starts... and vhost-gen is killed, with its
	// reload (everything in its container would go).
	e.run("new", "-e", "VIRTUAL_HOST="+e.host("new"))
	var reloadPid int
	e.waitFor("the slow reload to start with the new config in place", func() error {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return err
		}
		if reloadPid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return err
		}
		if !strings.Contains(e.config(), e.host("new")) {
			return errors.New("the new site is not in the file yet")
		}
		return nil
	})
	e.vg.Process.Kill()
	<-e.vgDone
	syscall.Kill(-reloadPid, syscall.SIGKILL) // the reload runs in a process group of its own
	syscall.Kill(reloadPid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	crashNotServed(e, e.host("new"), "new")
	if m := crashMarker(e); !strings.HasPrefix(m, "pending ") {
		t.Errorf("marker after the crash = %q, want it pending", m)
	}

	// Started again: the file on disk already holds what it renders, but the proxy never loaded
	// it: vhost-gen must reload.
	os.Remove(pidfile)
	e.startVhostGen(bridge...)
	e.waitBody(e.host("new"), "/", "name=new")
	e.waitBody(e.host("old"), "/", "name=old")
	crashWait(e, "the marker to name the live config", 10*time.Second, func() error {
		if m, want := crashMarker(e), crashDigest(e.config()); m != want {
			return fmt.Errorf("marker %q, want %q", m, want)
		}
		return nil
	})

	// SIGTERM while the reload runs: vhost-gen waits for it, and exits with the new config live.
	e.stopVhostGen()
	e.startVhostGen(slowFlags...)
	e.run("newer", "-e", "VIRTUAL_HOST="+e.host("newer"))
	e.waitFor("the slow reload to start", func() error {
		_, err := os.Stat(pidfile)
		return err
	})
	e.vg.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.vgDone:
	case <-time.After(20 * time.Second):
		t.Fatal("vhost-gen did not exit within 20s of SIGTERM")
	}
	e.waitBody(e.host("newer"), "/", "name=newer")
	if m, want := crashMarker(e), crashDigest(e.config()); m != want {
		t.Errorf("marker after SIGTERM = %q, want the digest of the live config %q", m, want)
	}
	// ...so that the next start has nothing to reload.
	os.Remove(pidfile)
	e.startVhostGen(slowFlags...)
	time.Sleep(time.Second)
	if _, err := os.Stat(pidfile); err == nil {
		t.Error("started after a clean stop, vhost-gen reloaded the proxy")
	}
	if n := e.metric("vhostgen_applies_total", `result="unchanged"`); n < 1 {
		t.Errorf("unchanged applies = %v, want the first apply to find the config live", n)
	}
}

// TestDiskFullAndHangs: --out's file system full, a check command that hangs, and the proxy not
// running: each fails the apply with an error naming the cause, /healthz says it, the live config
// stays as it was, and vhost-gen recovers by itself once the cause is gone.
func TestDiskFullAndHangs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bridge...)
	e.run("web", "-e", "VIRTUAL_HOST="+e.host("web"))
	e.waitBody(e.host("web"), "/", "name=web")

	// --out's directory becomes a small tmpfs, holding what it held.
	e.stopVhostGen()
	confd := filepath.Dir(e.out)
	saved := map[string][]byte{}
	entries, err := os.ReadDir(confd)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if b, err := os.ReadFile(filepath.Join(confd, ent.Name())); err == nil {
			saved[ent.Name()] = b
		}
	}
	if err := syscall.Mount("tmpfs", confd, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (uid %d): %v", os.Geteuid(), err)
	}
	t.Cleanup(func() { syscall.Unmount(confd, syscall.MNT_DETACH) })
	for name, b := range saved {
		if err := os.WriteFile(filepath.Join(confd, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.startVhostGen(bridge...)

	// Disk full.
	filler := filepath.Join(confd, "filler") // not *.conf: nginx's include never reads it
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 1<<20))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	live := e.config()
	e.run("web2", "-e", "VIRTUAL_HOST="+e.host("web2"))
	body := crashHealthz(e, 30*time.Second, http.StatusServiceUnavailable, "no space left on device", e.out)
	t.Logf("healthz with the disk full: %s", strings.TrimSpace(body))
	if got := e.config(); got != live {
		t.Errorf("the live config changed on a full disk:\n%s", got)
	}
	crashNotServed(e, e.host("web2"), "web2")
	e.waitBody(e.host("web"), "/", "name=web")
	os.Remove(filler) // the retry (backoff 1s, 2s, 4s...) applies it
	e.waitFor("web2 served once there is space", func() error {
		if code, body := e.get(e.host("web2"), "/"); !strings.Contains(body, "name=web2") {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	crashHealthz(e, 10*time.Second, http.StatusOK)

	// A check command that hangs: stopped after the default timeout (30s).
	hang := filepath.Join(e.dir, "hang")
	check := crashScript(e, "check.sh", fmt.Sprintf("if [ -e %s ]; then sleep 3600; fi\nexit 0\n", hang))
	e.stopVhostGen()
	e.startVhostGen(append([]string{"--check-cmd", check + " {{.File}}"}, bridge...)...)
	writeFile(t, hang, "")
	live = e.config()
	e.run("web3", "-e", "VIRTUAL_HOST="+e.host("web3"))
	body = crashHealthz(e, 60*time.Second, http.StatusServiceUnavailable, "config check timed out after 30s", "check.sh")
	t.Logf("healthz with a hanging check: %s", strings.TrimSpace(body))
	if got := e.config(); got != live {
		t.Errorf("the live config changed while the check hung:\n%s", got)
	}
	crashNotServed(e, e.host("web3"), "web3")
	os.Remove(hang)
	crashWait(e, "web3 served once the check answers", 70*time.Second, func() error {
		if code, body := e.get(e.host("web3"), "/"); !strings.Contains(body, "name=web3") {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	crashHealthz(e, 10*time.Second, http.StatusOK)

	// The proxy is not running: the reload fails naming its pid file, the previous file is put
	// back, and once the proxy runs again the retry reloads it.
	nginxPid := filepath.Join(e.dir, "nginx.pid")
	e.nginx("quit")
	e.waitFor("nginx to stop", func() error {
		if _, err := os.Stat(nginxPid); err == nil {
			return errors.New("nginx.pid still there")
		}
		return nil
	})
	live = e.config()
	e.run("web4", "-e", "VIRTUAL_HOST="+e.host("web4"))
	body = crashHealthz(e, 30*time.Second, http.StatusServiceUnavailable, "reload failed", nginxPid)
	t.Logf("healthz with the proxy down: %s", strings.TrimSpace(body))
	if got := e.config(); got != live {
		t.Errorf("the previous config was not put back after the failed reload:\n%s", got)
	}
	e.nginx("") // start
	crashWait(e, "web4 served once nginx runs", 90*time.Second, func() error {
		if code, body := e.get(e.host("web4"), "/"); !strings.Contains(body, "name=web4") {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	crashHealthz(e, 10*time.Second, http.StatusOK)
	e.waitBody(e.host("web"), "/", "name=web")
}
