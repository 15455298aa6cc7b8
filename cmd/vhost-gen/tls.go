package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/atomicfile"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/acme/etcdstore"
	"github.com/vhost-gen/vhost-gen/internal/certs"
	"github.com/vhost-gen/vhost-gen/internal/render"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// tlsConfig is the HTTPS flags: the certificates directory, nginx-proxy's TLS settings as the
// gateway's defaults, and the ACME client.
type tlsConfig struct {
	CertsDir          string
	ListenHTTPS       string
	HTTPSMethod       string
	HSTS              string
	SSLPolicy         string
	NonGetRedirect    string
	TrustDefaultCert  bool
	HTTPOnMissingCert bool
	ACME              bool
	ACMECAURI         string
	ACMECABundle      string
	ACMEEmail         string
	ACMEDir           string
	ACMEResponder     string
	ACMEStore         string
	HAProxyCertsDir   string
}

// tlsEnvAliases are nginx-proxy's and acme-companion's variable names, which the gateway image
// reads for these flags.
var tlsEnvAliases = map[string]string{
	"listen-https":                "HTTPS_PORT",
	"https-method":                "HTTPS_METHOD",
	"hsts":                        "HSTS",
	"ssl-policy":                  "SSL_POLICY",
	"non-get-redirect":            "NON_GET_REDIRECT",
	"trust-default-cert":          "TRUST_DEFAULT_CERT",
	"enable-http-on-missing-cert": "ENABLE_HTTP_ON_MISSING_CERT",
	"acme-ca-uri":                 "ACME_CA_URI",
	"acme-ca-bundle":              "CA_BUNDLE",
	"acme-email":                  "DEFAULT_EMAIL",
}

const (
	letsEncrypt    = "https://acme-v02.api.letsencrypt.org/directory"
	defaultACMEDir = "/var/lib/vhost-gen/acme"
)

func registerTLSFlags(fs *flag.FlagSet, c *tlsConfig) {
	fs.StringVar(&c.CertsDir, "certs-dir", "", "serve HTTPS with the certificates in `DIR`, nginx-proxy's names (<host>.crt + <host>.key, default.crt, ...), watched; empty: HTTP only unless ACME certificates are asked for")
	fs.StringVar(&c.ListenHTTPS, "listen-https", "443", "where the proxy listens for HTTPS (`PORT` or ADDR:PORT; nginx-proxy's HTTPS_PORT is read too)")
	fs.StringVar(&c.HTTPSMethod, "https-method", routing.MethodRedirect, "default HTTPS_METHOD: redirect, noredirect, nohttp or nohttps")
	fs.StringVar(&c.HSTS, "hsts", "max-age=31536000", "default HSTS header value, or off")
	fs.StringVar(&c.SSLPolicy, "ssl-policy", "Mozilla-Intermediate", "default SSL_POLICY: Mozilla-Modern, Mozilla-Intermediate or Mozilla-Old")
	fs.StringVar(&c.NonGetRedirect, "non-get-redirect", "301", "redirect code for non-GET requests: 301, 307 or 308")
	fs.BoolVar(&c.TrustDefaultCert, "trust-default-cert", true, "serve default.crt to hosts without a certificate of their own")
	fs.BoolVar(&c.HTTPOnMissingCert, "enable-http-on-missing-cert", true, "a host with HTTPS_METHOD redirect or nohttp but no certificate is served over HTTP")
	fs.BoolVar(&c.ACME, "acme", true, "order certificates for ACME_HOST / LETSENCRYPT_HOST (with --certs-dir or --acme-dir set)")
	fs.StringVar(&c.ACMECAURI, "acme-ca-uri", letsEncrypt, "the ACME CA's directory `URL`")
	fs.StringVar(&c.ACMECABundle, "acme-ca-bundle", "", "extra CA roots (PEM `FILE`) for the ACME CA's own API (nginx-proxy's CA_BUNDLE)")
	fs.StringVar(&c.ACMEEmail, "acme-email", "", "account contact for workloads without ACME_EMAIL (acme-companion's DEFAULT_EMAIL)")
	fs.StringVar(&c.ACMEDir, "acme-dir", "", "where ACME accounts and certificates are kept (`DIR`, created 0700); setting it turns HTTPS on; with --certs-dir it defaults to "+defaultACMEDir)
	fs.StringVar(&c.ACMEResponder, "acme-responder", "127.0.0.1:8402", "loopback `ADDR` of the HTTP-01 responder the proxy forwards /.well-known/acme-challenge/ to")
	fs.StringVar(&c.ACMEStore, "acme-store", "dir", "where ACME accounts, certificates and challenge tokens live: dir (--acme-dir) or etcd (shared by every gateway on --etcd-endpoints: one order per certificate, under a lock; --acme-dir then holds a mirror)")
	fs.StringVar(&c.HAProxyCertsDir, "haproxy-certs-dir", "", "where HAProxy's <name>.pem files and crt-list are written (default: beside --out)")
}

