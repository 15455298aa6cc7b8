package certs

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestKeepGood(t *testing.T) {
	c1, k1 := selfSigned(t, "a.test")
	c2, k2 := selfSigned(t, "a.test")
	tests := []struct {
		name   string
		change func(t *testing.T, dir string) // applied after prev was loaded
		want   map[string]string              // name → crt PEM it must serve; absent: not served
	}{
		{"crt replaced, key not yet", func(t *testing.T, dir string) { write(t, dir, "a.crt", c2) }, map[string]string{"a": string(c1), "b": string(c1)}},
		{"key replaced, crt not yet", func(t *testing.T, dir string) { write(t, dir, "a.key", k2) }, map[string]string{"a": string(c1), "b": string(c1)}},
		{"crt half written", func(t *testing.T, dir string) { write(t, dir, "a.crt", c2[:len(c2)/2]) }, map[string]string{"a": string(c1), "b": string(c1)}},
		{"crt removed first", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "a.crt")) }, map[string]string{"a": string(c1), "b": string(c1)}},
		{"replace done", func(t *testing.T, dir string) { pair(t, dir, "a", c2, k2) }, map[string]string{"a": string(c2), "b": string(c1)}},
		{"both removed", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "a.crt"))
			os.Remove(filepath.Join(dir, "a.key"))
		}, map[string]string{"b": string(c1)}},
		{"new broken name is not invented", func(t *testing.T, dir string) { write(t, dir, "n.crt", c1) }, map[string]string{"a": string(c1), "b": string(c1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pair(t, dir, "a", c1, k1)
			pair(t, dir, "b", c1, k1)
			prev := mustLoad(t, dir, SourceFile)
			tt.change(t, dir)
			s := mustLoad(t, dir, SourceFile)
			kept := s.KeepGood(prev)
			if got := kept.Names(); !slices.Equal(got, slices.Sorted(maps.Keys(tt.want))) {
				t.Fatalf("names %v, want %v", got, slices.Sorted(maps.Keys(tt.want)))
			}
			for n, crt := range tt.want {
				c, _ := kept.Get(n)
				if string(c.pem.chain) != crt {
					t.Errorf("%s serves another certificate", n)
				}
			}
			if !slices.Equal(kept.Problems(), s.Problems()) {
				t.Errorf("problems changed: %v, want %v", kept.Problems(), s.Problems())
			}
		})
	}
	if got := (*Set)(nil).KeepGood(nil); len(got.Names()) != 0 {
		t.Errorf("nil.KeepGood(nil) = %v", got.Names())
	}
}

func TestMerge(t *testing.T) {
	static, acme := t.TempDir(), t.TempDir()
	cs, ks := selfSigned(t, "x.test")
	ca, ka := selfSigned(t, "x.test")
	pair(t, static, "x", cs, ks)
	pair(t, acme, "x", ca, ka)
	pair(t, acme, "y", ca, ka)
	write(t, static, "z.crt", cs) // broken in static, good in ACME
	pair(t, acme, "z", ca, ka)
	write(t, acme, "w.crt", ca) // broken in ACME only
	a, b := mustLoad(t, static, SourceFile), mustLoad(t, acme, SourceACME)
	m := Merge(a, b)
	if got := m.Names(); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("Names = %v", got)
	}
	for name, source := range map[string]string{"x": SourceFile, "y": SourceACME, "z": SourceACME} {
		if c, _ := m.Get(name); c.Source != source {
			t.Errorf("%s from %s, want %s", name, c.Source, source)
		}
	}
	if ch := m.Select("w", "", false); ch.Via != "" || !strings.Contains(ch.Problem, "w.crt is unusable") {
		t.Errorf("broken ACME name: %+v", ch)
	}
	if ch := m.Select("z", "", false); ch.Via != ViaExact || ch.Cert.Source != SourceACME {
		t.Errorf("z: %+v", ch)
	}
	want := append(a.Problems(), b.Problems()...)
	sortProblems(want)
	if got := m.Problems(); !slices.Equal(got, want) || len(got) != 2 {
		t.Errorf("Problems = %v, want %v", got, want)
	}
	if got := Merge(nil, b).Names(); !slices.Equal(got, b.Names()) {
		t.Errorf("Merge(nil, b) = %v", got)
	}
	if got := Merge(a, nil).Names(); !slices.Equal(got, a.Names()) {
		t.Errorf("Merge(a, nil) = %v", got)
	}
}

func TestSetIsImmutable(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test", "b.test")
	pair(t, dir, "a", c, k)
	write(t, dir, "n.crt", c)
	s := mustLoad(t, dir, SourceFile)
	got, _ := s.Get("a")
	got.Names[0] = "evil"
	s.Problems()[0].Reason = "evil"
	s.Names()[0] = "evil"
	if again, _ := s.Get("a"); again.Names[0] != "a.test" || s.Problems()[0].Reason == "evil" || s.Names()[0] != "a" {
		t.Error("a caller changed the snapshot")
	}
}

func TestNoKeyInFormattedValues(t *testing.T) {
	dir := t.TempDir()
	c, k := selfSigned(t, "a.test")
	pair(t, dir, "a", c, k)
	s := mustLoad(t, dir, SourceFile)
	ch := s.Select("a.test", "", false)
	for _, v := range []string{fmt.Sprintf("%+v", ch), fmt.Sprintf("%#v", ch), fmt.Sprintf("%v", s)} {
		if strings.Contains(v, "PRIVATE") || strings.Contains(v, "BEGIN") {
			t.Errorf("formatted value shows PEM: %s", v)
		}
	}
}
