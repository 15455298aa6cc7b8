package certs

import (
	"strings"
	"testing"
	"time"
)

// selectDir is a certificate directory for the selection matrix.
func selectDir(t *testing.T, withDefault bool) *Set {
	t.Helper()
	dir := t.TempDir()
	authority := newCA(t)
	add := func(name string, o leafOpts) {
		c, k := authority.leaf(t, o)
		pair(t, dir, name, c, k)
	}
	add("shop.example.com", leafOpts{names: []string{"shop.example.com"}})
	add("foo.bar.com", leafOpts{names: []string{"foo.bar.com", "*.foo.bar.com"}})
	add("bar.com", leafOpts{names: []string{"bar.com", "*.bar.com"}})
	add("org", leafOpts{names: []string{"org"}})
	add("example.org", leafOpts{names: []string{"example.org"}})
	add("shared", leafOpts{names: []string{"*.shared.test"}})
	add("*.wild.test", leafOpts{names: []string{"*.wild.test"}})
	add("expired.test", leafOpts{names: []string{"expired.test"}, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	c, _ := authority.leaf(t, leafOpts{names: []string{"broken.test"}})
	write(t, dir, "broken.test.crt", c) // no key: nginx-proxy stops at an existing .crt
	write(t, dir, "keyonly.test.key", c)
	if withDefault {
		add(DefaultName, leafOpts{names: []string{"default.invalid"}})
	}
	return mustLoad(t, dir, SourceFile)
}

func TestSelect(t *testing.T) {
	full, noDefault := selectDir(t, true), selectDir(t, false)
	tests := []struct {
		name     string
		set      *Set
		host     string
		certName string
		trust    bool
		cert     string // "" for none
		via      string
		problem  string // substring; "" for none
	}{
		{"exact", full, "shop.example.com", "", true, "shop.example.com", ViaExact, ""},
		{"exact beats parent", full, "foo.bar.com", "", true, "foo.bar.com", ViaExact, ""},
		{"parent one level up", full, "sub.foo.bar.com", "", true, "foo.bar.com", ViaParent, ""},
		{"parent of a 3-label host", full, "x.bar.com", "", true, "bar.com", ViaParent, ""},
		{"never two levels up", full, "a.sub.foo.bar.com", "", false, "", "", "no certificate: no a.sub.foo.bar.com.crt or sub.foo.bar.com.crt, and the default certificate is not trusted"},
		{"two levels up falls to default", full, "a.sub.foo.bar.com", "", true, DefaultName, ViaDefault, "certificate default does not cover a.sub.foo.bar.com (it covers default.invalid)"},
		{"2-label host never uses a parent", noDefault, "other.org", "", true, "", "", "no certificate: no other.org.crt, and no default certificate"},
		{"2-label host exact", full, "example.org", "", true, "example.org", ViaExact, ""},
		{"CERT_NAME", full, "a.shared.test", "shared", true, "shared", ViaCertName, ""},
		{"CERT_NAME beats exact", full, "shop.example.com", "shared", true, "shared", ViaCertName, "certificate shared does not cover shop.example.com (it covers *.shared.test)"},
		{"CERT_NAME missing: no fall-through", full, "shop.example.com", "nope", true, "", "", "no certificate: CERT_NAME nope names no certificate (nope.crt and nope.key)"},
		{"CERT_NAME unusable", full, "broken.test", "broken.test", true, "", "", "no certificate: CERT_NAME broken.test is unusable (broken.test.crt: certificate without its key broken.test.key: not loaded)"},
		{"CERT_NAME unsafe", full, "shop.example.com", "../etc/passwd", true, "", "", `CERT_NAME "../etc/passwd" is not a safe certificate name`},
		{"default trusted", full, "unknown.test", "", true, DefaultName, ViaDefault, "does not cover unknown.test"},
		{"default untrusted", full, "unknown.test", "", false, "", "", "the default certificate is not trusted"},
		{"default absent", noDefault, "unknown.test", "", true, "", "", "and no default certificate"},
		{"expired is still chosen", full, "expired.test", "", true, "expired.test", ViaExact, "certificate expired.test expired on "},
		{"exact .crt without key: no fall-through", full, "broken.test", "", true, "", "", "no certificate: broken.test.crt is unusable (broken.test.crt: certificate without its key"},
		{"parent .crt without key: no fall-through", full, "www.broken.test", "", true, "", "", "no certificate: broken.test.crt is unusable"},
		{"a lone key is not a .crt: falls through", full, "keyonly.test", "", true, DefaultName, ViaDefault, "does not cover"},
		{"wildcard SAN covers one label", full, "x.shared.test", "shared", true, "shared", ViaCertName, ""},
		{"wildcard SAN does not cover two labels", full, "a.b.shared.test", "shared", true, "shared", ViaCertName, "certificate shared does not cover a.b.shared.test"},
		{"wildcard SAN does not cover the bare domain", full, "shared.test", "shared", true, "shared", ViaCertName, "does not cover shared.test"},
		{"parent's wildcard covers one label below it", full, "deep.x.bar.com", "", true, DefaultName, ViaDefault, "does not cover"},
		{"wildcard host: file named after it", full, "*.wild.test", "", true, "*.wild.test", ViaExact, ""},
		{"wildcard host: parent", full, "*.foo.bar.com", "", true, "foo.bar.com", ViaParent, ""},
		{"wildcard host: parent not covering", full, "*.example.org", "", true, "example.org", ViaParent, "certificate example.org does not cover *.example.org (it covers example.org)"},
		{"wildcard host not covered by a plain name", full, "*.shop.example.com", "", true, "shop.example.com", ViaParent, "does not cover *.shop.example.com"},
		{"trailing wildcard host: nothing to check", full, "example.*", "shared", true, "shared", ViaCertName, ""},
		{"regex host: never a file name", full, `~^shop\.example\.com$`, "", false, "", "", "no certificate"},
		{"nil set", nil, "shop.example.com", "", true, "", "", "and no default certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.set.Select(tt.host, tt.certName, tt.trust)
			if got.Cert.Name != tt.cert || got.Via != tt.via {
				t.Errorf("Select(%q, %q, %v) = %q via %q, want %q via %q (%s)", tt.host, tt.certName, tt.trust, got.Cert.Name, got.Via, tt.cert, tt.via, got.Problem)
			}
			if (tt.problem == "") != (got.Problem == "") || !strings.Contains(got.Problem, tt.problem) {
				t.Errorf("Problem = %q, want %q", got.Problem, tt.problem)
			}
			if (got.Via == "") != (got.Cert.Name == "") {
				t.Errorf("Via %q with cert %q", got.Via, got.Cert.Name)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	c := Cert{Names: []string{"*.example.com", "a.test", "*.wild.test"}}
	for host, want := range map[string]bool{
		"a.test": true, "A.Test.": true, "b.a.test": false,
		"x.example.com": true, "example.com": false, "a.b.example.com": false, ".example.com": false,
		"*.wild.test": true, "*.example.com": true, "*.a.test": false, "x.wild.test": true,
		"example.*": true, "~.*": true, "": false,
	} {
		if got := c.Covers(host); got != want {
			t.Errorf("Covers(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParent(t *testing.T) {
	for host, want := range map[string]string{
		"sub.foo.bar.com": "foo.bar.com", "foo.bar.com": "bar.com", "bar.com": "", "com": "",
		"*.example.com": "example.com", "www.example.*": "example.*",
	} {
		if got := Parent(host); got != want {
			t.Errorf("Parent(%q) = %q, want %q", host, got, want)
		}
	}
}
