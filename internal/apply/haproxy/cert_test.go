package haproxy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	shaA = "d075ac815d8ea2bbef64a2695f99d2a7143c8392b62c908866e3fa5aeaa27165"
	shaB = "378f017a196321fcc78536c04ffd2a0e328c00b65f9f8de528ca388adde2cf94"
	shaC = "0000000000000000000000000000000000000000000000000000000000000abc"
)

// certLineFor is the shipped template's certificate comment for a site.
func certLineFor(path, sha, host string) string {
	return `    # vhost-gen cert "` + path + `" sha256 ` + sha + " site " + host + " policy Mozilla-Intermediate\n"
}

// tlsConf is testBase with an HTTPS bind and the given certificate comments after it.
func tlsConf(t *testing.T, certLines ...string) string {
	t.Helper()
	return edit(t, "    bind :80\n", "    bind :80\n    bind :443 ssl crt-list '/etc/vg/crt-list' strict-sni\n"+
		"    # Each certificate's file and SHA-256:\n"+strings.Join(certLines, ""))
}

func TestParseCertComment(t *testing.T) {
	long := "/etc/vg/certs/example.com.pem"
	tests := []struct {
		line   string
		want   certLine // zero: not a certificate comment
		masked string
	}{
		{`    # vhost-gen cert "` + long + `" sha256 ` + shaA + ` site shop.example.com`, certLine{long, shaA},
			`    # vhost-gen cert "` + long + `" sha256  site shop.example.com`},
		{`# vhost-gen cert "` + long + `" sha256 ` + shaB, certLine{long, shaB}, `# vhost-gen cert "` + long + `" sha256 `},
		{"\t# vhost-gen cert \"/a/b_c-d+e@f=g,h:i~j%k.pem\" sha256 " + shaA + " default", certLine{"/a/b_c-d+e@f=g,h:i~j%k.pem", shaA},
			"\t# vhost-gen cert \"/a/b_c-d+e@f=g,h:i~j%k.pem\" sha256  default"},
		// Escapes are read as Go's: the path is what was quoted, and then refused.
		{`# vhost-gen cert "/a/x\u00e9.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b c.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b;show info.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b\\c.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b#c.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b.crt" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "a/b.pem" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "" sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert /a/b.pem sha256 ` + shaA, certLine{}, ""},
		{"# vhost-gen cert `/a/b.pem` sha256 " + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem sha256 ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha256 ` + strings.ToUpper(shaA), certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha256 ` + shaA[:63], certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha256 ` + shaA + "0", certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha256 ` + shaA + "\r", certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha256  ` + shaA, certLine{}, ""},
		{`# vhost-gen cert "/a/b.pem" sha1 ` + shaA, certLine{}, ""},
		{`#   shop.example.com: example.com ` + shaA, certLine{}, ""},
		{`    bind :443 # vhost-gen cert "/a/b.pem" sha256 ` + shaA, certLine{}, ""},
	}
	for _, tt := range tests {
		c, masked, ok := parseCertComment(tt.line)
		if ok != (tt.want != certLine{}) || c != tt.want || masked != tt.masked {
			t.Errorf("parseCertComment(%q) = %+v, %q, %v; want %+v, %q", tt.line, c, masked, ok, tt.want, tt.masked)
		}
	}
}

// The shipped template's comments are read: every one in the rendered goldens is a certificate
// comment, and its file is one the runtime API can be given.
func TestShippedTemplateCertComments(t *testing.T) {
	files, err := filepath.Glob("../../render/testdata/golden/haproxy/*.cfg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no HAProxy goldens: %v", err)
	}
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.Contains(line, "vhost-gen cert ") {
				continue
			}
			seen++
			if _, _, ok := parseCertComment(line); !ok {
				t.Errorf("%s: %q is not read as a certificate comment", filepath.Base(f), line)
			}
		}
		p, err := parse(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.Contains(p.skeletonText(), shaA) || strings.Contains(p.skeletonText(), shaB) {
			t.Errorf("%s: a certificate's hash is left in the skeleton", filepath.Base(f))
		}
	}
	if seen == 0 {
		t.Error("no certificate comment in the HAProxy goldens")
	}
}

