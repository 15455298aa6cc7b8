// Package dirwatch tells when the files of a directory changed, by polling: names, sizes, mtimes
// and inodes (no file is read), and waits until a change has been stable for one more poll (a
// file being copied in) before it says so. The certificates directory and the operator's
// snippet and htpasswd directories are watched with it.
package dirwatch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Fingerprint is what a change of any file of a directory (or of a symlink's target) changes.
// A missing directory has none.
type Fingerprint []stamp

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

// Of fingerprints a directory's entries (not its subdirectories' contents).
func Of(dir string) Fingerprint {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Fingerprint{{name: "\x00abs"}}
	}
	root, err := os.OpenRoot(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return Fingerprint{{name: "\x00open"}}
	}
	defer root.Close()
	names, err := ListDir(root)
	if err != nil {
		return Fingerprint{{name: "\x00list"}}
	}
	fp := make(Fingerprint, 0, len(names))
	for _, n := range names {
		fp = append(fp, stamp{name: n, link: statOf(root.Lstat(n)), final: statOf(root.Stat(n))})
	}
	return fp
}

// Equal reports whether two fingerprints are the same.
func (f Fingerprint) Equal(g Fingerprint) bool { return slices.Equal(f, g) }

// ListDir lists a directory's names, sorted.
func ListDir(root *os.Root) ([]string, error) {
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func statOf(fi fs.FileInfo, err error) stat {
	if err != nil {
		return stat{err: true}
	}
	return stat{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(), id: identity(fi)}
}

// Tracker decides, poll after poll, when a directory is due to be loaded: at the first poll,
// then after a change once it has stayed the same for one more poll.
type Tracker struct {
	started   bool
	loaded    Fingerprint // the state loaded last
	pending   bool        // a change seen, waiting for it to be stable
	candidate Fingerprint // the state seen at the previous poll while pending
}

// Due reports whether the state fp should be loaded now.
func (t *Tracker) Due(fp Fingerprint) bool {
	switch {
	case !t.started:
		return true
	case !t.pending && fp.Equal(t.loaded):
		return false // nothing changed
	case !t.pending || !fp.Equal(t.candidate):
		t.pending, t.candidate = true, fp // changed (again): wait one more poll
		return false
	}
	return true
}

// Loaded records that the state fp was loaded; after is the state seen once the load ended.
// A load that failed, or that raced a change, is tried again at a later poll.
func (t *Tracker) Loaded(fp, after Fingerprint, ok bool) bool {
	if !ok || !after.Equal(fp) {
		t.started = true
		t.pending, t.candidate = true, after
		return false
	}
	t.started, t.pending, t.loaded = true, false, fp
	return true
}
