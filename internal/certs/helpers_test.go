package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ca is a small test CA: leaves it signs come as a full chain (leaf then CA).
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var serials atomic.Int64

func init() { serials.Store(time.Now().UnixNano() & 0xffffff) }

func nextSerial() *big.Int { return big.NewInt(serials.Add(1)) }

func newCA(t testing.TB) *ca {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "vhost-gen test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{cert: c, key: key, pem: pemBlock("CERTIFICATE", der)}
}

func ecKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

type leafOpts struct {
	names     []string
	notBefore time.Time
	notAfter  time.Time
	key       crypto.Signer // default: a new P-256 key
}

// leaf returns a full chain (leaf + CA) signed by c, or self-signed when c is nil, and its key.
func (c *ca) leaf(t testing.TB, o leafOpts) (chain, key []byte) {
	t.Helper()
	if o.key == nil {
		o.key = ecKey(t)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: strings.Join(o.names, " ")},
		DNSNames:     o.names,
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := tmpl, o.key
	if c != nil {
		parent, signer = c.cert, c.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, o.key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	chain = pemBlock("CERTIFICATE", der)
	if c != nil {
		chain = append(chain, c.pem...)
	}
	return chain, keyPEM(t, o.key)
}

// selfSigned is a self-signed leaf for names, valid for 90 days.
func selfSigned(t testing.TB, names ...string) (chain, key []byte) {
	return (*ca)(nil).leaf(t, leafOpts{names: names})
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func write(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, dir, name string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// pair writes <name>.crt and <name>.key.
func pair(t testing.TB, dir, name string, chain, key []byte) {
	t.Helper()
	write(t, dir, name+".crt", chain)
	write(t, dir, name+".key", key)
}

func mustLoad(t testing.TB, dir, source string) *Set {
	t.Helper()
	s, err := Load(dir, source)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serialOf is the serial of a chain's leaf as Cert.Serial prints it.
func serialOf(t testing.TB, chain []byte) string {
	t.Helper()
	blk, _ := pem.Decode(chain)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return serialHex(c)
}

func x509MarshalPKCS1(k crypto.Signer) ([]byte, error) {
	return x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey)), nil
}

func x509MarshalEC(k crypto.Signer) ([]byte, error) {
	return x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
}
