package etcdstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/certs"
)

const testCA = "https://ca.test:14000/dir"

func selfSigned(t *testing.T, name string) (chain, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func testCert(t *testing.T, name string) *acme.Cert {
	chain, key := selfSigned(t, name)
	return &acme.Cert{Chain: chain, Key: key, Meta: acme.Meta{
		Names: []string{name}, CA: testCA, Email: "ops@example.com", Serial: "01",
		NotAfter: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Orders:   []acme.OrderRecord{{At: time.Now().UTC().Truncate(time.Second), Names: name, Result: "issued"}},
	}}
}

func TestRoundTrips(t *testing.T) {
	e := startEtcd(t)
	s, cli := e.newStore(t, testCA)
	ctx := context.Background()

	// Accounts, per CA and email.
	if _, err := s.LoadAccount(ctx, testCA, "ops@example.com"); !errors.Is(err, acme.ErrNotFound) {
		t.Fatalf("LoadAccount before save: %v, want ErrNotFound", err)
	}
	_, key := selfSigned(t, "x")
	a := &acme.Account{Email: "ops@example.com", URI: "https://ca.test/acct/1", KeyPEM: key, Created: time.Now().UTC().Truncate(time.Second)}
	must(t, s.SaveAccount(ctx, testCA, a))
	got, err := s.LoadAccount(ctx, testCA, "ops@example.com")
	must(t, err)
	if !reflect.DeepEqual(got, a) {
		t.Errorf("account: got %+v, want %+v", got, a)
	}
	def := &acme.Account{URI: "https://ca.test/acct/2", KeyPEM: key}
	must(t, s.SaveAccount(ctx, testCA, def))
	if got, err := s.LoadAccount(ctx, testCA, ""); err != nil || got.URI != def.URI {
		t.Errorf("default account: %+v, %v", got, err)
	}
	if _, err := s.LoadAccount(ctx, "https://other.test/dir", "ops@example.com"); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("another CA's account: %v, want ErrNotFound", err)
	}
	for _, k := range []string{"accounts/ops@example.com", "accounts/_default"} {
		if r, _ := cli.Get(ctx, s.Prefix()+k); len(r.Kvs) != 1 {
			t.Errorf("key %s%s missing", s.Prefix(), k)
		}
	}
	if !strings.HasPrefix(s.Prefix(), "/vhost-gen/acme/ca.test_14000-") {
		t.Errorf("prefix %q", s.Prefix())
	}

	// A certificate with its meta; then the meta alone keeps chain and key.
	if _, err := s.LoadCert(ctx, "shop.example.com"); !errors.Is(err, acme.ErrNotFound) {
		t.Fatalf("LoadCert before save: %v", err)
	}
	c := testCert(t, "shop.example.com")
	must(t, s.SaveCert(ctx, "shop.example.com", c))
	gc, err := s.LoadCert(ctx, "shop.example.com")
	must(t, err)
	if !reflect.DeepEqual(gc, c) {
		t.Errorf("cert: got %+v, want %+v", gc, c)
	}
	m := c.Meta
	m.LastError, m.Failures = "boom", 1
	must(t, s.SaveMeta(ctx, "shop.example.com", &m))
	gc, err = s.LoadCert(ctx, "shop.example.com")
	must(t, err)
	if string(gc.Chain) != string(c.Chain) || string(gc.Key) != string(c.Key) || gc.Meta.LastError != "boom" {
		t.Errorf("after SaveMeta: %+v", gc)
	}
	// Meta alone for a certificate never issued.
	must(t, s.SaveMeta(ctx, "new.example.com", &acme.Meta{Names: []string{"new.example.com"}, LastError: "x"}))
	gc, err = s.LoadCert(ctx, "new.example.com")
	must(t, err)
	if gc.Chain != nil || gc.Key != nil || gc.Meta.LastError != "x" {
		t.Errorf("meta-only: %+v", gc)
	}
	if err := s.SaveCert(ctx, "../etc/passwd", c); err == nil {
		t.Error("unsafe certificate name accepted")
	}

	// Tokens, under a lease, visible to another store (another gateway).
	s2, _ := e.newStore(t, testCA)
	tok, ka := "tok_-123", "tok_-123.thumb-print_1"
	if _, err := s2.Token(ctx, tok); !errors.Is(err, acme.ErrNotFound) {
		t.Fatalf("Token before put: %v", err)
	}
	must(t, s.PutToken(ctx, tok, ka))
	if got, err := s2.Token(ctx, tok); err != nil || got != ka {
		t.Errorf("Token from the other store: %q, %v", got, err)
	}
	r, err := cli.Get(ctx, s.Prefix()+"tokens/"+tok)
	must(t, err)
	if len(r.Kvs) != 1 || r.Kvs[0].Lease == 0 {
		t.Fatalf("token key: %+v (want one, with a lease)", r.Kvs)
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(r.Kvs[0].Lease))
	must(t, err)
	if ttl.TTL <= 0 || ttl.TTL > 600 {
		t.Errorf("token lease TTL %d s, want ≤ 600", ttl.TTL)
	}
	must(t, s2.DeleteToken(ctx, tok))
	if _, err := s.Token(ctx, tok); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("Token after delete: %v", err)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(r.Kvs[0].Lease)); err == nil && ttl.TTL > 0 {
		t.Errorf("token lease still alive after delete: %d s", ttl.TTL)
	}
	if err := s.PutToken(ctx, "a/b", "a/b.x"); err == nil {
		t.Error("bad token accepted")
	}
}

