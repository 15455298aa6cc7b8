package certs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/atomicfile"
)

// tempPrefix marks WriteHAProxy's temporary files; leftovers of a crash are removed.
const tempPrefix = atomicfile.TempPrefix

// WriteHAProxy writes, into dir (created 0700), one <name>.pem per certificate of set: the
// full chain then the key, as validated by Load, with no blank line (HAProxy's runtime API
// ends a payload at the first one), mode 0600. Each file is replaced atomically (temp file and
// rename) and only when its content changed; .pem files of names no longer in set are removed.
// It returns each name's path; on errors, the paths of the names it did write, and every error
// joined. dir must have one writer: vhost-gen owns it.
func WriteHAProxy(dir string, set *Set) (map[string]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("haproxy certificate directory %s: %w", dir, err)
	}
	if err := ensureDir(abs); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	var errs []error
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		p := filepath.Join(abs, name+".pem")
		if err := writePEM(p, c); err != nil {
			errs = append(errs, err)
			continue
		}
		paths[name] = p
	}
	errs = append(errs, removeStale(abs, set))
	return paths, errors.Join(errs...)
}

func ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		err = os.Chmod(dir, 0o700) // whatever the umask
	} else if errors.Is(err, fs.ErrExist) {
		var fi fs.FileInfo
		if fi, err = os.Stat(dir); err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
	}
	if err != nil {
		return fmt.Errorf("haproxy certificate directory %s: %w", dir, err)
	}
	return nil
}

// haproxyPEM is the file's content: chain then key, every line non-empty.
func haproxyPEM(c Cert) ([]byte, error) {
	if c.pem == nil {
		return nil, fmt.Errorf("certificate %s: no validated content (not from Load)", c.Name)
	}
	var b bytes.Buffer
	for _, part := range [][]byte{c.pem.chain, c.pem.key} {
		for line := range strings.Lines(string(part)) {
			if strings.TrimSpace(line) != "" {
				b.WriteString(strings.TrimRight(line, "\r\n") + "\n")
			}
		}
	}
	return b.Bytes(), nil
}

func writePEM(path string, c Cert) error {
	data, err := haproxyPEM(c)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600 {
			return nil // unchanged: not rewritten, so HAProxy's runtime API need not be told
		}
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// removeStale removes the .pem files of names not in set, and temporary files left by a crash.
func removeStale(dir string, set *Set) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("haproxy certificate directory %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		stem, isPEM := strings.CutSuffix(name, ".pem")
		_, keep := set.Get(stem)
		stale := isPEM && !keep && !e.IsDir()
		if stale || strings.HasPrefix(name, tempPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
