package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProxy stands in for the proxy: it counts checks and reloads, records what each saw, and
// fails when told to.
type fakeProxy struct {
	t    *testing.T
	path string // the live file

	checks, reloads int
	checkErr        error
	reloadErr       error

	checkedPaths []string
	checkedData  []string // the staged file's content, as the check saw it
	liveAtCheck  []string // the live file's content while the check ran ("<none>" if absent)
	liveAtReload []string // the live file's content while the reload ran
	onReload     func()   // runs during the reload, before it returns
}

func (f *fakeProxy) check(_ context.Context, staged string) error {
	f.checks++
	f.checkedPaths = append(f.checkedPaths, staged)
	b, err := os.ReadFile(staged)
	if err != nil {
		f.t.Errorf("check: staged file %s: %v", staged, err)
	}
	f.checkedData = append(f.checkedData, string(b))
	f.liveAtCheck = append(f.liveAtCheck, readOr(f.path, "<none>"))
	return f.checkErr
}

func (f *fakeProxy) reload(context.Context) error {
	f.reloads++
	f.liveAtReload = append(f.liveAtReload, readOr(f.path, "<none>"))
	if f.onReload != nil {
		f.onReload()
	}
	return f.reloadErr
}

func readOr(path, absent string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return absent
	}
	if err != nil {
		return "<error: " + err.Error() + ">"
	}
	return string(b)
}

func newApplier(t *testing.T) (*Applier, *fakeProxy) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vhosts.conf")
	f := &fakeProxy{t: t, path: path}
	return &Applier{Path: path, Check: f.check, Reload: f.reload}, f
}

// wantFile asserts the content of path, or that it does not exist when want is nil.
func wantFile(t *testing.T, path string, want *string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if want == nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: exists (err %v, content %q), want it absent", filepath.Base(path), err, b)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v, want content %q", filepath.Base(path), err, *want)
		return
	}
	if string(b) != *want {
		t.Errorf("%s = %q, want %q", filepath.Base(path), b, *want)
	}
}

func ptr(s string) *string { return &s }

// wantNoStaged asserts that no staged file is left beside path.
func wantNoStaged(t *testing.T, path string) {
	t.Helper()
	dir, base := filepath.Split(path)
	left, err := filepath.Glob(filepath.Join(dir, "."+base+".staged-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("staged files left behind: %v", left)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "staged") {
			t.Errorf("unexpected file %s in %s", e.Name(), dir)
		}
	}
}

func mustApply(t *testing.T, a *Applier, data string, want Outcome) {
	t.Helper()
	got, err := a.Apply(context.Background(), []byte(data))
	if err != nil {
		t.Fatalf("Apply(%q): %v", data, err)
	}
	if got != want {
		t.Fatalf("Apply(%q) = %v, want %v", data, got, want)
	}
}

func TestApplyFirstWritesChecksAndReloads(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "config one\n", Applied)
	if f.checks != 1 || f.reloads != 1 {
		t.Errorf("checks, reloads = %d, %d; want 1, 1", f.checks, f.reloads)
	}
	wantFile(t, a.Path, ptr("config one\n"))
	wantFile(t, a.Path+".prev", nil) // there was no previous file to keep
	wantNoStaged(t, a.Path)
	st, err := os.Stat(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode(); mode != 0o644 {
		t.Errorf("mode = %v, want 0644", mode)
	}
	if got := f.liveAtReload; len(got) != 1 || got[0] != "config one\n" {
		t.Errorf("live file during reload = %q, want the new config", got)
	}
}

func TestApplyChecksStagedFileBesideDestination(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "old\n", Applied)
	mustApply(t, a, "new\n", Applied)
	if len(f.checkedPaths) != 2 {
		t.Fatalf("check ran %d times, want 2", len(f.checkedPaths))
	}
	for i, want := range []string{"old\n", "new\n"} {
		staged := f.checkedPaths[i]
		if staged == a.Path {
			t.Errorf("check %d got the live path, want a staged file", i)
		}
		if filepath.Dir(staged) != filepath.Dir(a.Path) {
			t.Errorf("check %d: staged file %s is not beside %s", i, staged, a.Path)
		}
		if base := filepath.Base(staged); !strings.HasPrefix(base, ".vhosts.conf.staged-") {
			t.Errorf("check %d: staged file name %q, want a hidden .vhosts.conf.staged-* file", i, base)
		}
		if f.checkedData[i] != want {
			t.Errorf("check %d: staged content %q, want %q", i, f.checkedData[i], want)
		}
	}
	// The check runs before anything is put in place.
	if want := []string{"<none>", "old\n"}; strings.Join(f.liveAtCheck, "|") != strings.Join(want, "|") {
		t.Errorf("live file during checks = %q, want %q", f.liveAtCheck, want)
	}
	wantNoStaged(t, a.Path)
}

