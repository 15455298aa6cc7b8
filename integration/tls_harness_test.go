package integration

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The HTTPS tests' world: a proxy with vhost-gen serving HTTPS from a certificates directory on
// 127.0.0.1, certificates made here with crypto/x509, and clients that choose their SNI.

// tlsEnv is an env that serves HTTPS too.
type tlsEnv struct {
	*env
	httpsPort int
	certsDir  string
	flags     []string // vhost-gen's flags, for restarts
}

// newTLSEnv starts the proxy and vhost-gen with HTTPS on a port of its own, certificates from
// certsDir (a new empty directory when ""), the echo containers on the default bridge, and
// extra flags last.
func newTLSEnv(t *testing.T, proxy, certsDir string, extra ...string) *tlsEnv {
	t.Helper()
	return newTLSEnvWith(t, proxy, certsDir, nil, extra...)
}

// newTLSEnvWith is newTLSEnv with environment variables for vhost-gen.
func newTLSEnvWith(t *testing.T, proxy, certsDir string, vars []string, extra ...string) *tlsEnv {
	t.Helper()
	if certsDir == "" {
		certsDir = t.TempDir()
	}
	te := &tlsEnv{httpsPort: freePort(t), certsDir: certsDir}
	te.flags = []string{"--proxy-networks", "bridge",
		"--listen-https", "127.0.0.1:" + strconv.Itoa(te.httpsPort),
		"--certs-dir", certsDir}
	if proxy == "haproxy" {
		te.flags = append(te.flags, "--haproxy-certs-dir", t.TempDir())
	}
	te.flags = append(te.flags, extra...)
	te.env = newProxyEnv(t, proxy, vars, te.flags...)
	return te
}

// restart stops vhost-gen and starts it again with the same flags (and more).
func (te *tlsEnv) restart(more ...string) {
	te.t.Helper()
	te.stopVhostGen()
	te.flags = append(te.flags, more...)
	te.startVhostGen(te.flags...)
}

// --- certificates ---------------------------------------------------------------------------

type testAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var (
	authorityOnce sync.Once
	authority     *testAuthority
)

// testCA is the tests' own CA (nothing trusts it: clients compare serials).
func testCA(t testing.TB) *testAuthority {
	authorityOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vhost-gen integration CA"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		c, _ := x509.ParseCertificate(der)
		authority = &testAuthority{cert: c, key: key}
	})
	return authority
}

// makeCert returns a certificate (PEM, with the CA's certificate after it: a full chain) and its
// key (PEM) for names; its subject's CN is cn, so that a test sees which one it got.
func makeCert(t testing.TB, cn string, names ...string) (crtPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	return signLeaf(t, testCA(t), cn, nil, names...)
}

// signLeaf is makeCert by ca, with more settings on the template (nil: none).
func signLeaf(t testing.TB, ca *testAuthority, cn string, more func(*x509.Certificate), names ...string) (crtPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if more != nil {
		more(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	crtPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return crtPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), leaf
}

// writeCert writes DIR/<name>.crt and DIR/<name>.key (the key first, each file renamed into
// place) for names; the subject's CN is name.
func writeCert(t testing.TB, dir, name string, names ...string) *x509.Certificate {
	t.Helper()
	crt, key, leaf := makeCert(t, name, names...)
	writeAtomic(t, filepath.Join(dir, name+".key"), key, 0o600)
	writeAtomic(t, filepath.Join(dir, name+".crt"), crt, 0o644)
	return leaf
}

// writeAtomic writes a file under a temporary name (one the certificates directory ignores)
// and renames it into place.
func writeAtomic(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serial prints a certificate's serial as openssl, HAProxy and vhost-gen do.
func serial(c *x509.Certificate) string {
	return strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes()))
}

// --- clients --------------------------------------------------------------------------------

