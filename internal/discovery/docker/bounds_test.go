package docker

import (
	"cmp"
	"math/rand"
	"reflect"
	"slices"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// normalizePortsQuadratic is normalizePorts as it was, searching the whole list for every
// unbound entry: the reference the one-pass version must agree with.
func normalizePortsQuadratic(ps []discovery.Port) []discovery.Port {
	slices.SortFunc(ps, func(a, b discovery.Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	ps = slices.Compact(ps)
	return slices.DeleteFunc(ps, func(p discovery.Port) bool {
		if p.HostPort != 0 {
			return false
		}
		return slices.ContainsFunc(ps, func(q discovery.Port) bool { return q.Port == p.Port && q.Proto == p.Proto && q.HostPort != 0 })
	})
}

func TestNormalizePortsOnePass(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 5000 {
		var ps []discovery.Port
		for range rng.Intn(12) {
			p := discovery.Port{Port: 80 + rng.Intn(3), Proto: []string{"tcp", "udp"}[rng.Intn(2)]}
			if rng.Intn(2) == 0 {
				p.HostIP = []string{"", "0.0.0.0", "::"}[rng.Intn(3)]
			}
			if rng.Intn(2) == 0 {
				p.HostPort = 8000 + rng.Intn(3)
			}
			ps = append(ps, p)
		}
		got, want := normalizePorts(slices.Clone(ps)), normalizePortsQuadratic(slices.Clone(ps))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("normalizePorts(%v) = %v, want %v", ps, got, want)
		}
	}
}