func TestDiffCerts(t *testing.T) {
	const pemA, pemB = "/etc/vg/certs/a.pem", "/etc/vg/certs/b.pem"
	base := func(t *testing.T) string {
		return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"),
			certLineFor(pemB, shaB, "c.example"))
	}
	tests := []struct {
		name string
		next func(t *testing.T) string
		want []string // the plan's lines: "cert PATH" per renewed certificate, then its commands
		ok   bool
	}{
		{"unchanged", base, nil, true},
		{"one renewed", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaC, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example"))
		}, []string{"cert " + pemA}, true},
		{"one renewed, served for two sites", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaC, "b.example"),
				certLineFor(pemB, shaC, "c.example"))
		}, []string{"cert " + pemB}, true},
		{"both renewed, and a server changed", func(t *testing.T) string {
			return strings.Replace(tlsConf(t, certLineFor(pemA, shaB, "a.example"), certLineFor(pemB, shaA, "b.example"),
				certLineFor(pemB, shaA, "c.example")), "10.0.0.1:80 weight 1", "10.0.0.1:80 weight 3", 1)
		}, []string{"cert " + pemA, "cert " + pemB, "set server web/web1 weight 3"}, true},
		{"two hashes for one renewed file", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaC, "b.example"),
				certLineFor(pemB, shaA, "c.example"))
		}, nil, false},
		{"a new site's certificate", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example"), certLineFor(pemB, shaB, "d.example"))
		}, nil, false},
		{"a site's certificate gone", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"))
		}, nil, false},
		{"a site's certificate in another file", func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemA, shaA, "c.example"))
		}, nil, false},
		{"renewed under another file name", func(t *testing.T) string {
			return tlsConf(t, certLineFor("/etc/vg/certs/a2.pem", shaC, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example"))
		}, nil, false},
		{"renewed and a setting changed", func(t *testing.T) string {
			return strings.Replace(tlsConf(t, certLineFor(pemA, shaC, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example")), "strict-sni", "strict-sni no-tls-tickets", 1)
		}, nil, false},
		{"renewed and a site's SSL policy changed (the crt-list with it)", func(t *testing.T) string {
			return strings.Replace(tlsConf(t, certLineFor(pemA, shaC, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example")), "a.example policy Mozilla-Intermediate", "a.example policy Mozilla-Modern", 1)
		}, nil, false},
		{"a renewed file the runtime API cannot take", func(t *testing.T) string {
			return tlsConf(t, certLineFor("/etc/vg/certs/a.crt", shaC, "a.example"), certLineFor(pemB, shaB, "b.example"),
				certLineFor(pemB, shaB, "c.example"))
		}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := parse([]byte(base(t)))
			if err != nil {
				t.Fatal(err)
			}
			next, err := parse([]byte(tt.next(t)))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := diff(prev, next)
			var got []string
			for _, c := range p.certs {
				got = append(got, "cert "+c)
			}
			got = append(got, lines(p)...)
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diff = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	// An unreadable comment stays in the skeleton whole: a change to it reloads.
	odd := "/etc/vg/certs/a b.pem"
	prev, _ := parse([]byte(tlsConf(t, certLineFor(odd, shaA, "a.example"))))
	next, _ := parse([]byte(tlsConf(t, certLineFor(odd, shaC, "a.example"))))
	if p, ok := diff(prev, next); ok {
		t.Errorf("diff of a renewed certificate whose file the runtime API cannot take = %+v, ok; want a reload", p)
	}
}

// certFile writes a certificate's PEM file as vhost-gen's writer might not: with blank lines and
// CRLF line ends, which the payload must not have (an empty line ends it).
func certFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	fakePEM = "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\n\n  \n" +
		"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n" +
		"\n-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----"
	fakePayload = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" +
		"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n" +
		"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"
)

// certSuccess is HAProxy 2.6's reply to a certificate command that worked (as seen on 2.6.12).
func certSuccess(cmd string) string {
	path := strings.Fields(strings.SplitN(cmd, "\n", 2)[0])[3]
	switch {
	case strings.HasPrefix(cmd, "set ssl cert "):
		return "Transaction created for certificate " + path + "!\n\n"
	case strings.HasPrefix(cmd, "commit ssl cert "):
		return "Committing " + path + ".\nSuccess!\n\n"
	case strings.HasPrefix(cmd, "abort ssl cert "):
		return "Transaction aborted for certificate '" + path + "'!\n\n"
	}
	return success(cmd)
}

func allSuccess(cmd string) string {
	if strings.Contains(cmd, " ssl cert ") {
		return certSuccess(cmd)
	}
	return success(cmd)
}

func TestHotRenewsCerts(t *testing.T) {
	dir := shortDir(t)
	pemA := certFile(t, dir, "a.example.pem", fakePEM)
	pemB := certFile(t, dir, "b.example.pem", "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n")
	v0 := tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"))
	v1 := tlsConf(t, certLineFor(pemA, shaC, "a.example"), certLineFor(pemB, shaB, "b.example"))
	// Both renewed, and servers changed, in one apply.
	v2 := strings.Replace(strings.Replace(tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaC, "b.example")),
		web2, "    server web3 10.0.0.3:80 weight 2 check inter 2s\n", 1), "web1 10.0.0.1:80 weight 1", "web1 10.0.0.1:80 weight 0", 1)

	f := startFake(t)
	f.setReply(allSuccess)
	r := &Runtime{Socket: f.path}
	mustHot(t, r, v0, v1, true)
	wantCmds(t, f, "set ssl cert "+pemA+" <<\n"+fakePayload, "commit ssl cert "+pemA)

	mustHot(t, r, v1, v2, true)
	wantCmds(t, f,
		"set ssl cert "+pemA+" <<\n"+fakePayload,
		"commit ssl cert "+pemA,
		"set ssl cert "+pemB+" <<\n-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n",
		"commit ssl cert "+pemB,
		"add server web/web3 10.0.0.3:80 weight 2 check inter 2s",
		"enable health web/web3",
		"enable server web/web3",
		"set server web/web1 weight 0",
		"set server web/web2 state maint",
		"del server web/web2",
	)

	// A transaction left open for the file by an update that failed is updated.
	f.setReply(func(cmd string) string {
		if strings.HasPrefix(cmd, "set ssl cert ") {
			return "Transaction updated for certificate " + pemA + "!\n\n"
		}
		return allSuccess(cmd)
	})
	v3 := strings.Replace(v2, shaA, shaB, 1)
	mustHot(t, r, v2, v3, true)
	wantCmds(t, f, "set ssl cert "+pemA+" <<\n"+fakePayload, "commit ssl cert "+pemA)
}

func TestHotCertFailures(t *testing.T) {
	dir := shortDir(t)
	pemA := certFile(t, dir, "a.example.pem", fakePEM)
	empty := certFile(t, dir, "empty.pem", "\n\n")
	missing := filepath.Join(dir, "missing.pem")
	set := "set ssl cert " + pemA + " <<\n" + fakePayload
	commit := "commit ssl cert " + pemA
	abort := "abort ssl cert " + pemA
	tests := []struct {
		name  string
		path  string
		reply func(cmd string) string // for the certificate commands
		want  []string
	}{
		{"set refused", pemA, func(cmd string) string {
			if strings.HasPrefix(cmd, "set ssl cert ") {
				return "unable to load certificate from file '" + pemA + "'.\nCan't load the payload\nCan't update " + pemA + "!\n\n"
			}
			if strings.HasPrefix(cmd, "abort ssl cert ") {
				return "No ongoing transaction!\n\n"
			}
			return certSuccess(cmd)
		}, []string{set, abort}},
		{"set with no reply (payload longer than HAProxy's buffer)", pemA, func(cmd string) string {
			if strings.HasPrefix(cmd, "set ssl cert ") {
				return ""
			}
			return certSuccess(cmd)
		}, []string{set, abort}},
		{"commit refused", pemA, func(cmd string) string {
			if strings.HasPrefix(cmd, "commit ssl cert ") {
				return "inconsistencies between private key and certificate loaded '" + pemA + "'.\nCan't commit " + pemA + "!\n\n"
			}
			return certSuccess(cmd)
		}, []string{set, commit, abort}},
		{"commit not said to succeed", pemA, func(cmd string) string {
			if strings.HasPrefix(cmd, "commit ssl cert ") {
				return "Committing " + pemA + ".\n\n"
			}
			return certSuccess(cmd)
		}, []string{set, commit, abort}},
		{"file missing", missing, certSuccess, nil},
		{"file empty", empty, certSuccess, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t)
			f.setReply(func(cmd string) string {
				if strings.Contains(cmd, " ssl cert ") {
					return tt.reply(cmd)
				}
				return success(cmd)
			})
			r := &Runtime{Socket: f.path}
			// A server change too: it is not applied either.
			prev := tlsConf(t, certLineFor(tt.path, shaA, "a.example"))
			next := strings.Replace(tlsConf(t, certLineFor(tt.path, shaB, "a.example")), "10.0.0.1:80 weight 1", "10.0.0.1:80 weight 2", 1)
			ok, err := r.Hot(context.Background(), []byte(prev), []byte(next))
			if ok || err == nil {
				t.Fatalf("Hot = %v, %v; want an error (then the Applier reloads)", ok, err)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q carries the certificate's payload", err)
			}
			wantCmds(t, f, tt.want...)
		})
	}
}

// Errors of Do name the command's first line only, never a payload.
func TestDoErrorHidesPayload(t *testing.T) {
	r := &Runtime{Socket: filepath.Join(shortDir(t), "absent.sock")}
	_, err := r.Do(context.Background(), "set ssl cert /a.pem <<\n-----BEGIN PRIVATE KEY-----\nsecret\n")
	if err == nil || !strings.Contains(err.Error(), "set ssl cert /a.pem <<") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Do error %v: want the command's first line and no payload", err)
	}
}

// A certificate that is new to the config (a new site, or a site that had none), or a site's
// certificate in another file, is for a reload: Hot says so without touching the socket.
func TestHotNewCertReloads(t *testing.T) {
	const pemA, pemB = "/etc/vg/certs/a.pem", "/etc/vg/certs/b.pem"
	plain := testBase
	one := func(t *testing.T) string { return tlsConf(t, certLineFor(pemA, shaA, "a.example")) }
	for _, tt := range []struct {
		name       string
		prev, next func(t *testing.T) string
	}{
		{"HTTPS for the first time", func(*testing.T) string { return plain }, one},
		{"a new site with a certificate", one, func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaA, "a.example"), certLineFor(pemB, shaB, "b.example"))
		}},
		{"a new site sharing a renewed certificate", one, func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemA, shaC, "a.example"), certLineFor(pemA, shaC, "b.example"))
		}},
		{"a site's certificate in another file", one, func(t *testing.T) string {
			return tlsConf(t, certLineFor(pemB, shaB, "a.example"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t)
			r := &Runtime{Socket: f.path}
			mustHot(t, r, tt.prev(t), tt.next(t), false)
			wantCmds(t, f)
		})
	}
}
