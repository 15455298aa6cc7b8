package certs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Watch polls dir every interval (names, sizes, mtimes, inodes: no file is read) and, when
// something changed, waits until it has been stable for one more interval (a pair being copied
// in), loads it, applies KeepGood with the Set it sent last, and sends the new Set on the
// returned channel (capacity 1, the newest wins). The first Set, the directory as found, is
// sent at once, so that nothing changed between a caller's own Load and Watch is missed. A load
// that gives the same Set as the last one sent is not sent; a load that fails (an unreadable
// directory) is retried every interval. The channel is closed when ctx ends.
func Watch(ctx context.Context, dir, source string, interval time.Duration) <-chan *Set {
	out := make(chan *Set, 1)
	w := &watcher{dir: dir, source: source, out: out}
	go w.run(ctx, interval)
	return out
}

type watcher struct {
	dir, source string
	out         chan *Set
	last        *Set        // the Set sent last
	loaded      fingerprint // the state that Set was loaded from
	pending     bool        // a change seen, waiting for it to be stable
	candidate   fingerprint // the state seen at the previous tick while pending
}

func (w *watcher) run(ctx context.Context, interval time.Duration) {
	defer close(w.out)
	fp := w.fingerprint()
	w.load(ctx, fp)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.tick(ctx)
		}
	}
}

func (w *watcher) tick(ctx context.Context) {
	fp := w.fingerprint()
	switch {
	case !w.pending && w.last != nil && slices.Equal(fp, w.loaded):
		return // nothing changed
	case !w.pending || !slices.Equal(fp, w.candidate):
		w.pending, w.candidate = true, fp // changed (again): wait one more interval
		return
	}
	w.load(ctx, fp)
}

// load loads the directory seen stable as fp and sends the Set unless it is the same as the last.
func (w *watcher) load(ctx context.Context, fp fingerprint) {
	set, err := Load(w.dir, w.source)
	if after := w.fingerprint(); err != nil || !slices.Equal(after, fp) {
		w.pending, w.candidate = true, after // changed while loading, or failed: try again
		return
	}
	w.pending, w.loaded = false, fp
	set = set.KeepGood(w.last)
	if w.last != nil && equal(set, w.last) {
		return
	}
	w.last = set
	select { // the newest wins: drop a Set not yet received
	case <-w.out:
	default:
	}
	select {
	case w.out <- set:
	case <-ctx.Done():
	}
}

// fingerprint is what a change of any file (or of a symlink's target) changes.
type fingerprint []stamp

type stamp struct {
	name        string
	link, final stat // the entry itself, and what it leads to
}

type stat struct {
	mode  fs.FileMode
	size  int64
	mtime int64
	id    [3]int64
	err   bool
}

func (w *watcher) fingerprint() fingerprint {
	abs, err := filepath.Abs(w.dir)
	if err != nil {
		return fingerprint{{name: "\x00abs"}}
	}
	root, err := os.OpenRoot(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fingerprint{{name: "\x00open"}}
	}
	defer root.Close()
	names, err := listDir(root)
	if err != nil {
		return fingerprint{{name: "\x00list"}}
	}
	fp := make(fingerprint, 0, len(names))
	for _, n := range names {
		fp = append(fp, stamp{name: n, link: statOf(root.Lstat(n)), final: statOf(root.Stat(n))})
	}
	return fp
}

func statOf(fi fs.FileInfo, err error) stat {
	if err != nil {
		return stat{err: true}
	}
	return stat{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(), id: identity(fi)}
}