func TestHostileValues(t *testing.T) {
	e := startEtcd(t)
	s, cli := e.newStore(t, testCA)
	ctx := context.Background()
	huge := strings.Repeat("x", MaxValue+1)
	cases := []struct{ key, val string }{
		{"certs/huge.example.com", huge},
		{"certs/garbage.example.com", "not json"},
		{"certs/half.example.com", `{"v":1,"chain_pem":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}`},
		{"certs/v2.example.com", `{"v":2}`},
		{"accounts/ops@example.com", `{"email":"ops@example.com","key_pem":"bm9wZQ=="}`},
		{"accounts/_default", huge},
		{"tokens/tok", "<script>"},
	}
	for _, c := range cases {
		_, err := cli.Put(ctx, s.Prefix()+c.key, c.val)
		must(t, err)
	}
	check := func(what, key string, err error) {
		t.Helper()
		if err == nil || errors.Is(err, acme.ErrNotFound) || !strings.Contains(err.Error(), `"`+s.Prefix()+key+`"`) {
			t.Errorf("%s: error %v, want one naming %s", what, err, key)
		}
	}
	for _, n := range []string{"huge.example.com", "garbage.example.com", "half.example.com", "v2.example.com"} {
		_, err := s.LoadCert(ctx, n)
		check("LoadCert "+n, "certs/"+n, err)
	}
	_, err := s.LoadAccount(ctx, testCA, "ops@example.com")
	check("LoadAccount", "accounts/ops@example.com", err)
	_, err = s.LoadAccount(ctx, testCA, "")
	check("LoadAccount default", "accounts/_default", err)
	_, err = s.Token(ctx, "tok")
	check("Token", "tokens/tok", err)

	// Certs reads the good ones and names each bad key.
	must(t, s.SaveCert(ctx, "good.example.com", testCert(t, "good.example.com")))
	_, err = cli.Put(ctx, s.Prefix()+"certs/a/../../b", "{}")
	must(t, err)
	list, err := s.Certs(ctx)
	if len(list) != 1 || list[0].Name != "good.example.com" {
		t.Errorf("Certs: %d certificates, want good.example.com alone", len(list))
	}
	for _, k := range []string{"huge", "garbage", "half", "v2"} {
		check("Certs", "certs/"+k+".example.com", err)
	}
	check("Certs", "certs/a/../../b", err)
	// A meta written over a garbage value replaces it.
	must(t, s.SaveMeta(ctx, "garbage.example.com", &acme.Meta{LastError: "x"}))
	if _, err := s.LoadCert(ctx, "garbage.example.com"); err != nil {
		t.Errorf("after SaveMeta over garbage: %v", err)
	}
}

