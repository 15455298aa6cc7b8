package render

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// SSLPolicy is one of nginx-proxy's SSL_POLICY values in each proxy's terms.
type SSLPolicy struct {
	Name string
	// Protocols is nginx's ssl_protocols.
	Protocols string
	// MinVer is HAProxy's ssl-min-ver.
	MinVer string
	// Ciphers are the TLS 1.2-and-older ciphers (OpenSSL's names); empty for TLS 1.3 only.
	Ciphers string
	// Ciphersuites are the TLS 1.3 suites (HAProxy's ciphersuites).
	Ciphersuites string
	// PreferServerCiphers is nginx's ssl_prefer_server_ciphers.
	PreferServerCiphers bool
}

const (
	tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
	// Mozilla's intermediate ciphers: ECDHE and DHE with AEAD only.
	intermediateCiphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
		"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" +
		"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
	// Mozilla's old ciphers. OpenSSL 3 refuses TLS 1.0 and 1.1 above security level 0.
	oldCiphers = intermediateCiphers + ":ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:" +
		"ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:" +
		"ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:" +
		"AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA:@SECLEVEL=0"
)

// sslPolicies are the policies routing accepts (routing.ParseSSLPolicy), oldest protocols last.
var sslPolicies = []SSLPolicy{
	{Name: "Mozilla-Modern", Protocols: "TLSv1.3", MinVer: "TLSv1.3", Ciphersuites: tls13Suites},
	{Name: "Mozilla-Intermediate", Protocols: "TLSv1.2 TLSv1.3", MinVer: "TLSv1.2", Ciphers: intermediateCiphers, Ciphersuites: tls13Suites},
	{Name: "Mozilla-Old", Protocols: "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", MinVer: "TLSv1.0", Ciphers: oldCiphers, Ciphersuites: tls13Suites, PreferServerCiphers: true},
}

// sslPolicy returns a policy by name; an unknown name is an error (it fails the render rather
// than serve a site with settings nobody chose).
func sslPolicy(name string) (SSLPolicy, error) {
	for _, p := range sslPolicies {
		if p.Name == name {
			return p, nil
		}
	}
	return SSLPolicy{}, fmt.Errorf("unknown SSL policy %q", name)
}

// nginxSSLProtocols is the ssl_protocols of nginx's HTTPS default server: every protocol of the
// policies the sites use (Mozilla-Intermediate's when none). nginx 1.22 negotiates the protocol
// version with the default server's list, before it picks a server by SNI; each site's own
// ciphers still apply.
func nginxSSLProtocols(sites []routing.Site) (string, error) {
	oldest := 0 // Mozilla-Modern
	used := false
	for _, s := range sites {
		if !s.TLS.HTTPS() {
			continue
		}
		i := slices.IndexFunc(sslPolicies, func(p SSLPolicy) bool { return p.Name == s.TLS.Policy })
		if i < 0 {
			return "", fmt.Errorf("site %s: unknown SSL policy %q", s.Host, s.TLS.Policy)
		}
		oldest, used = max(oldest, i), true
	}
	if !used {
		oldest = 1 // Mozilla-Intermediate
	}
	return sslPolicies[oldest].Protocols, nil
}

// nginxQuote writes a value (a file name, a header value) as an nginx string in double quotes.
// A '$' would be read as a variable, and control characters have no place in a config: both are
// errors, which fail the render.
func nginxQuote(s string) (string, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '$' }) {
		return "", fmt.Errorf("%q cannot be written in an nginx config ('$' or a control character)", s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// haproxyQuote writes a value (a file name, a header value) as an HAProxy word in single quotes,
// in which nothing is special but the closing quote: a quote or a control character is an error,
// which fails the render.
func haproxyQuote(s string) (string, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\'' }) {
		return "", fmt.Errorf("%q cannot be written in an HAProxy config (a quote or a control character)", s)
	}
	return "'" + s + "'", nil
}

