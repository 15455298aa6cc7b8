package dirwatch

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTracker: loaded at the first poll; a change is loaded once it has stayed the same for one
// more poll; a failed or raced load is tried again.
func TestTracker(t *testing.T) {
	dir := t.TempDir()
	var tr Tracker
	fp := Of(dir)
	if !tr.Due(fp) {
		t.Fatal("the first poll is not due")
	}
	tr.Loaded(fp, Of(dir), true)
	if tr.Due(Of(dir)) {
		t.Fatal("due with nothing changed")
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("1"), 0o644)
	changed := Of(dir)
	if changed.Equal(fp) {
		t.Fatal("a new file did not change the fingerprint")
	}
	if tr.Due(changed) {
		t.Fatal("due at once after a change: it must be stable for one more poll")
	}
	if !tr.Due(Of(dir)) {
		t.Fatal("not due once the change is stable")
	}
	if tr.Loaded(changed, changed, false) {
		t.Fatal("a failed load counts as loaded")
	}
	if !tr.Due(Of(dir)) {
		t.Fatal("a failed load is not tried again")
	}
	if !tr.Loaded(changed, Of(dir), true) || tr.Due(Of(dir)) {
		t.Fatal("after a good load, nothing is due")
	}
	if Of(filepath.Join(dir, "missing")) != nil {
		t.Error("a missing directory has a fingerprint")
	}
}