func TestApplySameBytesUnchanged(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "same\n", Applied)
	for range 3 {
		mustApply(t, a, "same\n", Unchanged)
	}
	if f.checks != 1 || f.reloads != 1 {
		t.Errorf("checks, reloads = %d, %d; want 1, 1 (same bytes again must not check or reload)", f.checks, f.reloads)
	}
	// Compared by content: the same bytes in another buffer are unchanged (Apply keeps the
	// caller's slice, which the caller leaves as it is).
	mustApply(t, a, "other\n", Applied)
	mustApply(t, a, "other\n", Unchanged)
	mustApply(t, a, "OTHER\n", Applied)
	if f.reloads != 3 {
		t.Errorf("reloads = %d, want 3", f.reloads)
	}
}

func TestApplyFirstCallFileAlreadyMatches(t *testing.T) {
	tests := []struct {
		name    string
		onDisk  string
		data    string
		want    Outcome
		reloads int
	}{
		{name: "exactly the bytes", onDisk: "running\n", data: "running\n", want: Unchanged, reloads: 0},
		{name: "different bytes", onDisk: "running\n", data: "running \n", want: Applied, reloads: 1},
		{name: "a prefix", onDisk: "running", data: "running\n", want: Applied, reloads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newApplier(t)
			if err := os.WriteFile(a.Path, []byte(tt.onDisk), 0o644); err != nil {
				t.Fatal(err)
			}
			mustApply(t, a, tt.data, tt.want)
			if f.reloads != tt.reloads {
				t.Errorf("reloads = %d, want %d", f.reloads, tt.reloads)
			}
			if tt.want == Unchanged && f.checks != 0 {
				t.Errorf("checks = %d, want 0", f.checks)
			}
			wantFile(t, a.Path, ptr(tt.data))
			// Either way, the bytes now count as applied.
			mustApply(t, a, tt.data, Unchanged)
			if f.reloads != tt.reloads {
				t.Errorf("reloads after repeating = %d, want %d", f.reloads, tt.reloads)
			}
		})
	}
}

