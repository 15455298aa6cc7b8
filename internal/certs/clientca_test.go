package certs

import (
	"path/filepath"
	"testing"
	"time"
)

// Client CAs: <host>.ca.crt for its host, ca.crt for every other, each with its .ca.crl; a
// change of either file changes the set (so the config is rendered again), and none of them is
// taken for half a certificate pair.
func TestClientCAs(t *testing.T) {
	files := memFiles{"ca.crt": []byte("global"), "shop.test.ca.crt": []byte("shop"), "shop.test.ca.crl": []byte("revoked")}
	names := []string{"ca.crt", "shop.test.ca.crt", "shop.test.ca.crl", "notes.crl"}
	s := load("/certs", SourceFile, names, files, time.Now())
	if p := s.Problems(); len(p) != 0 {
		t.Errorf("problems %v, want none", p)
	}
	shop, ok := s.ClientCA("shop.test")
	if !ok || shop.CAFile != filepath.Join("/certs", "shop.test.ca.crt") || shop.CRLFile != filepath.Join("/certs", "shop.test.ca.crl") {
		t.Errorf("shop.test: %+v %v", shop, ok)
	}
	other, ok := s.ClientCA("blog.test")
	if !ok || other.CAFile != filepath.Join("/certs", "ca.crt") || other.CRLFile != "" || other.SHA256 == shop.SHA256 {
		t.Errorf("blog.test: %+v %v, want the global CA", other, ok)
	}
	files["shop.test.ca.crl"] = []byte("revoked more")
	again := load("/certs", SourceFile, names, files, time.Now())
	if c, _ := again.ClientCA("shop.test"); c.SHA256 == shop.SHA256 || equal(s, again) {
		t.Error("a changed CRL left the set equal")
	}
	none := load("/certs", SourceFile, []string{"shop.test.ca.crt"}, files, time.Now())
	if _, ok := none.ClientCA("blog.test"); ok {
		t.Error("a host without a CA of its own, and no ca.crt, got one")
	}
	var nilSet *Set
	if _, ok := nilSet.ClientCA("x"); ok {
		t.Error("a nil set has a client CA")
	}
	if m := Merge(s, nil); !equal(m, s) {
		t.Error("Merge lost the client CAs")
	}
	if k := s.KeepGood(nil); !equal(k, s) {
		t.Error("KeepGood lost the client CAs")
	}
}
