package routing

import (
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Cache keeps what one Build found for the next, so that a change costs what it touches rather
// than what the table holds: every workload's parsed settings (parsed again only when the
// workload is not Equal to the one they were parsed from; the inventory hands out the same maps
// and slices for a workload that did not change, so that is mostly pointers), and the last table.
//
// From the last table, a change to a few workloads rebuilds only the sites they had or have: the
// hosts they claim, and every host of every workload claiming one of those (a closed set, so that
// each of those workloads is placed with all its rivals). Everything else is kept: sites, their
// backend names, the other workloads' problems and exclusions. The whole table is built again
// when the partial build could differ from it: the options or the proxy's networks changed, a
// TCP service or an ACME request is among the workloads touched (both are decided across the
// table), a backend name has a hash (two routes' names collide), two workloads share a source
// and ID, or the change touches more than an eighth of the workloads. TestCacheBuild and
// TestCacheOddKeys hold it to Build, byte for byte.
type Cache struct {
	// WholeEvery, when set, builds the whole table when the last whole build is older: what
	// routing reads of a certificate (expired, not yet valid) changes with the clock.
	WholeEvery time.Duration

	mu sync.Mutex
	// wholeAt is when the last whole build was.
	wholeAt time.Time
	gen     uint64
	byID    map[workloadKey]*parsedSettings
	// hosts are the workloads claiming each host (as parsed: routed or not).
	hosts map[string][]workloadKey
	// order is the last Build's workloads' settings, in the table's order.
	order []*parsedSettings
	// last is the last table built, nil when the next build must be whole.
	last *lastTable
	// parsed counts the workloads the last Build parsed rather than reused; placed the
	// workloads it placed (all of them when it built the whole table).
	parsed, placed int
}

type parsedSettings struct {
	// w is the workload in the slice of the last Build that listed it, not a copy (10,000 of
	// them are 2.5 MB): Build's workloads are never changed (discovery.Update), and scan points
	// w at each new slice, so that no older one is kept.
	w        *discovery.Workload
	s        Settings
	problems []Problem
	routed   bool
	gen      uint64
	// hosts are the hosts the workload claims, sorted; global says it asks for a TCP service
	// or a certificate.
	hosts  []string
	global bool
	// at is the workload's index in the current build's sorted workloads.
	at int
}

// lastTable is the last table with what a partial build needs of it.
type lastTable struct {
	t   Table
	opt Options
	env proxyEnv
	// names are the backend names of the table's routes; every one is its route's base name.
	names map[string]bool
}

// Build is routing.Build, reusing what did not change since the last Build: the same table,
// byte for byte. The Cache keeps pointers into workloads: its elements must not change after
// (a changed workload comes in a new slice, as the inventory's snapshots do).
func (c *Cache) Build(workloads []discovery.Workload, opt Options) Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.parsed, c.placed = 0, 0
	if c.byID == nil {
		c.byID, c.hosts = map[workloadKey]*parsedSettings{}, map[string][]workloadKey{}
	}
	ws := sortedWorkloads(workloads)
	opt = withMode(opt)
	env := resolveProxy(ws, opt)
	dirty, dups := c.scan(ws)
	whole := dups
	if c.WholeEvery > 0 && time.Since(c.wholeAt) > c.WholeEvery {
		whole = true
	}
	if !whole && c.last != nil && c.last.opt.same(opt) && c.last.env.equal(env) {
		if t, ok := c.patch(ws, opt, env, dirty); ok {
			return t
		}
	}
	c.placed, c.wholeAt = len(ws), time.Now()
	t := placeAll(ws, opt, env, c.parse, nil)
	finish(&t, opt)
	c.last = remember(t, opt, env)
	if dups {
		// Two workloads share a key: what is kept by key (their settings, the hosts they
		// claim, the last order) cannot tell them apart. Start afresh: the next scan, with no
		// last order to walk, looks each up by key and finds the twins again while they last.
		c.byID, c.hosts, c.order, c.last = nil, nil, nil, nil
	}
	return t
}

// Invalidate makes the next Build whole: something routing reads besides the workloads and the
// options changed (the certificates).
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.last = nil
	c.mu.Unlock()
}

// change is one workload that came, went or changed since the last Build.
type change struct {
	key workloadKey
	// hosts are the hosts it claimed and claims; global: it asked or asks for a TCP service or
	// a certificate.
	hosts  []string
	global bool
}

