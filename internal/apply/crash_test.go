package apply

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// simProxy stands in for a running proxy across vhost-gen's restarts: it serves what it last
// loaded, and a reload loads the file on disk.
type simProxy struct {
	path    string
	loaded  string // what the proxy serves
	reloads int
	// during, when set, runs inside the reload; loadFirst says whether the proxy has loaded the
	// file by then.
	during    func()
	loadFirst bool
}

func (p *simProxy) reload(context.Context) error {
	p.reloads++
	if p.during != nil {
		if p.loadFirst {
			p.loaded = readOr(p.path, "<none>")
		}
		p.during()
	}
	p.loaded = readOr(p.path, "<none>")
	return nil
}

func (p *simProxy) hot(_ context.Context, _, next []byte) (bool, error) {
	p.loaded = string(next)
	return true, nil
}

// crash is what a simulated SIGKILL panics with.
type crash struct{}

// applyCrashing runs Apply and reports whether it "crashed" (panicked with crash{}).
func applyCrashing(t *testing.T, a *Applier, data string) (crashed bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	if _, err := a.Apply(context.Background(), []byte(data)); err != nil {
		t.Fatalf("Apply(%q): %v", data, err)
	}
	return false
}

func marker(path string) string {
	dir, base := filepath.Split(path)
	return readOr(filepath.Join(dir, "."+base+".applied"), "<none>")
}

// wantMarkerHonest asserts the marker's promise: when it names the digest of the file on disk,
// the proxy has loaded exactly that file.
func wantMarkerHonest(t *testing.T, p *simProxy) {
	t.Helper()
	m := strings.TrimSpace(marker(p.path))
	onDisk := readOr(p.path, "<none>")
	if m == digest([]byte(onDisk)) && p.loaded != onDisk {
		t.Errorf("the marker claims the file on disk (%q) is loaded, but the proxy serves %q", onDisk, p.loaded)
	}
}

// TestCrashAtEachStep kills an apply at every step (a panic standing for SIGKILL), then starts a
// new Applier on the same file, as a restarted vhost-gen would: the proxy must end up serving the
// newest config, and a further restart must not reload again.
func TestCrashAtEachStep(t *testing.T) {
	steps := []string{"staged", "checked", "linked", "pending", "renamed", "reload, not loaded yet", "reload, loaded", "reloaded", "hot"}
	for _, step := range steps {
		for _, next := range []string{"v2\n", "v3\n", "v1\n"} { // after the restart: the same, a newer, the older config
			t.Run(fmt.Sprintf("%s/then %s", step, strings.TrimSpace(next)), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "vhosts.conf")
				p := &simProxy{path: path}
				check := func(context.Context, string) error { return nil }
				a := &Applier{Path: path, Check: check, Reload: p.reload}
				if step == "hot" {
					a.Hot = p.hot
				}
				mustApply(t, a, "v1\n", Applied)
				if p.loaded != "v1\n" {
					t.Fatalf("proxy serves %q after the first apply", p.loaded)
				}
				switch step {
				case "reload, not loaded yet", "reload, loaded":
					p.during, p.loadFirst = func() { panic(crash{}) }, step == "reload, loaded"
				default:
					a.crashAt = func(s string) {
						if s == step {
							panic(crash{})
						}
					}
				}
				if !applyCrashing(t, a, "v2\n") {
					t.Fatalf("no crash at %s", step)
				}
				p.during = nil
				wantMarkerHonest(t, p)

				// vhost-gen starts again under the same proxy.
				a2 := &Applier{Path: path, Check: check, Reload: p.reload}
				if _, err := a2.Apply(context.Background(), []byte(next)); err != nil {
					t.Fatalf("Apply after the restart: %v", err)
				}
				if p.loaded != next {
					t.Errorf("after the restart the proxy serves %q, want %q", p.loaded, next)
				}
				wantFile(t, path, ptr(next))
				wantNoStaged(t, path)
				if m := strings.TrimSpace(marker(path)); m != digest([]byte(next)) {
					t.Errorf("marker = %q, want the digest of %q", m, next)
				}

				// And once more: now nothing to do.
				reloads := p.reloads
				a3 := &Applier{Path: path, Check: check, Reload: p.reload}
				mustApply(t, a3, next, Unchanged)
				if p.reloads != reloads {
					t.Errorf("a restart under a proxy serving the same config reloaded it")
				}
			})
		}
	}
}