func TestApplyFirstCallMatchThenChange(t *testing.T) {
	a, f := newApplier(t)
	if err := os.WriteFile(a.Path, []byte("A"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustApply(t, a, "A", Unchanged)
	mustApply(t, a, "B", Applied)
	wantFile(t, a.Path+".prev", ptr("A"))
	mustApply(t, a, "A", Applied) // A is no longer what is applied
	if f.reloads != 2 {
		t.Errorf("reloads = %d, want 2", f.reloads)
	}
	wantFile(t, a.Path, ptr("A"))
	wantFile(t, a.Path+".prev", ptr("B"))
}

func TestApplyKeepsPrevious(t *testing.T) {
	a, _ := newApplier(t)
	steps := []struct {
		data string
		prev *string
	}{
		{"one", nil},
		{"two", ptr("one")},
		{"three", ptr("two")},
		{"three", ptr("two")}, // unchanged: .prev is not touched
		{"four", ptr("three")},
	}
	for i, s := range steps {
		if _, err := a.Apply(context.Background(), []byte(s.data)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		wantFile(t, a.Path, ptr(s.data))
		wantFile(t, a.Path+".prev", s.prev)
		wantNoStaged(t, a.Path)
	}
}

var errProxy = errors.New("proxy said no: unknown directive \"frob\"")

func TestApplyCheckFailure(t *testing.T) {
	tests := []struct {
		name   string
		before []string // applied successfully first
		onDisk *string  // written before the first Apply, when not nil
		live   *string  // the live file after the failed apply
		prev   *string  // the .prev file after the failed apply
	}{
		{name: "no file yet", live: nil, prev: nil},
		{name: "file from a previous run", onDisk: ptr("old run\n"), live: ptr("old run\n"), prev: nil},
		{name: "after one apply", before: []string{"good 1\n"}, live: ptr("good 1\n"), prev: nil},
		{name: "after two applies", before: []string{"good 1\n", "good 2\n"}, live: ptr("good 2\n"), prev: ptr("good 1\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newApplier(t)
			if tt.onDisk != nil {
				if err := os.WriteFile(a.Path, []byte(*tt.onDisk), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range tt.before {
				mustApply(t, a, b, Applied)
			}
			reloads := f.reloads
			f.checkErr = errProxy
			got, err := a.Apply(context.Background(), []byte("bad\n"))
			if !errors.Is(err, ErrCheck) {
				t.Errorf("error %v does not wrap ErrCheck", err)
			}
			if !errors.Is(err, errProxy) {
				t.Errorf("error %v does not wrap the check's error", err)
			}
			if errors.Is(err, ErrReload) {
				t.Errorf("error %v wraps ErrReload", err)
			}
			if err != nil && !strings.Contains(err.Error(), "unknown directive") {
				t.Errorf("error %q does not carry the check's message", err)
			}
			if got != Unchanged {
				t.Errorf("outcome = %v, want Unchanged", got)
			}
			if f.reloads != reloads {
				t.Errorf("reloaded after a failed check")
			}
			wantFile(t, a.Path, tt.live)
			wantFile(t, a.Path+".prev", tt.prev)
			wantNoStaged(t, a.Path)

			// A failed check is not remembered as applied: once the check passes, the same
			// bytes are applied.
			f.checkErr = nil
			mustApply(t, a, "bad\n", Applied)
			wantFile(t, a.Path, ptr("bad\n"))
		})
	}
}

func TestApplyReloadFailure(t *testing.T) {
	tests := []struct {
		name   string
		onDisk *string  // written before the first Apply, when not nil
		before []string // applied successfully first
		live   *string  // the live file after the failed reload
	}{
		{name: "no previous file: the new file is removed", live: nil},
		{name: "file from a previous run is restored", onDisk: ptr("old run\n"), live: ptr("old run\n")},
		{name: "previous apply is restored", before: []string{"good\n"}, live: ptr("good\n")},
		{name: "last of several applies is restored", before: []string{"good 1\n", "good 2\n"}, live: ptr("good 2\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newApplier(t)
			if tt.onDisk != nil {
				if err := os.WriteFile(a.Path, []byte(*tt.onDisk), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range tt.before {
				mustApply(t, a, b, Applied)
			}
			reloads := f.reloads
			f.reloadErr = errProxy
			got, err := a.Apply(context.Background(), []byte("new\n"))
			if !errors.Is(err, ErrReload) {
				t.Errorf("error %v does not wrap ErrReload", err)
			}
			if !errors.Is(err, errProxy) {
				t.Errorf("error %v does not wrap the reload's error", err)
			}
			if errors.Is(err, ErrCheck) {
				t.Errorf("error %v wraps ErrCheck", err)
			}
			if got != Unchanged {
				t.Errorf("outcome = %v, want Unchanged", got)
			}
			if f.reloads != reloads+1 {
				t.Fatalf("reloads = %d, want %d", f.reloads, reloads+1)
			}
			// The reload was attempted with the new file in place...
			if live := f.liveAtReload[len(f.liveAtReload)-1]; live != "new\n" {
				t.Errorf("live file during the failed reload = %q, want the new config", live)
			}
			// ...and the previous one is back.
			wantFile(t, a.Path, tt.live)
			wantNoStaged(t, a.Path)

			// Not forgotten: the same bytes are tried again...
			checks, reloads1 := f.checks, f.reloads
			_, err = a.Apply(context.Background(), []byte("new\n"))
			if !errors.Is(err, ErrReload) {
				t.Errorf("retry while the proxy still fails: error %v, want ErrReload", err)
			}
			if f.checks != checks+1 || f.reloads != reloads1+1 {
				t.Errorf("retry: checks +%d, reloads +%d; want +1, +1 (a failed apply must not be skipped)",
					f.checks-checks, f.reloads-reloads1)
			}
			wantFile(t, a.Path, tt.live)

			// ...and once the proxy reloads again, they are applied.
			f.reloadErr = nil
			mustApply(t, a, "new\n", Applied)
			if f.reloads != reloads+3 {
				t.Errorf("reloads = %d, want %d", f.reloads, reloads+3)
			}
			wantFile(t, a.Path, ptr("new\n"))
			wantFile(t, a.Path+".prev", tt.live)
			mustApply(t, a, "new\n", Unchanged)
			wantNoStaged(t, a.Path)
		})
	}
}

// After a failed reload the previous bytes are back on disk; re-applying them (the routing
// went back to the old state) must still be possible, and bytes that were only ever attempted
// must not count as applied.
func TestApplyReloadFailureThenPreviousBytes(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "A", Applied)
	f.reloadErr = errProxy
	if _, err := a.Apply(context.Background(), []byte("B")); !errors.Is(err, ErrReload) {
		t.Fatalf("Apply(B): %v, want ErrReload", err)
	}
	f.reloadErr = nil
	// A is what was last applied successfully and is what is on disk.
	mustApply(t, a, "A", Unchanged)
	wantFile(t, a.Path, ptr("A"))
	mustApply(t, a, "B", Applied)
	wantFile(t, a.Path, ptr("B"))
	wantFile(t, a.Path+".prev", ptr("A"))
}

// The comparison is with what was last applied, not with the file on disk: bytes that are on
// disk but were never applied by this Applier are checked and reloaded.
func TestApplyComparesWithAppliedNotDisk(t *testing.T) {
	a, f := newApplier(t)
	mustApply(t, a, "A", Applied)
	writeFile(t, a.Path, "B") // the file changed under us, e.g. a failed restore or an operator
	mustApply(t, a, "B", Applied)
	if f.checks != 2 || f.reloads != 2 {
		t.Errorf("checks, reloads = %d, %d; want 2, 2", f.checks, f.reloads)
	}
	// And the other way round: bytes equal to what was applied are skipped even when the file
	// on disk differs.
	writeFile(t, a.Path, "C")
	mustApply(t, a, "B", Unchanged)
	if f.reloads != 2 {
		t.Errorf("reloads = %d, want 2", f.reloads)
	}
}

func TestApplyReloadFailureRestoreFails(t *testing.T) {
	// The reload itself removes what restoring needs, so that restoring fails too; the error
	// must say both.
	tests := []struct {
		name     string
		before   []string
		sabotage func(a *Applier) func()
	}{
		{
			name:   "previous file vanished",
			before: []string{"good\n"},
			sabotage: func(a *Applier) func() {
				return func() { os.Remove(a.Path + ".prev") }
			},
		},
		{
			name: "new file vanished",
			sabotage: func(a *Applier) func() {
				return func() { os.Remove(a.Path) }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f := newApplier(t)
			for _, b := range tt.before {
				mustApply(t, a, b, Applied)
			}
			f.reloadErr = errProxy
			f.onReload = tt.sabotage(a)
			_, err := a.Apply(context.Background(), []byte("new\n"))
			if !errors.Is(err, ErrReload) || !errors.Is(err, errProxy) {
				t.Errorf("error %v: want it to wrap ErrReload and the reload's error", err)
			}
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error %v: want it to wrap the restore's error", err)
			}
			if err != nil && !strings.Contains(err.Error(), "restoring the previous config failed") {
				t.Errorf("error %q does not say that restoring failed", err)
			}
			// Still not forgotten: the same bytes are checked and reloaded again, whatever the
			// file on disk holds now.
			f.reloadErr, f.onReload = nil, nil
			reloads := f.reloads
			mustApply(t, a, "new\n", Applied)
			if f.reloads != reloads+1 {
				t.Errorf("retry after a failed restore: reloads +%d, want +1", f.reloads-reloads)
			}
			wantFile(t, a.Path, ptr("new\n"))
		})
	}
}

func TestApplyNilCheckAndReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.conf")
	a := &Applier{Path: path}
	mustApply(t, a, "x", Applied)
	mustApply(t, a, "x", Unchanged)
	mustApply(t, a, "y", Applied)
	wantFile(t, path, ptr("y"))
	wantFile(t, path+".prev", ptr("x"))
	wantNoStaged(t, path)
}

func TestApplyRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	f := &fakeProxy{t: t, path: "rel.conf"}
	a := &Applier{Path: "rel.conf", Check: f.check, Reload: f.reload}
	mustApply(t, a, "rel", Applied)
	wantFile(t, filepath.Join(dir, "rel.conf"), ptr("rel"))
	if len(f.checkedPaths) != 1 || filepath.Dir(f.checkedPaths[0]) != "." {
		t.Errorf("checked %q, want a staged file in the current directory", f.checkedPaths)
	}
	wantNoStaged(t, filepath.Join(dir, "rel.conf"))
}

func TestApplyMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "x.conf")
	f := &fakeProxy{t: t, path: path}
	a := &Applier{Path: path, Check: f.check, Reload: f.reload}
	if _, err := a.Apply(context.Background(), []byte("x")); err == nil {
		t.Fatal("Apply into a missing directory: no error")
	}
	if f.checks != 0 || f.reloads != 0 {
		t.Errorf("checks, reloads = %d, %d; want 0, 0", f.checks, f.reloads)
	}
}

func TestApplyPassesContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	var sawCheck, sawReload any
	a := &Applier{
		Path:   filepath.Join(t.TempDir(), "c.conf"),
		Check:  func(ctx context.Context, _ string) error { sawCheck = ctx.Value(key{}); return nil },
		Reload: func(ctx context.Context) error { sawReload = ctx.Value(key{}); return nil },
	}
	if _, err := a.Apply(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if sawCheck != "v" || sawReload != "v" {
		t.Errorf("check saw %v, reload saw %v; want the caller's context in both", sawCheck, sawReload)
	}
}

// A first apply whose reload and restore both fail leaves the new bytes on disk; the next apply
// of the same bytes must still check and reload, not take the file as applied.
func TestFailedFirstApplyIsNotForgotten(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/vhosts.conf"
	if err := os.WriteFile(path, []byte("old run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reloads := 0
	a := &Applier{Path: path, Reload: func(context.Context) error {
		reloads++
		if reloads == 1 {
			os.Remove(path + ".prev") // the restore will fail too
			return errors.New("proxy down")
		}
		return nil
	}}
	if _, err := a.Apply(context.Background(), []byte("new\n")); !errors.Is(err, ErrReload) {
		t.Fatalf("first apply: want ErrReload, got %v", err)
	}
	out, err := a.Apply(context.Background(), []byte("new\n"))
	if err != nil || out != Applied || reloads != 2 {
		t.Fatalf("second apply: outcome %v, err %v, reloads %d; want Applied after a second reload", out, err, reloads)
	}
}

// fakeHot stands in for HAProxy's runtime API: it records what it was asked and answers as told.
type fakeHot struct {
	path  string
	ok    bool
	err   error
	calls [][2]string // prev, next
	live  []string    // the live file's content during each call
}

func (h *fakeHot) hot(_ context.Context, prev, next []byte) (bool, error) {
	h.calls = append(h.calls, [2]string{string(prev), string(next)})
	h.live = append(h.live, readOr(h.path, "<none>"))
	return h.ok, h.err
}

func newHotApplier(t *testing.T) (*Applier, *fakeProxy, *fakeHot) {
	t.Helper()
	a, f := newApplier(t)
	h := &fakeHot{path: a.Path}
	a.Hot = h.hot
	return a, f, h
}

func TestApplyHotUpdated(t *testing.T) {
	a, f, h := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	h.ok = true
	mustApply(t, a, "two\n", Updated)
	if f.checks != 2 || f.reloads != 1 {
		t.Errorf("checks, reloads = %d, %d; want 2, 1 (checked, but no reload for a hot update)", f.checks, f.reloads)
	}
	if want := [][2]string{{"one\n", "two\n"}}; len(h.calls) != 1 || h.calls[0] != want[0] {
		t.Errorf("Hot calls = %q, want %q", h.calls, want)
	}
	// The file is in place before Hot runs, so that a later reload loads the same servers.
	if len(h.live) != 1 || h.live[0] != "two\n" {
		t.Errorf("live file during Hot = %q, want the new config", h.live)
	}
	wantFile(t, a.Path, ptr("two\n"))
	wantFile(t, a.Path+".prev", ptr("one\n"))
	wantNoStaged(t, a.Path)

	// The applied bytes are the hot-updated ones: the same again is Unchanged, and the next
	// change is diffed from them.
	mustApply(t, a, "two\n", Unchanged)
	mustApply(t, a, "three\n", Updated)
	if len(h.calls) != 2 || h.calls[1] != [2]string{"two\n", "three\n"} {
		t.Errorf("Hot calls = %q, want the second from two to three", h.calls)
	}
	if f.reloads != 1 {
		t.Errorf("reloads = %d, want 1", f.reloads)
	}
}

func TestApplyHotNotPossibleReloads(t *testing.T) {
	a, f, h := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	var failed []error
	a.HotFailed = func(err error) { failed = append(failed, err) }
	h.ok = false
	mustApply(t, a, "two\n", Applied)
	if f.reloads != 2 || len(h.calls) != 1 {
		t.Errorf("reloads, Hot calls = %d, %d; want 2, 1", f.reloads, len(h.calls))
	}
	if len(f.liveAtReload) != 2 || f.liveAtReload[1] != "two\n" {
		t.Errorf("live file during the reload = %q, want the new config", f.liveAtReload)
	}
	if len(failed) != 0 {
		t.Errorf("HotFailed heard %v; a Hot that declines has not failed", failed)
	}
	// Reloaded bytes count as applied too, and Hot diffs from them next time.
	h.ok = true
	mustApply(t, a, "three\n", Updated)
	if h.calls[1] != [2]string{"two\n", "three\n"} {
		t.Errorf("Hot call = %q, want from two to three", h.calls[1])
	}
}

func TestApplyHotErrorReloads(t *testing.T) {
	a, f, h := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	hotErr := errors.New(`runtime API: "add server web/web3 10.0.0.3:80 weight 1": Backend must use a dynamic load balancing`)
	var failed []error
	a.HotFailed = func(err error) { failed = append(failed, err) }
	h.ok, h.err = true, hotErr // an error wins over ok
	got, err := a.Apply(context.Background(), []byte("two\n"))
	if err != nil || got != Applied {
		t.Fatalf("Apply = %v, %v; want Applied by the reload, no error", got, err)
	}
	if f.reloads != 2 {
		t.Errorf("reloads = %d, want 2", f.reloads)
	}
	if len(failed) != 1 || !errors.Is(failed[0], hotErr) {
		t.Errorf("HotFailed heard %v, want the Hot error once", failed)
	}
	wantFile(t, a.Path, ptr("two\n"))
	mustApply(t, a, "two\n", Unchanged)

	// Without HotFailed, a failing Hot still falls back to the reload.
	a.HotFailed = nil
	h.ok = false
	mustApply(t, a, "three\n", Applied)
	if f.reloads != 3 {
		t.Errorf("reloads = %d, want 3", f.reloads)
	}
}

// A Hot error followed by a failing reload: the previous file is back and nothing counts as
// applied; the next attempt hands Hot the last applied bytes again.
func TestApplyHotErrorThenReloadFails(t *testing.T) {
	a, f, h := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	h.err = errors.New("runtime API down")
	f.reloadErr = errProxy
	if _, err := a.Apply(context.Background(), []byte("two\n")); !errors.Is(err, ErrReload) {
		t.Fatalf("Apply: %v, want ErrReload", err)
	}
	wantFile(t, a.Path, ptr("one\n"))
	h.ok, h.err, f.reloadErr = true, nil, nil
	mustApply(t, a, "two\n", Updated)
	if last := h.calls[len(h.calls)-1]; last != [2]string{"one\n", "two\n"} {
		t.Errorf("Hot call = %q, want from one (still applied) to two", last)
	}
}

func TestApplyHotNotOnFirstApply(t *testing.T) {
	t.Run("no file yet", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		h.ok = true
		mustApply(t, a, "one\n", Applied)
		if len(h.calls) != 0 || f.reloads != 1 {
			t.Errorf("Hot calls, reloads = %d, %d; want 0, 1: nothing is applied yet to diff from", len(h.calls), f.reloads)
		}
	})
	t.Run("a different file from a previous run", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		writeFile(t, a.Path, "old run\n")
		h.ok = true
		mustApply(t, a, "one\n", Applied)
		if len(h.calls) != 0 || f.reloads != 1 {
			t.Errorf("Hot calls, reloads = %d, %d; want 0, 1: the file on disk is not known to be live", len(h.calls), f.reloads)
		}
	})
	t.Run("the same file from a previous run", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		writeFile(t, a.Path, "one\n")
		h.ok = true
		mustApply(t, a, "one\n", Unchanged)
		mustApply(t, a, "two\n", Updated) // taken as applied: the next change can be hot
		if len(h.calls) != 1 || f.reloads != 0 {
			t.Errorf("Hot calls, reloads = %d, %d; want 1, 0", len(h.calls), f.reloads)
		}
	})
	t.Run("after a failed first apply", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		h.ok = true
		f.reloadErr = errProxy
		if _, err := a.Apply(context.Background(), []byte("one\n")); !errors.Is(err, ErrReload) {
			t.Fatalf("Apply: %v, want ErrReload", err)
		}
		f.reloadErr = nil
		mustApply(t, a, "one\n", Applied)
		if len(h.calls) != 0 {
			t.Errorf("Hot called %d times before anything was applied", len(h.calls))
		}
	})
}