// scan parses the workloads that changed and returns them, with those that went; dups says two
// workloads share a key (found when the last order was walked from nothing: Build then forgets
// the order). Both lists are in the table's
// order, so each workload is found by walking the last one beside it: a map lookup only for
// those that came or were renamed.
func (c *Cache) scan(ws []discovery.Workload) (changes []change, dups bool) {
	order, j := c.order, 0
	c.order = make([]*parsedSettings, len(ws))
	for i := range ws {
		w := &ws[i]
		k := workloadKey{w.Source, w.ID}
		var p *parsedSettings
		for ; j < len(order); j++ {
			if d := discovery.Compare(order[j].w, w); d >= 0 {
				if d == 0 {
					p = order[j]
					j++
				}
				break
			}
		}
		if p == nil {
			p = c.byID[k]
		}
		if p != nil && p.gen == c.gen {
			dups = true // its settings are parsed as often as it is listed
		}
		if p == nil || !p.w.Equal(w) {
			ch := change{key: k}
			if p != nil {
				ch.hosts, ch.global = p.hosts, p.global
				c.unindex(k, p.hosts)
			}
			p = c.parseNew(w)
			ch.hosts, ch.global = append(slices.Clip(ch.hosts), p.hosts...), ch.global || p.global
			changes = append(changes, ch)
			c.index(k, p.hosts)
		}
		p.gen, p.at, p.w = c.gen, i, w
		c.order[i] = p
	}
	if len(c.byID) > len(ws) || dups { // some went
		for k, p := range c.byID {
			if p.gen != c.gen {
				changes = append(changes, change{key: k, hosts: p.hosts, global: p.global})
				c.unindex(k, p.hosts)
				delete(c.byID, k)
			}
		}
	}
	return changes, dups
}

func (c *Cache) index(k workloadKey, hosts []string) {
	for _, h := range hosts {
		c.hosts[h] = append(c.hosts[h], k)
	}
}

func (c *Cache) unindex(k workloadKey, hosts []string) {
	for _, h := range hosts {
		ks := slices.DeleteFunc(c.hosts[h], func(x workloadKey) bool { return x == k })
		if len(ks) == 0 {
			delete(c.hosts, h)
		} else {
			c.hosts[h] = ks
		}
	}
}

// parse is place's parseFunc: the settings scan found or parsed.
func (c *Cache) parse(w *discovery.Workload) (Settings, []Problem, bool) {
	p := c.byID[workloadKey{w.Source, w.ID}]
	if p == nil || !p.w.Equal(w) { // a duplicate key
		p = c.parseNew(w)
	}
	return p.s, p.problems, p.routed
}

func (c *Cache) parseNew(w *discovery.Workload) *parsedSettings {
	s, problems, routed := ParseSettings(w)
	// Clipped: a caller's append to the problems never writes into the stored array.
	p := &parsedSettings{w: w, s: s, problems: slices.Clip(problems), routed: routed,
		global: s.TCPPort != 0 || len(s.TLS.ACME.Hosts) > 0}
	p.hosts = slices.Clone(s.Hosts)
	for _, m := range s.Multi {
		p.hosts = append(p.hosts, m.Host)
	}
	slices.Sort(p.hosts)
	p.hosts = slices.Compact(p.hosts)
	c.byID[workloadKey{w.Source, w.ID}] = p
	c.parsed++
	return p
}

