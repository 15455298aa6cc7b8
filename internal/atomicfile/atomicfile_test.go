package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.key")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "one" || st.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v", b, st.Mode().Perm())
	}
	wrote, err := WriteIfChanged(path, []byte("one"), 0o600)
	if err != nil || wrote {
		t.Errorf("unchanged content rewritten: %v %v", wrote, err)
	}
	if wrote, err := WriteIfChanged(path, []byte("one"), 0o644); err != nil || !wrote {
		t.Errorf("a mode change must rewrite: %v %v", wrote, err)
	}
	if wrote, err := WriteIfChanged(path, []byte("two"), 0o644); err != nil || !wrote {
		t.Errorf("new content must rewrite: %v %v", wrote, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	if err := SyncDir(dir); err != nil {
		t.Error(err)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o600); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}
