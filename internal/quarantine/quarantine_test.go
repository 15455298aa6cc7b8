package quarantine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// table makes a table with one site per host, each served by a workload named after it, and one
// TCP service per port.
func table(hosts []string, ports ...int) routing.Table {
	t := routing.Table{}
	for _, h := range hosts {
		name := "w-" + h
		t.Workloads = append(t.Workloads, discovery.Workload{ID: "id-" + name, Name: name, Source: "docker"})
		t.Sites = append(t.Sites, routing.Site{Host: h, Routes: []routing.Route{{Path: "/", Backend: routing.Backend{
			Name: h, Servers: []routing.Server{{Address: "10.0.0.1:80", Workload: name, WorkloadID: "id-" + name}}}}}})
	}
	for _, p := range ports {
		name := fmt.Sprintf("tcp-%d", p)
		t.Workloads = append(t.Workloads, discovery.Workload{ID: "id-" + name, Name: name, Source: "docker"})
		t.TCP = append(t.TCP, routing.TCPService{Port: p, Backend: routing.Backend{
			Servers: []routing.Server{{Address: "10.0.0.2:1", Workload: name, WorkloadID: "id-" + name}}}})
	}
	return t
}

func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%03d.example", i)
	}
	return out
}

// render writes one line per unit: its host (and its server) or its TCP port.
func render(t routing.Table) ([]byte, error) {
	var b strings.Builder
	for _, s := range t.Sites {
		fmt.Fprintf(&b, "site %s %s\n", s.Host, s.Routes[0].Backend.Servers[0].Address)
	}
	for _, ts := range t.TCP {
		fmt.Fprintf(&b, "tcp %d\n", ts.Port)
	}
	return []byte(b.String()), nil
}

// checker fails when the config holds any of bad, or every one of together; it counts its calls.
type checker struct {
	bad      []string
	together []string
	always   bool
	calls    int
}

func (c *checker) check(_ context.Context, data []byte) error {
	c.calls++
	text := string(data)
	if c.always {
		return errors.New("emerg: unexpected end of file")
	}
	for _, b := range c.bad {
		if strings.Contains(text, b+" ") || strings.Contains(text, b+"\n") {
			return fmt.Errorf("emerg: unknown directive in %s", b)
		}
	}
	if len(c.together) > 0 && !slices.ContainsFunc(c.together, func(s string) bool { return !strings.Contains(text, s+" ") }) {
		return errors.New("emerg: duplicate")
	}
	return nil
}

func TestIsolate(t *testing.T) {
	tests := []struct {
		name      string
		table     routing.Table
		bad       []string
		tcpBad    bool
		wantHeld  []string
		maxChecks int
	}{
		{"one bad among 64", table(hosts(64)), []string{"h017.example"}, false, []string{"h017.example"}, 1 + 2*6 + 1},
		{"two bad among 64", table(hosts(64)), []string{"h000.example", "h063.example"}, false, []string{"h000.example", "h063.example"}, 1 + 4*6 + 1},
		{"the only site", table(hosts(1)), []string{"h000.example"}, false, []string{"h000.example"}, 3},
		{"a TCP service", table(hosts(3), 5432, 6379), []string{"tcp 6379"}, true, []string{"TCP port 6379"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &checker{bad: tt.bad}
			var s Set
			kept, data, err := s.Isolate(context.Background(), tt.table, render, c.check)
			if err != nil {
				t.Fatalf("Isolate: %v", err)
			}
			if got := s.Held(); !slices.Equal(got, tt.wantHeld) {
				t.Errorf("held %v, want %v", got, tt.wantHeld)
			}
			if c.calls > tt.maxChecks {
				t.Errorf("%d checks, want at most %d", c.calls, tt.maxChecks)
			}
			t.Logf("%d checks", c.calls)
			if err := c.check(context.Background(), data); err != nil {
				t.Errorf("the data returned fails the check: %v", err)
			}
			if n := len(kept.Sites) + len(kept.TCP); n != len(tt.table.Sites)+len(tt.table.TCP)-len(tt.wantHeld) {
				t.Errorf("kept %d units, want all but the held ones", n)
			}
			if len(kept.Problems) != len(tt.wantHeld) {
				t.Fatalf("problems %+v, want one per workload behind a held unit", kept.Problems)
			}
			for _, p := range kept.Problems {
				if p.WorkloadID == "" || p.Source != "docker" || !strings.Contains(p.Reason, "left out of") || !strings.Contains(p.Reason, "emerg: unknown directive") {
					t.Errorf("problem %+v: want the workload, its source, the unit and the proxy's message", p)
				}
			}
		})
	}
}