// A crash leaves staged configs and temporary markers beside the file (SIGKILL runs no deferred
// removal): the next start removes them, and nothing else.
func TestLeftoversRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vhosts.conf")
	leftovers := []string{".vhosts.conf.staged-123", ".vhosts.conf.staged-9", ".vhosts.conf.applied.tmp-77"}
	kept := []string{".other.conf.staged-1", "vhosts.conf.prev", ".vhosts.conf.applied", "vhosts.conf", "notes.staged-1"}
	for _, n := range append(leftovers, kept...) {
		writeFile(t, filepath.Join(dir, n), "x\n")
	}
	writeFile(t, filepath.Join(dir, ".vhosts.conf.applied"), digest([]byte("x\n"))+"\n")
	p := &simProxy{path: path, loaded: "x\n"}
	a := &Applier{Path: path, Reload: p.reload}
	mustApply(t, a, "x\n", Unchanged) // even when nothing is applied
	for _, n := range leftovers {
		wantFile(t, filepath.Join(dir, n), nil)
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v, want it kept", n, err)
		}
	}
	if p.reloads != 0 {
		t.Errorf("reloads = %d, want 0", p.reloads)
	}
}

// The on-disk state at start, as a crash or an older vhost-gen left it: the file is taken as
// loaded only when the marker says so, or when there is no marker at all.
func TestFirstApplyReadsMarker(t *testing.T) {
	const cur = "running\n"
	tests := []struct {
		name    string
		marker  *string
		want    Outcome
		reloads int
	}{
		{name: "marker names the file", marker: ptr(digest([]byte(cur)) + "\n"), want: Unchanged},
		{name: "no marker (written before markers existed)", marker: nil, want: Unchanged},
		{name: "marker pending: crashed between the rename and the reload", marker: ptr("pending " + digest([]byte(cur)) + "\n"), want: Applied, reloads: 1},
		{name: "marker names another config", marker: ptr(digest([]byte("older\n")) + "\n"), want: Applied, reloads: 1},
		{name: "marker empty", marker: ptr(""), want: Applied, reloads: 1},
		{name: "marker cut short", marker: ptr(digest([]byte(cur))[:12]), want: Applied, reloads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newApplier(t)
			writeFile(t, a.Path, cur)
			if tt.marker != nil {
				writeFile(t, a.markerPath(), *tt.marker)
			}
			mustApply(t, a, cur, tt.want)
			if f.reloads != tt.reloads {
				t.Errorf("reloads = %d, want %d", f.reloads, tt.reloads)
			}
			if tt.want == Applied {
				wantFile(t, a.markerPath(), ptr(digest([]byte(cur))+"\n"))
			}
			mustApply(t, a, cur, Unchanged)
		})
	}
}

// The marker through an Applier's life: it names what the proxy loaded, is left alone by
// failures before the rename, and stays pending after a failed reload.
func TestMarkerLifecycle(t *testing.T) {
	a, f, h := newHotApplier(t)
	m := func() string { return readOr(a.markerPath(), "<none>") }
	mustApply(t, a, "one\n", Applied)
	if got, want := m(), digest([]byte("one\n"))+"\n"; got != want {
		t.Fatalf("marker after an apply = %q, want %q", got, want)
	}
	f.checkErr = errProxy
	if _, err := a.Apply(context.Background(), []byte("bad\n")); !errors.Is(err, ErrCheck) {
		t.Fatalf("Apply: %v, want ErrCheck", err)
	}
	if got, want := m(), digest([]byte("one\n"))+"\n"; got != want {
		t.Errorf("marker after a refused check = %q, want it unchanged (%q)", got, want)
	}
	f.checkErr, f.reloadErr = nil, errProxy
	if _, err := a.Apply(context.Background(), []byte("two\n")); !errors.Is(err, ErrReload) {
		t.Fatalf("Apply: %v, want ErrReload", err)
	}
	wantFile(t, a.Path, ptr("one\n"))
	if got := m(); !strings.HasPrefix(got, "pending ") {
		t.Errorf("marker after a failed reload = %q, want it pending: the proxy's state is not known", got)
	}
	f.reloadErr = nil
	mustApply(t, a, "two\n", Applied)
	if got, want := m(), digest([]byte("two\n"))+"\n"; got != want {
		t.Errorf("marker = %q, want %q", got, want)
	}
	h.ok = true
	mustApply(t, a, "three\n", Updated)
	if got, want := m(), digest([]byte("three\n"))+"\n"; got != want {
		t.Errorf("marker after a Hot update = %q, want %q", got, want)
	}
	wantNoStaged(t, a.Path)
	if left, _ := filepath.Glob(a.markerPath() + ".tmp-*"); len(left) > 0 {
		t.Errorf("temporary markers left behind: %v", left)
	}
}

