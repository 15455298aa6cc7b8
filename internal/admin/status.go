package admin

import (
	"slices"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/history"
)

// SourceStatus is what the dashboard and /routes say of one source.
type SourceStatus struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	// Error is why it does not answer, while it does not.
	Error string `json:"error,omitempty"`
	// LastEvent is when it last sent a change; LastResync when it last sent its whole set (at
	// start, after a reconnect, and at each periodic resync).
	LastEvent  *time.Time `json:"lastEvent,omitempty"`
	LastResync *time.Time `json:"lastResync,omitempty"`
	// Updates counts the updates it sent.
	Updates uint64 `json:"updates"`
}

// sourceSeen is the pipeline's view of a source.
type sourceSeen struct {
	lastEvent, lastResync time.Time
	updates               uint64
}

// SourceSeen records an update from a source: a whole set (full) or a change.
func (s *State) SourceSeen(name string, full bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]*sourceSeen{}
	}
	x := s.seen[name]
	if x == nil {
		x = &sourceSeen{}
		s.seen[name] = x
	}
	x.updates++
	if full {
		x.lastResync = at
	} else {
		x.lastEvent = at
	}
}

// SetHistory sets where /routes reads the last applies from (nil: none).
func (s *State) SetHistory(h *history.Log) {
	s.mu.Lock()
	s.history = h
	s.mu.Unlock()
}

// sourceStatuses lists every source seen or reported, sorted by name. Call with s.mu held.
func (s *State) sourceStatuses() []SourceStatus {
	names := map[string]bool{}
	for n := range s.seen {
		names[n] = true
	}
	for n := range s.sources {
		names[n] = true
	}
	out := make([]SourceStatus, 0, len(names))
	for n := range names {
		st := SourceStatus{Name: n, Connected: true}
		if why, down := s.sources[n]; down {
			st.Connected, st.Error = false, why
		}
		if x := s.seen[n]; x != nil {
			st.Updates = x.updates
			st.LastEvent, st.LastResync = timePtr(x.lastEvent), timePtr(x.lastResync)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
