package certs

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	authority := newCA(t)
	shopCrt, shopKey := authority.leaf(t, leafOpts{names: []string{"Shop.Example.com", "www.shop.example.com"}})
	_, otherKey := selfSigned(t, "other.test")
	oldCrt, oldKey := authority.leaf(t, leafOpts{names: []string{"old.test"}, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	soonCrt, soonKey := authority.leaf(t, leafOpts{names: []string{"soon.test"}, notBefore: time.Now().Add(time.Hour)})
	rsaCrt, rsaKeyPEM := authority.leaf(t, leafOpts{names: []string{"rsa.test"}, key: rsaKey(t)})
	edCrt, edKeyPEM := authority.leaf(t, leafOpts{names: []string{"ed.test"}, key: edKey(t)})
	dh := pemBlock("DH PARAMETERS", []byte{0x30, 0x03, 0x02, 0x01, 0x02})
	garbage := []byte("this is not PEM\n")
	badDER := pemBlock("CERTIFICATE", []byte("not DER at all"))

	type want struct {
		loaded   []string          // names of usable certificates
		problems map[string]string // file base name (as escaped in Problem.File) → reason substring
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  want
		check func(t *testing.T, dir string, s *Set)
	}{
		{
			name:  "good pair",
			setup: func(t *testing.T, dir string) { pair(t, dir, "shop.example.com", shopCrt, shopKey) },
			want:  want{loaded: []string{"shop.example.com"}},
			check: func(t *testing.T, dir string, s *Set) {
				c, _ := s.Get("shop.example.com")
				if c.Source != SourceFile || c.CertFile != filepath.Join(dir, "shop.example.com.crt") || c.KeyFile != filepath.Join(dir, "shop.example.com.key") {
					t.Errorf("paths/source: %+v", c)
				}
				if !slices.Equal(c.Names, []string{"shop.example.com", "www.shop.example.com"}) {
					t.Errorf("Names = %v", c.Names)
				}
				if c.Serial != serialOf(t, shopCrt) || len(c.SHA256) != 64 || c.ChainFile != "" || c.DHParamFile != "" {
					t.Errorf("serial/sha/optional: %+v", c)
				}
				if c.NotAfter.IsZero() || !strings.Contains(string(c.pem.chain), "CERTIFICATE") {
					t.Errorf("leaf data: %+v", c)
				}
			},
		},
		{
			name: "chain and dhparam",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "shop", shopCrt, shopKey)
				write(t, dir, "shop.chain.pem", authority.pem)
				write(t, dir, "shop.dhparam.pem", dh)
			},
			want: want{loaded: []string{"shop"}},
			check: func(t *testing.T, dir string, s *Set) {
				c, _ := s.Get("shop")
				if c.ChainFile != filepath.Join(dir, "shop.chain.pem") || c.DHParamFile != filepath.Join(dir, "shop.dhparam.pem") {
					t.Errorf("optional files: %q %q", c.ChainFile, c.DHParamFile)
				}
			},
		},
		{
			name: "bad chain and dhparam are left out, the pair is served",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "shop", shopCrt, shopKey)
				write(t, dir, "shop.chain.pem", garbage)
				write(t, dir, "shop.dhparam.pem", shopCrt)
			},
			want: want{loaded: []string{"shop"}, problems: map[string]string{
				"shop.chain.pem":   "chain: no PEM certificate in the file: ignored",
				"shop.dhparam.pem": "no PEM DH PARAMETERS block in the file: ignored",
			}},
			check: func(t *testing.T, dir string, s *Set) {
				if c, _ := s.Get("shop"); c.ChainFile != "" || c.DHParamFile != "" {
					t.Errorf("optional files kept: %+v", c)
				}
			},
		},
		{
			name:  "crt without key",
			setup: func(t *testing.T, dir string) { write(t, dir, "a.test.crt", shopCrt) },
			want:  want{problems: map[string]string{"a.test.crt": "certificate without its key a.test.key: not loaded"}},
		},
		{
			name:  "key without crt",
			setup: func(t *testing.T, dir string) { write(t, dir, "a.test.key", shopKey) },
			want:  want{problems: map[string]string{"a.test.key": "key without its certificate a.test.crt: not loaded"}},
		},
		{
			name:  "key does not match",
			setup: func(t *testing.T, dir string) { pair(t, dir, "shop", shopCrt, otherKey) },
			want:  want{problems: map[string]string{"shop.key": "private key does not match the certificate shop.crt (a pair being replaced?): not loaded"}},
		},
		{
			name:  "garbage crt",
			setup: func(t *testing.T, dir string) { pair(t, dir, "shop", garbage, shopKey) },
			want:  want{problems: map[string]string{"shop.crt": "no PEM certificate in the file: not loaded"}},
		},
		{
			name:  "certificate block that is not DER",
			setup: func(t *testing.T, dir string) { pair(t, dir, "shop", badDER, shopKey) },
			want:  want{problems: map[string]string{"shop.crt": "certificate does not parse (x509: "}},
		},
		{
			name: "bad intermediate",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "shop", append(slices.Clone(shopCrt), badDER...), shopKey)
			},
			want: want{problems: map[string]string{"shop.crt": "certificate does not parse"}},
		},
		{
			name:  "garbage key",
			setup: func(t *testing.T, dir string) { pair(t, dir, "shop", shopCrt, garbage) },
			want:  want{problems: map[string]string{"shop.key": "no PEM private key in the file: not loaded"}},
		},
		{
			name: "key that does not parse",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "shop", shopCrt, pemBlock("ENCRYPTED PRIVATE KEY", []byte("opaque")))
			},
			want: want{problems: map[string]string{"shop.key": "private key does not parse (encrypted keys are not supported): not loaded"}},
		},
		{
			name:  "expired is loaded and listed",
			setup: func(t *testing.T, dir string) { pair(t, dir, "old.test", oldCrt, oldKey) },
			want:  want{loaded: []string{"old.test"}, problems: map[string]string{"old.test.crt": "expired on "}},
		},
		{
			name:  "not yet valid is loaded and listed",
			setup: func(t *testing.T, dir string) { pair(t, dir, "soon.test", soonCrt, soonKey) },
			want:  want{loaded: []string{"soon.test"}, problems: map[string]string{"soon.test.crt": "not valid before "}},
		},
		{
			name: "RSA (PKCS#8) and Ed25519 keys, PKCS#1 and SEC 1 encodings",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "rsa.test", rsaCrt, rsaKeyPEM)
				pair(t, dir, "ed.test", edCrt, edKeyPEM)
				pair(t, dir, "pkcs1.test", rsaCrt, reencodeKey(t, rsaKeyPEM, "RSA PRIVATE KEY"))
				pair(t, dir, "sec1.test", shopCrt, reencodeKey(t, shopKey, "EC PRIVATE KEY"))
			},
			want: want{loaded: []string{"ed.test", "pkcs1.test", "rsa.test", "sec1.test"}},
		},
		{
			name: "huge file",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "big", append(bytes.Repeat([]byte("x"), MaxFileSize), shopCrt...), shopKey)
				pair(t, dir, "bigkey", shopCrt, append(bytes.Repeat([]byte("\n"), MaxFileSize), shopKey...))
			},
			want: want{problems: map[string]string{
				"big.crt":    "larger than 1 MiB: not loaded",
				"bigkey.key": "larger than 1 MiB: not loaded",
			}},
		},
		{
			name: "hostile names",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "a;b", shopCrt, shopKey)
				pair(t, dir, "with space", shopCrt, shopKey)
				pair(t, dir, "new\nline", shopCrt, shopKey)
				pair(t, dir, "quote\"", shopCrt, shopKey)
				pair(t, dir, "", shopCrt, shopKey) // .crt and .key: an empty name
				write(t, dir, "lone$.key", shopKey)
			},
			want: want{problems: map[string]string{
				"a;b.crt":        unsafeReason,
				"with space.crt": unsafeReason,
				`new\nline.crt`:  unsafeReason,
				`quote\".crt`:    unsafeReason,
				".crt":           unsafeReason,
				"lone$.key":      unsafeReason,
			}},
		},
		{
			name: "symlink escaping the directory",
			setup: func(t *testing.T, dir string) {
				outside := filepath.Join(filepath.Dir(dir), "outside")
				pair(t, outside, "x", shopCrt, shopKey)
				symlink(t, "../outside/x.crt", dir, "x.crt")
				write(t, dir, "x.key", shopKey)
				write(t, dir, "y.crt", shopCrt)
				symlink(t, "../outside/x.key", dir, "y.key")
				symlink(t, "../outside", dir, "sub")
				symlink(t, "sub/x.crt", dir, "z.crt")
				write(t, dir, "z.key", shopKey)
			},
			want: want{problems: map[string]string{
				"x.crt": "symlink leading outside the certificate directory (or absolute): not followed: not loaded",
				"y.key": "symlink leading outside the certificate directory (or absolute): not followed: not loaded",
				"z.crt": "symlink leading outside",
			}},
		},
		{
			name: "absolute symlink, even into the directory, is not followed",
			setup: func(t *testing.T, dir string) {
				pair(t, dir, "real", shopCrt, shopKey)
				symlink(t, filepath.Join(dir, "real.crt"), dir, "abs.crt")
				symlink(t, "real.key", dir, "abs.key")
			},
			want: want{loaded: []string{"real"}, problems: map[string]string{"abs.crt": "symlink leading outside"}},
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, dir string) {
				symlink(t, "nowhere.pem", dir, "d.crt")
				write(t, dir, "d.key", shopKey)
			},
			want: want{problems: map[string]string{"d.crt": "symlink to a file that does not exist: not loaded"}},
		},
		{
			name: "acme-companion layout",
			setup: func(t *testing.T, dir string) {
				base := "shop.example.com"
				write(t, dir, base+"/fullchain.pem", shopCrt)
				write(t, dir, base+"/key.pem", shopKey)
				write(t, dir, base+"/chain.pem", authority.pem)
				write(t, dir, base+"/cert.pem", shopCrt[:bytes.Index(shopCrt, []byte("-----END CERTIFICATE-----"))+26])
				write(t, dir, "dhparam.pem", dh)
				for _, n := range []string{base, "www.shop.example.com"} {
					symlink(t, "./"+base+"/fullchain.pem", dir, n+".crt")
					symlink(t, "./"+base+"/key.pem", dir, n+".key")
					symlink(t, "./"+base+"/chain.pem", dir, n+".chain.pem")
					symlink(t, "./dhparam.pem", dir, n+".dhparam.pem")
				}
			},
			want: want{loaded: []string{"shop.example.com", "www.shop.example.com"}},
			check: func(t *testing.T, dir string, s *Set) {
				c, _ := s.Get("www.shop.example.com")
				if c.CertFile != filepath.Join(dir, "www.shop.example.com.crt") || c.ChainFile == "" || c.DHParamFile == "" {
					t.Errorf("paths are the names in the directory: %+v", c)
				}
			},
		},
		{
			name: "client CA files and old .chain.crt are not half pairs",
			setup: func(t *testing.T, dir string) {
				write(t, dir, "ca.crt", authority.pem)
				write(t, dir, "shop.example.com.ca.crt", authority.pem)
				write(t, dir, "shop.chain.crt", authority.pem)
				write(t, dir, "ca.crl.pem", garbage)
				write(t, dir, "dhparam.pem", dh)
				write(t, dir, "README", garbage)
			},
			want: want{},
		},
		{
			name: "not regular files: FIFO and directory",
			setup: func(t *testing.T, dir string) {
				if err := syscall.Mkfifo(filepath.Join(dir, "fifo.crt"), 0o600); err != nil {
					t.Skip("no FIFO:", err)
				}
				write(t, dir, "fifo.key", shopKey)
				if err := os.Mkdir(filepath.Join(dir, "d.crt"), 0o700); err != nil {
					t.Fatal(err)
				}
				write(t, dir, "d.key", shopKey)
			},
			want: want{problems: map[string]string{"fifo.crt": "not a regular file: not loaded", "d.crt": "not a regular file: not loaded"}},
		},
		{
			name: "wildcard name",
			setup: func(t *testing.T, dir string) {
				c, k := selfSigned(t, "*.wild.test")
				pair(t, dir, "*.wild.test", c, k)
			},
			want: want{loaded: []string{"*.wild.test"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			s := mustLoad(t, dir, SourceFile)
			if got := s.Names(); !slices.Equal(got, tt.want.loaded) {
				t.Errorf("Names() = %q, want %q", got, tt.want.loaded)
			}
			checkProblems(t, dir, s.Problems(), tt.want.problems)
			if tt.check != nil {
				tt.check(t, dir, s)
			}
			for _, n := range s.Names() {
				c, _ := s.Get(n)
				if _, err := tls.X509KeyPair(c.pem.chain, c.pem.key); err != nil || !SafeName(n) {
					t.Errorf("%s loaded but unusable or unsafe: %v", n, err)
				}
			}
		})
	}
}