// The marker cannot be set pending: nothing is put in place, and the error names the marker.
func TestMarkerUnwritable(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "one\n", Applied)
	os.Remove(a.markerPath())
	if err := os.MkdirAll(filepath.Join(a.markerPath(), "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := a.Apply(context.Background(), []byte("two\n"))
	if err == nil || !strings.Contains(err.Error(), a.markerPath()) {
		t.Fatalf("Apply: %v, want an error naming %s", err, a.markerPath())
	}
	wantFile(t, a.Path, ptr("one\n"))
	if f.reloads != 1 {
		t.Errorf("reloads = %d, want 1", f.reloads)
	}
	wantNoStaged(t, a.Path)
}

// SIGTERM (the context cancelled) during the check abandons the apply: the old file stays live
// and the marker unchanged.
func TestCancelDuringCheckAbandons(t *testing.T) {
	p := &simProxy{path: filepath.Join(t.TempDir(), "vhosts.conf")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelNow bool
	a := &Applier{Path: p.path, Reload: p.reload, Check: func(ctx context.Context, _ string) error {
		if !cancelNow {
			return nil
		}
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}
	mustApply(t, a, "one\n", Applied)
	before := marker(p.path)
	cancelNow = true
	if _, err := a.Apply(ctx, []byte("two\n")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply: %v, want the cancellation", err)
	}
	wantFile(t, p.path, ptr("one\n"))
	if got := marker(p.path); got != before {
		t.Errorf("marker = %q, want it unchanged (%q)", got, before)
	}
	if p.loaded != "one\n" || p.reloads != 1 {
		t.Errorf("proxy serves %q after %d reloads, want one after 1", p.loaded, p.reloads)
	}
	wantNoStaged(t, p.path)
}

// SIGTERM once the new file is in place: the reload still runs to its end, so that the proxy is
// not left on a config other than the file's.
func TestCancelAfterRenameFinishes(t *testing.T) {
	t.Run("reload func", func(t *testing.T) {
		p := &simProxy{path: filepath.Join(t.TempDir(), "vhosts.conf")}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := &Applier{Path: p.path, Reload: func(ctx context.Context) error {
			cancel()
			if err := ctx.Err(); err != nil {
				return err
			}
			return p.reload(ctx)
		}}
		out, err := a.Apply(ctx, []byte("one\n"))
		if err != nil || out != Applied {
			t.Fatalf("Apply = %v, %v; want Applied", out, err)
		}
		if p.loaded != "one\n" {
			t.Errorf("proxy serves %q", p.loaded)
		}
		if m := marker(p.path); m != digest([]byte("one\n"))+"\n" {
			t.Errorf("marker = %q", m)
		}
	})
	t.Run("reload command", func(t *testing.T) {
		dir := t.TempDir()
		done := filepath.Join(dir, "reloaded")
		reload, err := CommandReload(fmt.Sprintf("sh -c 'sleep 0.5; touch %s'", done))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := &Applier{Path: filepath.Join(dir, "vhosts.conf"), Check: func(context.Context, string) error {
			time.AfterFunc(100*time.Millisecond, cancel) // SIGTERM while the reload runs
			return nil
		}, Reload: reload}
		out, err := a.Apply(ctx, []byte("one\n"))
		if err != nil || out != Applied {
			t.Fatalf("Apply = %v, %v; want Applied", out, err)
		}
		if ctx.Err() == nil {
			t.Fatal("the context was not cancelled during the reload")
		}
		if _, err := os.Stat(done); err != nil {
			t.Errorf("the reload command did not run to its end: %v", err)
		}
	})
}

// processGone says whether pid has exited (absent or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

func TestCheckTimeout(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "one\n", Applied)
	check, err := CommandCheck("sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	a.Check, a.Timeout = check, 300*time.Millisecond
	before := marker(a.Path)
	start := time.Now()
	_, err = a.Apply(context.Background(), []byte("two\n"))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hanging check held the apply for %v", d)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply: %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	if errors.Is(err, ErrCheck) {
		t.Errorf("error %v wraps ErrCheck: the config was not refused (the quarantine must not bisect)", err)
	}
	for _, w := range []string{"config check timed out after 300ms", "sleep", "nothing was put in place"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	wantFile(t, a.Path, ptr("one\n"))
	if got := marker(a.Path); got != before {
		t.Errorf("marker = %q, want it unchanged", got)
	}
	if f.reloads != 1 {
		t.Errorf("reloads = %d, want 1", f.reloads)
	}
	wantNoStaged(t, a.Path)
	// CheckData (the quarantine's) is bounded too.
	if err := a.CheckData(context.Background(), []byte("two\n")); !errors.Is(err, ErrTimeout) {
		t.Errorf("CheckData: %v, want ErrTimeout", err)
	}
	// Once the check answers again, the same bytes are applied.
	a.Check = f.check
	mustApply(t, a, "two\n", Applied)
}

func TestReloadTimeout(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "sleep.pid")
	// A wrapper script whose child holds the output open: the whole group must go.
	hang, err := CommandReload(fmt.Sprintf(`sh -c 'sleep 61 & echo $! > %s; wait'`, pidfile))
	if err != nil {
		t.Fatal(err)
	}
	p := &simProxy{path: filepath.Join(dir, "vhosts.conf")}
	a := &Applier{Path: p.path, Reload: p.reload}
	mustApply(t, a, "one\n", Applied)
	a.Reload, a.Timeout = hang, 300*time.Millisecond
	start := time.Now()
	_, err = a.Apply(context.Background(), []byte("two\n"))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hanging reload held the apply for %v", d)
	}
	if !errors.Is(err, ErrReload) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Apply: %v, want ErrReload and ErrTimeout", err)
	}
	for _, w := range []string{"reload timed out after 300ms", "previous config restored", "sh"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	wantFile(t, p.path, ptr("one\n"))
	if m := marker(p.path); !strings.HasPrefix(m, "pending ") {
		t.Errorf("marker = %q, want it pending", m)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the reload command's child (pid %d) outlived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Whether the proxy loaded "two" is not known: even the bytes applied before are reloaded.
	a.Reload = p.reload
	reloads := p.reloads
	mustApply(t, a, "one\n", Applied)
	if p.reloads != reloads+1 || p.loaded != "one\n" {
		t.Errorf("reloads +%d, proxy serves %q; want one reload of one", p.reloads-reloads, p.loaded)
	}
}

// A Hot update that hangs is stopped, heard by HotFailed, and the reload puts everything right.
func TestHotTimeoutReloads(t *testing.T) {
	a, f, _ := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	var failed []error
	a.HotFailed = func(err error) { failed = append(failed, err) }
	a.Hot = func(ctx context.Context, _, _ []byte) (bool, error) {
		<-ctx.Done()
		return false, ctx.Err()
	}
	a.Timeout = 200 * time.Millisecond
	mustApply(t, a, "two\n", Applied)
	if f.reloads != 2 {
		t.Errorf("reloads = %d, want 2", f.reloads)
	}
	if len(failed) != 1 || !errors.Is(failed[0], ErrTimeout) {
		t.Errorf("HotFailed heard %v, want one ErrTimeout", failed)
	}
}

func TestDefaultTimeout(t *testing.T) {
	if got := (&Applier{}).timeout(); got != DefaultTimeout || DefaultTimeout != 30*time.Second {
		t.Errorf("timeout() = %v (DefaultTimeout %v), want 30s", got, DefaultTimeout)
	}
	if got := (&Applier{Timeout: time.Second}).timeout(); got != time.Second {
		t.Errorf("timeout() = %v, want 1s", got)
	}
}

// A command that exits but leaves something behind holding its output (a daemon it started)
// does not hold Run.
func TestRunBackgroundChildHoldsOutput(t *testing.T) {
	start := time.Now()
	if err := Run(context.Background(), []string{"sh", "-c", "sleep 8 & exit 0"}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("Run took %v: it waited for the background child", d)
	}
}

// mount mounts for a test and unmounts when it ends; it skips the test when this process may not
// mount (not root, or no CAP_SYS_ADMIN).
func mount(t *testing.T, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if err := syscall.Mount(source, target, fstype, flags, data); err != nil {
		if os.Geteuid() != 0 || errors.Is(err, syscall.EPERM) {
			t.Skipf("cannot mount here (uid %d): %v", os.Geteuid(), err)
		}
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
	if flags&syscall.MS_REMOUNT == 0 {
		t.Cleanup(func() {
			// EINVAL: the test unmounted it already.
			if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("unmount %s: %v", target, err)
			}
		})
	}
}

// wantUntouched asserts that a failed apply left the live config as it was.
func wantUntouched(t *testing.T, a *Applier, p *simProxy, live, mark string) {
	t.Helper()
	wantFile(t, a.Path, ptr(live))
	if got := marker(a.Path); got != mark {
		t.Errorf("marker = %q, want it unchanged (%q)", got, mark)
	}
	if p.loaded != live {
		t.Errorf("proxy serves %q, want %q", p.loaded, live)
	}
}

// The disk holding --out is full: a clear error naming the file, the live config as it was, and
// the apply goes through once there is space again.
func TestDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", dir, "tmpfs", 0, "size=64k")
	p := &simProxy{path: filepath.Join(dir, "vhosts.conf")}
	a := &Applier{Path: p.path, Check: func(context.Context, string) error { return nil }, Reload: p.reload}
	mustApply(t, a, "one\n", Applied)
	mark := marker(p.path)
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 1<<20))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v, want ENOSPC", err)
	}
	big := strings.Repeat("server {}\n", 1000)
	_, err = a.Apply(context.Background(), []byte(big))
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), p.path) {
		t.Fatalf("Apply on a full disk: %v, want ENOSPC naming %s", err, p.path)
	}
	if errors.Is(err, ErrCheck) || errors.Is(err, ErrReload) {
		t.Errorf("error %v: neither the check nor the reload failed", err)
	}
	wantUntouched(t, a, p, "one\n", mark)
	wantNoStaged(t, p.path)
	if p.reloads != 1 {
		t.Errorf("reloads = %d, want 1", p.reloads)
	}
	os.Remove(filler)
	mustApply(t, a, big, Applied)
	if p.loaded != big {
		t.Errorf("proxy does not serve the new config after space came back")
	}
}