// A check failure stops before Hot: the live config is not touched.
func TestApplyHotNotAfterCheckFailure(t *testing.T) {
	a, f, h := newHotApplier(t)
	mustApply(t, a, "one\n", Applied)
	h.ok = true
	f.checkErr = errProxy
	if _, err := a.Apply(context.Background(), []byte("bad\n")); !errors.Is(err, ErrCheck) {
		t.Fatalf("Apply: %v, want ErrCheck", err)
	}
	if len(h.calls) != 0 {
		t.Errorf("Hot called after a failed check: %q", h.calls)
	}
	wantFile(t, a.Path, ptr("one\n"))
}

// TestApplyHotOnlySkipsCheck: a change the runtime API takes whole is not checked first (the API
// validates what it sets); when Hot does not take it after all, the file in place is checked
// before the reload, and put back if refused.
func TestApplyHotOnlySkipsCheck(t *testing.T) {
	t.Run("taken by Hot: no check", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		a.HotOnly = func(prev, next []byte) bool { return true }
		mustApply(t, a, "one\n", Applied) // nothing applied yet to diff from: checked, reloaded
		h.ok = true
		mustApply(t, a, "two\n", Updated)
		if f.checks != 1 || f.reloads != 1 {
			t.Errorf("checks, reloads = %d, %d; want 1, 1 (the hot update unchecked)", f.checks, f.reloads)
		}
	})
	t.Run("not taken: checked, then reloaded", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		a.HotOnly = func(prev, next []byte) bool { return true }
		mustApply(t, a, "one\n", Applied)
		h.ok = false
		mustApply(t, a, "two\n", Applied)
		if f.checks != 2 || f.reloads != 2 {
			t.Errorf("checks, reloads = %d, %d; want 2, 2", f.checks, f.reloads)
		}
		if f.liveAtCheck[len(f.liveAtCheck)-1] != "two\n" {
			t.Errorf("the fallback check saw %q, want the file in place", f.liveAtCheck)
		}
	})
	t.Run("not taken and refused: put back", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		a.HotOnly = func(prev, next []byte) bool { return true }
		mustApply(t, a, "one\n", Applied)
		h.ok = false
		f.checkErr = errProxy
		if _, err := a.Apply(context.Background(), []byte("bad\n")); !errors.Is(err, ErrCheck) {
			t.Fatalf("Apply: %v, want ErrCheck", err)
		}
		if f.reloads != 1 {
			t.Errorf("reloads = %d, want 1: a refused config is never reloaded", f.reloads)
		}
		wantFile(t, a.Path, ptr("one\n"))
	})
	t.Run("HotOnly false: checked as always", func(t *testing.T) {
		a, f, h := newHotApplier(t)
		a.HotOnly = func(prev, next []byte) bool { return false }
		mustApply(t, a, "one\n", Applied)
		h.ok = true
		mustApply(t, a, "two\n", Updated)
		if f.checks != 2 {
			t.Errorf("checks = %d, want 2", f.checks)
		}
	})
}

// TestApplyReportsWrite: Wrote hears the time putting each new file in place took, once per
// file put in place; a config the check refuses, or the same bytes again, puts none.
func TestApplyReportsWrite(t *testing.T) {
	a, f := newApplier(t)
	var wrote []time.Duration
	a.Wrote = func(d time.Duration) { wrote = append(wrote, d) }
	mustApply(t, a, "one\n", Applied)
	mustApply(t, a, "one\n", Unchanged)
	f.checkErr = errors.New("refused")
	if _, err := a.Apply(context.Background(), []byte("bad\n")); err == nil {
		t.Fatal("a refused config applied")
	}
	f.checkErr = nil
	mustApply(t, a, "two\n", Applied)
	if len(wrote) != 2 || wrote[0] <= 0 || wrote[1] <= 0 {
		t.Errorf("Wrote heard %v, want two positive durations", wrote)
	}
}
