// Package acme gets and renews certificates from an ACME CA (Let's Encrypt by default) with
// HTTP-01 challenges, for the hosts the routing table asks for. It never terminates TLS and never
// listens on port 80 itself: the proxy forwards /.well-known/acme-challenge/ to Responder.
//
// One certificate per Request, named after its first name (acme-companion's rule). Orders run in
// the background, one at a time; a stored certificate is reused (a restart never orders), renewal
// follows the CA's renewal info (ARI) or, without it, starts when a third of the lifetime is left.
// Failures back off exponentially, and a local guard keeps the CA's duplicate-certificate limit.
package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/lego"
)

// Request is one certificate a gateway wants: named after its first name (nginx-proxy/acme-companion:
// one SAN cert per container, named after the first ACME_HOST).
type Request struct {
	Name    string   // file base name, = Names[0] when empty
	Names   []string // host names, in the order given (no wildcards: HTTP-01)
	Email   string   // account contact ("" allowed)
	KeyType string   // "ec-256" default, "ec-384", "2048", "3072", "4096"
	Profile string   // ACME profile, "" for the CA's default
}

// Options configure a Manager.
type Options struct {
	CAURL string // directory URL; default Let's Encrypt production
	// CABundle is extra PEM roots for the CA's own API (pebble): a file path, or the PEM itself.
	// "" for the system roots alone.
	CABundle string
	// Dir is the storage: accounts and certificates, created 0700. Certificates as <Name>.crt
	// (full chain, 0644), <Name>.key (0600), <Name>.json (meta). Ignored when Store is set.
	Dir string
	// Store replaces the directory (etcd, later).
	Store      Store
	Log        *slog.Logger
	Now        func() time.Time // for tests; default time.Now
	RenewCheck time.Duration    // longest sleep between scans for renewals (default 10m)
	MinBackoff time.Duration    // first wait after a failed order (default 1m), doubling ...
	MaxBackoff time.Duration    // ... up to this (default 24h)
	// OnChange is called after a certificate was stored (new or renewed), on Run's goroutine:
	// keep it short (signal the re-render).
	OnChange func()

	// transport wraps the ACME client's transport (tests count orders with it).
	transport func(http.RoundTripper) http.RoundTripper
	// lockWait, lockRetry: the wait for a certificate's lock and the hold after it (tests
	// shorten them; default lockWait and lockRetry).
	lockWait, lockRetry time.Duration
}

// Status is per certificate, for /routes and metrics.
type Status struct {
	Name        string    `json:"name"`
	Names       []string  `json:"names"`
	NotAfter    time.Time `json:"notAfter,omitzero"` // zero: no certificate yet
	RenewAt     time.Time `json:"renewAt,omitzero"`  // zero: no certificate yet
	Serial      string    `json:"serial,omitempty"`  // hex, as openssl prints it
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	NextTry     time.Time `json:"nextTry,omitzero"` // no order before this (backoff or rate guard); zero: none pending
	Orders      int       `json:"orders"`           // orders placed for this certificate's names in the last 7 days
}

// Manager orders and renews the wanted certificates.
type Manager struct {
	o     Options
	store Store
	log   *slog.Logger
	http  *http.Client
	wake  chan struct{}

	wantMu  sync.Mutex // one Want at a time
	mu      sync.Mutex
	certs   map[string]*entry // wanted, by Name
	refusal map[string]bool   // refusals logged at the last Want: each is logged once

	clients map[string]*lego.Client // by account email; Run's goroutine only
	stale   map[string]bool         // accounts the CA forgot; Run's goroutine only
}

// entry is the Manager's view of one wanted certificate.
type entry struct {
	req       Request // normalized
	invalid   string  // why the request was refused; "" when valid
	invalidAt time.Time
	meta      Meta
	leaf      *x509.Certificate // the stored certificate; nil when none usable

	// Floors kept in memory, so that a store that cannot be written does not make an action
	// due again at once.
	holdOrder, holdCheck time.Time
}

const (
	defaultRenewCheck = 10 * time.Minute
	defaultMinBackoff = time.Minute
	defaultMaxBackoff = 24 * time.Hour
	orderTimeout      = 5 * time.Minute
)

// New makes a Manager; it does not contact the CA (that happens when an order or a renewal
// check needs it).
func New(o Options) (*Manager, error) {
	o = withDefaults(o)
	hc, err := httpClient(o)
	if err != nil {
		return nil, err
	}
	st := o.Store
	if st == nil {
		if o.Dir == "" {
			return nil, errors.New("acme: no storage directory")
		}
		if st, err = NewDirStore(o.Dir); err != nil {
			return nil, err
		}
	}
	setLegoLog(o.Log)
	return &Manager{
		o:       o,
		store:   st,
		log:     o.Log,
		http:    hc,
		wake:    make(chan struct{}, 1),
		certs:   map[string]*entry{},
		refusal: map[string]bool{},
		clients: map[string]*lego.Client{},
		stale:   map[string]bool{},
	}, nil
}

