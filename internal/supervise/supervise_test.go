package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// subreaper: this test process adopts the orphans of its descendants, as vhost-gen does as PID 1
// in the gateway image; reaping what is left of the proxy's group is then the supervisor's job.
var subreaper bool

func TestMain(m *testing.M) {
	// Set once for the whole run: the monitors of earlier tests may still read them.
	minRestart, maxRestart, stableRun = 20*time.Millisecond, 320*time.Millisecond, 300*time.Millisecond
	subreaper = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
	os.Exit(m.Run())
}

// syncBuffer collects a test's log; the supervisor's goroutines may still write after the test.
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

// proxy is a supervised shell script standing in for nginx, and what it leaves in its directory.
type proxy struct {
	*Supervisor
	dir      string
	restarts atomic.Int32
	mu       sync.Mutex
	reloads  []int // the pids Reload was called with
	restartT []time.Time
}

// newProxy writes script (run by sh with its directory as $1) and a Supervisor for it, stopped
// at the end of the test. Every run of the script appends its pid to $1/runs first.
func newProxy(t *testing.T, script string) *proxy {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.sh")
	body := "dir=$1\necho $$ >> \"$dir/runs\"\n" + script
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	p := &proxy{dir: dir}
	// sh reads the script: exec'ing a file just written can fail with ETXTBSY while other
	// goroutines fork.
	p.Supervisor = &Supervisor{
		Argv:       []string{sh, path, dir},
		StopSignal: syscall.SIGQUIT,
		Log:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Reload: func(_ context.Context, pid int) error {
			p.mu.Lock()
			p.reloads = append(p.reloads, pid)
			p.mu.Unlock()
			return syscall.Kill(pid, syscall.SIGHUP)
		},
		OnRestart: func() {
			p.mu.Lock()
			p.restartT = append(p.restartT, time.Now())
			p.mu.Unlock()
			p.restarts.Add(1)
		},
	}
	t.Cleanup(func() {
		p.stop(t, 2*time.Second)
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	})
	return p
}

// stop is Stop(timeout), failing the test if it has not returned well after the timeout.
func (p *proxy) stop(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() {
		p.Stop(timeout)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("Stop(%v) has not returned after %v", timeout, time.Since(start))
	}
	return time.Since(start)
}

// runs lists the pids of every run of the script so far.
func (p *proxy) runs() []int {
	b, _ := os.ReadFile(filepath.Join(p.dir, "runs"))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids
}

