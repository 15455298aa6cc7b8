// Package inventory holds the current set of workloads from every source, applies the sources'
// updates to it, and hands out immutable snapshots.
package inventory

import (
	"cmp"
	"maps"
	"slices"
	"sync"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Snapshot is the set of workloads at one generation, sorted by (source, name, ID).
// It shares workloads with the inventory; workloads are never mutated, so that is safe.
type Snapshot struct {
	Generation uint64
	Workloads  []discovery.Workload
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
	lastFull map[string][]discovery.Workload
	// sorted is the last snapshot's workloads, and dirty the workloads added, changed or removed
	// since: the next snapshot merges those into it rather than sorting 10,000 workloads again.
	sorted []discovery.Workload
	dirty  map[key]struct{}
}

// key names a workload across sources.
type key struct{ source, id string }

// New returns an empty inventory.
func New() *Inventory {
	return &Inventory{bySource: map[string]map[string]discovery.Workload{}, revs: map[string]int64{},
		lastFull: map[string][]discovery.Workload{}, dirty: map[key]struct{}{}}
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
	if u.Full && len(u.Removed) == 0 {
		if len(last) > 0 && len(last) == len(u.Workloads) && &last[0] == &u.Workloads[0] {
			inv.lastFull[u.Source] = last
			return false
		}
		inv.lastFull[u.Source] = u.Workloads
	}
	if u.Full {
		seen := make(map[string]struct{}, len(u.Workloads))
		for i := range u.Workloads {
			seen[u.Workloads[i].ID] = struct{}{}
		}
		for id := range set {
			if _, ok := seen[id]; !ok {
				delete(set, id)
				inv.markDirty(u.Source, id)
				changed = true
			}
		}
	}
	for i := range u.Workloads {
		w := &u.Workloads[i]
		if old, ok := set[w.ID]; ok && old.Equal(w) {
			continue
		}
		set[w.ID] = *w
		inv.markDirty(u.Source, w.ID)
		changed = true
	}
	for _, id := range u.Removed {
		if _, ok := set[id]; ok {
			delete(set, id)
			inv.markDirty(u.Source, id)
			changed = true
		}
	}
	if changed {
		inv.gen++
	}
	return changed
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
	ws := slices.Clone(inv.sorted) // the caller's to change
	var revs map[string]int64
	if len(inv.revs) > 0 {
		revs = maps.Clone(inv.revs)
	}
	return Snapshot{Generation: inv.gen, Workloads: ws, Revisions: revs}
}

// markDirty notes a workload added, changed or removed since the last snapshot. Past an eighth
// of the set the next snapshot sorts everything anyway: the list is dropped, so that it never
// grows with changes no snapshot takes.
func (inv *Inventory) markDirty(source, id string) {
	if inv.sorted == nil {
		return
	}
	inv.dirty[key{source, id}] = struct{}{}
	if len(inv.dirty) > len(inv.sorted)/8 {
		inv.sorted = nil
		clear(inv.dirty)
	}
}

// compare is the snapshot's order: (source, name, ID).
func compare(a, b *discovery.Workload) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
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
	slices.SortFunc(ws, func(a, b discovery.Workload) int { return compare(&a, &b) })
	return ws
}

// merge is the last snapshot without the dirty workloads, merged with their current versions
// (sorted, few): the same slice sortAll makes, in time linear in the number of workloads.
func (inv *Inventory) merge() []discovery.Workload {
	var fresh []discovery.Workload
	for k := range inv.dirty {
		if w, ok := inv.bySource[k.source][k.id]; ok {
			fresh = append(fresh, w)
		}
	}
	slices.SortFunc(fresh, func(a, b discovery.Workload) int { return compare(&a, &b) })
	out := make([]discovery.Workload, 0, len(inv.sorted)+len(fresh))
	for i := range inv.sorted {
		w := &inv.sorted[i]
		if _, ok := inv.dirty[key{w.Source, w.ID}]; ok {
			continue
		}
		for len(fresh) > 0 && compare(&fresh[0], w) < 0 {
			out = append(out, fresh[0])
			fresh = fresh[1:]
		}
		out = append(out, *w)
	}
	return append(out, fresh...)
}
