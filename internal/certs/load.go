package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/dirwatch"
)

// MaxFileSize bounds every file read from a certificate directory: a full chain is a few KiB.
const MaxFileSize = 1 << 20

// maxNameLen keeps <name>.dhparam.pem within a file name's 255 bytes.
const maxNameLen = 255 - len(".dhparam.pem")

// SafeName says whether name can be a certificate's name: it ends up in nginx's ssl_certificate
// path and HAProxy's crt-list, so letters, digits, '.', '-', '_' and '*' (nginx-proxy's
// wildcard hosts: *.example.com.crt) only.
func SafeName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_*", c) >= 0) {
			return false
		}
	}
	return true
}

// Load reads a directory (not recursively) in nginx-proxy's layout: <name>.crt + <name>.key,
// optional <name>.chain.pem and <name>.dhparam.pem. source is SourceFile or SourceACME. A
// missing directory is an empty Set; an unreadable one is an error. Symlinks are followed only
// while they stay inside the directory (acme-companion's ./<base>/fullchain.pem links are).
func Load(dir, source string) (*Set, error) {
	if source != SourceFile && source != SourceACME {
		return nil, fmt.Errorf("certificate source %q: must be %q or %q", source, SourceFile, SourceACME)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("certificate directory %s: %w", dir, err)
	}
	root, err := os.OpenRoot(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return newSet(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("certificate directory %s: %w", abs, err)
	}
	defer root.Close()
	names, err := dirwatch.ListDir(root)
	if err != nil {
		return nil, fmt.Errorf("certificate directory %s: %w", abs, err)
	}
	return load(abs, source, names, rootFiles{root}, time.Now()), nil
}

// load classifies and validates the files of a directory listing; files reads them.
func load(dir, source string, names []string, files files, now time.Time) *Set {
	l := &loader{files: files, dir: dir, source: source, now: now, set: newSet(), present: map[string]bool{}}
	for _, n := range names {
		l.present[n] = true
	}
	for _, n := range names {
		l.entry(n)
	}
	l.clientCAs()
	sortProblems(l.set.problems)
	return l.set
}

// files reads a directory's files: a file's contents, or why it cannot be used.
type files interface {
	read(name string) ([]byte, string)
}

type loader struct {
	files   files
	dir     string
	source  string
	now     time.Time
	present map[string]bool
	set     *Set
}

func (l *loader) entry(name string) {
	switch {
	case strings.HasSuffix(name, ".crt"):
		stem := strings.TrimSuffix(name, ".crt")
		if !SafeName(stem) {
			l.problem(name, unsafeReason)
			return
		}
		l.pair(stem)
	case strings.HasSuffix(name, ".key"):
		stem := strings.TrimSuffix(name, ".key")
		switch {
		case l.present[stem+".crt"]:
			// read with its certificate
		case !SafeName(stem):
			l.problem(name, unsafeReason)
		default:
			l.fail(stem, name, "key without its certificate "+stem+".crt: not loaded", false)
		}
	}
}

const unsafeReason = "not a safe certificate name (letters, digits, '.', '-', '_' and '*' only): never loaded"

func (l *loader) problem(name, reason string) {
	l.set.problems = append(l.set.problems, Problem{File: l.dir + string(filepath.Separator) + printable(name), Reason: reason})
}

// fail records a name whose files gave no usable pair.
func (l *loader) fail(stem, file, reason string, crt bool) {
	l.problem(file, reason)
	l.set.broken[stem] = broken{reason: printable(file) + ": " + reason, crt: crt}
}

// auxiliary says whether a .crt without a key is another file of nginx-proxy's directory rather
// than half a pair: mTLS client CAs (ca.crt, <host>.ca.crt) and old <name>.chain.crt files.
func auxiliary(stem string) bool {
	return stem == "ca" || strings.HasSuffix(stem, ".ca") || strings.HasSuffix(stem, ".chain")
}

func (l *loader) pair(stem string) {
	crtName, keyName := stem+".crt", stem+".key"
	if !l.present[keyName] {
		if !auxiliary(stem) {
			l.fail(stem, crtName, "certificate without its key "+keyName+": not loaded", true)
		}
		return
	}
	crtRaw, why := l.files.read(crtName)
	if why != "" {
		l.fail(stem, crtName, why+": not loaded", true)
		return
	}
	keyRaw, why := l.files.read(keyName)
	if why != "" {
		l.fail(stem, keyName, why+": not loaded", true)
		return
	}
	c, keyFault, why := parsePair(crtRaw, keyRaw, keyName, crtName)
	if why != "" {
		file := crtName
		if keyFault {
			file = keyName
		}
		l.fail(stem, file, why+": not loaded", true)
		return
	}
	c.Name, c.Source = stem, l.source
	c.CertFile, c.KeyFile = l.path(crtName), l.path(keyName)
	c.ChainFile = l.optional(stem+".chain.pem", validChain)
	c.DHParamFile = l.optional(stem+".dhparam.pem", validDHParam)
	l.validity(crtName, c)
	l.set.certs[stem] = c
}

func (l *loader) path(name string) string { return filepath.Join(l.dir, name) }

// validity lists an expired or not yet valid certificate: still loaded, as nginx-proxy serves it.
func (l *loader) validity(crtName string, c Cert) {
	if c.Expired(l.now) {
		l.problem(crtName, "expired on "+c.NotAfter.UTC().Format(time.RFC3339)+": still served")
	}
	if l.now.Before(c.NotBefore) {
		l.problem(crtName, "not valid before "+c.NotBefore.UTC().Format(time.RFC3339)+": still served")
	}
}

// optional returns the path of an optional file when it is there and valid; an invalid one is
// a problem and left out (the certificate is served without it).
func (l *loader) optional(name string, valid func([]byte) string) string {
	if !l.present[name] {
		return ""
	}
	raw, why := l.files.read(name)
	if why == "" {
		why = valid(raw)
	}
	if why != "" {
		l.problem(name, why+": ignored")
		return ""
	}
	return l.path(name)
}

// rootFiles reads files through an os.Root, so that no symlink leads outside the directory.
type rootFiles struct{ root *os.Root }

// read returns a regular file's contents, or why it cannot be used. Non-blocking, so that a
// FIFO cannot hang the load.
func (r rootFiles) read(name string) ([]byte, string) {
	f, err := r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, r.openFault(name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, "cannot read: " + err.Error()
	}
	if !fi.Mode().IsRegular() {
		return nil, "not a regular file"
	}
	if fi.Size() > MaxFileSize {
		return nil, "larger than 1 MiB"
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, "cannot read: " + err.Error()
	}
	if len(data) > MaxFileSize {
		return nil, "larger than 1 MiB"
	}
	return data, ""
}

func (r rootFiles) openFault(name string, err error) string {
	fi, lerr := r.root.Lstat(name)
	switch {
	case lerr == nil && fi.Mode()&fs.ModeSymlink != 0 && errors.Is(err, fs.ErrNotExist):
		return "symlink to a file that does not exist"
	case lerr == nil && fi.Mode()&fs.ModeSymlink != 0:
		return "symlink leading outside the certificate directory (or absolute): not followed"
	case errors.Is(err, fs.ErrNotExist):
		return "removed while loading"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return "cannot open"
}

// parsePair validates a full chain and its key; keyFault says which file a failure is about.
func parsePair(crtRaw, keyRaw []byte, keyName, crtName string) (c Cert, keyFault bool, why string) {
	chain, leaf, why := parseChain(crtRaw)
	if why != "" {
		return Cert{}, false, why
	}
	key, priv, why := parseKey(keyRaw)
	if why != "" {
		return Cert{}, true, why
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(priv.Public()) {
		return Cert{}, true, "private key does not match the certificate " + crtName + " (a pair being replaced?)"
	}
	// The standard library's own check, on the very bytes that will be used.
	if _, err := tls.X509KeyPair(chain, key); err != nil {
		return Cert{}, true, "tls.X509KeyPair refuses the pair with " + crtName
	}
	return Cert{
		Names:     dnsNames(leaf),
		NotAfter:  leaf.NotAfter,
		NotBefore: leaf.NotBefore,
		Serial:    serialHex(leaf),
		SHA256:    digest(crtRaw, keyRaw),
		pem:       &material{chain: chain, key: key},
	}, false, ""
}

// parseChain returns the CERTIFICATE blocks re-encoded (text and blank lines dropped) and the
// leaf, the first one. Every block must parse: nginx would refuse a bad intermediate.
func parseChain(raw []byte) ([]byte, *x509.Certificate, string) {
	var out []byte
	var leaf *x509.Certificate
	for blk, rest := pem.Decode(raw); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, "certificate does not parse (" + printable(err.Error()) + ")"
		}
		if leaf == nil {
			leaf = c
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: blk.Bytes})...)
	}
	if leaf == nil {
		return nil, nil, "no PEM certificate in the file"
	}
	return out, leaf, ""
}

