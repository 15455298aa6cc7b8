package routing

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// fakeCerts answers Select from a set of certificate names with nginx-proxy's order, enough for
// routing's decisions (the real order is internal/certs', tested there).
type fakeCerts map[string]string // name → source

func (f fakeCerts) Select(host, certName string, trust bool) CertChoice {
	info := func(name string) (CertInfo, bool) {
		src, ok := f[name]
		return CertInfo{Name: name, Source: src, CertFile: "/c/" + name + ".crt", KeyFile: "/c/" + name + ".key",
			NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, ok
	}
	if certName != "" {
		if c, ok := info(certName); ok {
			return CertChoice{Cert: c, Via: "CERT_NAME"}
		}
		return CertChoice{Problem: "no certificate: CERT_NAME " + certName + " names no certificate"}
	}
	if c, ok := info(host); ok {
		return CertChoice{Cert: c, Via: "exact"}
	}
	if parts := strings.SplitN(host, ".", 2); strings.Count(host, ".") >= 2 {
		if c, ok := info(parts[1]); ok {
			return CertChoice{Cert: c, Via: "parent"}
		}
	}
	if c, ok := info("default"); ok && trust {
		return CertChoice{Cert: c, Via: "default"}
	}
	if _, ok := f["default"]; ok {
		return CertChoice{}
	}
	return CertChoice{Problem: "no certificate: no " + host + ".crt, and no default certificate"}
}

// TestNoCertificateQuiet: a site that asked for nothing about HTTPS, with no certificate at all,
// is served over HTTP without a warning (as nginx-proxy); one that asked for HTTPS keeps its
// warning.
func TestNoCertificateQuiet(t *testing.T) {
	for _, c := range []struct {
		labels []string
		certs  fakeCerts
		warn   bool
	}{
		{[]string{"VIRTUAL_HOST=a.example.net"}, fakeCerts{}, false},
		{[]string{"VIRTUAL_HOST=a.example.net", "HTTPS_METHOD=redirect"}, fakeCerts{}, true},
		{[]string{"VIRTUAL_HOST=a.example.net", "CERT_NAME=nope"}, fakeCerts{}, true},
	} {
		tab := Build([]discovery.Workload{wl("w", "10.0.0.2", c.labels...)}, tlsOpts(c.certs))
		if got := len(tab.Problems) > 0; got != c.warn {
			t.Errorf("%v: problems %+v, want a warning %v", c.labels, tab.Problems, c.warn)
		}
	}
}

func tlsOpts(certs fakeCerts) Options {
	o := proxyOpts
	o.TLS = &TLSOptions{Certs: certs, Method: MethodRedirect, HSTS: "max-age=31536000", Policy: "Mozilla-Intermediate",
		HTTPOnMissingCert: true, NonGetRedirect: 301, TrustDefaultCert: true, HTTPSPort: 443, ACME: true, ACMEEmail: "ops@example.com"}
	return o
}

func TestSiteTLS(t *testing.T) {
	certs := fakeCerts{"shop.example.com": "file", "example.org": "file", "shared": "file", "default": "file"}
	tests := []struct {
		name      string
		labels    []string
		opt       func(o *TLSOptions)
		method    string
		cert      string // "" none
		source    string
		hsts      string
		redirect  bool
		problemIn string
	}{
		{"exact certificate, redirect", []string{"VIRTUAL_HOST=shop.example.com"}, nil, MethodRedirect, "shop.example.com", "file", "max-age=31536000", true, ""},
		{"parent one level", []string{"VIRTUAL_HOST=www.example.org"}, nil, MethodRedirect, "example.org", "file", "max-age=31536000", true, ""},
		{"CERT_NAME", []string{"VIRTUAL_HOST=a.example.net", "CERT_NAME=shared"}, nil, MethodRedirect, "shared", "file", "max-age=31536000", true, ""},
		{"missing CERT_NAME: no fall-through, downgraded", []string{"VIRTUAL_HOST=a.example.net", "CERT_NAME=nope"}, nil, MethodNoRedirect, "", "none", "", false, "CERT_NAME nope"},
		{"default certificate, trusted", []string{"VIRTUAL_HOST=a.example.net"}, nil, MethodRedirect, "default", "default", "max-age=31536000", true, ""},
		{"default certificate, untrusted: downgraded to HTTP", []string{"VIRTUAL_HOST=a.example.net"}, func(o *TLSOptions) { o.TrustDefaultCert = false }, MethodNoRedirect, "", "none", "", false, ""},
		{"the label trusts it again", []string{"VIRTUAL_HOST=a.example.net", "com.github.nginx-proxy.nginx-proxy.trust-default-cert=true"}, func(o *TLSOptions) { o.TrustDefaultCert = false }, MethodRedirect, "default", "default", "max-age=31536000", true, ""},
		{"no certificate, HTTP on missing off: the redirect stays", []string{"VIRTUAL_HOST=a.example.net", "ENABLE_HTTP_ON_MISSING_CERT=false"}, func(o *TLSOptions) { o.TrustDefaultCert = false }, MethodRedirect, "", "none", "", true, ""},
		{"noredirect never sends HSTS", []string{"VIRTUAL_HOST=shop.example.com", "HTTPS_METHOD=noredirect"}, nil, MethodNoRedirect, "shop.example.com", "file", "", false, ""},
		{"nohttp", []string{"VIRTUAL_HOST=shop.example.com", "HTTPS_METHOD=nohttp"}, nil, MethodNoHTTP, "shop.example.com", "file", "max-age=31536000", false, ""},
		{"nohttps", []string{"VIRTUAL_HOST=shop.example.com", "HTTPS_METHOD=nohttps"}, nil, MethodNoHTTPS, "shop.example.com", "file", "", false, ""},
		{"HSTS off", []string{"VIRTUAL_HOST=shop.example.com", "HSTS=off"}, nil, MethodRedirect, "shop.example.com", "file", "", true, ""},
		{"custom HSTS", []string{"VIRTUAL_HOST=shop.example.com", "HSTS=max-age=60; includeSubDomains"}, nil, MethodRedirect, "shop.example.com", "file", "max-age=60; includeSubDomains", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tlsOpts(certs)
			if tt.opt != nil {
				tt.opt(o.TLS)
			}
			w := wl("w", "10.0.0.2", tt.labels...)
			host, _, _ := strings.Cut(w.Labels["VIRTUAL_HOST"], ",")
			tab := Build([]discovery.Workload{w}, o)
			s := site(t, tab, host)
			if s.TLS == nil {
				t.Fatal("no TLS decision")
			}
			got := ""
			if s.TLS.Cert != nil {
				got = s.TLS.Cert.Name
			}
			if s.TLS.Method != tt.method || got != tt.cert || s.TLS.CertSource != tt.source || s.TLS.HSTS != tt.hsts || s.TLS.Redirect() != tt.redirect {
				t.Errorf("got method %s cert %q (%s) hsts %q redirect %v; want %s %q (%s) %q %v",
					s.TLS.Method, got, s.TLS.CertSource, s.TLS.HSTS, s.TLS.Redirect(), tt.method, tt.cert, tt.source, tt.hsts, tt.redirect)
			}
			if tt.problemIn != "" && !slices.ContainsFunc(tab.Problems, func(p Problem) bool { return p.Warning && p.Host == host && strings.Contains(p.Reason, tt.problemIn) }) {
				t.Errorf("problems %+v, want a warning on %s about %q", tab.Problems, host, tt.problemIn)
			}
			if tt.problemIn == "" && len(tab.Problems) != 0 {
				t.Errorf("problems %+v, want none", tab.Problems)
			}
		})
	}
}

