package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestClientCertificates: nginx-proxy's <host>.ca.crt in the certificates directory makes that
// host ask its HTTPS clients for a certificate the CA signed (mutual TLS), on both proxies: with
// one it is served, without one or with another CA's it is not; a host without a CA file is
// served as before, and a host whose CA file the proxy refuses is not served at all.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	forEachProxy(t, clientCertificates)
}

func clientCertificates(t *testing.T, proxy string) {
	label := testLabel(t)
	d := label + ".test"
	dir := t.TempDir()
	writeCert(t, dir, d, "*."+d)
	ca := testCA(t)
	writeAtomic(t, filepath.Join(dir, "mtls."+d+".ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644)
	// A CA file the proxy cannot read takes its site out, never serves it without the check.
	writeAtomic(t, filepath.Join(dir, "bad."+d+".ca.crt"), []byte("not a certificate\n"), 0o644)
	te := newTLSEnv(t, proxy, dir, "--acme=false")
	te.run("broken", "-e", "VIRTUAL_HOST=bad."+d)
	te.run("locked", "-e", "VIRTUAL_HOST=mtls."+d)
	te.run("open", "-e", "VIRTUAL_HOST=open."+d)

	good := clientCert(t, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }, ca)
	stranger := clientCert(t, nil, nil)
	te.waitFor("mutual TLS on mtls, none on open", func() error {
		for _, c := range []struct {
			sni, host string
			cert      *tls.Certificate
			served    bool
		}{
			{"open." + d, "open." + d, nil, true},
			{"mtls." + d, "mtls." + d, &good, true},
			{"mtls." + d, "mtls." + d, nil, false},
			{"mtls." + d, "mtls." + d, &stranger, false},
			// The handshake for a name without the check, the request for one with it.
			{"open." + d, "mtls." + d, nil, false},
			{"open." + d, "mtls." + d, &good, false},
			{"bad." + d, "bad." + d, nil, false},
			{"bad." + d, "bad." + d, &good, false},
		} {
			status, err := te.getWithCert(c.sni, c.host, c.cert)
			if (status == 200) != c.served {
				return fmt.Errorf("SNI %s, Host %s, a client certificate %v: status %d (%v), want served %v", c.sni, c.host, c.cert != nil, status, err, c.served)
			}
		}
		return nil
	})
}

// clientCert is a client certificate signed by ca, or self-signed when ca is nil.
func clientCert(t *testing.T, more func(*x509.Certificate), ca *testAuthority) tls.Certificate {
	t.Helper()
	if ca != nil {
		crt, key, _ := signLeaf(t, ca, "client", more)
		c, err := tls.X509KeyPair(crt, key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// getWithCert sends GET / over HTTPS to host with sni as the handshake's name, showing cert when
// the server asks.
func (te *tlsEnv) getWithCert(sni, host string, cert *tls.Certificate) (int, error) {
	cfg := &tls.Config{ServerName: sni, InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, te.httpsAddr())
		}}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
