package render

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

func TestBindAddr(t *testing.T) {
	for listen, want := range map[string]string{
		"80":             ":80",
		"8080":           ":8080",
		":80":            ":80",
		"127.0.0.1:8080": "127.0.0.1:8080",
		"0.0.0.0:80":     "0.0.0.0:80",
		"[::]:80":        "[::]:80",
		"[::1]:8080":     "[::1]:8080",
	} {
		if got := bindAddr(listen); got != want {
			t.Errorf("bindAddr(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestBindPort(t *testing.T) {
	for _, c := range []struct {
		listen string
		port   int
		want   string
	}{
		{"80", 5432, ":5432"},
		{":80", 5432, ":5432"},
		{"127.0.0.1:8080", 5432, "127.0.0.1:5432"},
		{"0.0.0.0:80", 1, "0.0.0.0:1"},
		{"[::]:80", 6379, "[::]:6379"},
		{"[::1]:8080", 65535, "[::1]:65535"},
		// HAProxy binds "::1:8080" to [::1]:8080: the TCP service must not listen everywhere.
		{"::1:8080", 5432, "[::1]:5432"},
		{"fd00::1:80", 5432, "[fd00::1]:5432"},
	} {
		if got := bindPort(c.listen, c.port); got != c.want {
			t.Errorf("bindPort(%q, %d) = %q, want %q", c.listen, c.port, got, c.want)
		}
	}
}

func TestHostMatch(t *testing.T) {
	for h, want := range map[string]string{
		"shop.example.com":   "-m str shop.example.com",
		"*.example.com":      "-m end .example.com",
		"*.shop.example.com": "-m end .shop.example.com",
		"example.*":          "-m beg example.",
		"www.example.*":      "-m beg www.example.",
		"localhost":          "-m str localhost",
	} {
		if got := hostMatch(h); got != want {
			t.Errorf("hostMatch(%q) = %q, want %q", h, got, want)
		}
	}
}

func sitesOf(hosts ...string) []routing.Site {
	out := make([]routing.Site, len(hosts))
	for i, h := range hosts {
		out[i] = routing.Site{Host: h}
	}
	return out
}

func hostsOf(sites []routing.Site) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.Host
	}
	return out
}

// The table sorts sites by name; HAProxy must see exact names (in that order), then "*.x"
// longest first, then "x.*" longest first.
func TestHAProxyHostOrder(t *testing.T) {
	sorted := []string{"*.a.example.com", "*.example.com", "*.shop.example.com", "a.example.com",
		"example.*", "shop.example.com", "www.*", "www.example.*", "zz"}
	want := []string{"a.example.com", "shop.example.com", "zz",
		"*.shop.example.com", "*.a.example.com", "*.example.com",
		"www.example.*", "example.*", "www.*"}
	in := sitesOf(sorted...)
	got := hostsOf(haproxyHostOrder(in))
	if !slices.Equal(got, want) {
		t.Errorf("haproxyHostOrder:\n got %v\nwant %v", got, want)
	}
	if !slices.Equal(hostsOf(in), sorted) {
		t.Errorf("haproxyHostOrder changed its input: %v", hostsOf(in))
	}
	// Whatever order the sites come in, exact names come first and wildcards longest first.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		shuffled := slices.Clone(in)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := hostsOf(haproxyHostOrder(shuffled))
		kind := func(h string) int {
			switch {
			case strings.HasPrefix(h, "*."):
				return 1
			case strings.HasSuffix(h, ".*"):
				return 2
			}
			return 0
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			if kind(a) > kind(b) || (kind(a) == kind(b) && kind(a) != 0 && len(a) < len(b)) {
				t.Fatalf("from %v: %q before %q in %v", hostsOf(shuffled), a, b, got)
			}
		}
	}
	if got := haproxyHostOrder(nil); len(got) != 0 {
		t.Errorf("haproxyHostOrder(nil) = %v", got)
	}
}

func TestLongestPathFirst(t *testing.T) {
	var in []routing.Route
	for _, p := range []string{"/", "/a", "/api/", "/api/v2/", "/b", "/static/"} {
		in = append(in, routing.Route{Path: p})
	}
	var got []string
	for _, r := range longestPathFirst(in) {
		got = append(got, r.Path)
	}
	want := []string{"/api/v2/", "/static/", "/api/", "/a", "/b", "/"}
	if !slices.Equal(got, want) {
		t.Errorf("longestPathFirst = %v, want %v", got, want)
	}
	if in[0].Path != "/" || in[5].Path != "/static/" {
		t.Errorf("longestPathFirst changed its input: %+v", in)
	}
}

// regexQuote makes a path a literal in replace-path's regex: every character routing.ParsePath
// allows matches itself only.
func TestRegexQuote(t *testing.T) {
	regexQuote, ok := funcs["regexQuote"].(func(string) string)
	if !ok {
		t.Fatalf("regexQuote is %T", funcs["regexQuote"])
	}
	for _, p := range []string{"/api/", "/v1.2/", "/a+b/", "/x~y_z-1/", "/%20:@!,=/", "/.../"} {
		if _, err := routing.ParsePath(p); err != nil {
			t.Fatalf("bad test path %q: %v", p, err)
		}
		re := regexp.MustCompile("^" + regexQuote(p) + "(.*)$")
		if m := re.FindStringSubmatch(p + "rest"); m == nil || m[1] != "rest" {
			t.Errorf("%q does not match itself: %v", p, m)
		}
		mangled := strings.NewReplacer(".", "x", "+", "bb").Replace(p)
		if mangled != p && re.MatchString(mangled) {
			t.Errorf("the regex for %q matches %q", p, mangled)
		}
	}
	if got := regexQuote("/v1.2+/"); got != `/v1\.2\+/` {
		t.Errorf("regexQuote = %q", got)
	}
}

// Every HAProxy helper is available to templates.
func TestHAProxyFuncsRegistered(t *testing.T) {
	for _, name := range []string{"bindAddr", "bindPort", "haproxyHostOrder", "hostMatch", "longestPathFirst", "regexQuote"} {
		if funcs[name] == nil {
			t.Errorf("%s is not in the template function map", name)
		}
	}
	r, err := Parse("t", `{{ bindPort .Listen 5432 }} {{ range haproxyHostOrder .Sites }}{{ hostMatch .Host }};{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(Data{Sites: sitesOf("*.x.com", "a.x.com"), Options: Options{Listen: "127.0.0.1:80"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:5432 -m str a.x.com;-m end .x.com;"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
