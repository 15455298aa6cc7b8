package render

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// testdata/certs holds a test CA, certificates it signed and their keys: test-only, written once
// by go test ./internal/render -run TestTestCerts -write-test-certs, so that the real nginx and
// HAProxy can load the certificates the goldens name.
var writeTestCerts = flag.Bool("write-test-certs", false, "rewrite the test certificates in testdata/certs")

// goldenRoot is where golden configs say the test certificates (goldenRoot/certs/) and HAProxy's
// crt-list are: a fixed path, so that goldens do not depend on the checkout. The check stages
// each golden with goldenRoot replaced by a directory that holds them.
const goldenRoot = "/vhost-gen-test/"

var testCertsDir = filepath.Join("testdata", "certs")

// testLeaves are the certificates in testdata/certs (besides the CA): file name and names.
var testLeaves = []struct {
	file  string
	names []string
}{
	{"site", []string{"example.com", "*.example.com", "*.wild.example.com", "www.example.org", "www.example.net"}},
	{"other", []string{"other.example.com", "*.example.com"}},
	{"default", []string{"default.invalid"}},
}

// ffdhe2048 is RFC 7919's 2048-bit group, for the dhparam file.
const ffdhe2048 = "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695" +
	"A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A" +
	"D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935" +
	"984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A" +
	"BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4" +
	"AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61" +
	"9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005" +
	"C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFFFFFFFFFF"