// wildcardHost reports whether a host name is a pattern ("*.x", "x.*"): a redirect then names
// the request's host, which must be checked first, rather than the site's.
func wildcardHost(host string) bool { return hostKind(host) != exactHost }

// crtListPathOK reports whether a certificate's file name can be written in a crt-list line,
// which HAProxy splits at white space and whose '[' opens the options: no quoting exists.
func crtListPathOK(p string) bool {
	return p != "" && p[0] != '#' && !strings.ContainsFunc(p, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '[' || r == ']'
	})
}

// CrtList is HAProxy's crt-list for these sites: one line per site served over HTTPS, sorted by
// host,
//
//	<PEM file> [ssl-min-ver <version> ciphers <ciphers> ciphersuites <suites>] <host>
//
// with the site's SSL policy, and its host as the SNI filter ("*.example.com" is HAProxy's
// wildcard too). HAProxy has no "x.*" filter, so such a site's line has none: the certificate's
// own names select it. A site whose certificate has no PEM file, or one whose name a crt-list
// cannot hold, is left out with a comment saying so: its name is then refused at the handshake,
// as for a site with no certificate. Every line but the comments is bound by the template's
// "bind ... crt-list"; the same sites give the same bytes.
func CrtList(sites []routing.Site) []byte {
	var buf bytes.Buffer
	buf.WriteString("# Written by vhost-gen with the config that binds it: each site served over HTTPS, its\n" +
		"# certificate and SSL policy.\n")
	for _, l := range crtListLines(sites) {
		buf.WriteString(l + "\n")
	}
	return buf.Bytes()
}

// crtListEntries are the crt-list's lines that HAProxy loads (CrtList without its comments): the
// template writes them in the config too, so that a site's first certificate is a diff that the
// runtime API can apply (add ssl crt-list).
func crtListEntries(sites []routing.Site) []string {
	return slices.DeleteFunc(crtListLines(sites), func(l string) bool { return strings.HasPrefix(l, "#") })
}

// crtListLines are CrtList's lines after its header.
func crtListLines(sites []routing.Site) []string {
	var lines []string
	sorted := slices.Clone(sites)
	slices.SortFunc(sorted, func(a, b routing.Site) int { return strings.Compare(a.Host, b.Host) })
	for _, s := range sorted {
		if !s.TLS.HTTPS() {
			continue
		}
		pem := s.TLS.Cert.PEMFile
		if !crtListPathOK(pem) {
			lines = append(lines, fmt.Sprintf("# %s: left out, its certificate %s has no PEM file that a crt-list can name", comment(s.Host), comment(s.TLS.Cert.Name)))
			continue
		}
		p, err := sslPolicy(s.TLS.Policy)
		if err != nil {
			lines = append(lines, fmt.Sprintf("# %s: left out, %s", comment(s.Host), comment(err.Error())))
			continue
		}
		opts := "ssl-min-ver " + p.MinVer
		if p.Ciphers != "" {
			opts += " ciphers " + p.Ciphers
		}
		opts += " ciphersuites " + p.Ciphersuites
		if c := s.TLS.ClientCA; c != nil {
			if !crtListPathOK(c.CAFile) || c.CRLFile != "" && !crtListPathOK(c.CRLFile) {
				// Never served without the client check it asks for.
				lines = append(lines, fmt.Sprintf("# %s: left out, its client CA %s has a path that a crt-list cannot name", comment(s.Host), comment(c.CAFile)))
				continue
			}
			opts += " ca-file " + c.CAFile + " verify required"
			if c.CRLFile != "" {
				opts += " crl-file " + c.CRLFile
			}
		}
		filter := " " + s.Host
		if k := hostKind(s.Host); k == trailingStar || k == regexHost {
			filter = ""
		}
		lines = append(lines, fmt.Sprintf("%s [%s]%s", pem, opts, filter))
	}
	return lines
}
