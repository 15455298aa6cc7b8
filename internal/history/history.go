// Package history keeps what the last applies did: when, with what result, how (a reload or the
// runtime API), how long it took, and what changed in the routing table (sites and servers added
// and removed). The log line of each apply and the dashboard's apply history both come from it.
package history

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Change is what changed in the routing table between two applies. Each list is sorted.
type Change struct {
	SitesAdded   []string `json:"sitesAdded,omitempty"`
	SitesRemoved []string `json:"sitesRemoved,omitempty"`
	// Servers are "<site><path> <address> (<workload>)", or "tcp/<port> <address> (<workload>)".
	ServersAdded   []string `json:"serversAdded,omitempty"`
	ServersRemoved []string `json:"serversRemoved,omitempty"`
	// Other is set when something else changed: a site's settings, paths, TLS, a certificate.
	Other bool `json:"other,omitempty"`
}

// Diff compares two tables. Other is set when the tables differ in anything the lists miss (a
// weight, a path's destination, a certificate) or when the rendered configs differ while the
// tables look the same: the caller passes that as configChanged.
func Diff(prev, next routing.Table, configChanged bool) Change {
	var c Change
	strictly := func(ss []routing.Site) bool {
		for i := 1; i < len(ss); i++ {
			if ss[i-1].Host >= ss[i].Host {
				return false
			}
		}
		return true
	}
	if strictly(prev.Sites) && strictly(next.Sites) {
		c = diffSorted(prev, next)
	} else {
		c.SitesAdded, c.SitesRemoved = added(sites(prev.Sites), sites(next.Sites))
		c.ServersAdded, c.ServersRemoved = added(servers(prev.Sites, prev.TCP), servers(next.Sites, next.TCP))
	}
	c.Other = configChanged && c.Empty()
	return c
}

// diffSorted is Diff for tables whose sites are sorted by host, each host once (routing's): the
// sites are walked side by side, and only those added, removed or with other servers make server
// strings, so that an apply that changed one site of 5,000 compares, not formats, the others.
func diffSorted(prev, next routing.Table) Change {
	var c Change
	var was, is []routing.Site // the sites whose servers differ, or that came or went
	i, j := 0, 0
	for i < len(prev.Sites) || j < len(next.Sites) {
		switch {
		case j == len(next.Sites) || i < len(prev.Sites) && prev.Sites[i].Host < next.Sites[j].Host:
			was = append(was, prev.Sites[i])
			c.SitesRemoved = append(c.SitesRemoved, prev.Sites[i].Host)
			i++
		case i == len(prev.Sites) || next.Sites[j].Host < prev.Sites[i].Host:
			is = append(is, next.Sites[j])
			c.SitesAdded = append(c.SitesAdded, next.Sites[j].Host)
			j++
		default:
			if !sameServers(&prev.Sites[i], &next.Sites[j]) {
				was, is = append(was, prev.Sites[i]), append(is, next.Sites[j])
			}
			i++
			j++
		}
	}
	c.ServersAdded, c.ServersRemoved = added(servers(was, prev.TCP), servers(is, next.TCP))
	return c
}

// sameServers reports whether two sites of one host have the same server strings (servers).
func sameServers(a, b *routing.Site) bool {
	if len(a.Routes) != len(b.Routes) {
		return false
	}
	for k := range a.Routes {
		ra, rb := &a.Routes[k], &b.Routes[k]
		if ra.Path != rb.Path || len(ra.Backend.Servers) != len(rb.Backend.Servers) {
			return false
		}
		for l := range ra.Backend.Servers {
			sa, sb := &ra.Backend.Servers[l], &rb.Backend.Servers[l]
			if sa.Address != sb.Address || sa.Workload != sb.Workload {
				return false
			}
		}
	}
	return true
}

// Empty reports whether no site or server was added or removed.
func (c Change) Empty() bool {
	return len(c.SitesAdded)+len(c.SitesRemoved)+len(c.ServersAdded)+len(c.ServersRemoved) == 0
}

// String is the change in one line: "sites +a.example -b.example; servers +1 -2".
func (c Change) String() string {
	var parts []string
	if s := signed(c.SitesAdded, c.SitesRemoved, 5); s != "" {
		parts = append(parts, "sites "+s)
	}
	if len(c.ServersAdded)+len(c.ServersRemoved) > 0 {
		parts = append(parts, fmt.Sprintf("servers +%d -%d", len(c.ServersAdded), len(c.ServersRemoved)))
	}
	if c.Other {
		parts = append(parts, "settings")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// signed lists up to max names of each list, "+a +b -c", then how many more.
func signed(plus, minus []string, max int) string {
	var b []string
	more := 0
	for _, l := range []struct {
		sign  string
		names []string
	}{{"+", plus}, {"-", minus}} {
		for i, n := range l.names {
			if i >= max {
				more += len(l.names) - max
				break
			}
			b = append(b, l.sign+n)
		}
	}
	if more > 0 {
		b = append(b, "and "+strconv.Itoa(more)+" more")
	}
	return strings.Join(b, " ")
}

func sites(ss []routing.Site) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Host)
	}
	return out
}

func servers(ss []routing.Site, tcps []routing.TCPService) []string {
	var out []string
	for _, s := range ss {
		for _, r := range s.Routes {
			for _, sv := range r.Backend.Servers {
				out = append(out, s.Host+r.Path+" "+sv.Address+" ("+sv.Workload+")")
			}
		}
	}
	for _, tcp := range tcps {
		for _, sv := range tcp.Backend.Servers {
			out = append(out, "tcp/"+strconv.Itoa(tcp.Port)+" "+sv.Address+" ("+sv.Workload+")")
		}
	}
	return out
}

// added returns what next has that prev has not, and the other way, each sorted and unique.
func added(prev, next []string) (plus, minus []string) {
	p, n := set(prev), set(next)
	for k := range n {
		if !p[k] {
			plus = append(plus, k)
		}
	}
	for k := range p {
		if !n[k] {
			minus = append(minus, k)
		}
	}
	slices.Sort(plus)
	slices.Sort(minus)
	return plus, minus
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// Entry is one apply attempt that did something, or failed.
type Entry struct {
	At time.Time `json:"at"`
	// Result: applied (reloaded), updated (runtime API, no reload), or the failure:
	// render_failed, check_failed, reload_failed, failed.
	Result     string        `json:"result"`
	Duration   time.Duration `json:"durationNs"`
	Generation uint64        `json:"generation"`
	Change     Change        `json:"change"`
	// Error is the failure, with the proxy's own message for a check or a reload.
	Error string `json:"error,omitempty"`
	// Quarantined are the sites the check refused, left out of this apply.
	Quarantined []string `json:"quarantined,omitempty"`
}

// How says how the change went live: "reload", "runtime API", or "" when it did not.
func (e Entry) How() string {
	switch e.Result {
	case "applied":
		return "reload"
	case "updated":
		return "runtime API"
	}
	return ""
}

// Log holds the last entries. Safe for concurrent use: the pipeline adds, the admin server reads.
type Log struct {
	mu      sync.Mutex
	max     int
	entries []Entry // oldest first
}

// New returns a log of the last max entries.
func New(max int) *Log { return &Log{max: max} }

// Add records an entry, dropping the oldest beyond the log's size.
func (l *Log) Add(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	if over := len(l.entries) - l.max; over > 0 {
		l.entries = slices.Delete(l.entries, 0, over)
	}
}

// List returns the entries, newest first.
func (l *Log) List() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.entries)
	slices.Reverse(out)
	return out
}