// TestRefuseHTTPS: a site that wants HTTPS without a usable certificate (none of its own, the
// default absent or untrusted, a missing CERT_NAME) has its name refused at the handshake,
// whatever its method became; nohttps never, a certificate (the trusted default's too) never.
func TestRefuseHTTPS(t *testing.T) {
	tests := []struct {
		name    string
		labels  []string
		certs   fakeCerts
		trust   bool
		refused bool
	}{
		{"own certificate", []string{"VIRTUAL_HOST=shop.example.com"}, fakeCerts{"shop.example.com": "file"}, false, false},
		{"trusted default: its certificate", []string{"VIRTUAL_HOST=a.example.net"}, fakeCerts{"default": "file"}, true, false},
		{"untrusted default", []string{"VIRTUAL_HOST=a.example.net"}, fakeCerts{"default": "file"}, false, true},
		{"no default", []string{"VIRTUAL_HOST=a.example.net"}, fakeCerts{}, true, true},
		{"missing CERT_NAME, trusted default", []string{"VIRTUAL_HOST=a.example.net", "CERT_NAME=nope"}, fakeCerts{"default": "file"}, true, true},
		{"noredirect", []string{"VIRTUAL_HOST=a.example.net", "HTTPS_METHOD=noredirect"}, fakeCerts{}, true, true},
		{"nohttp", []string{"VIRTUAL_HOST=a.example.net", "HTTPS_METHOD=nohttp"}, fakeCerts{}, true, true},
		{"redirect kept (HTTP on missing off)", []string{"VIRTUAL_HOST=a.example.net", "ENABLE_HTTP_ON_MISSING_CERT=false"}, fakeCerts{}, true, true},
		{"nohttps without a certificate", []string{"VIRTUAL_HOST=a.example.net", "HTTPS_METHOD=nohttps"}, fakeCerts{}, true, false},
		{"nohttps with a certificate", []string{"VIRTUAL_HOST=shop.example.com", "HTTPS_METHOD=nohttps"}, fakeCerts{"shop.example.com": "file"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tlsOpts(tt.certs)
			o.TLS.TrustDefaultCert = tt.trust
			w := wl("w", "10.0.0.2", tt.labels...)
			host, _, _ := strings.Cut(w.Labels["VIRTUAL_HOST"], ",")
			s := site(t, Build([]discovery.Workload{w}, o), host)
			if got := s.TLS.RefuseHTTPS(); got != tt.refused {
				t.Errorf("RefuseHTTPS() = %v, want %v (%+v)", got, tt.refused, s.TLS)
			}
			if s.TLS.RefuseHTTPS() && s.TLS.HTTPS() {
				t.Errorf("both served and refused over HTTPS: %+v", s.TLS)
			}
		})
	}
}

