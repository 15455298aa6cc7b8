// Package apply puts rendered configs in place safely: it skips bytes that are already applied,
// stages the file beside the destination, checks it, renames it into place keeping the previous
// file, reloads the proxy, and restores the previous file when the reload fails.
package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Outcome says what one Apply did.
type Outcome int

// The outcomes of a successful Apply.
const (
	Unchanged Outcome = iota // the bytes were already applied: no write, no reload
	Applied                  // written, checked and reloaded
	Updated                  // written and checked, and put live without a reload (Hot)
)

// CheckFunc checks a staged config file; its error carries the proxy's own message.
type CheckFunc func(ctx context.Context, staged string) error

// ReloadFunc makes the proxy load the config now in place.
type ReloadFunc func(ctx context.Context) error

// HotFunc puts the change from the config last applied (prev) to next live without a reload,
// when it can (HAProxy's runtime API). ok=false with a nil error: it cannot, a reload is needed.
// An error means it tried and failed part way; the reload then puts everything right.
type HotFunc func(ctx context.Context, prev, next []byte) (ok bool, err error)

// Applier applies configs to one file. It is not safe for concurrent use: one loop owns it.
type Applier struct {
	Path   string
	Check  CheckFunc  // nil: no check
	Reload ReloadFunc // nil: no reload
	Hot    HotFunc    // nil: every change reloads
	// HotFailed, when set, hears why a Hot update failed before the reload that replaced it.
	HotFailed func(error)
	// applied holds the bytes last put in place and reloaded.
	applied []byte
	// attempted is set by the first Apply, whatever its outcome: only the very first call may take
	// a file already on disk as applied.
	attempted bool
}

// ErrCheck marks a config the proxy's check refused; the live config was not touched.
var ErrCheck = errors.New("config check failed")

// ErrReload marks a reload that failed; the previous file was put back.
var ErrReload = errors.New("reload failed")

// Apply puts data in place. Comparison is with what this Applier last applied, not with the file
// on disk, so a failed apply is retried even if the file already holds the new bytes. The one
// exception is the first call: a file that already holds exactly data (vhost-gen restarted under
// a running proxy) is taken as applied, without a reload.
func (a *Applier) Apply(ctx context.Context, data []byte) (Outcome, error) {
	if a.attempted && a.applied != nil && bytes.Equal(a.applied, data) {
		return Unchanged, nil
	}
	if !a.attempted {
		a.attempted = true
		if cur, err := os.ReadFile(a.Path); err == nil && bytes.Equal(cur, data) {
			a.applied = append(make([]byte, 0, len(data)), data...)
			return Unchanged, nil
		}
	}
	staged, err := a.stage(data)
	if err != nil {
		return Unchanged, err
	}
	defer os.Remove(staged) // a no-op once renamed into place
	if a.Check != nil {
		if err := a.Check(ctx, staged); err != nil {
			return Unchanged, fmt.Errorf("%w: %w", ErrCheck, err)
		}
	}
	prev := a.Path + ".prev"
	hadPrev, err := a.keepPrevious(prev)
	if err != nil {
		return Unchanged, err
	}
	if err := os.Rename(staged, a.Path); err != nil {
		return Unchanged, fmt.Errorf("put %s in place: %w", a.Path, err)
	}
	if a.Hot != nil && a.applied != nil {
		ok, err := a.Hot(ctx, a.applied, data)
		if ok && err == nil {
			a.applied = append(a.applied[:0], data...)
			return Updated, nil
		}
		if err != nil && a.HotFailed != nil {
			a.HotFailed(err)
		}
	}
	if a.Reload != nil {
		if err := a.Reload(ctx); err != nil {
			if rerr := a.restore(prev, hadPrev); rerr != nil {
				return Unchanged, fmt.Errorf("%w: %w; and restoring the previous config failed: %w", ErrReload, err, rerr)
			}
			return Unchanged, fmt.Errorf("%w (previous config restored): %w", ErrReload, err)
		}
	}
	a.applied = append(make([]byte, 0, len(data)), data...) // never nil, even for empty data
	return Applied, nil
}

// CheckData checks data as Apply would, staged beside the destination, without putting it in
// place; nil when there is no check. The quarantine's bisection calls it.
func (a *Applier) CheckData(ctx context.Context, data []byte) error {
	if a.Check == nil {
		return nil
	}
	staged, err := a.stage(data)
	if err != nil {
		return err
	}
	defer os.Remove(staged)
	return a.Check(ctx, staged)
}

// stage writes data to a hidden file beside the destination, so that the rename is atomic and a
// "conf.d/*.conf" include never picks the staged file up.
func (a *Applier) stage(data []byte) (string, error) {
	dir, base := filepath.Split(a.Path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".staged-*")
	if err != nil {
		return "", fmt.Errorf("stage config beside %s: %w", a.Path, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("stage config beside %s: %w", a.Path, werr)
	}
	return f.Name(), nil
}

// keepPrevious hard-links the live file to prev, so that it can be put back in one rename.
func (a *Applier) keepPrevious(prev string) (bool, error) {
	if err := os.Remove(prev); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("keep previous config: %w", err)
	}
	if err := os.Link(a.Path, prev); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("keep previous config: %w", err)
	}
	return true, nil
}

func (a *Applier) restore(prev string, hadPrev bool) error {
	if !hadPrev {
		return os.Remove(a.Path)
	}
	return os.Rename(prev, a.Path)
}
