package integration

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
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
	crt, key, leaf := signLeaf(t, ca, d, func(c *x509.Certificate) { c.OCSPServer = []string{responder.URL + "/"} }, "*."+d)
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
