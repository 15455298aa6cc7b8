package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEtcdTLSAndAuth: the etcd connection settings against a real etcd. Over TLS with client
// certificates (--client-cert-auth), `vhost-gen routes --source etcd` reads a flat entry with
// --etcd-cacert/--etcd-cert/--etcd-key and with etcdctl's ETCDCTL_* variables instead; without
// the client certificate, or without the CA, it fails with an error naming etcd (bounded by
// --etcd-dial-timeout). With authentication, a user with a role on /app/ reads it with
// --etcd-user/--etcd-password, with --etcd-user USER:PASSWORD and with ETCDCTL_USER; a wrong
// password, or none, or an etcd that does not answer, fails with an error naming etcd.
func TestEtcdTLSAndAuth(t *testing.T) {
	t.Parallel()
	label := testLabel(t)
	host := "web." + label + ".test"
	backend := "127.0.0.1:" + strconv.Itoa(freePort(t)) // nothing answers: only the table is read
	routes := []string{"routes", "--json", "--source", "etcd", "--etcd-registry=false",
		"--etcd-flat", "/app/servers=" + host}

	// sees runs vhost-gen routes and wants the site with the one server.
	sees := func(what string, env []string, args ...string) {
		t.Helper()
		stdout, stderr, err := vhostGenCmdEnv(t, env, append(append([]string{}, routes...), args...)...)
		if err != nil {
			t.Errorf("%s: %v\n%s", what, err, stderr)
			return
		}
		var doc struct {
			Sites []struct {
				Host   string `json:"host"`
				Routes []struct {
					Backend struct {
						Servers []struct {
							Address string `json:"address"`
						} `json:"servers"`
					} `json:"backend"`
				} `json:"routes"`
			} `json:"sites"`
			Problems []problemDoc `json:"problems"`
		}
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Errorf("%s: routes --json: %v\n%s", what, err, stdout)
			return
		}
		if len(doc.Sites) != 1 || doc.Sites[0].Host != host || len(doc.Sites[0].Routes) != 1 ||
			len(doc.Sites[0].Routes[0].Backend.Servers) != 1 || doc.Sites[0].Routes[0].Backend.Servers[0].Address != backend ||
			len(doc.Problems) != 0 {
			t.Errorf("%s: want only %s with the server %s, got\n%s", what, host, backend, stdout)
		}
	}
	// refused runs vhost-gen routes and wants it to fail with an error that names etcd.
	refused := func(what string, env []string, args ...string) {
		t.Helper()
		stdout, stderr, err := vhostGenCmdEnv(t, env, append(append([]string{}, routes...), args...)...)
		if err == nil {
			t.Errorf("%s: want an error, got success:\n%s", what, stdout)
			return
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() < 0 {
			t.Errorf("%s: vhost-gen did not exit by itself (it hung until killed): %v\n%s", what, err, stderr)
			return
		}
		if !strings.Contains(strings.ToLower(stderr), "etcd") {
			t.Errorf("%s: the error does not mention etcd: %v\n%s", what, err, stderr)
		}
		t.Logf("%s: %v: %s", what, err, strings.TrimSpace(stderr))
	}

	t.Run("tls", func(t *testing.T) {
		pki := newEtcdPKI(t)
		etcd := startEtcdWith(t, etcdOptions{
			scheme: "https",
			flags: []string{"--cert-file", pki.serverCert, "--key-file", pki.serverKey,
				"--trusted-ca-file", pki.caCert, "--client-cert-auth"},
			ctlFlags:  []string{"--cacert", pki.caCert, "--cert", pki.clientCert, "--key", pki.clientKey},
			healthTLS: pki.clientTLS(t),
		})
		etcd.put("/app/servers/web1", backend)

		sees("TLS flags", nil, "--etcd-endpoints", etcd.endpoint, "--etcd-dial-timeout", "2s",
			"--etcd-cacert", pki.caCert, "--etcd-cert", pki.clientCert, "--etcd-key", pki.clientKey)
		sees("ETCDCTL_* variables", []string{"ETCDCTL_ENDPOINTS=" + etcd.endpoint, "ETCDCTL_DIAL_TIMEOUT=2s",
			"ETCDCTL_CACERT=" + pki.caCert, "ETCDCTL_CERT=" + pki.clientCert, "ETCDCTL_KEY=" + pki.clientKey})
		refused("without the client certificate", nil, "--etcd-endpoints", etcd.endpoint, "--etcd-dial-timeout", "2s",
			"--etcd-cacert", pki.caCert)
		refused("without the CA", nil, "--etcd-endpoints", etcd.endpoint, "--etcd-dial-timeout", "2s",
			"--etcd-cert", pki.clientCert, "--etcd-key", pki.clientKey)
	})

	t.Run("auth", func(t *testing.T) {
		etcd := startEtcd(t)
		root := []string{"--user", "root:rootpw"}
		role := "role-" + label
		etcd.ctl("", "user", "add", "root:rootpw")
		etcd.ctl("", "auth", "enable")
		etcd.ctl("", append(root, "user", "add", "vg:vgpw")...)
		etcd.ctl("", append(root, "role", "add", role)...)
		etcd.ctl("", append(root, "role", "grant-permission", role, "--prefix=true", "readwrite", "/app/")...)
		etcd.ctl("", append(root, "user", "grant-role", "vg", role)...)
		etcd.ctl("", append(root, "put", "--", "/app/servers/web1", backend)...)

		ep := []string{"--etcd-endpoints", etcd.endpoint, "--etcd-dial-timeout", "2s"}
		sees("--etcd-user vg --etcd-password", nil, append(ep, "--etcd-user", "vg", "--etcd-password", "vgpw")...)
		sees("--etcd-user vg:vgpw", nil, append(ep, "--etcd-user", "vg:vgpw")...)
		sees("ETCDCTL_USER=vg:vgpw", []string{"ETCDCTL_USER=vg:vgpw"}, ep...)
		sees("ETCDCTL_USER and ETCDCTL_PASSWORD", []string{"ETCDCTL_USER=vg", "ETCDCTL_PASSWORD=vgpw"}, ep...)
		refused("a wrong password", nil, append(ep, "--etcd-user", "vg", "--etcd-password", "wrong")...)
		refused("a wrong password in --etcd-user", nil, append(ep, "--etcd-user", "vg:wrong")...)
		refused("no user", nil, ep...)
		// New authenticates before it returns: bounded by --etcd-dial-timeout too.
		refused("credentials, etcd not answering", nil, "--etcd-endpoints", "http://127.0.0.1:"+strconv.Itoa(freePort(t)),
			"--etcd-dial-timeout", "2s", "--etcd-user", "vg:vgpw")
	})
}

