package etcdstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/atomicfile"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/acme"
)

// NamedCert is a stored certificate with its name.
type NamedCert struct {
	Name string
	acme.Cert
}

// Certs reads every certificate at one revision, sorted by name, meta-only ones included. A
// value that cannot be used is left out and reported in the error (which names its key); the
// others are returned with it.
func (s *Store) Certs(ctx context.Context) ([]NamedCert, error) {
	out, _, err := s.certs(ctx)
	return out, err
}

// certs is Certs plus the names whose value is unusable; a nil slice with an error when etcd
// could not be read at all.
func (s *Store) certs(ctx context.Context) ([]NamedCert, map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	pfx := s.certsPrefix()
	resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, nil, fmt.Errorf("etcd prefix %q: %w", pfx, err)
	}
	out := []NamedCert{}
	bad := map[string]bool{}
	var errs []error
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		name := strings.TrimPrefix(key, pfx)
		if !safeName(name) {
			errs = append(errs, fmt.Errorf("etcd key %q: not a safe certificate name", key))
			continue
		}
		c, err := decodeCert(key, kv.Value)
		if err != nil {
			bad[name] = true
			errs = append(errs, err)
			continue
		}
		out = append(out, NamedCert{Name: name, Cert: *c})
	}
	return out, bad, errors.Join(errs...)
}

// Watch fires (coalesced) when anything under certs/ changes, and each time the watch is
// (re)established, so that a reader that missed changes re-reads. The channel closes when ctx
// ends.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	fire := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := s.cli.Watch(wctx, s.certsPrefix(), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			for resp := range wch {
				if resp.Err() != nil {
					break
				}
				fire() // the created notification included
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return ch
}

// manifestFile lists the certificates Mirror wrote into its directory, one name a line: only
// those are ever removed from it.
const manifestFile = ".etcdstore-mirror"

// Mirror keeps dir equal to the store's certificates until ctx ends: <name>.crt (full chain,
// 0644) and <name>.key (0600) per certificate, each replaced atomically (the key first), the
// certificates deleted from etcd removed (only those Mirror wrote). onChange (may be nil) is
// called after the directory changed. A certificate whose value is unusable keeps its files.
// Errors are logged and retried; it returns ctx's error.
func Mirror(ctx context.Context, s *Store, dir string, onChange func()) error {
	changes := s.Watch(ctx)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failures, lastErr := 0, ""
	for {
		changed, err := SyncDir(ctx, s, dir)
		if changed && onChange != nil {
			onChange()
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if msg := err.Error(); msg != lastErr {
				s.o.Log.Error("etcdstore: mirroring certificates", "dir", dir, "error", err)
				lastErr = msg
			}
			failures++
			retry.Reset(min(time.Second<<min(failures, 6), time.Minute))
		case err == nil:
			if lastErr != "" {
				s.o.Log.Info("etcdstore: mirroring certificates again", "dir", dir)
			}
			failures, lastErr = 0, ""
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-changes:
			if !ok {
				return ctx.Err()
			}
		case <-retry.C:
		}
	}
}

// SyncDir creates dir (0755) if needed and makes it equal to the store's certificates once (see Mirror); changed says whether a
// file was written or removed. An unusable value is in the error, the others are written.
func SyncDir(ctx context.Context, s *Store, dir string) (changed bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	list, bad, err := s.certs(ctx)
	if list == nil {
		return false, err
	}
	errs := []error{err}
	old, merr := readManifest(dir)
	if merr != nil {
		return false, merr
	}
	keep := map[string]bool{}
	for n := range bad {
		if old[n] {
			keep[n] = true // unreadable now: its last good files stay
		}
	}
	for _, c := range list {
		if len(c.Chain) == 0 {
			if old[c.Name] {
				keep[c.Name] = true // meta-only (a failed order over a certificate): files stay
			}
			continue
		}
		keep[c.Name] = true
		base := filepath.Join(dir, c.Name)
		for _, f := range []struct {
			path string
			data []byte
			mode os.FileMode
		}{{base + ".key", c.Key, 0o600}, {base + ".crt", c.Chain, 0o644}} {
			w, err := atomicfile.WriteIfChanged(f.path, f.data, f.mode)
			changed = changed || w
			if err != nil {
				errs = append(errs, fmt.Errorf("certificate %s: %w", c.Name, err))
			}
		}
	}
	for n := range old {
		if keep[n] {
			continue
		}
		for _, ext := range []string{".crt", ".key"} {
			err := os.Remove(filepath.Join(dir, n+ext))
			switch {
			case err == nil:
				changed = true
			case !errors.Is(err, fs.ErrNotExist):
				errs = append(errs, err)
				keep[n] = true
			}
		}
	}
	if !sameSet(old, keep) {
		if err := writeManifest(dir, keep); err != nil {
			errs = append(errs, err)
		}
	}
	if changed {
		if err := atomicfile.SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return changed, errors.Join(errs...)
}

func readManifest(dir string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if n := sc.Text(); safeName(n) {
			out[n] = true
		}
	}
	return out, nil
}

func writeManifest(dir string, names map[string]bool) error {
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	var b strings.Builder
	for _, n := range list {
		b.WriteString(n + "\n")
	}
	_, err := atomicfile.WriteIfChanged(filepath.Join(dir, manifestFile), []byte(b.String()), 0o644)
	return err
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
