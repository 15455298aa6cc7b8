package enginesim

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	timetypes "github.com/docker/docker/api/types/time"
)

// bus is the engine's event publisher: the last History events for since=, and one queue per
// /events subscriber, holding only the events that pass its filters (as the engine filters before
// queueing, so a slow reader loses only events it asked for).
type bus struct {
	opt     Options
	mu      sync.Mutex
	history []events.Message
	subs    map[*subscriber]struct{}
	last    int64 // the last TimeNano handed out, to keep times strictly increasing
	closed  chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

type subscriber struct {
	ch     chan events.Message
	filter filters.Args
	done   chan struct{} // closed when the stream ends
	kick   chan struct{} // closed by EndEventStreams
}

func newBus(opt Options) *bus {
	return &bus{opt: opt, subs: map[*subscriber]struct{}{}, closed: make(chan struct{})}
}

// publish stamps m with the time and hands it to every subscriber whose filters it passes. It
// waits for each: without DropSlowReaders until the subscriber takes it (or goes), with it at most
// DropAfter once the subscriber's queue is full, and then drops it for that subscriber.
func (b *bus) publish(m events.Message) {
	b.mu.Lock()
	now := time.Now().UnixNano()
	if now <= b.last {
		now = b.last + 1
	}
	b.last = now
	m.Time, m.TimeNano = now/int64(time.Second), now
	if len(b.history) == b.opt.History {
		b.history = append(b.history[:0], b.history[1:]...)
	}
	b.history = append(b.history, m)
	var to []*subscriber
	for s := range b.subs {
		if include(s.filter, m) {
			to = append(to, s)
		}
	}
	b.mu.Unlock()
	for _, s := range to {
		select {
		case s.ch <- m:
			continue
		case <-s.done:
			continue
		default:
		}
		if !b.opt.DropSlowReaders {
			select {
			case s.ch <- m:
			case <-s.done:
			}
			continue
		}
		t := time.NewTimer(b.opt.DropAfter)
		select {
		case s.ch <- m:
		case <-s.done:
		case <-t.C:
			b.dropped.Add(1)
		}
		t.Stop()
	}
}

// subscribe registers a subscriber and returns the past events it asked for (since/until), as
// the engine does: only when since or until is set, only those still in the history.
func (b *bus) subscribe(f filters.Args, since, until time.Time) ([]events.Message, *subscriber) {
	size := 0
	if b.opt.DropSlowReaders {
		size = b.opt.EventBuffer
	}
	s := &subscriber{ch: make(chan events.Message, size), filter: f, done: make(chan struct{}), kick: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []events.Message
	if !since.IsZero() || !until.IsZero() {
		for _, m := range b.history {
			if (since.IsZero() || m.TimeNano >= since.UnixNano()) && (until.IsZero() || m.TimeNano <= until.UnixNano()) && include(f, m) {
				past = append(past, m)
			}
		}
	}
	b.subs[s] = struct{}{}
	return past, s
}

func (b *bus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	close(s.done)
}

// kickAll ends every stream that is open now.
func (b *bus) kickAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case <-s.kick:
		default:
			close(s.kick)
		}
	}
	return len(b.subs)
}

func (b *bus) close() { b.once.Do(func() { close(b.closed) }) }

// Dropped is how many events subscribers lost for reading too slowly (DropSlowReaders).
func (s *Sim) Dropped() int64 { return s.bus.dropped.Load() }

// EndEventStreams ends every open /events stream, as an engine restart or a proxy in between
// would, and returns how many it ended; clients see the stream end and reconnect.
func (s *Sim) EndEventStreams() int { return s.bus.kickAll() }

// Subscribers is how many /events streams are open.
func (s *Sim) Subscribers() int {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return len(s.bus.subs)
}

// include is the engine's event filter (daemon/events/filter.go), for the keys vhost-gen and tests
// use: type, event (health_status, exec_create and exec_start match by prefix, as the engine
// does), scope, label, and container, network, service, node by ID or name.
func include(f filters.Args, m events.Message) bool {
	if f.Len() == 0 {
		return true
	}
	action := string(m.Action)
	matchEvent := f.ExactMatch("event", action)
	for _, v := range f.Get("event") {
		if v == "health_status" || v == "exec_create" || v == "exec_start" {
			matchEvent = f.FuzzyMatch("event", action)
			break
		}
	}
	if !matchEvent || !f.ExactMatch("type", string(m.Type)) {
		return false
	}
	if f.Contains("scope") && !f.ExactMatch("scope", m.Scope) {
		return false
	}
	for _, t := range []events.Type{events.ContainerEventType, events.NetworkEventType, events.ServiceEventType, events.NodeEventType} {
		// FuzzyMatch is true when the key is absent; for another type's key, an event of this type
		// does not match (the engine's fuzzyMatchName checks every key against every event).
		if !f.FuzzyMatch(string(t), m.Actor.ID) && !f.FuzzyMatch(string(t), m.Actor.Attributes["name"]) {
			return false
		}
	}
	return !f.Contains("label") || f.MatchKVList("label", m.Actor.Attributes)
}

// eventTime parses since/until: Unix seconds with optional nanoseconds, as the client sends them.
func eventTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, nsec, err := timetypes.ParseTimestamps(v, -1)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, nsec), nil
}

// events answers GET /events: the past events asked for, then, unless until is past, a stream of
// JSON documents, one a line, until until, the client goes, or EndEventStreams.
func (s *Sim) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := eventTime(q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	until, err := eventTime(q.Get("until"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !until.IsZero() && until.Before(since) {
		writeError(w, http.StatusBadRequest, "`since` time ("+q.Get("since")+") cannot be after `until` time ("+q.Get("until")+")")
		return
	}
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Subscribe, then send the header at once: the client's Events returns once it has the
	// header, and from then on no event is missed. (The engine sends the header first and
	// subscribes after, so an event in between is lost; a caller that lists after subscribing,
	// as vhost-gen does, sees that change in its list anyway.)
	past, sub := s.bus.subscribe(f, since, until)
	defer s.bus.unsubscribe(sub)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	for _, m := range past {
		if enc.Encode(m) != nil {
			return
		}
	}
	flush()
	var timeout <-chan time.Time
	if !until.IsZero() {
		if !until.After(time.Now()) {
			return // only past events
		}
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case m := <-sub.ch:
			if enc.Encode(m) != nil {
				return
			}
			flush()
		case <-timeout:
			return
		case <-sub.kick:
			return
		case <-s.bus.closed:
			return
		case <-r.Context().Done():
			return
		}
	}
}
