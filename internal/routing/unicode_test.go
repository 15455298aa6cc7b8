package routing

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// unicodeHosts are host names with every class of Unicode trouble. None reaches a config: ParseHost
// refuses any byte outside ASCII before it lower-cases (IDNs are written in punycode, as nginx and
// HAProxy match them), and every message quotes the value with its invisible characters escaped.
var unicodeHosts = []struct{ class, host string }{
	{"IDN (Latin-1 letter)", "bücher.example"},
	{"IDN (Cyrillic homograph of a.com)", "\u0430.com"},
	{"IDN (Hebrew, right-to-left)", "\u05d0\u05d1.example"},
	{"uppercase non-ASCII", "BÜCHER.EXAMPLE"},
	{"Kelvin sign (lower-cases to k)", "\u212a.example"},
	{"dotless i (upper-cases to I)", "\u0131.example"},
	{"long s (upper-cases to S)", "\u017f.example"},
	{"right-to-left mark", "a\u200f.com"},
	{"left-to-right mark", "\u200ea.com"},
	{"right-to-left override", "moc.\u202ea"},
	{"bidi isolate", "a\u2067.com\u2069"},
	{"zero-width space", "a\u200b.com"},
	{"zero-width joiner", "a\u200d.com"},
	{"zero-width non-joiner", "a\u200c.com"},
	{"byte order mark", "\ufeffa.com"},
	{"soft hyphen", "a\u00ad.com"},
	{"combining acute", "e\u0301.com"},
	{"combining only", "\u0301.com"},
	{"NUL", "a\x00.com"},
	{"other C0 control", "a\x1b[31m.com"},
	{"DEL", "a\x7f.com"},
	{"C1 control (NEL inside)", "a\u0085b.com"},
	{"line separator inside", "a\u2028b.com"},
	{"paragraph separator inside", "a\u2029b.com"},
	{"no-break space inside", "a\u00a0b.com"},
	{"invalid UTF-8", "a\xff.com"},
	{"lone surrogate (CESU-8 bytes)", "a\xed\xa0\x80.com"},
	{"truncated multi-byte", "a.com\xc3"},
	{"overlong encoding of '.'", "a\xc0\xae" + "com"},
	{"fullwidth full stop", "a\uff0ecom"},
	{"ideographic full stop", "a\u3002com"},
	{"halfwidth ideographic full stop", "a\uff61com"},
	{"fullwidth letters", "\uff41.com"},
	{"mathematical bold letters", "\U0001d41a.com"},
	{"emoji", "\U0001f600.com"},
	{"private use", "\ue000.com"},
	{"noncharacter", "a\uffff.com"},
	{"replacement character", "a\ufffd.com"},
	{"tag characters", "a\U000e0041.com"},
	{"variation selector", "a\ufe0f.com"},
	{"fraction slash (looks like /)", "a\u2044b.com"},
	{"one dot leader (looks like .)", "a\u2024com"},
	{"superscript digit", "a\u00b2.com"},
	{"in a list, after a good name", "good.example,b\u00fccher.example"},
}

// safeMessage reports a rune of s that could hide, reorder or forge text in a log line or the
// /routes page, or -1: messages must be valid UTF-8 of printable runes (escapes are printable).
func safeMessage(s string) (rune, bool) {
	if !utf8.ValidString(s) {
		return utf8.RuneError, false
	}
	for _, r := range s {
		if r != ' ' && (!strconv.IsPrint(r) || unicode.Is(unicode.Cf, r)) {
			return r, false
		}
	}
	return 0, true
}

func TestHostUnicodeRefused(t *testing.T) {
	var ws []discovery.Workload
	for i, tt := range unicodeHosts {
		hosts, err := ParseHosts(tt.host)
		if err == nil {
			t.Errorf("%s: ParseHosts(%q) = %q, want an error", tt.class, tt.host, hosts)
			continue
		}
		if r, ok := safeMessage(err.Error()); !ok {
			t.Errorf("%s: message %q carries %U raw", tt.class, err, r)
		}
		ws = append(ws, wl(fmt.Sprintf("u%02d", i), fmt.Sprintf("10.1.0.%d", i+2), "VIRTUAL_HOST="+tt.host))
	}
	tab := Build(append(ws, wl("ok", "10.0.0.9", "VIRTUAL_HOST=ok.example")), proxyOpts)
	if hosts := siteHosts(tab); len(hosts) != 1 || hosts[0] != "ok.example" {
		t.Errorf("sites %q, want only ok.example", hosts)
	}
	for _, w := range ws {
		ps := problemsOf(tab, w.Name)
		if len(ps) != 1 {
			t.Errorf("%s: problems %v, want one", w.Name, ps)
			continue
		}
		if r, ok := safeMessage(ps[0].String()); !ok {
			t.Errorf("%s: problem %q carries %U raw", w.Name, ps[0].String(), r)
		}
	}
}

// IDNs are refused with a message saying what to write instead; their punycode is routed.
func TestHostIDNPunycode(t *testing.T) {
	_, err := ParseHosts("bücher.example")
	if err == nil || !strings.Contains(err.Error(), "non-ASCII characters are not allowed (use punycode for IDNs)") {
		t.Errorf("IDN refused with %v, want a pointer to punycode", err)
	}
	if got, err := ParseHosts("XN--BCHER-KVA.example"); err != nil || got[0] != "xn--bcher-kva.example" {
		t.Errorf("punycode = %q, %v; want it lower-cased and accepted", got, err)
	}
}

// Unicode white space around a name is trimmed like ASCII blanks (strings.TrimSpace): what is
// left is plain ASCII, so nothing invisible reaches the config.
func TestHostUnicodeBlanksTrimmed(t *testing.T) {
	for _, v := range []string{"\u00a0a.com", "a.com\u0085", "\u3000a.com\u2028", "\u2003a.com,\u205fb.com"} {
		hosts, err := ParseHosts(v)
		if err != nil {
			t.Errorf("ParseHosts(%q): %v", v, err)
			continue
		}
		for _, h := range hosts {
			checkSafe(t, "host", h)
		}
	}
}