func TestIsolateUnisolated(t *testing.T) {
	t.Run("broken template", func(t *testing.T) {
		c := &checker{always: true}
		var s Set
		_, _, err := s.Isolate(context.Background(), table(hosts(8)), render, c.check)
		if !errors.Is(err, ErrUnisolated) || c.calls != 1 {
			t.Errorf("err %v after %d checks, want ErrUnisolated after the one check with no site", err, c.calls)
		}
		if len(s.Held()) != 0 {
			t.Errorf("held %v, want nothing", s.Held())
		}
	})
	t.Run("sites that fail only together", func(t *testing.T) {
		c := &checker{together: []string{"h000.example", "h007.example"}}
		var s Set
		_, _, err := s.Isolate(context.Background(), table(hosts(8)), render, c.check)
		if !errors.Is(err, ErrUnisolated) {
			t.Errorf("err %v, want ErrUnisolated", err)
		}
	})
	// Every site fails alone: a cause they share (a broken default snippet), not theirs; leaving
	// them all out would serve nothing, so nothing is held and the live config stays.
	t.Run("every site", func(t *testing.T) {
		c := &checker{bad: hosts(4)}
		var s Set
		_, _, err := s.Isolate(context.Background(), table(hosts(4)), render, c.check)
		if !errors.Is(err, ErrUnisolated) || !strings.Contains(err.Error(), "every site fails the check on its own") {
			t.Errorf("err %v, want ErrUnisolated saying every site fails", err)
		}
		if len(s.Held()) != 0 {
			t.Errorf("held %v, want nothing", s.Held())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		check := func(ctx context.Context, _ []byte) error { return ctx.Err() }
		var s Set
		if _, _, err := s.Isolate(ctx, table(hosts(8)), render, check); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want the context's", err)
		}
	})
}

// TestFilter: a held unit stays out while its part of the table is unchanged, with its problem;
// it is released (tried again) when it changes or leaves the table.
func TestFilter(t *testing.T) {
	c := &checker{bad: []string{"h001.example"}}
	var s Set
	t0 := table(hosts(3))
	if _, _, err := s.Isolate(context.Background(), t0, render, c.check); err != nil {
		t.Fatal(err)
	}
	// Unchanged, and another site added: still held, with the same reason.
	t1 := table(append(hosts(3), "new.example"))
	f := s.Filter(t1)
	if len(f.Sites) != 3 || slices.ContainsFunc(f.Sites, func(s routing.Site) bool { return s.Host == "h001.example" }) {
		t.Errorf("filtered sites %v, want all but h001.example", f.Sites)
	}
	if len(f.Problems) != 1 || f.Problems[0].Workload != "w-h001.example" {
		t.Errorf("problems %+v, want the held site's", f.Problems)
	}
	if got := s.Held(); !slices.Equal(got, []string{"h001.example"}) {
		t.Errorf("held %v", got)
	}
	// Its server changes: released, and the table passes through whole.
	t2 := table(hosts(3))
	t2.Sites[1].Routes[0].Backend.Servers[0].Address = "10.0.0.9:80"
	if f := s.Filter(t2); len(f.Sites) != 3 || len(f.Problems) != 0 || len(s.Held()) != 0 {
		t.Errorf("after a change: sites %d, problems %+v, held %v; want the site tried again", len(f.Sites), f.Problems, s.Held())
	}
	// Gone from the table: forgotten.
	if _, _, err := s.Isolate(context.Background(), t0, render, c.check); err != nil {
		t.Fatal(err)
	}
	s.Filter(table([]string{"h000.example"}))
	if len(s.Held()) != 0 {
		t.Errorf("held %v after the site left the table", s.Held())
	}
}

// TestRelease: a change outside the table (a snippet, a certificate) lets every held site go, so
// that the next render tries it again.
func TestRelease(t *testing.T) {
	c := &checker{bad: []string{"h001.example"}}
	var s Set
	t0 := table(hosts(3))
	if _, _, err := s.Isolate(context.Background(), t0, render, c.check); err != nil {
		t.Fatal(err)
	}
	if len(s.Held()) != 1 {
		t.Fatalf("held %v, want h001.example", s.Held())
	}
	s.Release()
	if f := s.Filter(t0); len(f.Sites) != 3 || len(s.Held()) != 0 {
		t.Errorf("after Release: sites %d, held %v; want every site tried again", len(f.Sites), s.Held())
	}
}
