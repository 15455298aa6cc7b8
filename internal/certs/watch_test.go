package certs

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const tick = 20 * time.Millisecond

// next waits for the next Set, failing after a while.
func next(t *testing.T, ch <-chan *Set) *Set {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no Set within 5s")
	}
	return nil
}

// until receives Sets until ok says yes, checking each with each.
func until(t *testing.T, ch <-chan *Set, each func(*Set), ok func(*Set) bool) *Set {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			each(s)
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatal("condition not reached within 10s")
		}
	}
}

func TestWatchPicksUpChanges(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs") // absent at first
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := Watch(ctx, dir, SourceFile, tick)
	if s := next(t, ch); len(s.Names()) != 0 {
		t.Fatalf("first Set of an absent directory: %v", s.Names())
	}
	c, k := selfSigned(t, "a.test")
	pair(t, dir, "a", c, k)
	if s := next(t, ch); len(s.Names()) != 1 {
		t.Fatalf("after adding a pair: %v %v", s.Names(), s.Problems())
	}
	os.Remove(filepath.Join(dir, "a.crt"))
	os.Remove(filepath.Join(dir, "a.key"))
	if s := next(t, ch); len(s.Names()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("after removing it: %v %v", s.Names(), s.Problems())
	}
	// Nothing changes: nothing is sent (a touch that changes no content sends nothing either).
	write(t, dir, "README", []byte("x"))
	select {
	case s := <-ch:
		t.Fatalf("a Set with no change: %v", s.Names())
	case <-time.After(10 * tick):
	}
}

// A pair written in two steps, as a copy does: no Set ever holds a mismatched pair, and a
// replace in progress never takes the certificate away.
func TestWatchTwoStepWrites(t *testing.T) {
	dir := t.TempDir()
	c1, k1 := selfSigned(t, "a.test")
	c2, k2 := selfSigned(t, "a.test")
	pair(t, dir, "a", c1, k1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := Watch(ctx, dir, SourceFile, tick)
	s1, s2 := serialOf(t, c1), serialOf(t, c2)
	each := func(s *Set) {
		a, ok := s.Get("a")
		if !ok {
			t.Fatalf("a taken away during a replace: %v", s.Problems())
		}
		if _, err := tls.X509KeyPair(a.pem.chain, a.pem.key); err != nil || (a.Serial != s1 && a.Serial != s2) {
			t.Fatalf("a mismatched or unknown pair: %v %s", err, a.Serial)
		}
		if b, ok := s.Get("b"); ok {
			if _, err := tls.X509KeyPair(b.pem.chain, b.pem.key); err != nil {
				t.Fatalf("b mismatched: %v", err)
			}
		}
	}
	until(t, ch, each, func(s *Set) bool { a, _ := s.Get("a"); return a.Serial == s1 })

	// Replace: the certificate first, the key many intervals later.
	write(t, dir, "a.crt", c2)
	half := until(t, ch, each, func(s *Set) bool { return len(s.Problems()) > 0 })
	if a, _ := half.Get("a"); a.Serial != s1 {
		t.Fatalf("during the replace a serves %s, want the previous %s", a.Serial, s1)
	}
	time.Sleep(5 * tick)
	write(t, dir, "a.key", k2)
	until(t, ch, each, func(s *Set) bool { a, _ := s.Get("a"); return a.Serial == s2 && len(s.Problems()) == 0 })

	// A new pair, certificate first.
	write(t, dir, "b.crt", c1)
	if s := until(t, ch, each, func(s *Set) bool { return len(s.Problems()) > 0 }); len(s.Names()) != 1 {
		t.Fatalf("half a new pair loaded: %v", s.Names())
	}
	write(t, dir, "b.key", k1)
	until(t, ch, each, func(s *Set) bool { _, ok := s.Get("b"); return ok })
}

// A file that keeps changing is not loaded until it has been stable for an interval.
func TestWatchWaitsForStability(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := Watch(ctx, dir, SourceFile, 50*time.Millisecond)
	next(t, ch)
	c, k := selfSigned(t, "a.test")
	write(t, dir, "a.key", k)
	start := time.Now()
	for i := 0; time.Since(start) < 300*time.Millisecond; i++ {
		write(t, dir, "a.crt", c[:len(c)/2+i%7]) // a slow copy: growing, then the whole file
		select {
		case s := <-ch:
			t.Fatalf("loaded while still changing: %v %v", s.Names(), s.Problems())
		case <-time.After(10 * time.Millisecond):
		}
	}
	write(t, dir, "a.crt", c)
	if s := next(t, ch); len(s.Names()) != 1 {
		t.Fatalf("after the copy: %v %v", s.Names(), s.Problems())
	}
}

func TestWatchStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := Watch(ctx, t.TempDir(), SourceFile, tick)
	next(t, ch)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			// A Set may have been in flight; the close must follow.
			if _, ok := <-ch; ok {
				t.Fatal("still sending after cancel")
			}
		}
	case <-time.After(2 * time.Second):
		t.Fatal("not stopped within 2s of cancel (goroutine leak)")
	}
}

// Stopped before anyone receives: the goroutine does not block on the full channel.
func TestWatchStopsWithoutReceiver(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	dir := t.TempDir()
	ch := Watch(ctx, dir, SourceFile, tick)
	c, k := selfSigned(t, "a.test")
	pair(t, dir, "a", c, k)
	time.Sleep(10 * tick)
	cancel()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("not stopped within 2s of cancel")
		}
	}
}