// generateTestCerts writes testdata/certs: ca.crt, <leaf>.crt/.key/.pem (HAProxy's certificate
// and key in one file), site.chain.pem (the CA) and dhparam.pem. Valid for a century.
func generateTestCerts(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(testCertsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, blocks ...*pem.Block) {
		var buf bytes.Buffer
		for _, b := range blocks {
			if err := pem.Encode(&buf, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(testCertsDir, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	from, until := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vhost-gen test CA"},
		NotBefore: from, NotAfter: until, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caBlock := &pem.Block{Type: "CERTIFICATE", Bytes: caDER}
	write("ca.crt", caBlock)
	write("site.chain.pem", caBlock)
	for i, l := range testLeaves {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(2 + i)), Subject: pkix.Name{CommonName: l.names[0]},
			DNSNames: l.names, NotBefore: from, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certBlock, keyBlock := &pem.Block{Type: "CERTIFICATE", Bytes: der}, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}
		write(l.file+".crt", certBlock)
		write(l.file+".key", keyBlock)
		write(l.file+".pem", certBlock, keyBlock)
	}
	p, _ := new(big.Int).SetString(ffdhe2048, 16)
	dh, err := asn1.Marshal(struct{ P, G *big.Int }{p, big.NewInt(2)})
	if err != nil {
		t.Fatal(err)
	}
	write("dhparam.pem", &pem.Block{Type: "DH PARAMETERS", Bytes: dh})
	readme := "Test-only certificates and private keys for internal/render's tests (a test CA and the\n" +
		"certificates it signed). Written by\n\n" +
		"    go test ./internal/render -run TestTestCerts -write-test-certs\n\n" +
		"Never use them for anything else.\n"
	if err := os.WriteFile(filepath.Join(testCertsDir, "README"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTestCerts: the committed test certificates load, and each matches its key.
func TestTestCerts(t *testing.T) {
	if *writeTestCerts {
		generateTestCerts(t)
	}
	for _, l := range testLeaves {
		c, err := tls.LoadX509KeyPair(filepath.Join(testCertsDir, l.file+".crt"), filepath.Join(testCertsDir, l.file+".key"))
		if err != nil {
			t.Fatalf("%s: %v (rewrite them with -write-test-certs)", l.file, err)
		}
		if _, err := tls.LoadX509KeyPair(filepath.Join(testCertsDir, l.file+".pem"), filepath.Join(testCertsDir, l.file+".pem")); err != nil {
			t.Errorf("%s.pem: %v", l.file, err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: testCA(t), DNSName: l.names[0]}); err != nil {
			t.Errorf("%s: %v", l.file, err)
		}
	}
}

// testCA is the pool of the test CA.
func testCA(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testCertsDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in ca.crt")
	}
	return pool
}

var leafCache sync.Map // file → *x509.Certificate

// testLeaf is the parsed certificate of a test leaf file.
func testLeaf(file string) *x509.Certificate {
	if c, ok := leafCache.Load(file); ok {
		return c.(*x509.Certificate)
	}
	b, err := os.ReadFile(filepath.Join(testCertsDir, file+".crt"))
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		panic(err)
	}
	leafCache.Store(file, c)
	return c
}

// testStore is a routing.CertLookup over the test certificates, with nginx-proxy's selection
// order, as the certificates directory does: CERT_NAME (no fall-through), the exact host, its
// parent one level up, then the default when trusted.
type testStore struct {
	dir   string // where the files are said to be: ROOT/certs/
	certs map[string]testStoreCert
	// clientCA: chained.example.com asks its clients for a certificate of the test CA.
	clientCA bool
}

type testStoreCert struct {
	file           string // a testLeaves file
	source         string // "file" or "acme"
	chain, dhparam bool
}

// newTestStore is the test certificates by name (with the default one when asked), at root.
func newTestStore(root string, ts *tlsScenario) testStore {
	s := testStore{dir: root + "certs/", certs: map[string]testStoreCert{}, clientCA: ts.clientCA}
	if ts.noCerts {
		return s
	}
	s.certs["example.com"] = testStoreCert{file: "site", source: "file"}
	s.certs["wild.example.com"] = testStoreCert{file: "site", source: "file"}
	s.certs["shared"] = testStoreCert{file: "site", source: "file"}
	s.certs["other.example.com"] = testStoreCert{file: "other", source: "file"}
	s.certs["chained.example.com"] = testStoreCert{file: "site", source: "file", chain: true, dhparam: true}
	s.certs["acme.example.com"] = testStoreCert{file: "site", source: "acme"}
	if ts.defaultCert {
		s.certs["default"] = testStoreCert{file: "default", source: "file"}
	}
	return s
}

func (s testStore) info(name string) (routing.CertInfo, bool) {
	c, ok := s.certs[name]
	if !ok {
		return routing.CertInfo{}, false
	}
	leaf := testLeaf(c.file)
	sum := sha256.Sum256(leaf.Raw)
	info := routing.CertInfo{Name: name, Source: c.source, CertFile: s.dir + c.file + ".crt", KeyFile: s.dir + c.file + ".key",
		PEMFile: s.pemFiles()[name], NotAfter: leaf.NotAfter, Serial: leaf.SerialNumber.Text(16), SHA256: hex.EncodeToString(sum[:])}
	if c.chain {
		info.ChainFile = s.dir + c.file + ".chain.pem"
	}
	if c.dhparam {
		info.DHParamFile = s.dir + "dhparam.pem"
	}
	return info, true
}

func (s testStore) Select(host, certName string, trustDefault bool) routing.CertChoice {
	if certName != "" {
		if c, ok := s.info(certName); ok {
			return routing.CertChoice{Cert: c, Via: "CERT_NAME"}
		}
		return routing.CertChoice{Problem: "CERT_NAME " + certName + ": no such certificate"}
	}
	if c, ok := s.info(host); ok {
		return routing.CertChoice{Cert: c, Via: "exact"}
	}
	if strings.Count(host, ".") >= 2 {
		if c, ok := s.info(strings.SplitN(host, ".", 2)[1]); ok {
			return routing.CertChoice{Cert: c, Via: "parent"}
		}
	}
	if c, ok := s.info("default"); ok && trustDefault {
		return routing.CertChoice{Cert: c, Via: "default"}
	}
	return routing.CertChoice{}
}

// ClientCA is routing.ClientCALookup: the test CA (site.chain.pem) for chained.example.com.
func (s testStore) ClientCA(host string) (routing.ClientCA, bool) {
	if !s.clientCA || host != "chained.example.com" {
		return routing.ClientCA{}, false
	}
	return routing.ClientCA{CAFile: s.dir + "site.chain.pem", SHA256: "0123abcd"}, true
}

// pemFiles are the HAProxy files of every certificate, by name.
func (s testStore) pemFiles() map[string]string {
	m := map[string]string{}
	for name, c := range s.certs {
		m[name] = s.dir + c.file + ".pem"
	}
	return m
}

// defaultCert is the default certificate as the gateway passes it to the template, or nil.
func (s testStore) defaultCert() *routing.SiteCert {
	c, ok := s.info("default")
	if !ok {
		return nil
	}
	return &routing.SiteCert{Name: c.Name, Via: "default", CertFile: c.CertFile, KeyFile: c.KeyFile, PEMFile: s.pemFiles()["default"],
		NotAfter: c.NotAfter, Serial: c.Serial, SHA256: c.SHA256}
}

// tlsScenario is how a scenario serves HTTPS: the gateway's settings (routing's TLSOptions and
// the render options), with nginx-proxy's defaults.
type tlsScenario struct {
	// https is the HTTPS listen address ("443" when empty); port the HTTPS port redirects name
	// (443 when 0).
	https string
	port  int
	// acme: an ACME client, and its HTTP-01 responder at acmeResponder.
	acme          bool
	acmeResponder string
	// defaultCert: the certificates directory has default.crt; trustDefault: sites without a
	// certificate of their own use it (TRUST_DEFAULT_CERT).
	defaultCert, trustDefault bool
	// noCerts: no certificate at all.
	noCerts bool
	// clientCA: chained.example.com asks for client certificates (testStore.ClientCA).
	clientCA bool
}

func (ts *tlsScenario) routingOptions(s testStore) *routing.TLSOptions {
	port := ts.port
	if port == 0 {
		port = 443
	}
	return &routing.TLSOptions{Certs: s, Method: routing.MethodRedirect, HSTS: "max-age=31536000",
		Policy: "Mozilla-Intermediate", HTTPOnMissingCert: true, NonGetRedirect: 301, TrustDefaultCert: ts.trustDefault,
		HTTPSPort: port, ACME: ts.acme}
}

func (ts *tlsScenario) renderOptions(o Options, s testStore, root string) Options {
	o.HTTPS = ts.https
	if o.HTTPS == "" {
		o.HTTPS = "443"
	}
	if ts.acme {
		o.ACMEResponder = ts.acmeResponder
		if o.ACMEResponder == "" {
			o.ACMEResponder = "127.0.0.1:8402"
		}
	}
	o.CrtList = root + "haproxy.crt-list"
	o.DefaultCert = s.defaultCert()
	return o
}

func tlsSite(h string, t *routing.SiteTLS) routing.Site {
	return routing.Site{Host: h, Routes: []routing.Route{{Path: "/", Backend: routing.Backend{Name: h}}}, TLS: t}
}

func TestCrtList(t *testing.T) {
	cert := func(pem string) *routing.SiteCert { return &routing.SiteCert{Name: "c", PEMFile: pem} }
	sites := []routing.Site{
		tlsSite("z.example.com", &routing.SiteTLS{Method: "redirect", Cert: cert("/c/z.pem"), Policy: "Mozilla-Modern"}),
		tlsSite("a.example.com", &routing.SiteTLS{Method: "noredirect", Cert: cert("/c/a.pem"), Policy: "Mozilla-Intermediate"}),
		tlsSite("*.example.com", &routing.SiteTLS{Method: "nohttp", Cert: cert("/c/w.pem"), Policy: "Mozilla-Old"}),
		tlsSite("www.example.*", &routing.SiteTLS{Method: "redirect", Cert: cert("/c/t.pem"), Policy: "Mozilla-Intermediate"}),
		tlsSite("nohttps.example.com", &routing.SiteTLS{Method: "nohttps", Cert: cert("/c/n.pem"), Policy: "Mozilla-Intermediate"}),
		tlsSite("nocert.example.com", &routing.SiteTLS{Method: "noredirect", Policy: "Mozilla-Intermediate"}),
		tlsSite("http.example.com", nil),
		tlsSite("space.example.com", &routing.SiteTLS{Method: "redirect", Cert: cert("/c/a b.pem"), Policy: "Mozilla-Intermediate"}),
		tlsSite("bracket.example.com", &routing.SiteTLS{Method: "redirect", Cert: cert("/c/a[b].pem"), Policy: "Mozilla-Intermediate"}),
		tlsSite("nopem.example.com", &routing.SiteTLS{Method: "redirect", Cert: cert(""), Policy: "Mozilla-Intermediate"}),
		tlsSite("hash.example.com", &routing.SiteTLS{Method: "redirect", Cert: cert("#x.pem"), Policy: "Mozilla-Intermediate"}),
	}
	got := string(CrtList(sites))
	want := "# Written by vhost-gen with the config that binds it: each site served over HTTPS, its\n" +
		"# certificate and SSL policy.\n" +
		"/c/w.pem [ssl-min-ver TLSv1.0 ciphers " + oldCiphers + " ciphersuites " + tls13Suites + "] *.example.com\n" +
		"/c/a.pem [ssl-min-ver TLSv1.2 ciphers " + intermediateCiphers + " ciphersuites " + tls13Suites + "] a.example.com\n" +
		"# bracket.example.com: left out, its certificate c has no PEM file that a crt-list can name\n" +
		"# hash.example.com: left out, its certificate c has no PEM file that a crt-list can name\n" +
		"# nopem.example.com: left out, its certificate c has no PEM file that a crt-list can name\n" +
		"# space.example.com: left out, its certificate c has no PEM file that a crt-list can name\n" +
		"/c/t.pem [ssl-min-ver TLSv1.2 ciphers " + intermediateCiphers + " ciphersuites " + tls13Suites + "]\n" +
		"/c/z.pem [ssl-min-ver TLSv1.3 ciphersuites " + tls13Suites + "] z.example.com\n"
	if got != want {
		t.Errorf("CrtList:\n%s\nwant:\n%s", got, want)
	}
	if empty := string(CrtList(nil)); strings.Count(empty, "\n") != 2 || !strings.HasPrefix(empty, "# ") {
		t.Errorf("CrtList(nil) = %q, want the comment alone", empty)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`/etc/certs/a.crt`: `"/etc/certs/a.crt"`, `a "b" \c;{}`: `"a \"b\" \\c;{}"`} {
		if got, err := nginxQuote(in); err != nil || got != want {
			t.Errorf("nginxQuote(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"$host", "a\nb", "a\x00"} {
		if got, err := nginxQuote(bad); err == nil {
			t.Errorf("nginxQuote(%q) = %q, want an error", bad, got)
		}
	}
	if got, err := haproxyQuote(`/a b/"$x"#`); err != nil || got != `'/a b/"$x"#'` {
		t.Errorf("haproxyQuote = %q, %v", got, err)
	}
	for _, bad := range []string{"a'b", "a\nb"} {
		if got, err := haproxyQuote(bad); err == nil {
			t.Errorf("haproxyQuote(%q) = %q, want an error", bad, got)
		}
	}
}

func TestSSLPolicies(t *testing.T) {
	for _, name := range []string{"Mozilla-Modern", "Mozilla-Intermediate", "Mozilla-Old"} {
		if _, err := routing.ParseSSLPolicy(name); err != nil {
			t.Errorf("routing refuses %s: %v", name, err)
		}
		if p, err := sslPolicy(name); err != nil || p.Name != name {
			t.Errorf("sslPolicy(%s) = %v, %v", name, p, err)
		}
	}
	if _, err := sslPolicy("AWS-TLS-1-2-2017-01"); err == nil {
		t.Error("an unknown policy must fail the render")
	}
	site := func(policy string, cert bool) routing.Site {
		s := tlsSite("x", &routing.SiteTLS{Method: "redirect", Policy: policy})
		if cert {
			s.TLS.Cert = &routing.SiteCert{}
		}
		return s
	}
	for _, c := range []struct {
		sites []routing.Site
		want  string
	}{
		{nil, "TLSv1.2 TLSv1.3"},
		{[]routing.Site{site("Mozilla-Old", false)}, "TLSv1.2 TLSv1.3"}, // not served over HTTPS
		{[]routing.Site{site("Mozilla-Modern", true)}, "TLSv1.3"},
		{[]routing.Site{site("Mozilla-Modern", true), site("Mozilla-Intermediate", true)}, "TLSv1.2 TLSv1.3"},
		{[]routing.Site{site("Mozilla-Old", true), site("Mozilla-Modern", true)}, "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3"},
	} {
		if got, err := nginxSSLProtocols(c.sites); err != nil || got != c.want {
			t.Errorf("nginxSSLProtocols = %q, %v; want %q", got, err, c.want)
		}
	}
}

// TestTLSBadNeighbourNeverReachesConfig: hostile HTTPS settings are problems, and nothing of
// them reaches either config or the crt-list; the valid neighbour is served over HTTPS.
func TestTLSBadNeighbourNeverReachesConfig(t *testing.T) {
	ws := []discovery.Workload{
		ctr("good", "10.0.1.2", host("good.example.com")),
		ctr("evil-hsts", "10.0.1.3", with(host("hsts.example.com"), "HSTS", "max-age=1\"; include /etc/passwd; #")),
		ctr("evil-cert", "10.0.1.4", with(host("cert.example.com"), "CERT_NAME", "../../etc/passwd")),
		ctr("evil-policy", "10.0.1.5", with(host("policy.example.com"), "SSL_POLICY", "Mozilla-Old; include /etc/passwd")),
		ctr("evil-code", "10.0.1.6", with(host("code.example.com"), "NON_GET_REDIRECT", "302 https://evil.test/")),
		ctr("evil-method", "10.0.1.7", with(host("method.example.com"), "HTTPS_METHOD", "redirect\nserver { }")),
		ctr("evil-acme", "10.0.1.8", with(host("acme.example.com"), "ACME_HOST", "acme.example.com/../../x")),
	}
	sc := scenario{name: "tls-bad-neighbour", workloads: ws, tls: &tlsScenario{acme: true}}
	for _, p := range proxies {
		r, err := Load(p.name, "")
		if err != nil {
			t.Fatal(err)
		}
		d := p.scenarioData(sc, ws, goldenRoot)
		if len(d.Problems) != len(ws)-1 {
			t.Errorf("%s: want %d problems, got %v", p.name, len(ws)-1, d.Problems)
		}
		out := string(renderData(t, r, d)) + string(CrtList(d.Sites))
		for _, bad := range []string{"passwd", "evil", "302", "hsts.example.com", "cert.example.com", "policy.example.com", "code.example.com", "method.example.com", "acme.example.com"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s config contains %q from a rejected container:\n%s", p.name, bad, out)
			}
		}
		if !strings.Contains(out, "good.example.com") || !strings.Contains(string(CrtList(d.Sites)), "good.example.com") {
			t.Errorf("%s: the valid neighbour is missing:\n%s", p.name, out)
		}
	}
}

// TestTLSUnsafeFileNames: a certificate's file name that cannot be written safely fails the
// render rather than reach the config.
func TestTLSUnsafeFileNames(t *testing.T) {
	site := func(c routing.SiteCert) routing.Site {
		return tlsSite("a.example.com", &routing.SiteTLS{Method: "redirect", Cert: &c, Policy: "Mozilla-Intermediate", HSTS: "max-age=1"})
	}
	for _, c := range []struct {
		proxy string
		cert  routing.SiteCert
		o     Options
	}{
		{"nginx", routing.SiteCert{CertFile: "/certs/$ssl_server_name.crt", KeyFile: "/certs/a.key"}, Options{}},
		{"nginx", routing.SiteCert{CertFile: "/certs/a.crt", KeyFile: "/certs/a\n.key"}, Options{}},
		{"nginx", routing.SiteCert{CertFile: "/certs/a.crt", KeyFile: "/certs/a.key", ChainFile: "/certs/$x"}, Options{}},
		{"nginx", routing.SiteCert{CertFile: "/certs/a.crt", KeyFile: "/certs/a.key"}, Options{DefaultCert: &routing.SiteCert{CertFile: "/$x", KeyFile: "/k"}}},
		{"haproxy", routing.SiteCert{PEMFile: "/certs/a.pem"}, Options{CrtList: "/etc/it's.list"}},
		{"haproxy", routing.SiteCert{PEMFile: "/certs/a.pem"}, Options{CrtList: "/l", DefaultCert: &routing.SiteCert{PEMFile: "/certs/it's.pem"}}},
	} {
		r, err := Load(c.proxy, "")
		if err != nil {
			t.Fatal(err)
		}
		c.o.Listen, c.o.HTTPS = "80", "443"
		if out, err := r.Render(Data{Sites: []routing.Site{site(c.cert)}, Options: c.o}); err == nil {
			t.Errorf("%s %+v %+v: rendered:\n%s", c.proxy, c.cert, c.o, out)
		}
	}
}
