// Package atomicfile replaces files so that a reader (a proxy reloading, a crash) sees either the
// old content or the new one, never a mix: a synced temporary file beside the target, renamed over
// it. Certificates, keys, crt-lists and ACME state are all written this way.
package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file, so that a crash's leftovers can be found and
// removed (and a "*.conf"-style include never picks one up).
const TempPrefix = ".vhost-gen-tmp-"

// WriteTemp writes data, synced and with mode perm, to a new temporary file beside path and returns
// its name; the caller renames it into place (or removes it).
func WriteTemp(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), TempPrefix+filepath.Base(path)+"-*") // created 0600
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// Write replaces path with data, mode perm.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := WriteTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// WriteIfChanged replaces path with data unless it is a regular file that already holds data with
// mode perm; it reports whether it wrote.
func WriteIfChanged(path string, data []byte, perm os.FileMode) (bool, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm() == perm {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			return false, nil
		}
	}
	return true, Write(path, data, perm)
}

// SyncDir makes the renames in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
