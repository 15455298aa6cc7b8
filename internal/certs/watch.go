package certs

import (
	"context"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/dirwatch"
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
	last        *Set // the Set sent last
	track       dirwatch.Tracker
}

func (w *watcher) run(ctx context.Context, interval time.Duration) {
	defer close(w.out)
	w.tick(ctx)
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
	if fp := dirwatch.Of(w.dir); w.track.Due(fp) {
		w.load(ctx, fp)
	}
}

// load loads the directory seen stable as fp and sends the Set unless it is the same as the last.
func (w *watcher) load(ctx context.Context, fp dirwatch.Fingerprint) {
	set, err := Load(w.dir, w.source)
	if !w.track.Loaded(fp, dirwatch.Of(w.dir), err == nil) {
		return // changed while loading, or failed: try again
	}
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
