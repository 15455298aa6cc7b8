package snippets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nginx-proxy's names: the SHA-1 of a regular-expression host (its docs' example) and of a path.
func TestNames(t *testing.T) {
	if got := HostName(`~^regex.*\.nginx-proxy\.tld$`); got != "9ae5d1b655182b052fed458ec701f9ae1524e1c2" {
		t.Errorf("HostName(regex) = %s", got)
	}
	if got := HostName("*.example.com"); got != "*.example.com" {
		t.Errorf("HostName(wildcard) = %s", got)
	}
	if got := PathHash("/"); got != "42099b4af021e53fd8fd4e056c2568d7c2e3ffa8" {
		t.Errorf("PathHash(/) = %s", got)
	}
}

// TestLookupOrder: the most specific file wins; defaults only where nothing more specific is.
func TestLookupOrder(t *testing.T) {
	api := "h.example.com_" + PathHash("/api/")
	all := map[string]string{
		"h.example.com": "s", "default": "d",
		api + "_location": "pl", "h.example.com_location": "hl", "default_location": "dl",
		api + "_location_override": "po", "h.example.com_location_override": "ho",
		api + "_backend": "pb", "h.example.com_backend": "hb", "default_backend": "db",
		"frontend": "f",
	}
	s := New("d", all)
	checks := []struct {
		what string
		got  *File
		want string
	}{
		{"server own", s.Server("h.example.com"), "s"},
		{"server default", s.Server("other.example.com"), "d"},
		{"location path", s.Location("h.example.com", "/api/"), "pl"},
		{"location host", s.Location("h.example.com", "/"), "hl"},
		{"location default", s.Location("other.example.com", "/"), "dl"},
		{"override path", s.Override("h.example.com", "/api/"), "po"},
		{"override root by host", s.Override("h.example.com", "/"), "ho"},
		{"override other path", s.Override("h.example.com", "/x/"), ""},
		{"backend path", s.Backend("h.example.com", "/api/"), "pb"},
		{"backend host", s.Backend("h.example.com", "/"), "hb"},
		{"backend default", s.Backend("o.example.com", "/"), "db"},
		{"frontend", s.Frontend(), "f"},
	}
	for _, c := range checks {
		got := ""
		if c.got != nil {
			got = c.got.Content
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.what, got, c.want)
		}
	}
	var none *Set
	if none.Server("h.example.com") != nil || none.Frontend() != nil || none.Names() != nil {
		t.Error("a nil Set has snippets")
	}
}

// TestLoad: regular files are read; hidden files and directories skipped; files too large, not
// text or with a NUL are left out with a problem naming them; a missing directory is empty.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) { os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644) }
	write("default", "client_max_body_size 1m;\r\n")
	write(".swp", "x")
	write("big", strings.Repeat("a", MaxFile+1))
	write("binary", "\xff\xfe")
	write("nul", "a\x00b")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("default", filepath.Join(dir, "linked")) // as Kubernetes' ..data links: inside the directory
	os.Symlink("/etc/passwd", filepath.Join(dir, "outside"))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "default,linked" {
		t.Errorf("names %s, want default,linked", got)
	}
	if got := s.Get("default").Lines(); strings.Join(got, "|") != "client_max_body_size 1m;" {
		t.Errorf("lines %q", got)
	}
	want := []string{"big: left out: more than", "binary: left out: not UTF-8", "nul: left out: holds a NUL", "outside: left out:"}
	if len(s.Problems) != len(want) {
		t.Fatalf("problems %q, want %d", s.Problems, len(want))
	}
	for i, w := range want {
		if !strings.Contains(s.Problems[i], w) || !strings.HasPrefix(s.Problems[i], dir) {
			t.Errorf("problem %q, want %q with the path", s.Problems[i], w)
		}
	}
	again, _ := Load(dir)
	if !s.Equal(again) {
		t.Error("the same directory loads unequal")
	}
	write("default", "client_max_body_size 2m;\n")
	if changed, _ := Load(dir); s.Equal(changed) {
		t.Error("a changed file loads equal")
	}
	if m, err := Load(filepath.Join(dir, "missing")); err != nil || len(m.Names()) != 0 {
		t.Errorf("missing directory: %v, %v", m.Names(), err)
	}
}
