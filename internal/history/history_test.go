package history

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

func site(host string, addrs ...string) routing.Site {
	var ss []routing.Server
	for i, a := range addrs {
		ss = append(ss, routing.Server{Name: fmt.Sprint("s", i), Address: a, Workload: "w-" + a})
	}
	return routing.Site{Host: host, Routes: []routing.Route{{Path: "/", Backend: routing.Backend{Name: host, Servers: ss}}}}
}

func TestDiff(t *testing.T) {
	a := routing.Table{Sites: []routing.Site{site("a.test", "10.0.0.1:80"), site("b.test", "10.0.0.2:80")}}
	tests := []struct {
		name    string
		prev    routing.Table
		next    routing.Table
		changed bool
		want    Change
		line    string
	}{
		{"same", a, a, false, Change{}, "nothing"},
		{"same tables, another config (a certificate)", a, a, true, Change{Other: true}, "settings"},
		{"a site added, a server moved", a, routing.Table{Sites: []routing.Site{
			site("a.test", "10.0.0.9:80"), site("b.test", "10.0.0.2:80"), site("c.test", "10.0.0.3:80")}}, true,
			Change{SitesAdded: []string{"c.test"},
				ServersAdded:   []string{"a.test/ 10.0.0.9:80 (w-10.0.0.9:80)", "c.test/ 10.0.0.3:80 (w-10.0.0.3:80)"},
				ServersRemoved: []string{"a.test/ 10.0.0.1:80 (w-10.0.0.1:80)"}},
			"sites +c.test; servers +2 -1"},
		{"everything gone", a, routing.Table{}, true,
			Change{SitesRemoved: []string{"a.test", "b.test"},
				ServersRemoved: []string{"a.test/ 10.0.0.1:80 (w-10.0.0.1:80)", "b.test/ 10.0.0.2:80 (w-10.0.0.2:80)"}},
			"sites -a.test -b.test; servers +0 -2"},
		{"tcp", routing.Table{}, routing.Table{TCP: []routing.TCPService{{Port: 5432, Backend: routing.Backend{
			Servers: []routing.Server{{Address: "10.0.0.5:5432", Workload: "db"}}}}}}, true,
			Change{ServersAdded: []string{"tcp/5432 10.0.0.5:5432 (db)"}}, "servers +1 -0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.prev, tt.next, tt.changed)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.line {
				t.Errorf("String = %q, want %q", got.String(), tt.line)
			}
		})
	}
}

func TestStringCapsNames(t *testing.T) {
	var many []string
	for i := range 8 {
		many = append(many, fmt.Sprintf("h%d.test", i))
	}
	got := Change{SitesAdded: many, SitesRemoved: []string{"x.test"}}.String()
	want := "sites +h0.test +h1.test +h2.test +h3.test +h4.test -x.test and 3 more"
	if got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestLog(t *testing.T) {
	l := New(3)
	for i := range 5 {
		l.Add(Entry{Generation: uint64(i), At: time.Unix(int64(i), 0)})
	}
	var gens []uint64
	for _, e := range l.List() {
		gens = append(gens, e.Generation)
	}
	if !reflect.DeepEqual(gens, []uint64{4, 3, 2}) {
		t.Errorf("List generations = %v, want the last 3, newest first", gens)
	}
	if (Entry{Result: "updated"}).How() != "runtime API" || (Entry{Result: "applied"}).How() != "reload" || (Entry{Result: "check_failed"}).How() != "" {
		t.Error("How")
	}
}

// TestDiffSortedIsWhole: over random pairs of tables, the walk that formats only the sites that
// differ (diffSorted) says what comparing every server string says.
func TestDiffSortedIsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 4))
	table := func() routing.Table {
		var t routing.Table
		for h := range 12 {
			if rng.IntN(3) == 0 {
				continue
			}
			var addrs []string
			for range rng.IntN(3) {
				addrs = append(addrs, fmt.Sprintf("10.0.0.%d:80", rng.IntN(4)))
			}
			s := site(fmt.Sprintf("h%02d.test", h), addrs...)
			if len(addrs) > 0 && rng.IntN(3) == 0 { // another workload at the same address
				s.Routes[0].Backend.Servers[0].Workload = "w-moved"
			}
			if rng.IntN(4) == 0 {
				s.Routes = append(s.Routes, routing.Route{Path: "/api/", Backend: routing.Backend{Servers: []routing.Server{{Address: "10.0.1.1:80", Workload: "api"}}}})
			}
			t.Sites = append(t.Sites, s)
		}
		return t
	}
	for i := range 2000 {
		prev, next := table(), table()
		if i%3 == 0 { // a table and a copy with one change, the usual case
			next = routing.Table{Sites: slices.Clone(prev.Sites)}
			if len(next.Sites) > 0 {
				k := rng.IntN(len(next.Sites))
				next.Sites[k] = site(next.Sites[k].Host, "10.9.9.9:80")
			}
		}
		got := diffSorted(prev, next)
		var want Change
		want.SitesAdded, want.SitesRemoved = added(sites(prev.Sites), sites(next.Sites))
		want.ServersAdded, want.ServersRemoved = added(servers(prev.Sites, prev.TCP), servers(next.Sites, next.TCP))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: diffSorted = %+v, want %+v", i, got, want)
		}
	}
}
