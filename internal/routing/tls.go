package routing

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// HTTPS settings, with nginx-proxy's and acme-companion's names.
const (
	SettingCertName         = "CERT_NAME"
	SettingHTTPSMethod      = "HTTPS_METHOD"
	SettingHSTS             = "HSTS"
	SettingSSLPolicy        = "SSL_POLICY"
	SettingHTTPOnMissing    = "ENABLE_HTTP_ON_MISSING_CERT"
	SettingNonGetRedirect   = "NON_GET_REDIRECT"
	SettingNonGetLabel      = "com.github.nginx-proxy.nginx-proxy.non-get-redirect"
	SettingTrustDefaultCert = "com.github.nginx-proxy.nginx-proxy.trust-default-cert"
	SettingACMEHost         = "ACME_HOST"
	SettingLEHost           = "LETSENCRYPT_HOST"
	SettingACMEEmail        = "ACME_EMAIL"
	SettingLEEmail          = "LETSENCRYPT_EMAIL"
	SettingACMEKeySize      = "ACME_KEYSIZE"
	SettingACMEProfile      = "ACME_CERT_PROFILE"
	SettingACMESingle       = "ACME_SINGLE_DOMAIN_CERTS"
	SettingLESingle         = "LETSENCRYPT_SINGLE_DOMAIN_CERTS"
)

// The HTTPS methods (nginx-proxy's HTTPS_METHOD).
const (
	MethodRedirect   = "redirect"
	MethodNoRedirect = "noredirect"
	MethodNoHTTP     = "nohttp"
	MethodNoHTTPS    = "nohttps"
)

// SSL policies this version renders on both proxies.
var sslPolicies = []string{"Mozilla-Modern", "Mozilla-Intermediate", "Mozilla-Old"}

// TLSSettings are one workload's HTTPS settings; empty values take the gateway's defaults.
type TLSSettings struct {
	CertName       string
	Method         string
	HSTS           string // "off", a header value, or "" (the gateway's)
	Policy         string
	HTTPOnMissing  string // "true", "false" or ""
	NonGetRedirect int
	TrustDefault   string // "true", "false" or ""
	ACME           ACMESettings
}

// ACMESettings are what a workload asks of the ACME client.
type ACMESettings struct {
	Hosts   []string
	Email   string
	KeyType string
	Profile string
	Single  bool
}

// TLSOptions are the gateway's HTTPS settings; nil Options.TLS renders HTTP only.
type TLSOptions struct {
	// Certs finds the certificates (the directory's and the ACME client's).
	Certs             CertLookup
	Method            string
	HSTS              string
	Policy            string
	HTTPOnMissingCert bool
	NonGetRedirect    int
	TrustDefaultCert  bool
	// HTTPSPort is the port redirects name (443: none in the Location).
	HTTPSPort int
	// ACMEEmail is the account contact for workloads that give none; ACME false: ACME_HOST is a
	// problem (no ACME client configured).
	ACMEEmail string
	ACME      bool
}

// CertLookup is what routing needs of the certificate store: nginx-proxy's selection order
// (CERT_NAME with no fall-through, the exact host, its parent one level up, the default when
// trusted).
type CertLookup interface {
	Select(host, certName string, trustDefault bool) CertChoice
}

// ClientCALookup is what routing needs to ask clients for certificates (mutual TLS): the CA a
// host asks them of, if any. A CertLookup may implement it.
type ClientCALookup interface {
	ClientCA(host string) (ClientCA, bool)
}

// ClientCA is the certificate authority a site's clients must show a certificate of, with its
// revocation list (CRLFile, "" for none); SHA256 is both files' contents'.
type ClientCA struct {
	CAFile  string `json:"caFile"`
	CRLFile string `json:"crlFile,omitempty"`
	SHA256  string `json:"sha256"`
}

// CertChoice is the certificate a host gets, and how ("CERT_NAME", "exact", "parent",
// "default"; "" for none); Problem says why there is none or why it is doubtful.
type CertChoice struct {
	Cert    CertInfo
	Via     string
	Problem string
}

// CertInfo is one usable certificate.
type CertInfo struct {
	Name        string
	Source      string // "file" or "acme"
	CertFile    string
	KeyFile     string
	ChainFile   string
	DHParamFile string
	PEMFile     string // the certificate and its key in one file, for HAProxy
	NotAfter    time.Time
	Serial      string
	SHA256      string
}

