package acme

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is what a Store returns for an object it does not hold.
var ErrNotFound = errors.New("not found")

// Store keeps the ACME state, one object per key, each written whole: accounts, certificates with
// their meta, and the pending HTTP-01 tokens. The directory store is the default; an etcd store
// (one key per object, a lock per certificate) can replace it, so that any gateway answers a
// challenge and one orders each certificate.
type Store interface {
	// Lock takes the lock named name ("cert/<name>", "account/<email>") until unlock is called.
	// Writes made with the returned context are fenced to the holder (etcd: the lock's
	// ownership in the write's transaction); the context ends when the lock is lost.
	Lock(ctx context.Context, name string) (locked context.Context, unlock func(), err error)

	// LoadAccount returns the account for (CA directory URL, email), or ErrNotFound.
	LoadAccount(ctx context.Context, ca, email string) (*Account, error)
	SaveAccount(ctx context.Context, ca string, a *Account) error

	// LoadCert returns the certificate stored under name, or ErrNotFound when there is neither a
	// certificate nor a meta. Chain and Key are nil when only the meta was stored (failed orders).
	LoadCert(ctx context.Context, name string) (*Cert, error)
	// SaveCert stores chain, key and meta together.
	SaveCert(ctx context.Context, name string, c *Cert) error
	// SaveMeta stores the meta alone (errors, order history, renewal info).
	SaveMeta(ctx context.Context, name string, m *Meta) error

	// PutToken makes token answerable with keyAuth until DeleteToken; Token returns ErrNotFound
	// for a token not put (or deleted).
	PutToken(ctx context.Context, token, keyAuth string) error
	Token(ctx context.Context, token string) (keyAuth string, err error)
	DeleteToken(ctx context.Context, token string) error
}

// Account is an ACME account: one per (CA, email).
type Account struct {
	Email   string    `json:"email"`
	URI     string    `json:"uri"`     // the account's URL at the CA
	KeyPEM  []byte    `json:"key_pem"` // secret
	Created time.Time `json:"created"`
}

// Cert is a stored certificate.
type Cert struct {
	Chain []byte // PEM, leaf first
	Key   []byte // PEM, secret
	Meta  Meta
}

// Meta is what is known about a certificate besides its PEM: the request it answers, the CA's
// renewal info, the last error and backoff, and the order history the rate guard counts.
type Meta struct {
	Names     []string  `json:"names"`
	CA        string    `json:"ca,omitempty"`
	Email     string    `json:"email,omitempty"` // the account that ordered it
	KeyType   string    `json:"key_type,omitempty"`
	Profile   string    `json:"profile,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	Serial    string    `json:"serial,omitempty"`

	Renewal *RenewalInfo `json:"renewal_info,omitempty"`

	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Failures    int       `json:"failures,omitempty"` // consecutive failed orders
	NextTry     time.Time `json:"next_try,omitzero"`  // no order before this

	Orders []OrderRecord `json:"orders,omitempty"`
}

// RenewalInfo is the CA's suggested renewal window (ARI, RFC 9773) and the time chosen in it.
type RenewalInfo struct {
	NoARI       bool      `json:"no_ari,omitempty"` // the CA offers none: a third of the lifetime
	Failed      bool      `json:"failed,omitempty"` // the last request failed: a third of the lifetime
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowEnd   time.Time `json:"window_end,omitzero"`
	RenewAt     time.Time `json:"renew_at,omitzero"`
	NextCheck   time.Time `json:"next_check,omitzero"` // ask the CA again then (its Retry-After)
	Explanation string    `json:"explanation_url,omitempty"`
}

// OrderRecord is one order placed with the CA.
type OrderRecord struct {
	At     time.Time `json:"at"`
	Names  string    `json:"names"`  // the sorted name set, comma-separated
	Result string    `json:"result"` // started (outcome unknown: a crash), issued, failed, interrupted (at shutdown)
	Serial string    `json:"serial,omitempty"`
	Error  string    `json:"error,omitempty"`
}

const (
	resultStarted = "started"
	resultIssued  = "issued"
	resultFailed  = "failed"

	resultInterrupted = "interrupted"
)