// enabled says whether the gateway serves HTTPS.
func (c *tlsConfig) enabled() bool { return c.CertsDir != "" || c.ACMEDir != "" }

// certStore holds the certificates, as they change, for the pipeline's routing.
type certStore struct {
	mu   sync.RWMutex
	set  *certs.Set // files over ACME
	pems map[string]string
	// files and acme are the two sources, as last read.
	files, acme *certs.Set
	// changed wakes the pipeline (app.changed): a certificate came, went or changed.
	changed chan struct{}
	// merging: one mergeCerts at a time (the watcher's and the ACME client's goroutines), so
	// that an older merge never lands after a newer one and HAProxy's directory has one writer.
	merging sync.Mutex
}

// Select is routing.CertLookup over the current certificates.
func (s *certStore) Select(host, certName string, trust bool) routing.CertChoice {
	s.mu.RLock()
	set, pems := s.set, s.pems
	s.mu.RUnlock()
	c := set.Select(host, certName, trust) // a nil Set is empty
	return routing.CertChoice{Via: c.Via, Problem: c.Problem, Cert: routing.CertInfo{Name: c.Cert.Name, Source: c.Cert.Source,
		CertFile: c.Cert.CertFile, KeyFile: c.Cert.KeyFile, ChainFile: c.Cert.ChainFile, DHParamFile: c.Cert.DHParamFile,
		PEMFile: pems[c.Cert.Name], NotAfter: c.Cert.NotAfter, Serial: c.Cert.Serial, SHA256: c.Cert.SHA256}}
}

// ClientCA is routing.ClientCALookup over the current certificates directory.
func (s *certStore) ClientCA(host string) (routing.ClientCA, bool) {
	s.mu.RLock()
	set := s.set
	s.mu.RUnlock()
	c, ok := set.ClientCA(host)
	return routing.ClientCA{CAFile: c.CAFile, CRLFile: c.CRLFile, SHA256: c.SHA256}, ok
}

// prepareTLS validates the TLS flags and sets the routing and render options.
func (a *app) prepareTLS() error {
	c := &a.cfg.TLS
	if c.CertsDir != "" && c.ACMEDir == "" && c.ACME {
		c.ACMEDir = defaultACMEDir
	}
	if !c.enabled() {
		return nil
	}
	method, err := routing.ParseHTTPSMethod(c.HTTPSMethod)
	if err != nil {
		return fmt.Errorf("--https-method: %w", err)
	}
	hsts, err := routing.ParseHSTS(c.HSTS)
	if err != nil {
		return fmt.Errorf("--hsts: %w", err)
	}
	policy, err := routing.ParseSSLPolicy(c.SSLPolicy)
	if err != nil {
		return fmt.Errorf("--ssl-policy: %w", err)
	}
	code, err := routing.ParseRedirectCode(c.NonGetRedirect)
	if err != nil {
		return fmt.Errorf("--non-get-redirect: %w", err)
	}
	if err := checkListen(c.ListenHTTPS); err != nil {
		return fmt.Errorf("--listen-https: %w", err)
	}
	httpsPort, err := listenPort(c.ListenHTTPS)
	if err != nil {
		return fmt.Errorf("--listen-https %q: %w", c.ListenHTTPS, err)
	}
	if p := a.renderOpts.ExternalHTTPSPort; p != 0 { // redirects name the port clients reach
		httpsPort = p
	}
	if c.ACMEEmail != "" {
		if _, err := routing.ParseEmail(c.ACMEEmail); err != nil {
			return fmt.Errorf("--acme-email: %w", err)
		}
	}
	if c.ACMEStore != "dir" && c.ACMEStore != "etcd" {
		return fmt.Errorf("--acme-store %q: must be dir or etcd", c.ACMEStore)
	}
	if c.ACMEStore == "etcd" {
		if err := a.cfg.Etcd.prepare("--acme-store etcd"); err != nil {
			return err
		}
	}
	if host, _, err := net.SplitHostPort(c.ACMEResponder); err != nil || !isLoopback(host) {
		return fmt.Errorf("--acme-responder %q: must be a loopback ADDR:PORT (the proxy forwards challenges to it)", c.ACMEResponder)
	}
	a.certs = &certStore{changed: a.changed, files: &certs.Set{}, acme: &certs.Set{}}
	a.routing.TLS = &routing.TLSOptions{Certs: a.certs, Method: method, HSTS: hsts, Policy: policy,
		HTTPOnMissingCert: c.HTTPOnMissingCert, NonGetRedirect: code, TrustDefaultCert: c.TrustDefaultCert,
		HTTPSPort: httpsPort, ACMEEmail: c.ACMEEmail, ACME: c.ACME && c.ACMEDir != ""}
	// Whether a certificate has expired is read at build time: build whole now and then.
	a.tables.WholeEvery = time.Minute
	a.renderOpts.HTTPS = c.ListenHTTPS
	if a.routing.TLS.ACME {
		a.renderOpts.ACMEResponder = c.ACMEResponder
	}
	if a.cfg.Proxy == "haproxy" {
		if c.HAProxyCertsDir == "" {
			// Absolute: HAProxy's config names the crt-list and maps by path (a one-shot
			// render has no --out, so this is the working directory's).
			dir, err := filepath.Abs(filepath.Join(filepath.Dir(a.cfg.Out), "vhost-gen-certs"))
			if err != nil {
				return fmt.Errorf("--haproxy-certs-dir: %w", err)
			}
			c.HAProxyCertsDir = dir
		}
		a.renderOpts.CrtList = filepath.Join(c.HAProxyCertsDir, "crt-list")
		if _, err := render.HAProxyTLSFiles(nil, a.renderOpts.CrtList); err != nil {
			return fmt.Errorf("--haproxy-certs-dir %q: %w", c.HAProxyCertsDir, err)
		}
	}
	a.reservedTLSPort(httpsPort)
	return a.loadCerts()
}