func withDefaults(o Options) Options {
	if o.CAURL == "" {
		o.CAURL = lego.DirectoryURLLetsEncrypt
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RenewCheck <= 0 {
		o.RenewCheck = defaultRenewCheck
	}
	if o.lockWait <= 0 {
		o.lockWait, o.lockRetry = lockWait, lockRetry
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(defaultMaxBackoff, o.MinBackoff)
	}
	return o
}

// Want sets the certificates wanted now (the whole set). What is missing is ordered and what is due
// is renewed, in the background; certificates no longer wanted stay in the store. A request that
// cannot be ordered is logged (once) and shown by Status.
func (m *Manager) Want(reqs []Request) {
	m.wantMu.Lock()
	defer m.wantMu.Unlock()
	now := m.o.Now()
	m.mu.Lock()
	old, logged := m.certs, m.refusal
	m.mu.Unlock()

	next, refusals := map[string]*entry{}, map[string]bool{}
	refuse := func(name string, names []string, err error) {
		msg := name + ": " + err.Error()
		if !logged[msg] {
			m.log.Error("acme: request refused", "cert", name, "names", names, "error", err)
		}
		refusals[msg] = true
	}
	for _, r := range reqs {
		if e := m.wantOne(r, old, next, now, refuse); e != nil {
			next[e.req.Name] = e
		}
	}
	m.mu.Lock()
	m.certs, m.refusal = next, refusals
	m.mu.Unlock()
	m.poke()
}

// wantOne validates r and returns its entry: the current one when known, else loaded from the
// store; nil for a second request of the same name.
func (m *Manager) wantOne(r Request, old, next map[string]*entry, now time.Time, refuse func(string, []string, error)) *entry {
	req, err := normalize(r)
	if err != nil {
		name := r.Name
		if name == "" && len(r.Names) > 0 {
			name = r.Names[0]
		}
		refuse(name, r.Names, err)
		return refusedEntry(name, r.Names, err, old, now)
	}
	if first := next[req.Name]; first != nil && first.invalid == "" {
		refuse(req.Name, req.Names, fmt.Errorf("certificate requested twice (names %v and %v): the first is kept", first.req.Names, req.Names))
		return nil
	}
	m.mu.Lock()
	e := old[req.Name]
	if e != nil && e.invalid == "" {
		e.req = req
		m.mu.Unlock()
		return e
	}
	m.mu.Unlock()
	e = &entry{req: req}
	m.load(e)
	return e
}

// refusedEntry is the entry of a request that cannot be ordered; it keeps the time of the first
// refusal while the reason stays the same.
func refusedEntry(name string, names []string, err error, old map[string]*entry, now time.Time) *entry {
	if prev := old[name]; prev != nil && prev.invalid == err.Error() {
		return prev
	}
	return &entry{req: Request{Name: name, Names: names}, invalid: err.Error(), invalidAt: now}
}

// load reads e's certificate and meta from the store; a missing or unreadable one is ordered.
func (m *Manager) load(e *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.store.LoadCert(ctx, e.req.Name)
	if errors.Is(err, ErrNotFound) {
		return
	}
	if err != nil {
		m.log.Warn("acme: stored certificate unreadable, will order a new one", "cert", e.req.Name, "error", err)
		return
	}
	m.setStored(e, c)
}

// setStored takes a stored certificate into e; the certificate file is the truth when the meta
// disagrees (a crash between the two writes).
func (m *Manager) setStored(e *entry, c *Cert) {
	e.meta = c.Meta
	e.leaf = nil
	if len(c.Chain) == 0 {
		return
	}
	leaf, err := parsePair(c.Chain, c.Key)
	if err != nil {
		m.log.Warn("acme: stored certificate unusable, will order a new one", "cert", e.req.Name, "error", err)
		return
	}
	e.leaf = leaf
	if serial := serialOf(leaf); e.meta.Serial != serial {
		e.meta.Serial = serial
		e.meta.Renewal = nil
	}
	e.meta.NotBefore, e.meta.NotAfter = leaf.NotBefore, leaf.NotAfter
	e.meta.Names = leaf.DNSNames
}

// Status returns one Status per wanted certificate, sorted by name.
func (m *Manager) Status() []Status {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.certs))
	for _, e := range m.certs {
		out = append(out, m.statusOf(e, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *Manager) statusOf(e *entry, now time.Time) Status {
	s := Status{Name: e.req.Name, Names: append([]string(nil), e.req.Names...)}
	if e.invalid != "" {
		s.LastError, s.LastErrorAt = e.invalid, e.invalidAt
		return s
	}
	s.LastError, s.LastErrorAt = e.meta.LastError, e.meta.LastErrorAt
	if e.meta.NextTry.After(now) {
		s.NextTry = e.meta.NextTry
	}
	s.Orders = len(recentOrders(e.meta.Orders, namesKey(e.req.Names), now))
	if e.leaf != nil {
		s.NotAfter, s.Serial = e.leaf.NotAfter, serialOf(e.leaf)
		s.RenewAt = renewAt(e.leaf, e.meta.Renewal)
	}
	return s
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