// parseKey returns the first private key block re-encoded and the key. Its error text is never
// passed on: this is about a private key.
func parseKey(raw []byte) ([]byte, crypto.Signer, string) {
	for blk, rest := pem.Decode(raw); blk != nil; blk, rest = pem.Decode(rest) {
		if blk.Type != "PRIVATE KEY" && !strings.HasSuffix(blk.Type, " PRIVATE KEY") {
			continue
		}
		priv := parsePrivateKey(blk.Bytes)
		if priv == nil || len(blk.Headers) > 0 {
			return nil, nil, "private key does not parse (encrypted keys are not supported)"
		}
		return pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: blk.Bytes}), priv, ""
	}
	return nil, nil, "no PEM private key in the file"
}

// parsePrivateKey accepts what crypto/tls accepts: PKCS#1, PKCS#8 and SEC 1 keys.
func parsePrivateKey(der []byte) crypto.Signer {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer)
		}
		return nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k
	}
	return nil
}

func dnsNames(leaf *x509.Certificate) []string {
	var names []string
	for _, n := range leaf.DNSNames {
		names = append(names, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// serialHex prints the serial as openssl and HAProxy's "show ssl cert" do.
func serialHex(leaf *x509.Certificate) string {
	if leaf.SerialNumber == nil || leaf.SerialNumber.Sign() == 0 {
		return "00"
	}
	return strings.ToUpper(hex.EncodeToString(leaf.SerialNumber.Bytes()))
}

// digest hashes both files, the first one's length first so that bytes cannot move between them.
func digest(crt, key []byte) string {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, uint64(len(crt)))
	h.Write(crt)
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}

func validChain(raw []byte) string {
	if _, _, why := parseChain(raw); why != "" {
		return "chain: " + why
	}
	return ""
}

func validDHParam(raw []byte) string {
	for blk, rest := pem.Decode(raw); blk != nil; blk, rest = pem.Decode(rest) {
		if strings.HasSuffix(blk.Type, "DH PARAMETERS") {
			return ""
		}
	}
	return "no PEM DH PARAMETERS block in the file"
}

// printable escapes control and non-ASCII bytes so that a hostile file name cannot forge a log line.
func printable(s string) string {
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
