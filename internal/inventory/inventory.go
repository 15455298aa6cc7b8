// Package inventory holds the current set of workloads from every source, applies the sources'
// updates to it, and hands out immutable snapshots.
package inventory

import (
	"maps"
	"slices"
	"sync"
	"weak"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Snapshot is the set of workloads at one generation, sorted by (source, name, ID).
// It shares workloads with the inventory; workloads are never mutated, so that is safe.
type Snapshot struct {
	Generation uint64
	// Workloads are sorted by (source, name, ID). The slice is shared with the inventory, which
	// never changes it (a change makes a new one): read only, so that no copy of 10,000
	// workloads is made per change.
	Workloads []discovery.Workload
	// Revisions are the sources' revisions (etcd's), by source; absent for sources without.
	Revisions map[string]int64
}

// Inventory is safe for concurrent use.
type Inventory struct {
	mu       sync.Mutex
	gen      uint64
	bySource map[string]map[string]discovery.Workload
	revs     map[string]int64
	// lastFull is each source's last Full update's slice, when no other update of the source
	// came after it: the same slice again (the Swarm source's idle poll) is the same set, since
	// a sent update's slice is never modified. It saves comparing 10,000 workloads every poll.
	lastFull map[string]fullSlice
	// sorted is the last snapshot's workloads, and dirty the workloads added, changed or removed
	// since: the next snapshot merges those into it rather than sorting 10,000 workloads again.
	sorted []discovery.Workload
	dirty  map[key]lastPlace
}

// lastPlace is where a dirty workload was in the last snapshot: its name (the snapshot is
// sorted by source, name and ID), if it was there at all.
type lastPlace struct {
	name string
	was  bool
}

// key names a workload across sources.
type key struct{ source, id string }

// New returns an empty inventory.
func New() *Inventory {
	return &Inventory{bySource: map[string]map[string]discovery.Workload{}, revs: map[string]int64{},
		lastFull: map[string]fullSlice{}, dirty: map[key]lastPlace{}}
}

// Apply applies one update and reports whether the set changed. An update that changes nothing
// (a container restarted into the same state) leaves the generation as it was.
func (inv *Inventory) Apply(u discovery.Update) bool {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	set := inv.bySource[u.Source]
	if set == nil {
		set = map[string]discovery.Workload{}
		inv.bySource[u.Source] = set
	}
	changed := false
	if u.Revision != 0 {
		inv.revs[u.Source] = u.Revision
	}
	last := inv.lastFull[u.Source]
	delete(inv.lastFull, u.Source)
	if u.Full && len(u.Removed) == 0 && len(u.Workloads) > 0 {
		if last.n == len(u.Workloads) && last.first.Value() == &u.Workloads[0] {
			inv.lastFull[u.Source] = last
			return false
		}
		inv.lastFull[u.Source] = fullSlice{weak.Make(&u.Workloads[0]), len(u.Workloads)}
	}
	if u.Full {
		seen := make(map[string]struct{}, len(u.Workloads))
		for i := range u.Workloads {
			seen[u.Workloads[i].ID] = struct{}{}
		}
		for id, old := range set {
			if _, ok := seen[id]; !ok {
				delete(set, id)
				inv.markDirty(u.Source, id, old, true)
				changed = true
			}
		}
	}
	for i := range u.Workloads {
		w := &u.Workloads[i]
		old, ok := set[w.ID]
		if ok && old.Equal(w) {
			continue
		}
		set[w.ID] = *w
		inv.markDirty(u.Source, w.ID, old, ok)
		changed = true
	}
	for _, id := range u.Removed {
		if old, ok := set[id]; ok {
			delete(set, id)
			inv.markDirty(u.Source, id, old, true)
			changed = true
		}
	}
	if changed {
		inv.gen++
	}
	return changed
}

// fullSlice says which slice a Full update was, without keeping it: a source that sends the same
// slice again keeps it, and one that sends a new slice each time (2.5 MB at 10,000 containers)
// lets it go.
type fullSlice struct {
	first weak.Pointer[discovery.Workload]
	n     int
}

// Snapshot returns the current set.
func (inv *Inventory) Snapshot() Snapshot {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	switch {
	case len(inv.dirty) == 0 && inv.sorted != nil:
	case inv.sorted != nil:
		inv.sorted = inv.merge()
	default:
		inv.sorted = inv.sortAll()
	}
	clear(inv.dirty)
	ws := inv.sorted
	var revs map[string]int64
	if len(inv.revs) > 0 {
		revs = maps.Clone(inv.revs)
	}
	return Snapshot{Generation: inv.gen, Workloads: ws, Revisions: revs}
}

// markDirty notes a workload added, changed or removed since the last snapshot. Past an eighth
// of the set the next snapshot sorts everything anyway: the list is dropped, so that it never
// grows with changes no snapshot takes.
// old is the workload as it was before this change (ok false: it was not in the set).
func (inv *Inventory) markDirty(source, id string, old discovery.Workload, ok bool) {
	if inv.sorted == nil {
		return
	}
	k := key{source, id}
	if _, seen := inv.dirty[k]; !seen { // the first change since the snapshot: it was as old was
		inv.dirty[k] = lastPlace{name: old.Name, was: ok}
	}
	if len(inv.dirty) > len(inv.sorted)/8 {
		inv.sorted = nil
		clear(inv.dirty)
	}
}

// sortAll is every workload, sorted.
func (inv *Inventory) sortAll() []discovery.Workload {
	n := 0
	for _, set := range inv.bySource {
		n += len(set)
	}
	ws := make([]discovery.Workload, 0, n)
	for _, set := range inv.bySource {
		for _, w := range set {
			ws = append(ws, w)
		}
	}
	slices.SortFunc(ws, func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
	return ws
}

// merge is the last snapshot without the dirty workloads, merged with their current versions
// (sorted, few): the same slice sortAll makes, found by binary search and copied in runs, so
// that a change costs a copy of the slice and not a lookup per workload.
func (inv *Inventory) merge() []discovery.Workload {
	var fresh []discovery.Workload
	var drop []int
	for k, p := range inv.dirty {
		if p.was {
			i, found := slices.BinarySearchFunc(inv.sorted, discovery.Workload{Source: k.source, Name: p.name, ID: k.id},
				func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
			if !found {
				return inv.sortAll() // cannot be: the snapshot held it
			}
			drop = append(drop, i)
		}
		if w, ok := inv.bySource[k.source][k.id]; ok {
			fresh = append(fresh, w)
		}
	}
	slices.SortFunc(fresh, func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
	slices.Sort(drop)
	out := make([]discovery.Workload, 0, len(inv.sorted)-len(drop)+len(fresh))
	run := func(ws []discovery.Workload) { // a run of kept workloads, with the fresh ones among them
		for len(fresh) > 0 && len(ws) > 0 {
			j, _ := slices.BinarySearchFunc(ws, fresh[0], func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
			if j == len(ws) {
				break // after this run
			}
			out = append(append(out, ws[:j]...), fresh[0])
			ws, fresh = ws[j:], fresh[1:]
		}
		out = append(out, ws...)
	}
	start := 0
	for _, i := range drop {
		run(inv.sorted[start:i])
		start = i + 1
	}
	run(inv.sorted[start:])
	return append(out, fresh...)
}
