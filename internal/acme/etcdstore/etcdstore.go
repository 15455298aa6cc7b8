// Package etcdstore keeps the ACME state (accounts, certificates, HTTP-01 tokens) in etcd, so that
// N gateways share one set of certificates: one key per object, one concurrency.Mutex per
// certificate and account, writes fenced to the lock's holder.
//
//	PREFIX/acme/<ca-id>/accounts/<email|_default>   the account JSON (with its key)
//	PREFIX/acme/<ca-id>/certs/<name>                {"v":1,"chain_pem","key_pem","meta"}
//	PREFIX/acme/<ca-id>/tokens/<token>              the key authorization, under a lease (10 min)
//	PREFIX/acme/<ca-id>/locks/<lock name>/<lease>   concurrency.Mutex waiters, session leases
//
// <ca-id> names the CA's directory URL (its host and a short hash of the URL), so staging and
// production never mix. Every value read is untrusted: bounded and validated, a bad one is an
// error naming its key. Keys and values are never logged.
package etcdstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/certs"
)

// MaxValue bounds every value read: a certificate with its chain, key and meta is a few KiB.
const MaxValue = 256 << 10

// ErrLockLost is the error of a write made with a lock context whose lock is no longer held (its
// session ended: the process was stopped, cut off, or too slow): nothing was written, and a newer
// holder may have written since.
var ErrLockLost = errors.New("etcdstore: the lock is no longer held (its etcd session ended): not written")

const (
	defaultPrefix     = "/vhost-gen"
	defaultSessionTTL = 10 * time.Second
	defaultTokenTTL   = 10 * time.Minute
	defaultTimeout    = 5 * time.Second
)

// Options configure a Store.
type Options struct {
	Prefix     string        // default /vhost-gen
	CAURL      string        // the CA's directory URL (the Manager's CAURL); required
	SessionTTL time.Duration // a lock holder's session: lost this long after its holder stops (default 10 s)
	TokenTTL   time.Duration // a token's lease (default 10 min)
	Timeout    time.Duration // bounds each call but Lock's wait (default 5 s)
	Log        *slog.Logger  // Mirror's errors; default slog.Default()
}

// Store is an acme.Store on etcd. It does not own the client.
type Store struct {
	cli      *clientv3.Client
	o        Options
	base     string // PREFIX/acme/<ca-id>/
	ttl      int    // session TTL, seconds
	tokenTTL int64  // seconds
}

var _ acme.Store = (*Store)(nil)