// patch builds the table from the last one when the changes allow it (see Cache).
func (c *Cache) patch(ws []discovery.Workload, opt Options, env proxyEnv, changes []change) (Table, bool) {
	last := c.last
	if len(changes) == 0 {
		last.t.Workloads = ws // the same workloads; the older slice need not stay alive
		return last.t, true
	}
	hosts, touched, ok := c.closure(changes, max(64, len(ws)/8))
	if !ok {
		return Table{}, false
	}
	part := make([]discovery.Workload, 0, len(touched))
	ats := make([]int, 0, len(touched))
	for k := range touched {
		if p := c.byID[k]; p != nil {
			if p.global {
				return Table{}, false
			}
			ats = append(ats, p.at)
		}
	}
	slices.Sort(ats)
	for _, i := range ats {
		part = append(part, ws[i])
	}
	c.placed = len(part)
	sub := placeAll(part, opt, proxyEnv{nets: env.nets, mode: env.mode}, c.parse, &last.t.ACME)

	// The rebuilt sites' backend names must be their base names, free in the kept routes.
	names := last.names
	for _, s := range last.t.Sites {
		if hosts[s.Host] {
			for _, r := range s.Routes {
				delete(names, r.Backend.Name)
			}
		}
	}
	for _, s := range sub.Sites {
		for _, r := range s.Routes {
			if names[r.Backend.Name] || r.Backend.Name != backendBase(s.Host, r.Path) {
				c.last = nil // names is spoilt; the whole build remembers anew
				return Table{}, false
			}
			names[r.Backend.Name] = true
		}
	}

	t := last.t
	t.Workloads = ws
	t.Sites = mergeSites(last.t.Sites, sub.Sites, hosts)
	t.Problems = slices.DeleteFunc(slices.Clone(last.t.Problems), func(p Problem) bool {
		if p.Workload != "" || p.WorkloadID != "" { // a workload's
			return touched[workloadKey{p.Source, p.WorkloadID}]
		}
		return hosts[p.Host] || p.Setting == SettingDefaultHost // a site's TLS, DEFAULT_HOST's
	})
	t.Problems = append(t.Problems, sub.Problems...)
	t.Excluded = slices.DeleteFunc(slices.Clone(last.t.Excluded), func(e Exclusion) bool { return touched[workloadKey{e.Source, e.WorkloadID}] })
	t.Excluded = append(t.Excluded, sub.Excluded...)
	slices.SortFunc(t.Excluded, compareExclusions)
	if len(t.Excluded) == 0 {
		t.Excluded = nil // as a whole build has it
	}
	finish(&t, opt)
	c.last = &lastTable{t: t, opt: opt, env: env, names: names}
	return t, true
}

// closure is the hosts the changes touch and the workloads claiming them, grown until every
// host of every such workload is in: the part of the table a partial build makes. The keys of
// workloads that went are among them. ok is false past limit workloads.
func (c *Cache) closure(changes []change, limit int) (hosts map[string]bool, touched map[workloadKey]bool, ok bool) {
	hosts, touched = map[string]bool{}, map[workloadKey]bool{}
	var queue []string
	for _, ch := range changes {
		if ch.global {
			return nil, nil, false
		}
		touched[ch.key] = true
		for _, h := range ch.hosts {
			if !hosts[h] {
				hosts[h] = true
				queue = append(queue, h)
			}
		}
	}
	if len(touched) > limit {
		return nil, nil, false
	}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, k := range c.hosts[h] {
			if touched[k] {
				continue
			}
			if touched[k] = true; len(touched) > limit {
				return nil, nil, false
			}
			for _, h2 := range c.byID[k].hosts {
				if !hosts[h2] {
					hosts[h2] = true
					queue = append(queue, h2)
				}
			}
		}
	}
	return hosts, touched, true
}

// mergeSites is the kept sites (those not in hosts) and the rebuilt ones, in host order.
func mergeSites(kept, rebuilt []Site, hosts map[string]bool) []Site {
	out := make([]Site, 0, len(kept)+len(rebuilt))
	for _, s := range kept {
		if hosts[s.Host] {
			continue
		}
		for len(rebuilt) > 0 && rebuilt[0].Host < s.Host {
			out, rebuilt = append(out, rebuilt[0]), rebuilt[1:]
		}
		out = append(out, s)
	}
	return append(out, rebuilt...)
}

// remember keeps a table built whole for the next partial build; a table whose backend names
// collide is not kept (a name's hash depends on which routes came before it).
func remember(t Table, opt Options, env proxyEnv) *lastTable {
	names := map[string]bool{}
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			if r.Backend.Name != backendBase(s.Host, r.Path) {
				return nil
			}
			names[r.Backend.Name] = true
		}
	}
	return &lastTable{t: t, opt: opt, env: env, names: names}
}

// same reports whether two builds' options are the same. The certificates behind TLS are the
// same store (the caller invalidates the cache when its contents change).
func (o Options) same(p Options) bool {
	if o.TLS != p.TLS {
		return false
	}
	o.TLS, p.TLS = nil, nil
	return reflect.DeepEqual(o, p)
}

// workloadKey names a workload across sources.
type workloadKey struct{ source, id string }
