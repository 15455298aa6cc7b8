package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseDefaultHost(t *testing.T) {
	for in, want := range map[string]string{"": "", "  ": "", "foo.example.com": "foo.example.com", " Foo.Example.COM. ": "foo.example.com", "localhost": "localhost"} {
		if got, err := ParseDefaultHost(in); err != nil || got != want {
			t.Errorf("ParseDefaultHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"*.example.com":         "not a wildcard",
		"example.*":             "not a wildcard",
		"a.com,b.com":           "character ','",
		"a.com b.com":           "character ' '",
		"a.com;":                "character ';'",
		"bücher.example":        "non-ASCII",
		"-a.example.com":        "cannot start or end with '-'",
		strings.Repeat("a", 64): "1 to 63 characters",
		"a..com":                "1 to 63 characters",
	} {
		if got, err := ParseDefaultHost(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseDefaultHost(%q) = %q, %v; want an error saying %q", in, got, err, why)
		}
	}
}

func TestParseDefaultRoot(t *testing.T) {
	accepted := []struct {
		in   string
		want DefaultRoot
		str  string
	}{
		{"", DefaultRoot{}, "404"},
		{"404", DefaultRoot{Status: 404}, "404"},
		{" 418 ", DefaultRoot{Status: 418}, "418"},
		{"200", DefaultRoot{Status: 200}, "200"},
		{"204", DefaultRoot{Status: 204}, "204"},
		{"444", DefaultRoot{Status: 444}, "444"},
		{"503", DefaultRoot{Status: 503}, "503"},
		{"599", DefaultRoot{Status: 599}, "599"},
		{"none", DefaultRoot{None: true}, "none"},
		{"NONE", DefaultRoot{None: true}, "none"},
		{"301 https://example.com/", DefaultRoot{Status: 301, URL: "https://example.com/"}, "301 https://example.com/"},
		{"302   http://example.com", DefaultRoot{Status: 302, URL: "http://example.com"}, "302 http://example.com"},
		{"303 https://example.com:8443/a/b?c=d&e=f", DefaultRoot{Status: 303, URL: "https://example.com:8443/a/b?c=d&e=f"}, ""},
		{"307 https://[::1]:8443/x", DefaultRoot{Status: 307, URL: "https://[::1]:8443/x"}, ""},
		{"308 https://www.example.com/a%20b/(c)*+,=!@~", DefaultRoot{Status: 308, URL: "https://www.example.com/a%20b/(c)*+,=!@~"}, ""},
		{"301 HTTPS://example.com/", DefaultRoot{Status: 301, URL: "HTTPS://example.com/"}, ""},
	}
	for _, tt := range accepted {
		got, err := ParseDefaultRoot(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDefaultRoot(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if tt.str != "" && got.String() != tt.str {
			t.Errorf("ParseDefaultRoot(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
		if back, err := ParseDefaultRoot(got.String()); err != nil || back.String() != got.String() {
			t.Errorf("%q: %q reads back as %+v, %v", tt.in, got.String(), back, err)
		}
	}
	rejected := []struct{ in, why string }{
		{"return 404", "must be a status code"},
		{"404;", "must be a status code"},
		{"40", "must be a status code"},
		{"4040", "must be a status code"},
		{"0404", "must be a status code"},
		{"+404", "must be a status code"},
		{"100", "must be a status code"},
		{"199", "must be a status code"},
		{"600", "must be a status code"},
		{"999", "must be a status code"},
		{"abc", "must be a status code"},
		{"nothing", "must be a status code"},
		{"301", "301 needs a URL"},
		{"302", "302 needs a URL"},
		{"304", "304 needs a URL"},
		{"300 https://example.com/", "only a redirect"},
		{"304 https://example.com/", "only a redirect"},
		{"404 https://example.com/", "only a redirect"},
		{"200 hello", "only a redirect"},
		{"404 \"Not_here\"", "only a redirect"},
		{"404 \"Not here\"", "must be a status code"},
		{"https://example.com/", "must be a status code"},
		{"/elsewhere", "must be a status code"},
		{"301 /elsewhere", "must be absolute"},
		{"301 example.com/x", "must be absolute"},
		{"301 ftp://example.com/", "must be absolute"},
		{"301 https:///path", "must be absolute"},
		{"301 https:example.com", "must be absolute"},
		{"301 mailto:root@example.com", "must be absolute"},
		{"301 https://example.com/ extra", "must be a status code"},
		{"301 https://example.com/$request_uri", `character '$' not allowed`},
		{"301 https://example.com/;return", `character ';' not allowed`},
		{"301 https://example.com/'x'", `character '\'' not allowed`},
		{`301 https://example.com/"x"`, `character '"' not allowed`},
		{"301 https://example.com/#frag", `character '#' not allowed`},
		{"301 https://example.com/{x}", `character '{' not allowed`},
		{`301 https://example.com/a\b`, `character '\\' not allowed`},
		{"301 https://example.com/<x>", `character '<' not allowed`},
		{"301 https://example.com/é", `not allowed`},
		{"301 https://example.com/\x00", `not allowed`},
		{"301 https://example.com/%zz", "percent-encoding"},
		{"301 https://example.com/%2", "percent-encoding"},
		{"301 https://example.com/%[var(txn.host)]", "percent-encoding"},
		{"301 https://" + strings.Repeat("a", 2050), "1 to 2048 characters"},
	}
	for _, tt := range rejected {
		got, err := ParseDefaultRoot(tt.in)
		if err == nil {
			t.Errorf("ParseDefaultRoot(%.50q) = %+v, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("ParseDefaultRoot(%.50q): error %q, want it to say %q", tt.in, err, tt.why)
		}
	}
}

// DEFAULT_HOST marks its site; a name no site has, or a site on neither port, is a warning.
func TestBuildDefaultHost(t *testing.T) {
	ws := []discovery.Workload{
		wl("www", "10.0.0.1", "VIRTUAL_HOST=www.example.com"),
		wl("other", "10.0.0.2", "VIRTUAL_HOST=other.example.com,*.example.com"),
	}
	opts := proxyOpts
	opts.DefaultHost = "www.example.com"
	tab := Build(ws, opts)
	for _, s := range tab.Sites {
		if s.Default != (s.Host == "www.example.com") {
			t.Errorf("site %s: Default %v", s.Host, s.Default)
		}
		if s.DefaultHTTP() != s.Default || s.DefaultHTTPS() {
			t.Errorf("site %s: DefaultHTTP %v DefaultHTTPS %v (HTTP only)", s.Host, s.DefaultHTTP(), s.DefaultHTTPS())
		}
	}
	if len(tab.Problems) != 0 {
		t.Errorf("problems %v", tab.Problems)
	}
	// A wildcard site that would match the name is not it: DEFAULT_HOST names a site exactly.
	for _, h := range []string{"missing.example.com", "example.com"} {
		opts.DefaultHost = h
		tab = Build(ws, opts)
		for _, s := range tab.Sites {
			if s.Default {
				t.Errorf("DEFAULT_HOST=%s: site %s is the default", h, s.Host)
			}
		}
		ps := problemsOf(tab, "")
		if len(ps) != 1 || !ps[0].Warning || ps[0].Setting != SettingDefaultHost || ps[0].Value != h || !strings.Contains(ps[0].Reason, "no site has this name") {
			t.Fatalf("DEFAULT_HOST=%s: problems %v, want a warning", h, tab.Problems)
		}
		if got, want := ps[0].String(), `warning: DEFAULT_HOST "`+h+`": no site has this name (yet): hosts that no site claims get 503`; got != want {
			t.Errorf("problem reads %q, want %q", got, want)
		}
	}
	// Unset: no site is the default, no problem.
	tab = Build(ws, proxyOpts)
	for _, s := range tab.Sites {
		if s.Default {
			t.Errorf("no DEFAULT_HOST: site %s is the default", s.Host)
		}
	}
}

// With HTTPS, the default site answers on the ports it is on.
func TestSiteDefaultPorts(t *testing.T) {
	cert := &SiteCert{Name: "c"}
	tests := []struct {
		tls         *SiteTLS
		http, https bool
	}{
		{nil, true, false},
		{&SiteTLS{Method: MethodRedirect, Cert: cert}, true, true},
		{&SiteTLS{Method: MethodNoRedirect, Cert: cert}, true, true},
		{&SiteTLS{Method: MethodNoHTTP, Cert: cert}, false, true},
		{&SiteTLS{Method: MethodNoHTTPS, Cert: cert}, true, false},
		{&SiteTLS{Method: MethodNoRedirect}, true, false},
		{&SiteTLS{Method: MethodNoHTTP}, false, false},
	}
	for _, tt := range tests {
		s := Site{Host: "a.com", TLS: tt.tls, Default: true}
		if s.DefaultHTTP() != tt.http || s.DefaultHTTPS() != tt.https {
			t.Errorf("TLS %+v: DefaultHTTP %v DefaultHTTPS %v, want %v %v", tt.tls, s.DefaultHTTP(), s.DefaultHTTPS(), tt.http, tt.https)
		}
		s.Default = false
		if s.DefaultHTTP() || s.DefaultHTTPS() {
			t.Errorf("TLS %+v: not the default site, yet DefaultHTTP %v DefaultHTTPS %v", tt.tls, s.DefaultHTTP(), s.DefaultHTTPS())
		}
	}
	ps := markDefault([]Site{{Host: "a.com", Routes: []Route{{Path: "/"}}, TLS: &SiteTLS{Method: MethodNoHTTP}}}, "a.com")
	if len(ps) != 1 || !strings.Contains(ps[0].Reason, "served on neither port") {
		t.Errorf("a default site on neither port: problems %v, want a warning", ps)
	}
}
