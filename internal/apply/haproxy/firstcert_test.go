package haproxy

import (
	"reflect"
	"strings"
	"testing"
)

// The shipped template's comments for a site's crt-list line and map entries.
func crtListLineFor(pem, host string) string {
	return `    # vhost-gen crt-list "/etc/vg/crt-list" ` + pem + " [ssl-min-ver TLSv1.2] " + host + "\n"
}

func mapLineFor(m, key, value string) string {
	return `    # vhost-gen map "/etc/vg/` + m + `.map" ` + key + " " + value + "\n"
}

func TestDiffFirstCert(t *testing.T) {
	const pemA, pemB = "/etc/vg/certs/a.pem", "/etc/vg/certs/b.pem"
	// a.example served over HTTPS with a redirect; b.example served on HTTP, no certificate yet.
	base := func(t *testing.T) string {
		return tlsConf(t, certLineFor(pemA, shaA, "a.example"), crtListLineFor(pemA, "a.example"),
			mapLineFor("sites", "a.example@h", "redirect/301/"), mapLineFor("sites", "a.example@s", "serve"),
			mapLineFor("hsts", "a.example", "max-age=31536000; includeSubDomains"),
			mapLineFor("sites", "b.example@h", "serve"))
	}
	// b.example's first certificate: loaded, its crt-list line added, then its maps flipped.
	withB := func(t *testing.T) string {
		return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"),
			crtListLineFor(pemA, "a.example"), crtListLineFor(pemB, "b.example"),
			mapLineFor("sites", "a.example@h", "redirect/301/"), mapLineFor("sites", "a.example@s", "serve"),
			mapLineFor("hsts", "a.example", "max-age=31536000; includeSubDomains"),
			mapLineFor("sites", "b.example@h", "redirect/308/:8443"), mapLineFor("sites", "b.example@s", "serve"),
			mapLineFor("hsts", "b.example", "max-age=1; preload"))
	}
	tests := []struct {
		name       string
		prev, next func(t *testing.T) string
		want       []string
		ok         bool
	}{
		{"first certificate", base, withB, []string{
			"new " + pemB, "cert " + pemB,
			"crt-list /etc/vg/crt-list " + pemB + " [ssl-min-ver TLSv1.2] b.example",
			"add map /etc/vg/hsts.map b.example max-age=1\\;\\ preload",
			"add map /etc/vg/sites.map b.example@s serve",
			"set map /etc/vg/sites.map b.example@h redirect/308/:8443",
		}, true},
		{"a second site on a loaded certificate", base, func(t *testing.T) string {
			return strings.Replace(base(t), crtListLineFor(pemA, "a.example"), crtListLineFor(pemA, "a.example")+crtListLineFor(pemA, "c.example"), 1)
		}, []string{"crt-list /etc/vg/crt-list " + pemA + " [ssl-min-ver TLSv1.2] c.example"}, true},
		{"the certificate gone (a crt-list line removed)", withB, base, nil, false},
		{"a new certificate that no crt-list line uses", base, func(t *testing.T) string {
			return base(t) + certLineFor(pemB, shaB, "b.example")
		}, nil, false},
		{"a crt-list line for a file not loaded", base, func(t *testing.T) string {
			return base(t) + crtListLineFor(pemB, "b.example")
		}, []string{"crt-list /etc/vg/crt-list " + pemB + " [ssl-min-ver TLSv1.2] b.example"}, true},
		{"maps only: HSTS changed, a site's entry gone", base, func(t *testing.T) string {
			return strings.Replace(strings.Replace(base(t), "max-age=31536000; includeSubDomains", "max-age=5", 1),
				mapLineFor("sites", "b.example@h", "serve"), "", 1)
		}, []string{"set map /etc/vg/hsts.map a.example max-age=5", "del map /etc/vg/sites.map b.example@h"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := parse([]byte(tt.prev(t)))
			if err != nil {
				t.Fatal(err)
			}
			next, err := parse([]byte(tt.next(t)))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := diff(prev, next)
			var got []string
			for _, c := range p.newCerts {
				got = append(got, "new "+c)
			}
			for _, c := range append(append([]string(nil), p.newCerts...), p.certs...) {
				got = append(got, "cert "+c)
			}
			for _, l := range p.crtLists {
				got = append(got, "crt-list "+l.list+" "+l.line)
			}
			got = append(got, lines(p)...)
			for _, c := range p.maps {
				got = append(got, c.line)
			}
			if ok != tt.ok || ok && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diff =\n%q, %v; want\n%q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseMapAndCrtListComments(t *testing.T) {
	for _, tt := range []struct {
		line string
		m    mapLine
		c    crtListLine
	}{
		{`    # vhost-gen map "/a/sites.map" x.example@h redirect/301/`, mapLine{"/a/sites.map", "x.example@h", "redirect/301/"}, crtListLine{}},
		{`    # vhost-gen map "/a/hsts.map" *.example max-age=1; preload`, mapLine{"/a/hsts.map", "*.example", "max-age=1; preload"}, crtListLine{}},
		{`    # vhost-gen map "/a/sites.map" x;show@h serve`, mapLine{}, crtListLine{}},
		{`    # vhost-gen map "/a b/sites.map" x@h serve`, mapLine{}, crtListLine{}},
		{`    # vhost-gen map "/a/sites.map"`, mapLine{}, crtListLine{}},
		{`    # vhost-gen map "a/sites.map" x@h serve`, mapLine{}, crtListLine{}},
		{`    # vhost-gen crt-list "/a/crt-list" /c/x.pem [ssl-min-ver TLSv1.2] x.example`, mapLine{}, crtListLine{"/a/crt-list", "/c/x.pem [ssl-min-ver TLSv1.2] x.example"}},
		{`    # vhost-gen crt-list "/a/crt-list" `, mapLine{}, crtListLine{}},
		{`    # vhost-gen crt-list "/a/crt;list" /c/x.pem`, mapLine{}, crtListLine{}},
	} {
		m, mok := parseMapComment(tt.line)
		c, cok := parseCrtListComment(tt.line)
		if mok != (tt.m != mapLine{}) || m != tt.m || cok != (tt.c != crtListLine{}) || c != tt.c {
			t.Errorf("%q: map %+v %v, crt-list %+v %v; want %+v, %+v", tt.line, m, mok, c, cok, tt.m, tt.c)
		}
	}
	// A comment that is not read stays in the skeleton: a change to it reloads.
	prev, _ := parse([]byte(tlsConf(t, `    # vhost-gen map "/a b/sites.map" x@h serve`+"\n")))
	next, _ := parse([]byte(tlsConf(t, `    # vhost-gen map "/a b/sites.map" x@h redirect/301/`+"\n")))
	if _, ok := diff(prev, next); ok {
		t.Error("a map comment the runtime API cannot take changed: want a reload")
	}
}