func TestTLSSettingsRejected(t *testing.T) {
	for _, bad := range []string{
		"CERT_NAME=../../etc/passwd", "CERT_NAME=a b", "HTTPS_METHOD=sometimes", `HSTS=max-age=1"; evil`, "HSTS=max-age=1; $x",
		"SSL_POLICY=AWS-TLS-1-2-2017-01", "NON_GET_REDIRECT=302", "ENABLE_HTTP_ON_MISSING_CERT=maybe", "ACME_HOST=*.example.com",
		"ACME_HOST=localhost", "ACME_EMAIL=not an email", "ACME_KEYSIZE=1024", "ACME_CERT_PROFILE=a;b",
	} {
		t.Run(bad, func(t *testing.T) {
			tab := Build([]discovery.Workload{wl("w", "10.0.0.2", "VIRTUAL_HOST=shop.example.com", bad)}, tlsOpts(fakeCerts{}))
			setting, _, _ := strings.Cut(bad, "=")
			if len(tab.Sites) != 0 || len(tab.Problems) != 1 || tab.Problems[0].Setting != setting {
				t.Errorf("sites %v problems %+v, want the workload left out with a problem on %s", siteHosts(tab), tab.Problems, setting)
			}
		})
	}
}

func TestACMERequests(t *testing.T) {
	ws := []discovery.Workload{
		wl("a", "10.0.0.2", "VIRTUAL_HOST=app.example.com,www.app.example.com", "ACME_HOST=app.example.com,www.app.example.com"),
		wl("b", "10.0.0.3", "VIRTUAL_HOST=app.example.com", "LETSENCRYPT_HOST=app.example.com", "LETSENCRYPT_EMAIL=b@example.com"),
		wl("c", "10.0.0.4", "VIRTUAL_HOST=one.example.com,two.example.com", "ACME_HOST=one.example.com,two.example.com", "ACME_SINGLE_DOMAIN_CERTS=true"),
		wl("d", "10.0.0.5", "VIRTUAL_HOST=shop.example.com", "ACME_HOST=shop.example.com"),
	}
	// shop.example.com has a static certificate: it wins, nothing is ordered for it.
	tab := Build(ws, tlsOpts(fakeCerts{"shop.example.com": "file", "app.example.com": "acme"}))
	var got []string
	for _, r := range tab.ACME {
		got = append(got, r.Name+"="+strings.Join(r.Names, ",")+" "+r.Email+" "+strings.Join(r.Workloads, "+"))
	}
	want := []string{
		"app.example.com=app.example.com,www.app.example.com ops@example.com a+b",
		"one.example.com=one.example.com ops@example.com c",
		"two.example.com=two.example.com ops@example.com c",
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests\n%q\nwant\n%q", got, want)
	}
	// www.app.example.com is served with the certificate ordered under app.example.com's name.
	if s := site(t, tab, "www.app.example.com"); s.TLS.Cert == nil || s.TLS.Cert.Name != "app.example.com" || s.TLS.Cert.Via != "acme" {
		t.Errorf("www: %+v", s.TLS)
	}
	// Without an ACME client, ACME_HOST is a warning and the workload is still served.
	o := tlsOpts(fakeCerts{})
	o.TLS.ACME = false
	tab = Build(ws[:1], o)
	if len(tab.Sites) != 2 || len(tab.Problems) != 1 || !tab.Problems[0].Warning || tab.ACME != nil {
		t.Errorf("no ACME client: sites %v problems %+v acme %+v", siteHosts(tab), tab.Problems, tab.ACME)
	}
}

// TestTLSOff: without TLS options, no site has TLS decisions and ACME_HOST asks for nothing.
func TestTLSOff(t *testing.T) {
	tab := Build([]discovery.Workload{wl("a", "10.0.0.2", "VIRTUAL_HOST=app.example.com", "HTTPS_METHOD=nohttp")}, proxyOpts)
	if s := site(t, tab, "app.example.com"); s.TLS != nil || !s.TLS.HTTP() || s.TLS.HTTPS() || s.TLS.RefuseHTTPS() {
		t.Errorf("TLS off: %+v", s.TLS)
	}
}
