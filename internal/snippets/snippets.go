// Package snippets holds the operator's config snippets: files from a mounted directory (nginx-proxy's
// vhost.d, or HAProxy's equivalent) that the templates write into the config, per site, per
// route or for every site. They are trusted (an operator's files, not labels), bounded, and
// checked with the rest of the config: a snippet that the proxy refuses takes its site out of
// the config (the quarantine), with the proxy's message, and never breaks the running proxy.
package snippets

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vhost-gen/vhost-gen/internal/dirwatch"
)

// Bounds on what a directory may hold: snippets, not a second config.
const (
	MaxFile  = 256 << 10
	MaxFiles = 10000
	MaxTotal = 16 << 20
)

// File is one snippet.
type File struct {
	// Name is the file's name in its directory, Content its text, SHA256 its hash (hex).
	Name, Content, SHA256 string
}

// Set is one directory's snippets by name, and the files that could not be used.
type Set struct {
	Dir      string
	files    map[string]File
	Problems []string
}

// Load reads every regular file of dir (symlinks followed), in name order. A missing directory
// is an empty Set; a file too large, not UTF-8 text or holding a NUL byte is left out with a
// problem naming it.
func Load(dir string) (*Set, error) { return LoadMatching(dir, nil) }

// LoadMatching is Load for the files whose names match (nil: all); the others are not read.
func LoadMatching(dir string, match func(name string) bool) (*Set, error) {
	s := &Set{Dir: dir, files: map[string]File{}}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	names, err := dirwatch.ListDir(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	total := 0
	for _, n := range names {
		if strings.HasPrefix(n, ".") || (match != nil && !match(n)) {
			continue // editors' and Kubernetes' hidden files, or not asked for
		}
		if len(s.files) == MaxFiles {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: more than %d files: the rest are left out", dir, MaxFiles))
			break
		}
		content, err := readFile(root, n)
		if errors.Is(err, errNotRegular) {
			continue
		}
		if err == nil && total+len(content) > MaxTotal {
			err = fmt.Errorf("the directory's files pass %d bytes together", MaxTotal)
		}
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: left out: %v", filepath.Join(dir, n), err))
			continue
		}
		total += len(content)
		sum := sha256.Sum256([]byte(content))
		s.files[n] = File{Name: n, Content: content, SHA256: hex.EncodeToString(sum[:])}
	}
	return s, nil
}

var errNotRegular = errors.New("not a regular file")

func readFile(root *os.Root, name string) (string, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", errNotRegular
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > MaxFile:
		return "", fmt.Errorf("more than %d bytes", MaxFile)
	case !utf8.Valid(b):
		return "", errors.New("not UTF-8 text")
	case strings.IndexByte(string(b), 0) >= 0:
		return "", errors.New("holds a NUL byte")
	}
	return string(b), nil
}

// Get returns the snippet of that name, or nil. A nil Set has none.
func (s *Set) Get(name string) *File {
	if s == nil {
		return nil
	}
	if f, ok := s.files[name]; ok {
		return &f
	}
	return nil
}

// Names lists the snippets' names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Files are the snippets in name order.
func (s *Set) Files() []File {
	var out []File
	for _, n := range s.Names() {
		out = append(out, s.files[n])
	}
	return out
}

// Equal reports whether two Sets hold the same files and problems.
func (s *Set) Equal(o *Set) bool {
	if s == nil || o == nil {
		return s == o
	}
	if len(s.files) != len(o.files) || strings.Join(s.Problems, "\n") != strings.Join(o.Problems, "\n") {
		return false
	}
	for n, f := range s.files {
		if g, ok := o.files[n]; !ok || g.SHA256 != f.SHA256 {
			return false
		}
	}
	return true
}

// HostName is the name a host's files have, nginx-proxy's: the host itself, or for a regular
// expression, the SHA-1 of it (with its '~').
func HostName(host string) string {
	if strings.HasPrefix(host, "~") {
		return sha1Hex(host)
	}
	return host
}

// PathHash is nginx-proxy's hash of a path in file names: its SHA-1.
func PathHash(path string) string { return sha1Hex(path) }

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Empty reports whether there is no snippet at all: lookups then hash nothing (they run per
// route, per render).
func (s *Set) Empty() bool { return s == nil || len(s.files) == 0 }

// first returns the first of names that the Set holds.
func (s *Set) first(names ...string) *File {
	for _, n := range names {
		if f := s.Get(n); f != nil {
			return f
		}
	}
	return nil
}

// Server is nginx-proxy's vhost.d snippet for a host's server blocks: <host>, else default.
func (s *Set) Server(host string) *File {
	if s.Empty() {
		return nil
	}
	return s.first(HostName(host), "default")
}

// Location is the snippet inside a route's location: <host>_<sha1(path)>_location, else
// <host>_location, else default_location.
func (s *Set) Location(host, path string) *File {
	if s.Empty() {
		return nil
	}
	h := HostName(host)
	return s.first(h+"_"+PathHash(path)+"_location", h+"_location", "default_location")
}

// Override replaces a route's whole location block: <host>_<sha1(path)>_location_override, and
// for "/" also <host>_location_override.
func (s *Set) Override(host, path string) *File {
	if s.Empty() {
		return nil
	}
	h := HostName(host)
	if path == "/" {
		return s.first(h+"_"+PathHash(path)+"_location_override", h+"_location_override")
	}
	return s.first(h + "_" + PathHash(path) + "_location_override")
}

// Backend is HAProxy's snippet for a route's backend: <host>_<sha1(path)>_backend, else
// <host>_backend, else default_backend.
func (s *Set) Backend(host, path string) *File {
	if s.Empty() {
		return nil
	}
	h := HostName(host)
	return s.first(h+"_"+PathHash(path)+"_backend", h+"_backend", "default_backend")
}

// Frontend is HAProxy's snippet for its HTTP frontend, before the routing rules: frontend.
func (s *Set) Frontend() *File { return s.Get("frontend") }

// Lines are the snippet's lines, for a template to indent; a final newline ends the last.
func (f *File) Lines() []string {
	return strings.Split(strings.TrimRight(strings.ReplaceAll(f.Content, "\r\n", "\n"), "\n"), "\n")
}

// New makes a Set from files by name (callers that have them already: tests, other sources).
func New(dir string, files map[string]string) *Set {
	s := &Set{Dir: dir, files: map[string]File{}}
	for n, c := range files {
		sum := sha256.Sum256([]byte(c))
		s.files[n] = File{Name: n, Content: c, SHA256: hex.EncodeToString(sum[:])}
	}
	return s
}

// Shared are the names of the snippets that every site (or the frontend) takes: a broken one is
// no site's own fault.
var Shared = []string{"default", "default_location", "default_backend", "frontend"}

// WithoutShared is the Set without the Shared snippets (nil stays nil).
func (s *Set) WithoutShared() *Set {
	if s == nil {
		return nil
	}
	out := &Set{Dir: s.Dir, files: maps.Clone(s.files), Problems: s.Problems}
	for _, n := range Shared {
		delete(out.files, n)
	}
	return out
}
