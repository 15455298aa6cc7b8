package routing

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	good := map[string]string{
		"10.0.0.5:49156":       "10.0.0.5:49156",
		"[fd00::5]:80":         "[fd00::5]:80",
		"[::ffff:10.0.0.9]:80": "10.0.0.9:80",
		"DB.internal:5432":     "db.internal:5432",
	}
	for in, want := range good {
		if got, err := ParseEndpoint(in); err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.5", "10.0.0.5:0", "10.0.0.5:99999", "10.0.0.5:080", "0.0.0.0:80",
		"[::ffff:0.0.0.0]:1", "0.0.0.0.:1", "[ff02::1]:80", "[fe80::1%eth0]:80", "a b:80", "*.example.com:80", "x;y:80", "10.0.0.5:80;"} {
		_, err := ParseEndpoint(bad)
		if err == nil {
			t.Errorf("ParseEndpoint(%q) accepted", bad)
			continue
		}
		if strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("ParseEndpoint(%q): raw control characters in %q", bad, err)
		}
	}
	if _, err := ParseEndpoint("[::1%\x01\n]:80"); err == nil || strings.ContainsAny(err.Error(), "\x01\n") {
		t.Errorf("a zone with control characters: %v", err)
	}
}