// reservedTLSPort keeps TCP services off the HTTPS port.
func (a *app) reservedTLSPort(port int) {
	if a.routing.ReservedPorts == nil {
		a.routing.ReservedPorts = map[int]string{}
	}
	a.routing.ReservedPorts[port] = "--listen-https"
}

// loadCerts reads the certificates once: the directory's, and the ACME client's.
func (a *app) loadCerts() error {
	c := &a.cfg.TLS
	files := &certs.Set{}
	if c.CertsDir != "" { // with --acme-dir alone, no directory: not the working directory ("")
		var err error
		if files, err = certs.Load(c.CertsDir, certs.SourceFile); err != nil {
			return fmt.Errorf("--certs-dir: %w", err)
		}
	}
	a.certs.mu.Lock()
	a.certs.files = files
	a.certs.mu.Unlock()
	return a.reloadACMECerts()
}

// reloadACMECerts reads the ACME client's certificates again (one was issued or renewed).
func (a *app) reloadACMECerts() error {
	c := &a.cfg.TLS
	acmeSet := &certs.Set{}
	if c.ACMEDir != "" {
		var err error
		if acmeSet, err = certs.Load(c.ACMEDir, certs.SourceACME); err != nil {
			return fmt.Errorf("--acme-dir: %w", err)
		}
	}
	a.certs.mu.Lock()
	a.certs.acme = acmeSet.KeepGood(a.certs.acme)
	a.certs.mu.Unlock()
	return a.mergeCerts()
}

// mergeCerts puts the directory's certificates over the ACME client's (a static certificate for
// a host wins), writes HAProxy's .pem files, and wakes the pipeline.
func (a *app) mergeCerts() error {
	a.certs.merging.Lock()
	defer a.certs.merging.Unlock()
	a.certs.mu.RLock()
	set := certs.Merge(a.certs.files, a.certs.acme)
	a.certs.mu.RUnlock()
	var pems map[string]string
	if a.cfg.Proxy == "haproxy" {
		var err error
		if pems, err = certs.WriteHAProxy(a.cfg.TLS.HAProxyCertsDir, set); err != nil {
			return err
		}
	}
	a.certs.mu.Lock()
	a.certs.set, a.certs.pems = set, pems
	a.certs.mu.Unlock()
	a.tables.Invalidate() // every site's certificate is chosen again
	for _, p := range set.Problems() {
		a.log.Warn("certificate problem", "file", p.File, "reason", p.Reason)
	}
	a.metrics.CertExpiry.Reset()
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		a.metrics.CertExpiry.WithLabelValues(name, c.Source).Set(float64(c.NotAfter.Unix()))
	}
	select {
	case a.certs.changed <- struct{}{}:
	default:
	}
	return nil
}