func TestLockContention(t *testing.T) {
	e := startEtcd(t)
	a, _ := e.newStore(t, testCA)
	b, _ := e.newStore(t, testCA)
	ctx := context.Background()

	_, unlockA, err := a.Lock(ctx, "cert/shop.example.com")
	must(t, err)
	// B does not get it while A holds it.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, _, err = b.Lock(short, "cert/shop.example.com")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("B's Lock while A holds it: %v, want the deadline", err)
	}
	// Another name is not contended (nor a name that extends this one).
	for _, n := range []string{"cert/other.example.com", "cert/shop.example.com.au", "account/"} {
		_, u, err := b.Lock(short2(t), n)
		if err != nil {
			t.Fatalf("B's Lock of %s: %v", n, err)
		}
		u()
	}
	// B waits, and gets it when A unlocks.
	got := make(chan error, 1)
	var unlockB func()
	go func() {
		var err error
		_, unlockB, err = b.Lock(ctx, "cert/shop.example.com")
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("B got the lock while A holds it: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlockA()
	unlockA() // twice is harmless
	select {
	case err := <-got:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("B did not get the lock after A's unlock")
	}
	unlockB()
}

func short2(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFencing(t *testing.T) {
	e := startEtcd(t)
	a, _ := e.newStore(t, testCA)
	b, _ := e.newStore(t, testCA)
	ctx := context.Background()
	name := "shop.example.com"

	lctxA, unlockA, err := a.Lock(ctx, "cert/"+name)
	must(t, err)
	defer unlockA()
	must(t, a.SaveMeta(lctxA, name, &acme.Meta{LastError: "A started"}))

	// A is "killed": its session ends (lease revoked), as when its keepalives stop.
	must(t, heldFrom(lctxA).sess.Close())
	select {
	case <-lctxA.Done():
		if !errors.Is(context.Cause(lctxA), ErrLockLost) {
			t.Errorf("A's lock context cause: %v", context.Cause(lctxA))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A's lock context did not end with its session")
	}

	lctxB, unlockB, err := b.Lock(short2(t), "cert/"+name)
	must(t, err)
	cb := testCert(t, name)
	must(t, b.SaveCert(lctxB, name, cb))

	// A's late writes, even on a context that does not end with the lock (as at shutdown), fail.
	late := context.WithoutCancel(lctxA)
	for what, err := range map[string]error{
		"SaveCert":    a.SaveCert(late, name, testCert(t, name)),
		"SaveMeta":    a.SaveMeta(late, name, &acme.Meta{LastError: "A late"}),
		"SaveAccount": a.SaveAccount(late, testCA, &acme.Account{URI: "x"}),
	} {
		if !errors.Is(err, ErrLockLost) {
			t.Errorf("A's late %s: %v, want ErrLockLost", what, err)
		}
	}
	// The transaction itself refuses it too (not only the session check in front of it): a held
	// value whose session looks alive but whose key is gone.
	h := heldFrom(lctxA)
	fake := context.WithValue(ctx, heldKey{}, &held{name: h.name, owner: h.owner, sess: heldFrom(lctxB).sess})
	if err := a.SaveCert(fake, name, testCert(t, name)); !errors.Is(err, ErrLockLost) {
		t.Errorf("A's late SaveCert past the session check: %v, want ErrLockLost", err)
	}
	got, err := b.LoadCert(ctx, name)
	must(t, err)
	if string(got.Chain) != string(cb.Chain) {
		t.Error("B's certificate was overwritten")
	}
	// B still writes; after its unlock, its old context does not.
	must(t, b.SaveMeta(lctxB, name, &cb.Meta))
	unlockB()
	if err := b.SaveMeta(context.WithoutCancel(lctxB), name, &cb.Meta); !errors.Is(err, ErrLockLost) {
		t.Errorf("B's write after unlock: %v, want ErrLockLost", err)
	}
	// Writes without a lock context are plain.
	must(t, b.SaveMeta(ctx, name, &cb.Meta))
}

func TestMirror(t *testing.T) {
	e := startEtcd(t)
	s, cli := e.newStore(t, testCA)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "certs")

	must(t, s.SaveCert(ctx, "a.example.com", testCert(t, "a.example.com")))
	must(t, s.SaveMeta(ctx, "failed.example.com", &acme.Meta{LastError: "x"}))
	changes := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- Mirror(ctx, s, dir, func() { changes <- struct{}{} }) }()

	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !ok() {
			select {
			case <-changes:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	same := func(name string) bool {
		c, err := s.LoadCert(ctx, name)
		if err != nil {
			return false
		}
		crt, _ := os.ReadFile(filepath.Join(dir, name+".crt"))
		key, _ := os.ReadFile(filepath.Join(dir, name+".key"))
		return string(crt) == string(c.Chain) && string(key) == string(c.Key)
	}
	wait("a.example.com", func() bool { return same("a.example.com") })
	for f, mode := range map[string]os.FileMode{"a.example.com.crt": 0o644, "a.example.com.key": 0o600} {
		st, err := os.Stat(filepath.Join(dir, f))
		must(t, err)
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", f, st.Mode().Perm(), mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "failed.example.com.crt")); err == nil {
		t.Error("a meta-only certificate was mirrored")
	}
	set, err := certs.Load(dir, certs.SourceACME)
	must(t, err)
	if names := set.Names(); !reflect.DeepEqual(names, []string{"a.example.com"}) {
		t.Errorf("certs.Load names: %v", names)
	}
	if len(set.Problems()) != 0 {
		t.Errorf("certs.Load problems: %v", set.Problems())
	}

	// A static certificate in the directory is left alone.
	must(t, os.WriteFile(filepath.Join(dir, "static.crt"), []byte("mine"), 0o644))
	// A new one, a renewal, a deletion.
	must(t, s.SaveCert(ctx, "b.example.com", testCert(t, "b.example.com")))
	wait("b.example.com", func() bool { return same("b.example.com") })
	must(t, s.SaveCert(ctx, "a.example.com", testCert(t, "a.example.com")))
	wait("a.example.com renewed", func() bool { return same("a.example.com") })
	// A value gone bad keeps the last good files.
	before, _ := os.ReadFile(filepath.Join(dir, "b.example.com.crt"))
	_, err = cli.Put(ctx, s.Prefix()+"certs/b.example.com", "garbage")
	must(t, err)
	_, err = cli.Delete(ctx, s.Prefix()+"certs/a.example.com")
	must(t, err)
	// Two files cannot go in one step: wait for both.
	wait("a.example.com removed", func() bool {
		_, crt := os.Stat(filepath.Join(dir, "a.example.com.crt"))
		_, key := os.Stat(filepath.Join(dir, "a.example.com.key"))
		return os.IsNotExist(crt) && os.IsNotExist(key)
	})
	if after, _ := os.ReadFile(filepath.Join(dir, "b.example.com.crt")); string(after) != string(before) {
		t.Error("b.example.com's last good certificate was not kept")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "static.crt")); string(b) != "mine" {
		t.Error("a file Mirror did not write was touched")
	}
	// Nothing changed: nothing written.
	changed, err := SyncDir(ctx, s, dir)
	if changed || err == nil || !strings.Contains(err.Error(), "certs/b.example.com") {
		t.Errorf("SyncDir with nothing new: changed %v, err %v (want false, the bad key named)", changed, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Mirror did not return when its context ended")
	}
}