// New makes a Store for the CA o.CAURL; it does not contact etcd.
func New(cli *clientv3.Client, o Options) (*Store, error) {
	if cli == nil {
		return nil, errors.New("etcdstore: no etcd client")
	}
	if o.CAURL == "" {
		return nil, errors.New("etcdstore: no CA directory URL")
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = defaultSessionTTL
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = defaultTokenTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Store{
		cli:      cli,
		o:        o,
		base:     strings.TrimRight(o.Prefix, "/") + "/acme/" + caID(o.CAURL) + "/",
		ttl:      max(int((o.SessionTTL+time.Second-1)/time.Second), 1),
		tokenTTL: max(int64(o.TokenTTL/time.Second), 1),
	}, nil
}

// Prefix is PREFIX/acme/<ca-id>/: every key of this store is under it.
func (s *Store) Prefix() string { return s.base }

func (s *Store) certsPrefix() string { return s.base + "certs/" }

// held is a lock taken by Lock, carried by its context.
type held struct {
	name  string
	owner clientv3.Cmp // the mutex's key still has its creation revision: it is still held
	sess  *concurrency.Session
}

type heldKey struct{}

func heldFrom(ctx context.Context) *held {
	h, _ := ctx.Value(heldKey{}).(*held)
	return h
}

// Lock takes the mutex PREFIX/acme/<ca-id>/locks/<name>, waiting for it as long as ctx allows. The
// returned context carries the lock: writes made with it succeed only while the lock is held (an
// etcd transaction comparing the mutex's key), and it ends when the lock's session is lost.
// unlock releases the mutex and closes the session.
func (s *Store) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	key, err := s.lockKey(name)
	if err != nil {
		return nil, nil, err
	}
	gctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	lease, err := s.cli.Grant(gctx, int64(s.ttl))
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("etcdstore: lock %q: session: %w", name, err)
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(s.ttl))
	if err != nil {
		s.revoke(lease.ID)
		return nil, nil, fmt.Errorf("etcdstore: lock %q: session: %w", name, err)
	}
	m := concurrency.NewMutex(sess, key)
	if err := m.Lock(ctx); err != nil {
		_ = sess.Close()
		return nil, nil, fmt.Errorf("etcdstore: lock %q: %w", name, err)
	}
	h := &held{name: name, owner: m.IsOwner(), sess: sess}
	lctx, cancelL := context.WithCancelCause(context.WithValue(ctx, heldKey{}, h))
	go func() {
		select {
		case <-sess.Done():
			cancelL(ErrLockLost)
		case <-lctx.Done():
		}
	}()
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			cancelL(context.Canceled)
			uctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
			_ = m.Unlock(uctx)
			cancel()
			_ = sess.Close() // revokes the lease: the mutex's key goes even if Unlock failed
		})
	}
	return lctx, unlock, nil
}

// lockKey is locks/<name>; a trailing "/" (the account of no email) is "_default".
func (s *Store) lockKey(name string) (string, error) {
	if name == "" || len(name) > 512 || strings.Contains(name, "//") || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("etcdstore: lock name %q is not usable", name)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("etcdstore: lock name %q is not usable", name)
		}
	}
	if strings.HasSuffix(name, "/") {
		name += "_default"
	}
	return s.base + "locks/" + name, nil
}

func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.Timeout)
	defer cancel()
	_, _ = s.cli.Revoke(ctx, id)
}

// put writes key=val, fenced to the lock ctx carries (if any), and only if every cmp holds; ok
// is false when a cmp failed (the lock still held).
func (s *Store) put(ctx context.Context, key, val string, cmps ...clientv3.Cmp) (ok bool, err error) {
	h := heldFrom(ctx)
	if h != nil {
		select {
		case <-h.sess.Done():
			return false, fmt.Errorf("lock %q: %w", h.name, ErrLockLost)
		default:
		}
		cmps = append(cmps, h.owner)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	if len(cmps) == 0 {
		_, err := s.cli.Put(ctx, key, val)
		return err == nil, err
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		return true, nil
	}
	if h != nil {
		own, err := s.cli.Txn(ctx).If(h.owner).Commit()
		if err != nil {
			return false, err
		}
		if !own.Succeeded {
			return false, fmt.Errorf("lock %q: %w", h.name, ErrLockLost)
		}
	}
	return false, nil
}

// get reads one key, bounded; nil, 0 when it does not exist.
func (s *Store) get(ctx context.Context, key string) ([]byte, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	kv := resp.Kvs[0]
	if len(kv.Value) > MaxValue {
		return nil, 0, fmt.Errorf("etcd key %q: value of %d bytes, more than %d", key, len(kv.Value), MaxValue)
	}
	return kv.Value, kv.ModRevision, nil
}

// LoadAccount reads accounts/<email|_default>.
func (s *Store) LoadAccount(ctx context.Context, ca, email string) (*acme.Account, error) {
	key := s.accountKey(ca, email)
	b, _, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, acme.ErrNotFound
	}
	var a acme.Account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("etcd key %q: %w", key, err)
	}
	if a.Email != email {
		return nil, fmt.Errorf("etcd key %q: the account of another email", key)
	}
	if blk, _ := pem.Decode(a.KeyPEM); blk == nil || !strings.HasSuffix(blk.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("etcd key %q: no PEM private key", key)
	}
	return &a, nil
}

