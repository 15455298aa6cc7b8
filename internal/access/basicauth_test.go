package access

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

func TestBasicAuthLookup(t *testing.T) {
	regex := `~^api\d+\.example\.com$`
	dir := snippets.New("/etc/nginx/htpasswd", map[string]string{
		"h.example.com": "a:$6$s$x\n",
		"h.example.com_" + snippets.PathHash("/admin/"): "b:$6$s$y\n",
		snippets.HostName(regex):                        "c:$6$s$z\n",
	})
	tests := []struct {
		host, path, file, realm, user string
	}{
		{"h.example.com", "/", "/etc/nginx/htpasswd/h.example.com", "Restricted h.example.com", "a"},
		{"h.example.com", "/other/", "/etc/nginx/htpasswd/h.example.com", "Restricted h.example.com", "a"},
		{"h.example.com", "/admin/", "/etc/nginx/htpasswd/h.example.com_" + snippets.PathHash("/admin/"), "Restricted h.example.com/admin/", "b"},
		{regex, "/", "/etc/nginx/htpasswd/" + snippets.HostName(regex), "Restricted access", "c"},
		{"open.example.com", "/", "", "", ""},
	}
	for _, tc := range tests {
		a := BasicAuth(dir, tc.host, tc.path)
		if tc.file == "" {
			if a != nil {
				t.Errorf("%s%s: auth %+v, want none", tc.host, tc.path, a)
			}
			continue
		}
		if a == nil || a.File != tc.file || a.Realm != tc.realm || len(a.Users) != 1 || a.Users[0].Name != tc.user {
			t.Errorf("%s%s: auth %+v, want file %s realm %q user %s", tc.host, tc.path, a, tc.file, tc.realm, tc.user)
		}
	}
}

func TestParseHtpasswd(t *testing.T) {
	users, skipped := parseHtpasswd(strings.Split(strings.Join([]string{
		"# comment", "",
		"zed:$2y$05$abcdefghijklmnopqrstuu",
		"amy:$1$salt$hash",
		"bob:$apr1$salt$hash",
		"cat:{SHA}abc=",
		"dan:abDEF0123456.", // DES, 13 characters
		"eve:plain",
		"amy:$5$again$hash",
		"fay",
		"g y:$6$s$h",
		"hal:$6$s$h'x",
		"ian:$6$s$${HOME}",
	}, "\n"), "\n"))
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, ","); got != "amy,dan,zed" {
		t.Errorf("users %s, want amy,dan,zed (sorted; the first amy)", got)
	}
	want := []string{
		"line 5: not a crypt(3) hash ($apr1$",
		"line 6: not a crypt(3) hash ({SHA}",
		"line 8: not a crypt(3) hash (an unknown scheme",
		"line 9: user amy again",
		"line 10: not name:hash",
		"line 11: a user name of",
		"line 12: not a crypt(3) hash",
		"line 13: not a crypt(3) hash",
	}
	if len(skipped) != len(want) {
		t.Fatalf("skipped %q, want %d", skipped, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(skipped[i], w) {
			t.Errorf("skipped[%d] = %q, want %q...", i, skipped[i], w)
		}
	}
	dir := snippets.New("/h", map[string]string{"x.example.com": "bob:$apr1$s$h\n"})
	if got := HAProxySkipped(dir); len(got) != 1 || !strings.HasPrefix(got[0], "/h/x.example.com: line 1:") {
		t.Errorf("HAProxySkipped = %q", got)
	}
}