func checkProblems(t *testing.T, dir string, got []Problem, want map[string]string) {
	t.Helper()
	if !slices.IsSortedFunc(got, func(a, b Problem) int { return strings.Compare(a.File, b.File) }) {
		t.Errorf("problems not sorted: %v", got)
	}
	seen := map[string]bool{}
	for _, p := range got {
		base, ok := strings.CutPrefix(p.File, dir+"/")
		if !ok {
			t.Errorf("problem file %q not in %s", p.File, dir)
		}
		if strings.Contains(p.Reason, "-----") || strings.ContainsAny(p.File+p.Reason, "\n\r") {
			t.Errorf("problem carries PEM or a line break: %q", p)
		}
		w, ok := want[base]
		switch {
		case !ok:
			t.Errorf("unexpected problem %s", p)
		case !strings.Contains(p.Reason, w):
			t.Errorf("problem %s, want reason containing %q", p, w)
		}
		seen[base] = true
	}
	for f, w := range want {
		if !seen[f] {
			t.Errorf("missing problem for %s (%q); got %v", f, w, got)
		}
	}
}

func reencodeKey(t *testing.T, keyPEM []byte, typ string) []byte {
	t.Helper()
	blk, _ := pem.Decode(keyPEM)
	k := parsePrivateKey(blk.Bytes)
	var der []byte
	var err error
	switch typ {
	case "RSA PRIVATE KEY":
		der, err = x509MarshalPKCS1(k)
	case "EC PRIVATE KEY":
		der, err = x509MarshalEC(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock(typ, der)
}

func TestLoadDirectory(t *testing.T) {
	s, err := Load(filepath.Join(t.TempDir(), "absent"), SourceACME)
	if err != nil || len(s.Names()) != 0 || len(s.Problems()) != 0 {
		t.Errorf("missing directory: %v %v", s, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	write(t, filepath.Dir(file), "file", nil)
	if _, err := Load(file, SourceFile); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("a file as directory: %v, want an error naming it", err)
	}
	if _, err := Load(t.TempDir(), "disk"); err == nil {
		t.Error("unknown source accepted")
	}
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	pair(t, dir, "a.test", c, k)
	if got, _ := mustLoad(t, dir, SourceACME).Get("a.test"); got.Source != SourceACME {
		t.Errorf("source = %q", got.Source)
	}
	// A relative directory gives absolute paths.
	t.Chdir(dir)
	if got, _ := mustLoad(t, ".", SourceFile).Get("a.test"); got.CertFile != filepath.Join(dir, "a.test.crt") {
		t.Errorf("CertFile = %q, want absolute", got.CertFile)
	}
}

func TestSHA256ChangesWithEitherFile(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	pair(t, dir, "a", c, k)
	sum := func() string { got, _ := mustLoad(t, dir, SourceFile).Get("a"); return got.SHA256 }
	first := sum()
	write(t, dir, "a.crt", append([]byte("# comment\n"), c...))
	second := sum()
	write(t, dir, "a.key", append([]byte("# comment\n"), k...))
	third := sum()
	if first == second || second == third || first == "" {
		t.Errorf("SHA256 %s, %s, %s: want three different", first, second, third)
	}
}

func TestSafeName(t *testing.T) {
	for name, want := range map[string]bool{
		"shop.example.com": true, "default": true, "*.example.com": true, "a_b-c.D9": true,
		"": false, "a;b": false, "a b": false, "../x": false, "a/b": false, "a\x00": false,
		"~^re$": false, "é": false, strings.Repeat("a", maxNameLen): true, strings.Repeat("a", maxNameLen+1): false,
	} {
		if got := SafeName(name); got != want {
			t.Errorf("SafeName(%q) = %v, want %v", name, got, want)
		}
	}
}