// SaveAccount writes the account, key included.
func (s *Store) SaveAccount(ctx context.Context, ca string, a *acme.Account) error {
	key := s.accountKey(ca, a.Email)
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.put(ctx, key, string(b)); err != nil {
		return fmt.Errorf("etcd key %q: %w", key, err)
	}
	return nil
}

func (s *Store) accountKey(ca, email string) string {
	base := s.base
	if ca != s.o.CAURL {
		base = strings.TrimRight(s.o.Prefix, "/") + "/acme/" + caID(ca) + "/"
	}
	return base + "accounts/" + emailKey(email)
}

// certValue is the value of certs/<name>.
type certValue struct {
	V     int       `json:"v"`
	Chain string    `json:"chain_pem,omitempty"`
	Key   string    `json:"key_pem,omitempty"`
	Meta  acme.Meta `json:"meta"`
}

func (s *Store) certKey(name string) (string, error) {
	if !safeName(name) {
		return "", fmt.Errorf("etcdstore: certificate name %q is not a safe file name", name)
	}
	return s.certsPrefix() + name, nil
}

// LoadCert reads certs/<name>.
func (s *Store) LoadCert(ctx context.Context, name string) (*acme.Cert, error) {
	key, err := s.certKey(name)
	if err != nil {
		return nil, err
	}
	b, _, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, acme.ErrNotFound
	}
	return decodeCert(key, b)
}

func decodeCert(key string, b []byte) (*acme.Cert, error) {
	if len(b) > MaxValue {
		return nil, fmt.Errorf("etcd key %q: value of %d bytes, more than %d", key, len(b), MaxValue)
	}
	var v certValue
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("etcd key %q: %w", key, err)
	}
	if v.V != 1 {
		return nil, fmt.Errorf("etcd key %q: unknown version %d", key, v.V)
	}
	if (v.Chain == "") != (v.Key == "") {
		return nil, fmt.Errorf("etcd key %q: a certificate without its key or a key without its certificate", key)
	}
	c := &acme.Cert{Meta: v.Meta}
	if v.Chain != "" {
		if blk, _ := pem.Decode([]byte(v.Chain)); blk == nil || blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("etcd key %q: the chain is not a PEM certificate", key)
		}
		if blk, _ := pem.Decode([]byte(v.Key)); blk == nil || !strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("etcd key %q: the key is not a PEM private key", key)
		}
		c.Chain, c.Key = []byte(v.Chain), []byte(v.Key)
	}
	return c, nil
}

// SaveCert writes chain, key and meta in one value.
func (s *Store) SaveCert(ctx context.Context, name string, c *acme.Cert) error {
	key, err := s.certKey(name)
	if err != nil {
		return err
	}
	b, err := json.Marshal(certValue{V: 1, Chain: string(c.Chain), Key: string(c.Key), Meta: c.Meta})
	if err != nil {
		return err
	}
	if _, err := s.put(ctx, key, string(b)); err != nil {
		return fmt.Errorf("etcd key %q: %w", key, err)
	}
	return nil
}

