// Package certs is the certificate store in nginx-proxy's layout: a directory of <name>.crt
// (full chain) + <name>.key pairs, with optional <name>.chain.pem and <name>.dhparam.pem, and
// nginx-proxy's order for choosing a host's certificate. Loading validates every pair (a
// half-written, corrupt or hostile file is a Problem, never loaded); Set is an immutable snapshot.
package certs

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Sources of a certificate.
const (
	SourceFile = "file" // the operator's certificate directory
	SourceACME = "acme" // written by vhost-gen's ACME client
)

// DefaultName is the fallback certificate's name (default.crt, default.key).
const DefaultName = "default"

// Cert is one usable certificate: a cert/key pair that parsed and matched.
type Cert struct {
	Name        string    // the file base name: "shop.example.com", "default", a CERT_NAME
	Source      string    // SourceFile or SourceACME
	CertFile    string    // absolute path of the full chain PEM (<name>.crt)
	KeyFile     string    // absolute path of the key (<name>.key)
	ChainFile   string    // <name>.chain.pem if present and valid, else ""
	DHParamFile string    // <name>.dhparam.pem if present and valid, else ""
	Names       []string  // DNS names the leaf covers (SANs, lower case, sorted, unique)
	NotAfter    time.Time // the leaf's
	NotBefore   time.Time // the leaf's
	Serial      string    // the leaf's serial, upper-case hex as openssl and HAProxy print it
	SHA256      string    // hex SHA-256 of the cert file and key file contents together

	// pem is what was validated, kept so that a pair being replaced on disk is never what gets
	// written elsewhere (WriteHAProxy). A pointer: fmt prints a nested pointer as an address,
	// so logging a Cert or a Choice with %+v cannot print the private key.
	pem *material
}

type material struct {
	chain []byte // the CERTIFICATE blocks of <name>.crt, re-encoded (no blank lines, no text)
	key   []byte // the private key block of <name>.key, re-encoded
}

// Expired says whether the leaf is past its NotAfter at now.
func (c Cert) Expired(now time.Time) bool { return !c.NotAfter.IsZero() && now.After(c.NotAfter) }

// Problem is a file in a certificate directory that is not (fully) usable. Reason never
// contains key material. File is the path with control and non-ASCII characters escaped.
type Problem struct{ File, Reason string }

func (p Problem) String() string { return p.File + ": " + p.Reason }

// Set is an immutable snapshot of the usable certificates, by name, and the problems found.
// A nil *Set is an empty set.
type Set struct {
	certs    map[string]Cert
	broken   map[string]broken // names with files present but no usable pair
	problems []Problem
	// clients are the client CAs by host, "" for every host (clientca.go).
	clients map[string]ClientCA
}

// broken is a name whose files are there but did not give a usable pair.
type broken struct {
	reason string
	crt    bool // its .crt is there: nginx-proxy would pick it (Select stops there)
}

func newSet() *Set {
	return &Set{certs: map[string]Cert{}, broken: map[string]broken{}, clients: map[string]ClientCA{}}
}

// Get returns the usable certificate of that name.
func (s *Set) Get(name string) (Cert, bool) {
	if s == nil {
		return Cert{}, false
	}
	c, ok := s.certs[name]
	c.Names = slices.Clone(c.Names) // the snapshot stays immutable
	return c, ok
}

// Names returns the names of the usable certificates, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.certs))
}

// Problems returns the problems found, sorted by file then reason.
func (s *Set) Problems() []Problem {
	if s == nil {
		return nil
	}
	return slices.Clone(s.problems)
}

// Merge returns a set with the certificates of both; a's win over b's with the same name
// (static files over ACME). Problems of both are kept. Either may be nil.
func Merge(a, b *Set) *Set {
	m := newSet()
	for _, s := range []*Set{b, a} { // a last: it overwrites
		if s == nil {
			continue
		}
		maps.Copy(m.certs, s.certs)
		maps.Copy(m.clients, s.clients)
		for n, br := range s.broken {
			old, ok := m.broken[n]
			br.crt = br.crt || (ok && old.crt)
			m.broken[n] = br
		}
		m.problems = append(m.problems, s.problems...)
	}
	sortProblems(m.problems)
	m.problems = slices.Compact(m.problems)
	return m
}

// KeepGood returns s where each name that has a problem in s (its files are there but give no
// usable pair: a replace in progress, a key copied before its certificate) and was usable in
// prev keeps prev's certificate, so that a replace in progress never takes a host's
// certificate away. The problem stays listed. A name whose files are all gone is gone.
func (s *Set) KeepGood(prev *Set) *Set {
	if s == nil {
		s = newSet()
	}
	k := &Set{certs: maps.Clone(s.certs), broken: maps.Clone(s.broken), problems: slices.Clone(s.problems), clients: cloneClients(s.clients)}
	if prev == nil {
		return k
	}
	for n := range s.broken {
		if _, ok := k.certs[n]; ok {
			continue
		}
		if c, ok := prev.certs[n]; ok {
			k.certs[n] = c
		}
	}
	return k
}

func sortProblems(ps []Problem) {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Reason, b.Reason))
	})
}

// equal says whether two sets would give the same choices, files and problems.
func equal(a, b *Set) bool {
	if a == nil || b == nil {
		return a == b
	}
	return maps.EqualFunc(a.certs, b.certs, sameCert) &&
		maps.Equal(a.broken, b.broken) && slices.Equal(a.problems, b.problems) && maps.Equal(a.clients, b.clients)
}

func sameCert(a, b Cert) bool {
	return a.Name == b.Name && a.Source == b.Source && a.CertFile == b.CertFile &&
		a.KeyFile == b.KeyFile && a.ChainFile == b.ChainFile && a.DHParamFile == b.DHParamFile &&
		a.SHA256 == b.SHA256
}