// defaultCert is the certificates directory's default certificate, for the fallback server.
func (a *app) defaultCert() *routing.SiteCert {
	if a.certs == nil {
		return nil
	}
	a.certs.mu.RLock()
	defer a.certs.mu.RUnlock()
	c, ok := a.certs.set.Get(certs.DefaultName)
	if !ok {
		return nil
	}
	return &routing.SiteCert{Name: c.Name, Via: certs.ViaDefault, CertFile: c.CertFile, KeyFile: c.KeyFile, ChainFile: c.ChainFile,
		DHParamFile: c.DHParamFile, PEMFile: a.certs.pems[c.Name], NotAfter: c.NotAfter, Serial: c.Serial, SHA256: c.SHA256}
}

// runTLS watches the certificates directory and runs the ACME client, until ctx ends.
func (a *app) runTLS(ctx context.Context) error {
	if a.certs == nil {
		return nil
	}
	c := &a.cfg.TLS
	var mgr *acme.Manager
	if a.routing.TLS.ACME {
		store, err := a.acmeStore(ctx)
		if err != nil {
			return err
		}
		mgr, err = acme.New(acme.Options{CAURL: c.ACMECAURI, CABundle: c.ACMECABundle, Dir: c.ACMEDir, Store: store,
			Log: a.log.With("acme", c.ACMECAURI), OnChange: func() {
				// On the ACME loop's goroutine: keep it short.
				if err := a.reloadACMECerts(); err != nil {
					a.log.Error("reading the ACME certificates", "err", err)
				}
			}})
		if err != nil {
			return fmt.Errorf("ACME: %w", err)
		}
		ln, err := net.Listen("tcp", c.ACMEResponder)
		if err != nil {
			return fmt.Errorf("--acme-responder: %w", err)
		}
		srv := &http.Server{Handler: mgr.Responder(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		go func() { <-ctx.Done(); srv.Close() }()
		go mgr.Run(ctx)
		a.acme = mgr
		a.state.SetACME(func() any { return mgr.Status() })
	}
	if c.CertsDir != "" {
		go func() {
			for set := range certs.Watch(ctx, c.CertsDir, certs.SourceFile, 2*time.Second) {
				a.certs.mu.Lock()
				a.certs.files = set
				a.certs.mu.Unlock()
				if err := a.mergeCerts(); err != nil {
					a.log.Error("writing HAProxy's certificates", "err", err)
				}
			}
		}()
	}
	return nil
}

// acmeStore is nil for the directory store; with --acme-store etcd, the shared store, and a
// mirror of its certificates into --acme-dir, which the certificate store reads.
func (a *app) acmeStore(ctx context.Context) (acme.Store, error) {
	c := &a.cfg.TLS
	if c.ACMEStore != "etcd" {
		return nil, nil
	}
	cli, err := a.cfg.Etcd.dial()
	if err != nil {
		return nil, err
	}
	store, err := etcdstore.New(cli, etcdstore.Options{Prefix: a.cfg.Etcd.layout.Prefix, CAURL: c.ACMECAURI,
		Timeout: a.cfg.Etcd.conn.Timeout(), Log: a.log.With("acme-store", "etcd")})
	if err != nil {
		return nil, fmt.Errorf("--acme-store etcd: %w", err)
	}
	go etcdstore.Mirror(ctx, store, c.ACMEDir, func() {
		if err := a.reloadACMECerts(); err != nil {
			a.log.Error("reading the ACME certificates", "err", err)
		}
	})
	return store, nil
}

// wantCerts hands the table's certificate requests to the ACME client.
func (a *app) wantCerts(t routing.Table) {
	if a.acme == nil {
		return
	}
	reqs := make([]acme.Request, len(t.ACME))
	for i, r := range t.ACME {
		reqs[i] = acme.Request{Name: r.Name, Names: r.Names, Email: r.Email, KeyType: r.KeyType, Profile: r.Profile}
	}
	a.acme.Want(reqs)
}

// writeTLSFiles writes HAProxy's crt-list and maps for these sites, those that changed.
func writeTLSFiles(sites []routing.Site, crtList string) error {
	files, err := render.HAProxyTLSFiles(sites, crtList)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(crtList), 0o700); err != nil {
		return fmt.Errorf("crt-list: %w", err)
	}
	for _, f := range files {
		if _, err := atomicfile.WriteIfChanged(f.Path, f.Data, 0o600); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f.Path), err)
		}
	}
	return nil
}