// SaveMeta replaces the meta and keeps the chain and key: a read, then a write if the value did
// not change meanwhile (retried). A value that cannot be read is replaced.
func (s *Store) SaveMeta(ctx context.Context, name string, m *acme.Meta) error {
	key, err := s.certKey(name)
	if err != nil {
		return err
	}
	for range 5 {
		b, rev, err := s.get(ctx, key)
		if err != nil {
			return err
		}
		v := certValue{V: 1, Meta: *m}
		if b != nil {
			if c, err := decodeCert(key, b); err == nil {
				v.Chain, v.Key = string(c.Chain), string(c.Key)
			}
		}
		nb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		ok, err := s.put(ctx, key, string(nb), clientv3.Compare(clientv3.ModRevision(key), "=", rev))
		if err != nil {
			return fmt.Errorf("etcd key %q: %w", key, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("etcd key %q: changed during every attempt to write its meta", key)
}

func (s *Store) tokenKey(token string) (string, error) {
	if !validToken(token) {
		return "", fmt.Errorf("etcdstore: token %q is not an ACME token", token)
	}
	return s.base + "tokens/" + token, nil
}

// PutToken writes tokens/<token> under a lease of its own (TokenTTL), so that a token whose
// order never cleans up goes on its own.
func (s *Store) PutToken(ctx context.Context, token, keyAuth string) error {
	key, err := s.tokenKey(token)
	if err != nil {
		return err
	}
	if !validKeyAuth(token, keyAuth) {
		return fmt.Errorf("etcdstore: token %q: not a key authorization for it", token)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	lease, err := s.cli.Grant(ctx, s.tokenTTL)
	if err != nil {
		return fmt.Errorf("etcd key %q: lease: %w", key, err)
	}
	if _, err := s.cli.Put(ctx, key, keyAuth, clientv3.WithLease(lease.ID)); err != nil {
		s.revoke(lease.ID)
		return fmt.Errorf("etcd key %q: %w", key, err)
	}
	return nil
}

// Token reads tokens/<token>: any gateway answers the challenge of any gateway's order.
func (s *Store) Token(ctx context.Context, token string) (string, error) {
	key, err := s.tokenKey(token)
	if err != nil {
		return "", acme.ErrNotFound
	}
	b, _, err := s.get(ctx, key)
	if err != nil {
		return "", err
	}
	if b == nil {
		return "", acme.ErrNotFound
	}
	if !validKeyAuth(token, string(b)) {
		return "", fmt.Errorf("etcd key %q: not a key authorization for its token", key)
	}
	return string(b), nil
}

// DeleteToken deletes tokens/<token> and revokes its lease.
func (s *Store) DeleteToken(ctx context.Context, token string) error {
	key, err := s.tokenKey(token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	resp, err := s.cli.Delete(ctx, key, clientv3.WithPrevKV())
	if err != nil {
		return fmt.Errorf("etcd key %q: %w", key, err)
	}
	for _, kv := range resp.PrevKvs {
		if kv.Lease != 0 {
			_, _ = s.cli.Revoke(ctx, clientv3.LeaseID(kv.Lease))
		}
	}
	return nil
}

// caID names a CA's directory URL readably (host and port) and uniquely (a hash of the URL), as
// the directory store does.
func caID(ca string) string {
	sum := sha256.Sum256([]byte(ca))
	host := "ca"
	if u, err := url.Parse(ca); err == nil && u.Host != "" {
		host = safeSegment(u.Host)
	}
	return host + "-" + hex.EncodeToString(sum[:4])
}

var emailRE = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$`)

// emailKey is the email itself when it is a plain address, "_default" for none, else a hash.
func emailKey(email string) string {
	switch {
	case email == "":
		return "_default"
	case len(email) <= 254 && emailRE.MatchString(email) && !strings.HasPrefix(email, "."):
		return email
	default:
		sum := sha256.Sum256([]byte(email))
		return hex.EncodeToString(sum[:8])
	}
}

// safeSegment keeps letters, digits, '.', '-' and '_' and replaces anything else with '_'.
func safeSegment(s string) string {
	b := []byte(strings.TrimLeft(s, "."))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// safeName is a certificate name that is a safe file name in the mirror directory.
func safeName(name string) bool {
	return certs.SafeName(name) && !strings.HasPrefix(name, ".") && !strings.Contains(name, "*")
}

// validToken is RFC 8555's token alphabet (base64url, no padding), bounded.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validKeyAuth is "<token>.<base64url thumbprint>".
func validKeyAuth(token, ka string) bool {
	thumb, ok := strings.CutPrefix(ka, token+".")
	return ok && validToken(thumb)
}
