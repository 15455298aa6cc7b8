// Package quarantine keeps one site's bad config from blocking every other site. When the proxy's
// check refuses a rendered config, it finds the sites (and TCP services) that make it fail by
// rendering and checking subsets, bisecting, so that k bad sites among n cost about 2k·log2(n)
// checks, not n; the config is then applied without them, and every workload behind them gets a
// problem carrying the proxy's own message. A quarantined site stays out, at no further cost,
// until its part of the routing table changes; then it is tried again.
//
// It sits between routing and apply and knows neither: it takes the render and check functions.
package quarantine

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// RenderFunc renders a table to the proxy's config.
type RenderFunc func(routing.Table) ([]byte, error)

// CheckFunc checks rendered bytes as the proxy would load them; its error is the proxy's message.
type CheckFunc func(ctx context.Context, data []byte) error

// ErrUnisolated says the check fails whatever sites are left out (a broken template or main
// config): nothing can be quarantined, and the original failure stands.
var ErrUnisolated = errors.New("the check fails even without any site")

// maxRounds bounds the searches of one Isolate: sites that fail only together can make the rest
// fail again once the first culprits are out.
const maxRounds = 3

// Set is the quarantine: the units the check refused, each with the fingerprint of its part of
// the table when it was refused and the reason. The zero value is empty and ready. It is not safe
// for concurrent use: one loop owns it.
type Set struct {
	held map[unit]entry
}

type entry struct {
	fingerprint [32]byte
	reason      string
}

// unit is what can be left out alone: a site (by host) or a TCP service (by port).
type unit struct {
	host string
	port int
}

func (u unit) String() string {
	if u.host != "" {
		return u.host
	}
	return fmt.Sprintf("TCP port %d", u.port)
}

// Held lists the quarantined units, sorted: host names, then "TCP port N".
func (s *Set) Held() []string {
	out := make([]string, 0, len(s.held))
	for _, u := range sortedUnits(s.held) {
		out = append(out, u.String())
	}
	return out
}

// Release lets every held unit go: the next render tries them all again. For a change outside
// the table (a certificate, an operator's snippet) that may be the fix.
func (s *Set) Release() { clear(s.held) }

// Filter takes out of t the units still held whose content is unchanged, with their problems, and
// releases those whose content changed: they are tried again.
func (s *Set) Filter(t routing.Table) routing.Table {
	if len(s.held) == 0 {
		return t
	}
	out := map[unit]string{}
	present := map[unit]bool{}
	for _, u := range units(t) {
		present[u] = true
		if e, ok := s.held[u]; ok {
			if fingerprint(t, u) == e.fingerprint {
				out[u] = e.reason
			} else {
				delete(s.held, u)
			}
		}
	}
	for u := range s.held {
		if !present[u] {
			delete(s.held, u) // gone from the table: nothing to hold
		}
	}
	return without(t, out)
}