func (p *proxy) file(name string) string {
	b, err := os.ReadFile(filepath.Join(p.dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (p *proxy) reloadPIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.reloads...)
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procState is the state letter of a process (R, S, Z, ...), "" when it does not exist at all.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != "" && st != "Z"
}

// childScript forks a child that outlives the script, as nginx's workers outlive a killed master,
// records its pid in $dir/child.$$ once it is there, and waits.
const childScript = `sleep 1000 &
echo $! > "$dir/tmp.$$" && mv "$dir/tmp.$$" "$dir/child.$$"
wait
`

// startedPID waits until the proxy runs the script with a pid other than old, and returns it.
func (p *proxy) startedPID(t *testing.T, old int) int {
	t.Helper()
	var pid int
	waitFor(t, "the proxy to run", func() bool {
		pid = p.PID()
		if pid == 0 || pid == old {
			return false
		}
		for _, r := range p.runs() {
			if r == pid {
				return true
			}
		}
		return false
	})
	return pid
}

// childOf waits for the child recorded by childScript run as pid.
func (p *proxy) childOf(t *testing.T, pid int) int {
	t.Helper()
	var child int
	waitFor(t, "the proxy's child", func() bool {
		child, _ = strconv.Atoi(p.file(fmt.Sprintf("child.%d", pid)))
		return child > 0
	})
	return child
}

func TestEnsureStartsOnce(t *testing.T) {
	p := newProxy(t, "exec sleep 1000\n")
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	pid := p.startedPID(t, 0)
	for range 3 {
		if err := p.Ensure(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if got := p.PID(); got != pid {
		t.Errorf("PID after more Ensure calls = %d, want %d", got, pid)
	}
	if runs := p.runs(); len(runs) != 1 {
		t.Errorf("the proxy ran %d times (%v), want once", len(runs), runs)
	}
	if n := p.restarts.Load(); n != 0 {
		t.Errorf("OnRestart called %d times", n)
	}
}

func TestReloadFunc(t *testing.T) {
	p := newProxy(t, `trap 'echo hup >> "$dir/hup.$$"' HUP
echo ready > "$dir/ready.$$"
while :; do sleep 1000 & wait $!; done
`)
	ctx := context.Background()

	// Before any start: ReloadFunc starts the proxy, and reloads nothing.
	if err := p.ReloadFunc(ctx); err != nil {
		t.Fatal(err)
	}
	pid := p.startedPID(t, 0)
	if got := p.reloadPIDs(); len(got) != 0 {
		t.Fatalf("Reload called with %v before the proxy ran", got)
	}
	waitFor(t, "the trap", func() bool { return p.file(fmt.Sprintf("ready.%d", pid)) != "" })

	// Running: ReloadFunc is Reload on its pid.
	if err := p.ReloadFunc(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.reloadPIDs(); len(got) != 1 || got[0] != pid {
		t.Fatalf("Reload called with %v, want [%d]", got, pid)
	}
	waitFor(t, "the proxy to get SIGHUP", func() bool { return p.file(fmt.Sprintf("hup.%d", pid)) != "" })
	if got := p.PID(); got != pid {
		t.Fatalf("PID after a reload = %d, want %d", got, pid)
	}

	// Restarted: ReloadFunc follows the new pid.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pid2 := p.startedPID(t, pid)
	waitFor(t, "the trap", func() bool { return p.file(fmt.Sprintf("ready.%d", pid2)) != "" })
	if err := p.ReloadFunc(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.reloadPIDs(); len(got) != 2 || got[1] != pid2 {
		t.Fatalf("Reload called with %v, want [%d %d]", got, pid, pid2)
	}
	waitFor(t, "the new proxy to get SIGHUP", func() bool { return p.file(fmt.Sprintf("hup.%d", pid2)) != "" })

	// A failing reload is the apply's error.
	boom := errors.New("boom")
	p.Reload = func(context.Context, int) error { return boom }
	if err := p.ReloadFunc(ctx); !errors.Is(err, boom) {
		t.Errorf("ReloadFunc = %v, want %v", err, boom)
	}
}

func TestRestartAfterKill(t *testing.T) {
	p := newProxy(t, childScript)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	pid := p.startedPID(t, 0)
	child := p.childOf(t, pid)
	if !alive(child) {
		t.Fatalf("the proxy's child %d is not running", child)
	}

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pid2 := p.startedPID(t, pid)
	waitFor(t, "OnRestart", func() bool { return p.restarts.Load() == 1 })
	if subreaper {
		// The supervisor killed and reaped the group before restarting: nothing is left, not even
		// a zombie of this process.
		if st := procState(child); st != "" {
			t.Errorf("the orphaned child %d of the killed proxy is still there (state %s)", child, st)
		}
	} else {
		t.Log("no PR_SET_CHILD_SUBREAPER: only checking that the orphan was killed")
		waitFor(t, "the orphan to die", func() bool { return !alive(child) })
	}
	if procState(pid) != "" {
		t.Errorf("the killed proxy %d is still there", pid)
	}
	child2 := p.childOf(t, pid2)
	if !alive(pid2) || !alive(child2) {
		t.Errorf("the restarted proxy %d (child %d) is not running", pid2, child2)
	}
	if runs := p.runs(); len(runs) != 2 {
		t.Errorf("runs = %v, want 2", runs)
	}
	time.Sleep(50 * time.Millisecond)
	if n := p.restarts.Load(); n != 1 {
		t.Errorf("OnRestart called %d times, want 1", n)
	}
}

func TestRestartDelay(t *testing.T) {
	// TestMain: minRestart 20ms, maxRestart 320ms.
	ms := time.Millisecond
	for crashes, want := range []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 320 * ms, 320 * ms} {
		if got := restartDelay(crashes); got != want {
			t.Errorf("restartDelay(%d) = %v, want %v", crashes, got, want)
		}
	}
	for _, crashes := range []int{10, 63, 64, 1000, 1 << 30} {
		if got := restartDelay(crashes); got != maxRestart {
			t.Errorf("restartDelay(%d) = %v, want the cap %v", crashes, got, maxRestart)
		}
	}
}

func TestBackoffThenStop(t *testing.T) {
	p := newProxy(t, "exit 3\n")
	start := time.Now()
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	const n = 5
	waitFor(t, "restarts", func() bool { return p.restarts.Load() >= n })
	p.mu.Lock()
	times := append([]time.Time{start}, p.restartT[:n]...)
	p.mu.Unlock()
	// Restart i comes at least restartDelay(i) after the previous one: 20, 40, 80, 160, 320ms.
	for i := range n {
		gap := times[i+1].Sub(times[i])
		if want := restartDelay(i); gap < want {
			t.Errorf("restart %d came %v after the previous start, want at least %v", i+1, gap, want)
		}
	}
	if d := times[n].Sub(times[0]); d < 600*time.Millisecond {
		t.Errorf("%d restarts took %v: no backoff", n, d)
	}

	p.stop(t, time.Second)
	stopped := p.restarts.Load()
	runs := len(p.runs())
	time.Sleep(2*maxRestart + 100*time.Millisecond)
	if got := p.restarts.Load(); got != stopped {
		t.Errorf("restarted %d times after Stop", got-stopped)
	}
	if got := len(p.runs()); got != runs {
		t.Errorf("ran %d times after Stop", got-runs)
	}
	if pid := p.PID(); pid != 0 {
		t.Errorf("PID after Stop = %d", pid)
	}
	// Nor does an apply after Stop start it again.
	if err := p.ReloadFunc(context.Background()); err != nil {
		t.Errorf("ReloadFunc after Stop: %v", err)
	}
	if err := p.Ensure(); err != nil {
		t.Errorf("Ensure after Stop: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := len(p.runs()); got != runs || p.PID() != 0 {
		t.Errorf("the proxy started after Stop")
	}
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	// Runs longer than stableRun (300ms) before dying: every restart is a first one.
	p := newProxy(t, "sleep 0.4\nexit 1\n")
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restarts", func() bool { return p.restarts.Load() >= 3 })
	p.Supervisor.mu.Lock()
	crashes := p.crashes
	p.Supervisor.mu.Unlock()
	if crashes != 1 {
		t.Errorf("crashes = %d after deaths that each came after a stable run, want 1", crashes)
	}
}

func TestStopGraceful(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGUSR1} {
		t.Run(sig.String(), func(t *testing.T) {
			name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
			p := newProxy(t, fmt.Sprintf(`trap 'echo %s > "$dir/got"; exit 0' %s
`, name, name)+childScript)
			p.StopSignal = sig
			if err := p.Ensure(); err != nil {
				t.Fatal(err)
			}
			pid := p.startedPID(t, 0)
			child := p.childOf(t, pid) // the trap is set

			if d := p.stop(t, 5*time.Second); d > 3*time.Second {
				t.Errorf("Stop took %v", d)
			}
			if got := p.file("got"); got != name {
				t.Errorf("the proxy got %q, want %s", got, name)
			}
			if p.PID() != 0 || procState(pid) != "" {
				t.Errorf("the proxy %d is still there after Stop", pid)
			}
			// What it left behind goes with it.
			waitFor(t, "its child to die", func() bool { return !alive(child) })
			time.Sleep(2 * minRestart)
			if n := p.restarts.Load(); n != 0 || len(p.runs()) != 1 {
				t.Errorf("the proxy was restarted after Stop")
			}
		})
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	p := newProxy(t, `trap '' QUIT
echo ready > "$dir/ready"
while :; do sleep 0.05; done
`)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	pid := p.startedPID(t, 0)
	waitFor(t, "the trap", func() bool { return p.file("ready") != "" })

	const timeout = 300 * time.Millisecond
	d := p.stop(t, timeout)
	if d < timeout {
		t.Errorf("Stop returned after %v, before the timeout", d)
	}
	if p.PID() != 0 || procState(pid) != "" {
		t.Errorf("the proxy %d is still there after Stop", pid)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("its process group is still there: %v", err)
	}
	time.Sleep(2 * minRestart)
	if n := p.restarts.Load(); n != 0 || len(p.runs()) != 1 {
		t.Errorf("the proxy was restarted after Stop")
	}
}

func TestStopBeforeStart(t *testing.T) {
	p := newProxy(t, "exec sleep 1000\n")
	if d := p.stop(t, 5*time.Second); d > time.Second {
		t.Errorf("Stop with nothing running took %v", d)
	}
	// Stopping for good: the first apply after it does not start the proxy.
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := p.ReloadFunc(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if p.PID() != 0 || len(p.runs()) != 0 {
		t.Errorf("the proxy started after Stop")
	}
	if got := p.reloadPIDs(); len(got) != 0 {
		t.Errorf("Reload called with %v", got)
	}
}

func TestMissingBinary(t *testing.T) {
	for _, name := range []string{"vhost-gen-no-such-proxy", filepath.Join(t.TempDir(), "no-such-proxy")} {
		p := newProxy(t, "")
		p.Argv = []string{name, "-g", "daemon off;"}
		err := p.Ensure()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Ensure with %s = %v, want an error naming it", name, err)
		}
		// Still not running: the next apply tries again, and says so again.
		if err := p.Ensure(); err == nil || p.PID() != 0 {
			t.Errorf("second Ensure with %s = %v, PID %d, want the error again", name, err, p.PID())
		}
		if err := p.ReloadFunc(context.Background()); err == nil {
			t.Errorf("ReloadFunc with %s = nil, want the error", name)
		}
	}
}

func TestStartsOnceTheBinaryIsThere(t *testing.T) {
	p := newProxy(t, "exec sleep 1000\n")
	sh := p.Argv[0]
	bin := filepath.Join(t.TempDir(), "proxy")
	p.Argv[0] = bin
	if err := p.Ensure(); err == nil || !strings.Contains(err.Error(), bin) {
		t.Fatalf("Ensure without the binary = %v, want an error naming %s", err, bin)
	}
	// The binary appears (a symlink: exec'ing a file just written can fail with ETXTBSY).
	if err := os.Symlink(sh, bin); err != nil {
		t.Fatal(err)
	}
	if err := p.Ensure(); err != nil {
		t.Fatalf("Ensure once the binary is there: %v", err)
	}
	p.startedPID(t, 0)
}

// The supervisor reaps only its proxy's process group: vhost-gen's own commands (nginx -t,
// haproxy -c) keep their exit statuses, even when they have exited before the supervisor reaps.
func TestReapingLeavesOtherChildren(t *testing.T) {
	p := newProxy(t, childScript)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	pid := p.startedPID(t, 0)
	p.childOf(t, pid)

	// A command that has exited, not yet waited for, while the supervisor reaps.
	cmd := exec.Command("sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the command to exit", func() bool { return procState(cmd.Process.Pid) == "Z" })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pid = p.startedPID(t, pid)
	p.childOf(t, pid)
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("the command's status after the supervisor reaped: %v, want exit status 7", err)
	}

	// Commands running all along while the proxy is killed and restarted over and over.
	done := make(chan struct{})
	var wg sync.WaitGroup
	var ran atomic.Int32
	for g := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				code := 1 + g
				var ee *exec.ExitError
				err := exec.Command("sh", "-c", fmt.Sprintf("exit %d", code)).Run()
				if !errors.As(err, &ee) || ee.ExitCode() != code {
					t.Errorf("a command that exits %d: %v", code, err)
					return
				}
				out, err := exec.Command("sh", "-c", "echo ok").Output()
				if err != nil || string(out) != "ok\n" {
					t.Errorf("a command that succeeds: %q, %v", out, err)
					return
				}
				ran.Add(1)
			}
		})
	}
	for range 5 {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		pid = p.startedPID(t, pid)
		p.childOf(t, pid)
	}
	close(done)
	wg.Wait()
	if ran.Load() == 0 {
		t.Error("no command ran")
	}
	if n := p.restarts.Load(); n != 6 {
		t.Errorf("OnRestart called %d times, want 6", n)
	}
}
