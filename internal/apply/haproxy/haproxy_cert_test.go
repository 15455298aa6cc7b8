package haproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCert is a self-signed certificate for host, with this serial, and its key, as the PEM file
// vhost-gen writes for HAProxy (the chain then the key). sep goes between the two: a blank line
// tests that the payload leaves it out.
func testCert(t *testing.T, host string, serial int64, sep string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, sep...)
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
}

// servedSerial is the serial of the certificate HAProxy presents for host, on a new connection.
func servedSerial(t *testing.T, port int, host string) int64 {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake for %s: %v", host, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestHotRenewsCertAgainstHAProxy: a renewed certificate (same file, new content) is served from
// the next handshake without a reload, together with a server change; one HAProxy refuses is an
// error with its transaction aborted; and a reload afterwards loads what the runtime API set.
func TestHotRenewsCertAgainstHAProxy(t *testing.T) {
	dir := shortDir(t)
	_, addrA := backendServer(t, "a", nil)
	port, tlsPort := freePort(t), freePort(t)
	pemPath := filepath.Join(dir, "site.test.pem")
	crtList := filepath.Join(dir, "crt-list")
	if err := os.WriteFile(crtList, []byte(pemPath+" site.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writePEM := func(data []byte) string {
		t.Helper()
		if err := os.WriteFile(pemPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:])
	}
	// The shipped template's HTTPS lines.
	conf := func(sha string, weight int) string {
		return fmt.Sprintf(`global
    stats socket %s/admin.sock mode 600 level admin expose-fd listeners

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend http
    bind 127.0.0.1:%d
    bind 127.0.0.1:%d ssl crt-list '%s' strict-sni no-tls-tickets prefer-client-ciphers
    # Each certificate's file and SHA-256, so that a renewed one changes this file (vhost-gen then
    # replaces it through the runtime API, without a reload; keep these lines' format), and each
    # site's SSL policy, so that a change to the crt-list changes it too (and reloads):
    # vhost-gen cert %+q sha256 %s site site.test policy Mozilla-Intermediate
    default_backend app

backend app
    balance roundrobin
    server a %s weight %d check inter 200ms
`, dir, port, tlsPort, crtList, pemPath, sha, addrA, weight)
	}

	v0 := conf(writePEM(testCert(t, "site.test", 1001, "")), 1)
	h := startHAProxy(t, port, dir, v0)
	if got := servedSerial(t, tlsPort, "site.test"); got != 1001 {
		t.Fatalf("serial served at start = %d, want 1001", got)
	}
	reloads := h.masterReloads()
	r := &Runtime{Socket: h.admin}
	ctx := context.Background()

	// Renewed (a blank line in the file, which the payload leaves out), and a server's weight
	// changed, in one apply.
	v1 := conf(writePEM(testCert(t, "site.test", 1002, "\n")), 3)
	h.write(v1) // as the Applier does: the files are in place before Hot
	if ok, err := r.Hot(ctx, []byte(v0), []byte(v1)); err != nil || !ok {
		t.Fatalf("Hot of a renewal = %v, %v; want it applied", ok, err)
	}
	if got := servedSerial(t, tlsPort, "site.test"); got != 1002 {
		t.Errorf("serial served after the renewal = %d, want 1002", got)
	}
	if a := h.servers("app")["a"]; a.weight != 3 {
		t.Errorf("app/a after the renewal's apply: %+v, want weight 3", a)
	}
	if got := h.masterReloads(); got != reloads {
		t.Errorf("HAProxy's master reloaded %d times, want none", got-reloads)
	}
	if out, err := unixCmd(h.admin, "show ssl cert "+pemPath); err != nil || !strings.Contains(out, "Serial: 03EA") {
		t.Errorf("show ssl cert: %q, %v; want serial 03EA (1002)", out, err)
	}

	// A file HAProxy refuses (this certificate with another one's key): an error, so that the
	// Applier reloads; the renewed certificate is still served, and no transaction is left open.
	bad := testCert(t, "site.test", 1003, "")
	other := testCert(t, "site.test", 1004, "")
	cut := strings.Index(string(bad), "-----BEGIN PRIVATE KEY-----")
	v2 := conf(writePEM(append(bad[:cut:cut], other[strings.Index(string(other), "-----BEGIN PRIVATE KEY-----"):]...)), 3)
	h.write(v2)
	ok, err := r.Hot(ctx, []byte(v1), []byte(v2))
	if ok || err == nil || !strings.Contains(err.Error(), "commit ssl cert") {
		t.Fatalf("Hot of a certificate with another's key = %v, %v; want commit's error", ok, err)
	}
	t.Logf("HAProxy refused a mismatched key: %v", err)
	if got := servedSerial(t, tlsPort, "site.test"); got != 1002 {
		t.Errorf("serial served after a refused update = %d, want 1002 still", got)
	}
	if out, err := unixCmd(h.admin, "show ssl cert"); err != nil || strings.Contains(out, "transaction") {
		t.Errorf("show ssl cert after a refused update: %q, %v; want no transaction open", out, err)
	}

	// The reload that follows the error (the Applier's, of v2) loads the file from disk, right
	// again by then.
	writePEM(testCert(t, "site.test", 1005, ""))
	if out, err := unixCmd(h.master, "reload"); err != nil {
		t.Fatalf("master CLI reload: %v (%s)", err, out)
	}
	h.waitFor("the reload", func() error {
		if n, err := h.masterReloadsErr(); err != nil || n != reloads+1 {
			return fmt.Errorf("master reloads %d, %v", n, err)
		}
		return nil
	})
	h.waitFor("the new worker's runtime API", func() error {
		_, err := unixCmd(h.admin, "show info")
		return err
	})
	if got := servedSerial(t, tlsPort, "site.test"); got != 1005 {
		t.Errorf("serial served after a reload = %d, want 1005 (the file's)", got)
	}

	// And the next renewal goes through the new worker's runtime API.
	v4 := conf(writePEM(testCert(t, "site.test", 1006, "")), 3)
	h.write(v4)
	if ok, err := r.Hot(ctx, []byte(v2), []byte(v4)); err != nil || !ok {
		t.Fatalf("Hot of a renewal after the reload = %v, %v; want it applied", ok, err)
	}
	if got := servedSerial(t, tlsPort, "site.test"); got != 1006 {
		t.Errorf("serial served after the second renewal = %d, want 1006", got)
	}
	if got := h.masterReloads(); got != reloads+1 {
		t.Errorf("HAProxy's master reloaded %d times, want the one reload only", got-reloads)
	}
}