// --out's directory is read-only (as root, permission bits stop nothing: a read-only mount).
func TestReadOnlyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", dir, "tmpfs", 0, "size=256k")
	p := &simProxy{path: filepath.Join(dir, "vhosts.conf")}
	a := &Applier{Path: p.path, Reload: p.reload}
	mustApply(t, a, "one\n", Applied)
	mark := marker(p.path)
	mount(t, "", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=256k")
	_, err := a.Apply(context.Background(), []byte("two\n"))
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), p.path) {
		t.Fatalf("Apply into a read-only directory: %v, want EROFS naming %s", err, p.path)
	}
	wantUntouched(t, a, p, "one\n", mark)
	// A restart while it is read-only: nothing to clean, nothing lost.
	a2 := &Applier{Path: p.path, Reload: p.reload}
	mustApply(t, a2, "one\n", Unchanged)
	mount(t, "", dir, "", syscall.MS_REMOUNT, "size=256k")
	mustApply(t, a, "two\n", Applied)
	if p.loaded != "two\n" {
		t.Errorf("proxy serves %q after the directory became writable, want two", p.loaded)
	}
}

// The live file itself cannot be replaced (a read-only bind mount of the file, as when the file
// and not its directory is mounted into vhost-gen's container).
func TestUnreplaceableFile(t *testing.T) {
	dir := t.TempDir()
	p := &simProxy{path: filepath.Join(dir, "vhosts.conf")}
	a := &Applier{Path: p.path, Reload: p.reload}
	mustApply(t, a, "one\n", Applied)
	mark := marker(p.path)
	mount(t, p.path, p.path, "", syscall.MS_BIND, "")
	mount(t, "", p.path, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, "")
	_, err := a.Apply(context.Background(), []byte("two\n"))
	if err == nil || !strings.Contains(err.Error(), p.path) {
		t.Fatalf("Apply over a mounted file: %v, want an error naming %s", err, p.path)
	}
	wantUntouched(t, a, p, "one\n", mark)
	wantNoStaged(t, p.path)
	if err := syscall.Unmount(p.path, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, "two\n", Applied)
	if p.loaded != "two\n" {
		t.Errorf("proxy serves %q, want two", p.loaded)
	}
}