// SiteTLS is how one site is served over HTTPS: every decision made here, so that both templates
// render the same thing and /routes shows it.
type SiteTLS struct {
	// Method after nginx-proxy's downgrade (redirect or nohttp without a certificate serve HTTP).
	Method string    `json:"method"`
	Cert   *SiteCert `json:"cert,omitempty"`
	// CertSource is "file", "acme", "default" or "none".
	CertSource     string `json:"certSource"`
	HSTS           string `json:"hsts,omitempty"`
	Policy         string `json:"policy"`
	NonGetRedirect int    `json:"nonGetRedirect"`
	// RedirectPort is the port a redirect names, 0 for the default 443.
	RedirectPort int `json:"redirectPort,omitempty"`
	// ClientCA: the site's HTTPS clients must show a certificate this CA signed (nginx-proxy's
	// <host>.ca.crt or ca.crt); nil: none is asked for.
	ClientCA *ClientCA `json:"clientCA,omitempty"`
	// ACME: the site has a certificate request, so its port 80 answers challenges whatever the
	// method.
	ACME    bool   `json:"acme,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// HTTP reports whether the site is served on the HTTP port (rather than redirected or refused).
func (t *SiteTLS) HTTP() bool {
	return t == nil || t.Method == MethodNoRedirect || t.Method == MethodNoHTTPS
}

// HTTPS reports whether the site is served on the HTTPS port.
func (t *SiteTLS) HTTPS() bool { return t != nil && t.Cert != nil && t.Method != MethodNoHTTPS }

// RefuseHTTPS reports whether the site wants HTTPS (its method is not nohttps) but has no usable
// certificate: nginx-proxy's cert_ok false, where the untrusted or absent default certificate is no
// certificate. nginx-proxy then refuses the TLS handshake for its name (ssl_reject_handshake),
// even when a default certificate exists. The downgrade never makes nohttps, so the method after
// it tells the same as the one before.
func (t *SiteTLS) RefuseHTTPS() bool { return t != nil && t.Cert == nil && t.Method != MethodNoHTTPS }

// Redirect reports whether HTTP requests are redirected to HTTPS: with a certificate, or without
// one when ENABLE_HTTP_ON_MISSING_CERT=false kept the method (nginx-proxy then redirects to an
// HTTPS port that refuses the handshake).
func (t *SiteTLS) Redirect() bool { return t != nil && t.Method == MethodRedirect }

// SiteCert is the certificate a site is served with.
type SiteCert struct {
	Name        string    `json:"name"`
	Via         string    `json:"via"` // CERT_NAME, exact, parent, default, acme
	CertFile    string    `json:"certFile"`
	KeyFile     string    `json:"keyFile"`
	ChainFile   string    `json:"chainFile,omitempty"`
	DHParamFile string    `json:"dhparamFile,omitempty"`
	PEMFile     string    `json:"pemFile,omitempty"`
	NotAfter    time.Time `json:"notAfter"`
	Serial      string    `json:"serial"`
	SHA256      string    `json:"sha256"`
}

// ACMERequest is one certificate the ACME client should hold.
type ACMERequest struct {
	Name      string   `json:"name"`
	Names     []string `json:"names"`
	Email     string   `json:"email,omitempty"`
	KeyType   string   `json:"keyType,omitempty"`
	Profile   string   `json:"profile,omitempty"`
	Workloads []string `json:"workloads"`
}

// parseTLS reads a workload's HTTPS settings; every invalid value is a problem.
func parseTLS(w *discovery.Workload, bad func(setting string, from discovery.Origin, value string, err error)) TLSSettings {
	var t TLSSettings
	type field struct {
		names []string // the first one set counts
		parse func(string) error
	}
	fields := []field{
		{[]string{SettingCertName}, func(v string) (err error) { t.CertName, err = ParseCertName(v); return }},
		{[]string{SettingHTTPSMethod}, func(v string) (err error) { t.Method, err = ParseHTTPSMethod(v); return }},
		{[]string{SettingHSTS}, func(v string) (err error) { t.HSTS, err = ParseHSTS(v); return }},
		{[]string{SettingSSLPolicy}, func(v string) (err error) { t.Policy, err = ParseSSLPolicy(v); return }},
		{[]string{SettingHTTPOnMissing}, func(v string) (err error) { t.HTTPOnMissing, err = parseBoolText(v); return }},
		{[]string{SettingNonGetLabel, SettingNonGetRedirect}, func(v string) (err error) { t.NonGetRedirect, err = ParseRedirectCode(v); return }},
		{[]string{SettingTrustDefaultCert}, func(v string) (err error) { t.TrustDefault, err = parseBoolText(v); return }},
		{[]string{SettingACMEHost, SettingLEHost}, func(v string) (err error) { t.ACME.Hosts, err = ParseACMEHosts(v); return }},
		{[]string{SettingACMEEmail, SettingLEEmail}, func(v string) (err error) { t.ACME.Email, err = ParseEmail(v); return }},
		{[]string{SettingACMEKeySize}, func(v string) (err error) { t.ACME.KeyType, err = ParseKeyType(v); return }},
		{[]string{SettingACMEProfile}, func(v string) (err error) { t.ACME.Profile, err = ParseProfile(v); return }},
		{[]string{SettingACMESingle, SettingLESingle}, func(v string) error {
			b, err := parseBoolText(v)
			t.ACME.Single = b == "true"
			return err
		}},
	}
	for _, f := range fields {
		for _, name := range f.names {
			if v, from, ok := w.Setting(name); ok {
				if err := f.parse(v); err != nil {
					bad(name, from, v, err)
				}
				break
			}
		}
	}
	return t
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// ParseCertName validates CERT_NAME: it becomes a file name in the certificates directory, so
// nothing that could leave it ("/", "..") or break a config.
func ParseCertName(v string) (string, error) {
	n := strings.TrimSpace(v)
	if !safeName.MatchString(n) || strings.Contains(n, "..") {
		return "", errors.New("must be a certificate's file name without extension: letters, digits, '.', '-', '_' (no '/' or '..')")
	}
	return n, nil
}

// ParseHTTPSMethod validates HTTPS_METHOD.
func ParseHTTPSMethod(v string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(v)); m {
	case MethodRedirect, MethodNoRedirect, MethodNoHTTP, MethodNoHTTPS:
		return m, nil
	}
	return "", errors.New("must be redirect, noredirect, nohttp or nohttps")
}

var hstsValue = regexp.MustCompile(`(?i)^max-age=[0-9]{1,10}(; ?(includesubdomains|preload))*$`)

// ParseHSTS validates HSTS: "off", or a Strict-Transport-Security value; only its known
// directives, since it is written inside a quoted string of both proxies' configs.
func ParseHSTS(v string) (string, error) {
	h := strings.TrimSpace(v)
	if strings.EqualFold(h, "off") {
		return "off", nil
	}
	if !hstsValue.MatchString(h) {
		return "", errors.New(`must be "off" or max-age=SECONDS, optionally followed by "; includeSubDomains" and "; preload"`)
	}
	return h, nil
}

// ParseSSLPolicy validates SSL_POLICY.
func ParseSSLPolicy(v string) (string, error) {
	p := strings.TrimSpace(v)
	for _, known := range sslPolicies {
		if strings.EqualFold(p, known) {
			return known, nil
		}
	}
	return "", fmt.Errorf("must be one of %s (nginx-proxy's AWS policy names are not supported)", strings.Join(sslPolicies, ", "))
}

// ParseRedirectCode validates NON_GET_REDIRECT.
func ParseRedirectCode(v string) (int, error) {
	switch strings.TrimSpace(v) {
	case "301":
		return 301, nil
	case "307":
		return 307, nil
	case "308":
		return 308, nil
	}
	return 0, errors.New("must be 301, 307 or 308")
}

// ParseACMEHosts validates ACME_HOST: host names without wildcards (HTTP-01 cannot prove them).
func ParseACMEHosts(v string) ([]string, error) {
	hosts, err := ParseHosts(v)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if strings.Contains(h, "*") || !strings.Contains(h, ".") {
			return nil, fmt.Errorf("host %q: a certificate needs a full name, without wildcards (HTTP-01)", h)
		}
	}
	return hosts, nil
}

var emailAddr = regexp.MustCompile(`^[A-Za-z0-9.!#&'*+=?^_~-]{1,64}@[A-Za-z0-9.-]{1,189}$`)

// ParseEmail validates ACME_EMAIL.
func ParseEmail(v string) (string, error) {
	e := strings.TrimSpace(v)
	if !emailAddr.MatchString(e) {
		return "", errors.New("must be an email address")
	}
	return e, nil
}

// ParseKeyType validates ACME_KEYSIZE.
func ParseKeyType(v string) (string, error) {
	switch k := strings.ToLower(strings.TrimSpace(v)); k {
	case "ec-256", "ec-384", "2048", "3072", "4096":
		return k, nil
	}
	return "", errors.New("must be ec-256, ec-384, 2048, 3072 or 4096")
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseProfile validates ACME_CERT_PROFILE.
func ParseProfile(v string) (string, error) {
	p := strings.TrimSpace(v)
	if !profileName.MatchString(p) {
		return "", errors.New("must be a profile name: letters, digits, '.', '-', '_'")
	}
	return p, nil
}

func parseBoolText(v string) (string, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return "", errors.New("must be true or false")
	}
	return strconv.FormatBool(b), nil
}

// siteTLS decides how a site is served over HTTPS, from the first workload's settings (by name,
// as nginx-proxy takes the first container's) and the gateway's defaults.
func siteTLS(host string, s TLSSettings, acmeNames map[string]string, o *TLSOptions) *SiteTLS {
	t := &SiteTLS{Method: o.Method, HSTS: o.HSTS, Policy: o.Policy, NonGetRedirect: o.NonGetRedirect}
	if s.Method != "" {
		t.Method = s.Method
	}
	if s.HSTS != "" {
		t.HSTS = s.HSTS
	}
	if s.Policy != "" {
		t.Policy = s.Policy
	}
	if s.NonGetRedirect != 0 {
		t.NonGetRedirect = s.NonGetRedirect
	}
	if o.HTTPSPort != 443 {
		t.RedirectPort = o.HTTPSPort
	}
	trust := o.TrustDefaultCert
	if s.TrustDefault != "" {
		trust = s.TrustDefault == "true"
	}
	httpOnMissing := o.HTTPOnMissingCert
	if s.HTTPOnMissing != "" {
		httpOnMissing = s.HTTPOnMissing == "true"
	}
	if l, ok := o.Certs.(ClientCALookup); ok {
		if c, ok := l.ClientCA(host); ok {
			t.ClientCA = &c
		}
	}
	_, t.ACME = acmeNames[host]
	choice := chooseCert(host, s.CertName, trust, acmeNames, o.Certs)
	if choice.Cert.Name != "" {
		c := choice.Cert
		t.Cert = &SiteCert{Name: c.Name, Via: choice.Via, CertFile: c.CertFile, KeyFile: c.KeyFile, ChainFile: c.ChainFile,
			DHParamFile: c.DHParamFile, PEMFile: c.PEMFile, NotAfter: c.NotAfter, Serial: c.Serial, SHA256: c.SHA256}
		t.CertSource = c.Source
		if choice.Via == "default" {
			t.CertSource = "default"
		}
	} else {
		t.CertSource = "none"
	}
	t.Problem = choice.Problem
	if t.Cert == nil && s.CertName == "" && s.Method == "" && !t.ACME && strings.HasSuffix(t.Problem, "and no default certificate") {
		// Nothing asked for HTTPS and there is no certificate at all: as nginx-proxy, served
		// over HTTP without a word (the table still says its certificate is "none").
		t.Problem = ""
	}
	if t.Cert == nil && httpOnMissing && (t.Method == MethodRedirect || t.Method == MethodNoHTTP) {
		t.Method = MethodNoRedirect // nginx-proxy's downgrade: no certificate, still served on HTTP
	}
	if t.HSTS == "off" || t.Cert == nil || t.Method == MethodNoRedirect || t.Method == MethodNoHTTPS {
		t.HSTS = ""
	}
	return t
}

// chooseCert is nginx-proxy's order (CERT_NAME, the exact host, its parent, the default), with
// the ACME client's certificate for a host it was ordered for before the parent and the default.
func chooseCert(host, certName string, trust bool, acmeNames map[string]string, lookup CertLookup) CertChoice {
	if lookup == nil {
		return CertChoice{}
	}
	if certName != "" {
		return lookup.Select(host, certName, false)
	}
	c := lookup.Select(host, "", trust)
	if c.Via == "exact" {
		return c
	}
	if name, ok := acmeNames[host]; ok && name != host {
		if a := lookup.Select(host, name, false); a.Cert.Name != "" {
			a.Via = "acme"
			return a
		}
	}
	return c
}

// acmeRequests gathers the certificates the workloads ask for, one per workload (named after its
// first host) or one per host (ACME_SINGLE_DOMAIN_CERTS); the first workload by name wins a name.
// It returns them sorted, with the request name of every host they cover.
func acmeRequests(claims []acmeClaim, o *TLSOptions) ([]ACMERequest, map[string]string) {
	byName := map[string]*ACMERequest{}
	hosts := map[string]string{}
	for _, c := range claims {
		groups := [][]string{c.s.Hosts}
		if c.s.Single {
			groups = groups[:0]
			for _, h := range c.s.Hosts {
				groups = append(groups, []string{h})
			}
		}
		for _, names := range groups {
			name := names[0]
			if r, ok := byName[name]; ok {
				r.Workloads = append(r.Workloads, c.workload)
				continue
			}
			email := c.s.Email
			if email == "" {
				email = o.ACMEEmail
			}
			byName[name] = &ACMERequest{Name: name, Names: names, Email: email, KeyType: c.s.KeyType, Profile: c.s.Profile, Workloads: []string{c.workload}}
			for _, h := range names {
				if _, taken := hosts[h]; !taken {
					hosts[h] = name
				}
			}
		}
	}
	out := make([]ACMERequest, 0, len(byName))
	for _, r := range byName {
		slices.Sort(r.Workloads)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b ACMERequest) int { return strings.Compare(a.Name, b.Name) })
	return out, hosts
}

type acmeClaim struct {
	workload string
	s        ACMESettings
}