// handshake connects to the HTTPS port with SNI sni ("" sends none) and returns the leaf the
// proxy sent, or the handshake's error.
func (te *tlsEnv) handshake(sni string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", te.httpsAddr(), &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func (te *tlsEnv) httpsAddr() string { return "127.0.0.1:" + strconv.Itoa(te.httpsPort) }

// answer is what a test compares of one exchange. Ports are written HTTP and HTTPS, the test's
// label L, so that the two proxies' answers compare.
type answer struct {
	Status   int
	Location string
	STS      string // Strict-Transport-Security
	Served   string // the echo container that answered
	// The forwarded headers the backend received (requests for /_headers).
	XFProto, XFSsl, XFPort string
	// Refused: the TLS handshake's error.
	Refused string
	// Cert is the CN of the certificate served.
	Cert string
}

func (a answer) String() string {
	type plain answer
	return fmt.Sprintf("%+v", plain(a))
}

// do sends one request, over HTTPS with the host as SNI or over HTTP, on a connection of its
// own, and never follows a redirect.
func (te *tlsEnv) do(method, host, path string, https bool) answer {
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	url := fmt.Sprintf("http://%s:%d%s", host, te.port, path)
	if https {
		url = fmt.Sprintf("https://%s:%d%s", host, te.httpsPort, path)
	}
	addr := "127.0.0.1:" + strconv.Itoa(te.port)
	if https {
		addr = te.httpsAddr()
	}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
	}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(method, url, nil)
	if !https {
		req.Host = host // no port: as a client of port 80 sends it
	}
	resp, err := c.Do(req)
	if err != nil {
		var a answer
		a.Refused = err.Error()
		if i := strings.Index(a.Refused, "remote error: "); i >= 0 {
			a.Refused = a.Refused[i:]
		}
		return a
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := strings.NewReplacer(strconv.Itoa(te.httpsPort), "HTTPS", strconv.Itoa(te.port), "HTTP", te.label, "L")
	a := answer{Status: resp.StatusCode, Location: r.Replace(resp.Header.Get("Location")),
		STS: strings.Join(resp.Header.Values("Strict-Transport-Security"), " | "), Served: resp.Header.Get("X-Echo-Name")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		a.Cert = r.Replace(resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	if path == "/_headers" && resp.StatusCode == 200 {
		hs := echoHeaders(string(body))
		a.XFProto, a.XFSsl, a.XFPort = hs["X-Forwarded-Proto"], hs["X-Forwarded-Ssl"], r.Replace(hs["X-Forwarded-Port"])
	}
	return a
}

// echoHeaders parses the echo's /_headers answer.
func echoHeaders(body string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok {
			out[k] = v
		}
	}
	return out
}

// waitAnswer polls one request until it gives want.
func (te *tlsEnv) waitAnswer(what, method, host, path string, https bool, want answer) {
	te.t.Helper()
	var last answer
	te.waitFor(what, func() error {
		if last = te.do(method, host, path, https); last != want {
			return fmt.Errorf("got %v, want %v", last, want)
		}
		return nil
	})
}

// waitStable is waitFor until cond holds five polls in a row: a reloaded nginx's old worker
// still accepts a connection or two after the new ones started.
func (te *tlsEnv) waitStable(what string, cond func() error) {
	te.t.Helper()
	ok := 0
	te.waitFor(what, func() error {
		if err := cond(); err != nil {
			ok = 0
			return err
		}
		if ok++; ok < 5 {
			return fmt.Errorf("held %d polls", ok)
		}
		return nil
	})
}

// waitServed waits until the HTTPS port serves sni with the certificate of serial want ("":
// until the handshake for sni is refused), steadily, and returns the time it took.
func (te *tlsEnv) waitServed(sni, want string) time.Duration {
	te.t.Helper()
	start := time.Now()
	te.waitStable(fmt.Sprintf("%s over HTTPS with serial %q", sni, want), func() error {
		leaf, err := te.handshake(sni)
		switch {
		case want == "" && err == nil:
			return fmt.Errorf("served with %s (serial %s)", leaf.Subject.CommonName, serial(leaf))
		case want == "":
			return nil
		case err != nil:
			return err
		case serial(leaf) != want:
			return fmt.Errorf("serial %s (%s)", serial(leaf), leaf.Subject.CommonName)
		}
		return nil
	})
	return time.Since(start)
}

// --- /routes --------------------------------------------------------------------------------

// tlsRoutes is the HTTPS part of /routes.
type tlsRoutes struct {
	Sites []struct {
		Host string `json:"host"`
		TLS  *struct {
			Method     string `json:"method"`
			CertSource string `json:"certSource"`
			Cert       *struct {
				Name     string    `json:"name"`
				Via      string    `json:"via"`
				Serial   string    `json:"serial"`
				NotAfter time.Time `json:"notAfter"`
			} `json:"cert"`
			Problem string `json:"problem"`
		} `json:"tls"`
	} `json:"sites"`
	ACME []acmeStatus `json:"acme"`
}

type acmeStatus struct {
	Name      string    `json:"name"`
	Names     []string  `json:"names"`
	NotAfter  time.Time `json:"notAfter"`
	RenewAt   time.Time `json:"renewAt"`
	Serial    string    `json:"serial"`
	LastError string    `json:"lastError"`
	NextTry   time.Time `json:"nextTry"`
	Orders    int       `json:"orders"`
}

func (te *tlsEnv) tlsRoutes() (tlsRoutes, string) {
	te.t.Helper()
	_, body := httpGet("http://"+te.admin+"/routes?format=json", "")
	var d tlsRoutes
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		te.t.Fatalf("/routes: %v\n%s", err, body)
	}
	return d, body
}

// acmeStatus is the ACME client's status of one certificate on /routes.
func (te *tlsEnv) acmeStatus(name string) (acmeStatus, bool) {
	d, _ := te.tlsRoutes()
	for _, s := range d.ACME {
		if s.Name == name {
			return s, true
		}
	}
	return acmeStatus{}, false
}

// checkFailed is how many applies failed the proxy's check.
func (te *tlsEnv) checkFailed() float64 {
	return te.metric("vhostgen_applies_total", `result="check_failed"`)
}

// parseFirstCert parses the first certificate of a PEM file.
func parseFirstCert(b []byte) (*x509.Certificate, []byte, error) {
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, nil, fmt.Errorf("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	return c, rest, err
}
