package certs

import (
	"crypto/tls"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Fuzz modes: which files take the fuzzed bytes. A good pair with a fuzzed name is mode 0.
const (
	fuzzCrt      = 1 << iota // <name>.crt is data
	fuzzKey                  // <name>.key is data
	fuzzOptional             // <name>.chain.pem and <name>.dhparam.pem are data
	fuzzSplice               // <name>.crt is the good chain with data written over it at len(data)
	fuzzTruncate             // <name>.crt is the good chain cut after len(data)*7 bytes
)

// FuzzLoad loads a directory holding a good pair, a mismatched pair and files named after a
// fuzzed name, with fuzzed bytes or a good pair (mode says which): never a panic, never an
// unsafe name loaded, never a pair that does not match, never a problem carrying PEM or a
// control character. The directory is in memory (Load's own code after the read; the reads
// through os.Root are unit-tested): on disk, each run costs a directory and six files. The
// fuzzed bytes are small patches rather than whole PEM files: Go's minimizer is quadratic in an
// input's length, and a 1 KiB input takes its whole minute per new interesting input.
func FuzzLoad(f *testing.F) {
	crt, key := selfSigned(f, "a.test", "*.b.test")
	other, _ := selfSigned(f, "c.test")
	for _, name := range []string{"shop.example.com", "*.example.com", "a;b", "a b", "x\n", "../x", "default", "ca", "x.chain", "\xe9"} {
		f.Add(name, uint8(0), []byte{})
	}
	f.Add("good", uint8(fuzzCrt), []byte("garbage"))
	f.Add("k", uint8(fuzzKey), []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
	f.Add("c", uint8(fuzzCrt), []byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
	f.Add("o", uint8(fuzzOptional), []byte("-----BEGIN DH PARAMETERS-----\nAA==\n-----END DH PARAMETERS-----\n"))
	f.Add("s", uint8(fuzzSplice), []byte("\x00\xff"))
	f.Add("t", uint8(fuzzTruncate), []byte("0123456789"))
	const dir = "/etc/nginx/certs"
	f.Fuzz(func(t *testing.T, name string, mode uint8, data []byte) {
		if name == "" || strings.ContainsAny(name, "/\x00") || len(name)+len(".dhparam.pem") > 255 {
			t.Skip("not a file name")
		}
		mem := memFiles{"good.crt": crt, "good.key": key, "other.crt": other, "other.key": key}
		for suffix, b := range fuzzFiles(mode, data, crt, key) {
			mem[name+suffix] = b
		}
		s := load(dir, SourceFile, slices.Sorted(maps.Keys(mem)), mem, time.Now())
		checkFuzzed(t, dir, name, s)
		s.Select(name, "", true)
		s.Select("x."+name, name, false)
		s.KeepGood(s)
	})
}

// memFiles is a directory in memory.
type memFiles map[string][]byte

func (m memFiles) read(name string) ([]byte, string) {
	b, ok := m[name]
	switch {
	case !ok:
		return nil, "removed while loading"
	case len(b) > MaxFileSize:
		return nil, "larger than 1 MiB"
	}
	return b, ""
}

func fuzzFiles(mode uint8, data, crt, key []byte) map[string][]byte {
	files := map[string][]byte{".crt": crt, ".key": key}
	switch {
	case mode&fuzzCrt != 0:
		files[".crt"] = data
	case mode&fuzzSplice != 0:
		c := append([]byte(nil), crt...)
		at := len(data) % len(c)
		files[".crt"] = append(c[:at], append(data, c[min(at+len(data), len(c)):]...)...)
	case mode&fuzzTruncate != 0:
		files[".crt"] = crt[:min(len(data)*7, len(crt))]
	}
	if mode&fuzzKey != 0 {
		files[".key"] = data
	}
	if mode&fuzzOptional != 0 {
		files[".chain.pem"], files[".dhparam.pem"] = data, data
	}
	return files
}

func checkFuzzed(t *testing.T, dir, name string, s *Set) {
	t.Helper()
	for _, n := range s.Names() {
		c, _ := s.Get(n)
		if !SafeName(n) || c.CertFile != filepath.Join(dir, n+".crt") {
			t.Fatalf("unsafe name loaded: %q (%s)", n, c.CertFile)
		}
		if _, err := tls.X509KeyPair(c.pem.chain, c.pem.key); err != nil {
			t.Fatalf("%q loaded with a pair that does not match: %v", n, err)
		}
	}
	if _, ok := s.Get("other"); ok {
		t.Fatal("a mismatched pair loaded")
	}
	if _, ok := s.Get(name); ok && !SafeName(name) {
		t.Fatalf("unsafe %q loaded", name)
	}
	for _, p := range s.Problems() {
		if strings.Contains(p.Reason, "-----") || strings.ContainsAny(p.File+p.Reason, "\n\r\x00\x1b") {
			t.Fatalf("problem carries PEM or a control character: %q", p)
		}
	}
}
