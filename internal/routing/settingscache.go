package routing

import (
	"slices"
	"sync"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// SettingsCache keeps each workload's parsed settings from one Build to the next. Parsing is a
// function of the workload alone, and an event changes one workload: at 10,000 workloads,
// parsing them all again was a third of Build. A workload is parsed again when it is not Equal to
// the one its settings were parsed from (the inventory's test of a change); the inventory hands out
// the same maps and slices for a workload that did not change, so that comparison is mostly
// pointers.
type SettingsCache struct {
	mu   sync.Mutex
	gen  uint64
	byID map[workloadKey]*parsedSettings
	// parsed counts the workloads the last Build parsed rather than reused.
	parsed int
}

type parsedSettings struct {
	w        discovery.Workload
	s        Settings
	problems []Problem
	routed   bool
	gen      uint64
}

// Build is routing.Build reusing the settings of the workloads that did not change: the same
// table, byte for byte (TestSettingsCacheBuild).
func (c *SettingsCache) Build(workloads []discovery.Workload, opt Options) Table {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.parsed = 0
	if c.byID == nil {
		c.byID = map[workloadKey]*parsedSettings{}
	}
	t := build(workloads, opt, c.parse)
	if len(c.byID) > len(workloads) { // some went: forget them
		for id, p := range c.byID {
			if p.gen != c.gen {
				delete(c.byID, id)
			}
		}
	}
	return t
}

func (c *SettingsCache) parse(w *discovery.Workload) (Settings, []Problem, bool) {
	k := workloadKey{w.Source, w.ID}
	p := c.byID[k]
	if p == nil || !p.w.Equal(w) {
		s, problems, routed := ParseSettings(w)
		// Clipped: a caller's append to the problems never writes into the stored array.
		p = &parsedSettings{w: *w, s: s, problems: slices.Clip(problems), routed: routed}
		c.byID[k] = p
		c.parsed++
	}
	p.gen = c.gen
	return p.s, p.problems, p.routed
}

// workloadKey names a workload across sources.
type workloadKey struct{ source, id string }
