package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestOCSPStapling: a certificate with <name>.chain.pem beside it (nginx-proxy's convention) is
// served with OCSP stapling on nginx: nginx asks the certificate's OCSP responder (here one of the
// test's own, on 127.0.0.1), verifies its answer with the chain, and staples it to handshakes.
func TestOCSPStapling(t *testing.T) {
	t.Parallel()
	label := testLabel(t)
	d := label + ".test"
	ca := testCA(t)
	var asked atomic.Int32
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if err := answerOCSP(w, r, ca); err != nil {
			t.Logf("OCSP responder: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	t.Cleanup(responder.Close)

	dir := t.TempDir()
	crt, key, leaf := makeOCSPCert(t, ca, d, responder.URL+"/", "*."+d)
	writeAtomic(t, filepath.Join(dir, d+".key"), key, 0o600)
	writeAtomic(t, filepath.Join(dir, d+".chain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
	writeAtomic(t, filepath.Join(dir, d+".crt"), crt, 0o644)
	te := newTLSEnv(t, "nginx", dir, "--acme=false")
	te.run("web", "-e", "VIRTUAL_HOST=web."+d)

	te.waitFor("a stapled OCSP answer", func() error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", te.httpsAddr(),
			&tls.Config{ServerName: "web." + d, InsecureSkipVerify: true})
		if err != nil {
			return err
		}
		defer c.Close()
		staple := c.ConnectionState().OCSPResponse
		if len(staple) == 0 {
			return fmt.Errorf("no OCSP answer stapled (the responder was asked %d times)", asked.Load())
		}
		resp, err := ocsp.ParseResponseForCert(staple, leaf, ca.cert)
		if err != nil {
			return fmt.Errorf("stapled answer: %v", err)
		}
		if resp.Status != ocsp.Good || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			return fmt.Errorf("stapled answer: status %d for serial %v, want good for %v", resp.Status, resp.SerialNumber, leaf.SerialNumber)
		}
		return nil
	})
}

// makeOCSPCert is makeCert for a certificate that names an OCSP responder.
func makeOCSPCert(t *testing.T, ca *testAuthority, cn, responder string, names ...string) (crtPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), OCSPServer: []string{responder},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	crtPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return crtPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), leaf
}

// answerOCSP answers one OCSP request (POST, or GET with the request in the path), signed by the
// CA itself: every certificate it asks about is good.
func answerOCSP(w http.ResponseWriter, r *http.Request, ca *testAuthority) error {
	var body []byte
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return err
		}
		body = b
	} else {
		p, err := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			return err
		}
		if body, err = base64.StdEncoding.DecodeString(p); err != nil {
			return err
		}
	}
	req, err := ocsp.ParseRequest(body)
	if err != nil {
		return err
	}
	now := time.Now()
	der, err := ocsp.CreateResponse(ca.cert, ca.cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), IssuerHash: crypto.SHA1}, ca.key)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, err = w.Write(der)
	return err
}
