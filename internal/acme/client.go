package acme

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/lego"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/go-acme/lego/v5/registration"
)

const userAgent = "vhost-gen"

// httpClient talks to the CA's API, trusting the system roots plus CABundle.
func httpClient(o Options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.CABundle != "" {
		pool, err := caPool(o.CABundle)
		if err != nil {
			return nil, fmt.Errorf("acme: CA bundle for %s: %w", o.CAURL, err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if o.transport != nil {
		rt = o.transport(rt)
	}
	return &http.Client{Transport: rt, Timeout: time.Minute}, nil
}

// caPool is the system roots plus the PEM in bundle (its content, or a file holding it).
func caPool(bundle string) (*x509.CertPool, error) {
	pem := []byte(bundle)
	if !strings.Contains(bundle, "-----BEGIN") {
		b, err := os.ReadFile(bundle)
		if err != nil {
			return nil, err
		}
		pem = b
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// setLegoLog sends lego's own log (a process-wide default, to stdout otherwise) to log, warnings
// and errors only: the Manager logs the progress itself.
func setLegoLog(log *slog.Logger) {
	legolog.SetDefault(slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "lego"))
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }

// user is lego's view of an account.
type user struct {
	email string
	key   crypto.Signer
	reg   *acme.ExtendedAccount
}

func (u *user) GetEmail() string                       { return u.email }
func (u *user) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer           { return u.key }

// client returns the ACME client of email's account, registering the account the first time
// only: it is stored and reused.
func (m *Manager) client(ctx context.Context, email string) (*lego.Client, error) {
	if c := m.clients[email]; c != nil {
		return c, nil
	}
	lctx, unlock, err := m.store.Lock(ctx, "account/"+email)
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := m.loadAccount(lctx, email)
	if err != nil {
		return nil, err
	}
	c, err := m.newClient(u)
	if err != nil {
		return nil, err
	}
	if u.reg == nil {
		if err := m.register(lctx, c, u); err != nil {
			return nil, err
		}
	}
	m.clients[email] = c
	delete(m.stale, email)
	return c, nil
}

// loadAccount returns the stored account, or a new key not yet registered.
func (m *Manager) loadAccount(ctx context.Context, email string) (*user, error) {
	a, err := m.store.LoadAccount(ctx, m.o.CAURL, email)
	if errors.Is(err, ErrNotFound) || m.stale[email] {
		key, err := certcrypto.GeneratePrivateKey(certcrypto.EC256)
		if err != nil {
			return nil, err
		}
		return &user{email: email, key: key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("account %q for %s: %w", email, m.o.CAURL, err)
	}
	key, err := certcrypto.ParsePEMPrivateKey(a.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("account %q for %s: key: %w", email, m.o.CAURL, err)
	}
	return &user{email: email, key: key, reg: &acme.ExtendedAccount{Location: a.URI}}, nil
}

func (m *Manager) newClient(u *user) (*lego.Client, error) {
	cfg := lego.NewConfig(u)
	cfg.CADirURL = m.o.CAURL
	cfg.HTTPClient = m.http
	cfg.UserAgent = userAgent
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("CA %s: %w", m.o.CAURL, err)
	}
	if err := c.Challenge.SetHTTP01Provider(provider{m.store}); err != nil {
		return nil, err
	}
	return c, nil
}

// register creates the account at the CA and stores it at once.
func (m *Manager) register(ctx context.Context, c *lego.Client, u *user) error {
	reg, err := c.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return fmt.Errorf("registering account %q with %s: %w", u.email, m.o.CAURL, err)
	}
	u.reg = reg
	a := &Account{Email: u.email, URI: reg.Location, KeyPEM: certcrypto.PEMEncode(u.key), Created: m.o.Now().UTC()}
	if err := m.store.SaveAccount(ctx, m.o.CAURL, a); err != nil {
		return fmt.Errorf("storing account %q for %s: %w", u.email, m.o.CAURL, err)
	}
	m.log.Info("acme: account registered", "email", u.email, "ca", m.o.CAURL, "account", reg.Location)
	return nil
}
