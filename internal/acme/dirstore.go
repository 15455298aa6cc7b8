package acme

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vhost-gen/vhost-gen/internal/atomicfile"
)

// DirStore keeps the ACME state in a directory:
//
//	DIR/<name>.crt                      full chain, 0644
//	DIR/<name>.key                      private key, 0600
//	DIR/<name>.json                     meta, 0644
//	DIR/accounts/<ca-id>/<email>.json   account with its key, 0600
//
// Pending tokens live in memory: only this process answers them. Locks are in-process.
type DirStore struct {
	dir string

	mu     sync.Mutex
	locks  map[string]chan struct{}
	tokens map[string]string
}

// NewDirStore creates dir (0700) if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: storage: %w", err)
	}
	return &DirStore{dir: dir, locks: map[string]chan struct{}{}, tokens: map[string]string{}}, nil
}

// Lock is an in-process lock per name.
func (s *DirStore) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	s.mu.Lock()
	ch := s.locks[name]
	if ch == nil {
		ch = make(chan struct{}, 1)
		s.locks[name] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return ctx, func() { <-ch }, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// LoadAccount reads DIR/accounts/<ca-id>/<email>.json.
func (s *DirStore) LoadAccount(_ context.Context, ca, email string) (*Account, error) {
	b, err := os.ReadFile(s.accountPath(ca, email))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var a Account
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("account of %q at %s: %w", email, ca, err)
	}
	return &a, nil
}

// SaveAccount writes the account, key included, 0600.
func (s *DirStore) SaveAccount(_ context.Context, ca string, a *Account) error {
	p := s.accountPath(ca, a.Email)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(p, b, 0o600)
}

// LoadCert reads <name>.crt, .key and .json; any of them may be missing.
func (s *DirStore) LoadCert(_ context.Context, name string) (*Cert, error) {
	base, err := s.certBase(name)
	if err != nil {
		return nil, err
	}
	var c Cert
	found := false
	for _, f := range []struct {
		ext string
		dst *[]byte
	}{{".crt", &c.Chain}, {".key", &c.Key}} {
		b, err := readOptional(base + f.ext)
		if err != nil {
			return nil, err
		}
		*f.dst, found = b, found || b != nil
	}
	b, err := readOptional(base + ".json")
	if err != nil {
		return nil, err
	}
	if b != nil {
		found = true
		if err := json.Unmarshal(b, &c.Meta); err != nil {
			return nil, fmt.Errorf("%s.json: %w", name, err)
		}
	}
	if !found {
		return nil, ErrNotFound
	}
	return &c, nil
}

// SaveCert writes the key and the chain to temporary files first and renames them in turn, so
// that the pair on disk is mismatched only between two renames; the meta follows.
func (s *DirStore) SaveCert(_ context.Context, name string, c *Cert) error {
	base, err := s.certBase(name)
	if err != nil {
		return err
	}
	key, err := atomicfile.WriteTemp(base+".key", c.Key, 0o600)
	if err != nil {
		return err
	}
	crt, err := atomicfile.WriteTemp(base+".crt", c.Chain, 0o644)
	if err != nil {
		_ = os.Remove(key)
		return err
	}
	if err := os.Rename(key, base+".key"); err != nil {
		_ = os.Remove(key)
		_ = os.Remove(crt)
		return err
	}
	if err := os.Rename(crt, base+".crt"); err != nil {
		_ = os.Remove(crt)
		return err
	}
	return s.writeMeta(base, &c.Meta)
}

// SaveMeta writes <name>.json.
func (s *DirStore) SaveMeta(_ context.Context, name string, m *Meta) error {
	base, err := s.certBase(name)
	if err != nil {
		return err
	}
	return s.writeMeta(base, m)
}

func (s *DirStore) writeMeta(base string, m *Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(base+".json", b, 0o644); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(base))
}

// PutToken keeps the token in memory.
func (s *DirStore) PutToken(_ context.Context, token, keyAuth string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = keyAuth
	return nil
}

// Token returns the key authorization of a pending token.
func (s *DirStore) Token(_ context.Context, token string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ka, ok := s.tokens[token]
	if !ok {
		return "", ErrNotFound
	}
	return ka, nil
}

// DeleteToken forgets the token.
func (s *DirStore) DeleteToken(_ context.Context, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
	return nil
}

// certBase is DIR/<name>, refusing any name that could leave DIR.
func (s *DirStore) certBase(name string) (string, error) {
	if !validHost(name) {
		return "", fmt.Errorf("certificate name %q is not a safe file name", name)
	}
	return filepath.Join(s.dir, name), nil
}

func (s *DirStore) accountPath(ca, email string) string {
	return filepath.Join(s.dir, "accounts", caID(ca), emailFile(email)+".json")
}

// caID names a CA's directory URL readably (host and port) and uniquely (a hash of the URL), so
// that staging and production accounts never mix.
func caID(ca string) string {
	sum := sha256.Sum256([]byte(ca))
	host := "ca"
	if u, err := url.Parse(ca); err == nil && u.Host != "" {
		host = safeFile(u.Host)
	}
	return host + "-" + hex.EncodeToString(sum[:4])
}

func emailFile(email string) string {
	switch {
	case email == "":
		return "_default"
	case emailRE.MatchString(email) && !strings.HasPrefix(email, "."):
		return email
	default:
		sum := sha256.Sum256([]byte(email))
		return hex.EncodeToString(sum[:8])
	}
}

// safeFile keeps letters, digits, '.', '-' and '_' and replaces anything else with '_'.
func safeFile(s string) string {
	b := []byte(strings.TrimLeft(s, "."))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}
