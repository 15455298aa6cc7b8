package certs

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteHAProxy(t *testing.T) {
	src := t.TempDir()
	authority := newCA(t)
	ca, ka := authority.leaf(t, leafOpts{names: []string{"a.test"}})
	cb, kb := selfSigned(t, "*.b.test")
	// Text, blank lines and CRLF around the blocks: none of it reaches the .pem.
	pair(t, src, "a", append([]byte("Bag Attributes\n\n"), bytes.ReplaceAll(ca, []byte("\n"), []byte("\r\n"))...), append(ka, "\n\n"...))
	pair(t, src, "*.b.test", cb, kb)
	out := filepath.Join(t.TempDir(), "haproxy", "certs")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Dir(out), "certs/stale.pem", []byte("old"))
	write(t, filepath.Dir(out), "certs/list.txt", []byte("not ours to remove"))
	write(t, filepath.Dir(out), "certs/"+tempPrefix+"123", []byte("crash leftover"))
	os.Chmod(out, 0o755)

	set := mustLoad(t, src, SourceFile)
	paths, err := WriteHAProxy(out, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths["a"] != filepath.Join(out, "a.pem") || paths["*.b.test"] != filepath.Join(out, "*.b.test.pem") {
		t.Fatalf("paths = %v", paths)
	}
	for name, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("\n\n")) || bytes.Contains(data, []byte("\r")) || bytes.HasPrefix(data, []byte("\n")) {
			t.Errorf("%s: blank line or CR in %q", name, data)
		}
		if _, err := tls.X509KeyPair(data, data); err != nil {
			t.Errorf("%s: not a usable cert+key file: %v", name, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", name, fi.Mode())
		}
	}
	if a, _ := os.ReadFile(paths["a"]); strings.Count(string(a), "BEGIN CERTIFICATE") != 2 || !strings.HasSuffix(string(a), "-----END PRIVATE KEY-----\n") {
		t.Errorf("a.pem is not full chain then key:\n%s", a)
	}
	for _, gone := range []string{"stale.pem", tempPrefix + "123"} {
		if _, err := os.Stat(filepath.Join(out, gone)); !os.IsNotExist(err) {
			t.Errorf("%s not removed: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "list.txt")); err != nil {
		t.Errorf("list.txt removed: %v", err)
	}

	// Unchanged: not rewritten (same inode, same mtime).
	before := statAll(t, paths)
	time.Sleep(10 * time.Millisecond)
	if _, err := WriteHAProxy(out, mustLoad(t, src, SourceFile)); err != nil {
		t.Fatal(err)
	}
	for name, fi := range statAll(t, paths) {
		if !os.SameFile(fi, before[name]) || !fi.ModTime().Equal(before[name].ModTime()) {
			t.Errorf("%s rewritten though unchanged", name)
		}
	}

	// A changed certificate is replaced (a new inode: rename), a removed one removed.
	ca2, ka2 := authority.leaf(t, leafOpts{names: []string{"a.test"}})
	pair(t, src, "a", ca2, ka2)
	os.Remove(filepath.Join(src, "*.b.test.crt"))
	os.Remove(filepath.Join(src, "*.b.test.key"))
	paths2, err := WriteHAProxy(out, mustLoad(t, src, SourceFile))
	if err != nil || len(paths2) != 1 {
		t.Fatalf("paths %v, err %v", paths2, err)
	}
	if fi, _ := os.Stat(paths["a"]); os.SameFile(fi, before["a"]) {
		t.Error("a.pem changed in place, not renamed")
	}
	if data, _ := os.ReadFile(paths["a"]); !bytes.Contains(data, bytes.Split(ca2, []byte("\n"))[1]) {
		t.Error("a.pem does not hold the new certificate")
	}
	if _, err := os.Stat(paths["*.b.test"]); !os.IsNotExist(err) {
		t.Errorf("*.b.test.pem not removed: %v", err)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 { // a.pem, list.txt
		t.Errorf("left in the directory: %v", entries)
	}
}

func TestWriteHAProxyCreatesPrivateDir(t *testing.T) {
	src := t.TempDir()
	c, k := selfSigned(t, "a.test")
	pair(t, src, "a", c, k)
	out := filepath.Join(t.TempDir(), "new")
	if _, err := WriteHAProxy(out, mustLoad(t, src, SourceFile)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, err %v", fi.Mode(), err)
	}
	if _, err := WriteHAProxy(filepath.Join(src, "a.crt"), nil); err == nil || !strings.Contains(err.Error(), "a.crt") {
		t.Errorf("a file as directory: %v", err)
	}
	// An empty set empties the directory of .pem files.
	if paths, err := WriteHAProxy(out, nil); err != nil || len(paths) != 0 {
		t.Errorf("nil set: %v %v", paths, err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("left: %v", entries)
	}
}

// A pair being replaced on disk: KeepGood keeps the previous certificate, and WriteHAProxy
// writes what was validated, never the half-replaced files.
func TestWriteHAProxyDuringReplace(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	c1, k1 := selfSigned(t, "a.test")
	c2, _ := selfSigned(t, "a.test")
	pair(t, src, "a", c1, k1)
	prev := mustLoad(t, src, SourceFile)
	write(t, src, "a.crt", c2)
	paths, err := WriteHAProxy(out, mustLoad(t, src, SourceFile).KeepGood(prev))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(paths["a"])
	if _, err := tls.X509KeyPair(data, data); err != nil || !bytes.Contains(data, bytes.Split(c1, []byte("\n"))[1]) {
		t.Errorf("a.pem is not the previous good pair: %v", err)
	}
}

func statAll(t *testing.T, paths map[string]string) map[string]os.FileInfo {
	t.Helper()
	m := map[string]os.FileInfo{}
	for n, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		m[n] = fi
	}
	return m
}
