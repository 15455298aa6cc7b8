package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseRegexHost(t *testing.T) {
	valid := []string{
		`~^api\d+\.example\.com$`,
		`~^(?:www\.)?shop-[a-z]{2}\.example\.net$`,
		`~^[A-Z]+\.Example\.COM$`, // kept as written: \D and \d differ
		`~\.example\.org$`,
		`~^a|b$`,
		`~^` + strings.Repeat("a", MaxRegexHost-1),
	}
	for _, h := range valid {
		got, err := ParseHost(h)
		if err != nil || got != h {
			t.Errorf("ParseHost(%q) = %q, %v; want it unchanged", h, got, err)
		}
	}
	invalid := map[string]string{
		"~":                                 "1 to 255 characters",
		"~" + strings.Repeat("a", 256):      "1 to 255 characters",
		`~^(api`:                            "not a regular expression",
		`~^a(?=b)`:                          "only (?:...) groups",
		`~^(?<name>a)$`:                     "only (?:...) groups",
		`~^(?P<name>a)$`:                    "only (?:...) groups",
		`~(?i)a`:                            "only (?:...) groups",
		`~^a b$`:                            "not allowed",
		"~^a\tb$":                           "not allowed",
		`~^a"b$`:                            "not allowed",
		`~^a'b$`:                            "not allowed",
		"~^a;b$":                            "not allowed",
		"~^a#b$":                            "not allowed",
		"~^a`b$":                            "not allowed",
		`~^a\\b$`:                           `escape \\`,
		`~^a\"b$`:                           "not allowed",
		`~^a\tb$`:                           `escape \t`,
		`~^a\nb$`:                           `escape \n`,
		`~^ab\`:                             "cannot end with",
		`~^(a)\1$`:                          "not a regular expression",
		"~^bücher$":                         "non-ASCII",
		"~^a\x00b$":                         "not allowed",
		"~^a\nserver { listen 81; }\n}\n#$": "not allowed",
	}
	for h, want := range invalid {
		got, err := ParseHost(h)
		if err == nil {
			t.Errorf("ParseHost(%q) = %q, want an error", h, got)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHost(%q): %v; want it to say %q", h, err, want)
		}
	}
}

// TestRegexHostWithOthers: a regular-expression host is one entry of VIRTUAL_HOST among others;
// a bad one is that workload's problem alone.
func TestRegexHostWithOthers(t *testing.T) {
	tab := Build([]discovery.Workload{
		wl("api", "10.0.0.2", `VIRTUAL_HOST=api.example.com, ~^api\d+\.example\.com$`),
		wl("bad", "10.0.0.3", `VIRTUAL_HOST=~^(bad`),
	}, proxyOpts)
	site(t, tab, "api.example.com")
	site(t, tab, `~^api\d+\.example\.com$`)
	if len(tab.Sites) != 2 {
		t.Errorf("sites %v, want the two of api", siteHosts(tab))
	}
	if len(tab.Problems) != 1 || tab.Problems[0].Workload != "bad" || tab.Problems[0].Setting != SettingHost {
		t.Errorf("problems %+v, want one on bad's VIRTUAL_HOST", tab.Problems)
	}
}

func TestMatchRegexHost(t *testing.T) {
	for _, c := range []struct {
		re, host string
		want     bool
	}{
		{`~^api\d+\.example\.com$`, "api12.example.com", true},
		{`~^api\d+\.example\.com$`, "API12.EXAMPLE.COM", true}, // as nginx: case-insensitive
		{`~^api\d+\.example\.com$`, "api.example.com", false},
		{`~\.example\.com`, "a.example.com.evil", true}, // unanchored, as written
		{`~(`, "x", false},
	} {
		if got := MatchRegexHost(c.re, c.host); got != c.want {
			t.Errorf("MatchRegexHost(%q, %q) = %v, want %v", c.re, c.host, got, c.want)
		}
	}
}

// TestAddressHosts: raw addresses as VIRTUAL_HOST, as a request's Host header has them: IPv4 as
// written, IPv6 in brackets, canonical; a port or a zone is refused.
func TestAddressHosts(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.10":         "192.0.2.10",
		"[FD00::1]":          "[fd00::1]",
		"fd00:0:0:0:0:0:0:1": "[fd00::1]",
		"[2001:db8::a:b]":    "[2001:db8::a:b]",
	} {
		if got, err := ParseHost(in); err != nil || got != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"[fd00::1]:80", "example.com:80", "fe80::1%eth0", "[::ffff:192.0.2.1]", "[fd00::1", "::g"} {
		if got, err := ParseHost(in); err == nil {
			t.Errorf("ParseHost(%q) = %q, want an error", in, got)
		}
	}
}
