package render

import (
	"strings"
	"testing"
)

func TestNewAccessLog(t *testing.T) {
	l, err := NewAccessLog(false, "", "", true, "")
	if err != nil || l.Format != nginxProxyJSONLog || l.Escape != "json" || l.Path != DefaultAccessLogPath {
		t.Errorf("LOG_JSON: %+v, %v", l, err)
	}
	l, err = NewAccessLog(false, ` $host "$request" $status `, "NONE", false, "")
	if err != nil || l.Format != `$host "$request" $status` || l.Escape != "none" {
		t.Errorf("LOG_FORMAT: %+v, %v", l, err)
	}
	if l, err := NewAccessLog(false, "", "", false, ""); err != nil || l.Format != "" || l.Off {
		t.Errorf("nothing set: %+v, %v; want nginx's own log", l, err)
	}
	for _, c := range []struct {
		format, escape, want string
	}{
		{"$host'; include /etc/passwd; '", "", "character '\\''"},
		{`$host \n`, "", `character '\\'`},
		{"$host\n$status", "", "character '\\n'"},
		{"$host", "xml", "default, json or none"},
		{strings.Repeat("$host ", 1000), "", "at most 4096"},
	} {
		if _, err := NewAccessLog(false, c.format, c.escape, false, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewAccessLog(%q, %q): %v, want %q", c.format, c.escape, err, c.want)
		}
	}
}