// Isolate is called when the check refused the rendering of t (already filtered): it finds the
// units that make the check fail, holds them, and returns the table without them and its
// rendering, which passed the check. An error wrapping ErrUnisolated means that no set of sites
// explains the failure; any other error is a render failure.
func (s *Set) Isolate(ctx context.Context, t routing.Table, render RenderFunc, check CheckFunc) (routing.Table, []byte, error) {
	try := func(keep []unit) error {
		data, err := render(only(t, keep))
		if err != nil {
			return err
		}
		return check(ctx, data)
	}
	if err := try(nil); err != nil {
		if ctx.Err() != nil {
			return t, nil, ctx.Err()
		}
		return t, nil, fmt.Errorf("%w: %w", ErrUnisolated, err)
	}
	candidates := units(t)
	bad := map[unit]string{}
	passed := false
	for range maxRounds {
		found, err := search(candidates, try, true)
		if err != nil {
			return t, nil, err
		}
		if len(found) == 0 {
			break
		}
		maps.Copy(bad, found)
		candidates = slices.DeleteFunc(candidates, func(u unit) bool { _, ok := found[u]; return ok })
		if len(candidates) == 0 {
			passed = true // the check with no site passed above
			break
		}
		err = try(candidates)
		if err == nil {
			passed = true
			break
		}
		if isContext(err) {
			return t, nil, err
		}
	}
	if !passed {
		return t, nil, fmt.Errorf("%w: it fails with the sites together but not with any one of them alone (left out so far: %s)",
			ErrUnisolated, orNone(strings.Join(names(bad), ", ")))
	}
	if len(bad) > 1 && len(candidates) == 0 {
		// Every site fails alone: the cause is something they share (an operator's default
		// snippet), not theirs. Leaving them all out would serve nothing; the live config stays.
		return t, nil, fmt.Errorf("%w: every site fails the check on its own, so the cause is one they share (a default snippet?): %s",
			ErrUnisolated, bad[sortedUnits(bad)[0]])
	}
	if s.held == nil {
		s.held = map[unit]entry{}
	}
	for u, reason := range bad {
		s.held[u] = entry{fingerprint: fingerprint(t, u), reason: reason}
	}
	kept := without(t, bad)
	data, err := render(kept)
	if err != nil {
		return t, nil, err
	}
	return kept, data, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// search bisects group for the units whose config fails the check on its own; knownBad says the
// whole group is already known to fail, which saves its check. A context error ends the search.
func search(group []unit, try func([]unit) error, knownBad bool) (map[unit]string, error) {
	if len(group) == 0 {
		return nil, nil
	}
	if !knownBad || len(group) == 1 {
		err := try(group)
		if err == nil {
			return nil, nil
		}
		if isContext(err) {
			return nil, err
		}
		if len(group) == 1 {
			return map[unit]string{group[0]: reasonOf(group[0], err)}, nil
		}
	}
	half := len(group) / 2
	left, err := search(group[:half], try, false)
	if err != nil {
		return nil, err
	}
	right, err := search(group[half:], try, false)
	if err != nil {
		return nil, err
	}
	if len(left) == 0 && len(right) == 0 && knownBad {
		// Each half passes alone: the culprits fail only together. Leave the whole group to the
		// caller's next round rather than guess.
		return nil, nil
	}
	if left == nil {
		return right, nil
	}
	maps.Copy(left, right)
	return left, nil
}

func isContext(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// reasonOf is the problem's reason: the unit and the proxy's own message, bounded.
func reasonOf(u unit, err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 600 {
		msg = msg[:600] + "…"
	}
	return fmt.Sprintf("left out of %s: the proxy's check refuses its config (the other sites are applied): %s", u, msg)
}

// units lists t's sites and TCP services in table order.
func units(t routing.Table) []unit {
	out := make([]unit, 0, len(t.Sites)+len(t.TCP))
	for _, s := range t.Sites {
		out = append(out, unit{host: s.Host})
	}
	for _, ts := range t.TCP {
		out = append(out, unit{port: ts.Port})
	}
	return out
}

// only is t with only the units in keep (and all its problems and raw workloads).
func only(t routing.Table, keep []unit) routing.Table {
	in := make(map[unit]bool, len(keep))
	for _, u := range keep {
		in[u] = true
	}
	t.Sites = slices.DeleteFunc(slices.Clone(t.Sites), func(s routing.Site) bool { return !in[unit{host: s.Host}] })
	t.TCP = slices.DeleteFunc(slices.Clone(t.TCP), func(ts routing.TCPService) bool { return !in[unit{port: ts.Port}] })
	return t
}

// without is t without the units in out, with a problem for every workload behind each of them.
func without(t routing.Table, out map[unit]string) routing.Table {
	if len(out) == 0 {
		return t
	}
	source := make(map[string]string, len(t.Workloads))
	for _, w := range t.Workloads {
		source[w.ID] = w.Source
	}
	problems := slices.Clone(t.Problems)
	add := func(u unit, servers []routing.Server, seen map[string]bool) {
		for _, sv := range servers {
			if !seen[sv.WorkloadID] {
				seen[sv.WorkloadID] = true
				problems = append(problems, routing.Problem{Source: source[sv.WorkloadID], Workload: sv.Workload,
					WorkloadID: sv.WorkloadID, Reason: out[u]})
			}
		}
	}
	kept := make([]unit, 0)
	for _, u := range units(t) {
		if _, ok := out[u]; !ok {
			kept = append(kept, u)
			continue
		}
		seen := map[string]bool{}
		for _, s := range t.Sites {
			if s.Host == u.host && u.host != "" {
				for _, r := range s.Routes {
					add(u, r.Backend.Servers, seen)
				}
			}
		}
		for _, ts := range t.TCP {
			if ts.Port == u.port && u.host == "" {
				add(u, ts.Backend.Servers, seen)
			}
		}
	}
	t = only(t, kept)
	routing.SortProblems(problems)
	t.Problems = problems
	return t
}

// fingerprint is a hash of the unit's part of the table: when it changes, the unit is retried.
func fingerprint(t routing.Table, u unit) [32]byte {
	var v any
	for i := range t.Sites {
		if u.host != "" && t.Sites[i].Host == u.host {
			v = t.Sites[i]
		}
	}
	for i := range t.TCP {
		if u.host == "" && t.TCP[i].Port == u.port {
			v = t.TCP[i]
		}
	}
	b, _ := json.Marshal(v) // plain structs of strings and numbers: cannot fail
	return sha256.Sum256(b)
}

func names(m map[unit]string) []string {
	out := make([]string, 0, len(m))
	for _, u := range sortedUnits(m) {
		out = append(out, u.String())
	}
	return out
}

func sortedUnits[V any](m map[unit]V) []unit {
	us := make([]unit, 0, len(m))
	for u := range m {
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b unit) int { return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.host, b.host)) })
	return us
}