// etcdPKI is one test's CA, etcd's server certificate for 127.0.0.1 and a client certificate,
// as PEM files (keys 0600).
type etcdPKI struct {
	caCert                string
	serverCert, serverKey string
	clientCert, clientKey string
	caPool                *x509.CertPool
	clientPair            tls.Certificate
}

func newEtcdPKI(t *testing.T) *etcdPKI {
	t.Helper()
	dir := t.TempDir()
	p := &etcdPKI{}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vhost-gen etcd test CA " + testLabel(t)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)
	p.caCert = filepath.Join(dir, "ca.crt")
	writePEM(t, p.caCert, "CERTIFICATE", caDER, 0o644)

	leaf := func(name string, tmpl *x509.Certificate) (crt, key string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SerialNumber, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		crt, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		writePEM(t, key, "PRIVATE KEY", kb, 0o600)
		writePEM(t, crt, "CERTIFICATE", der, 0o644)
		return crt, key
	}
	// etcd's gRPC gateway dials etcd itself with the server certificate: client auth too.
	p.serverCert, p.serverKey = leaf("server", &x509.Certificate{Subject: pkix.Name{CommonName: "etcd " + testLabel(t)},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	p.clientCert, p.clientKey = leaf("client", &x509.Certificate{Subject: pkix.Name{CommonName: "vhost-gen " + testLabel(t)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if p.clientPair, err = tls.LoadX509KeyPair(p.clientCert, p.clientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// clientTLS is the client certificate and the CA, for the harness's /health.
func (p *etcdPKI) clientTLS(t *testing.T) *tls.Config {
	return &tls.Config{RootCAs: p.caPool, Certificates: []tls.Certificate{p.clientPair}}
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}
