package docker

import (
	"context"
	"errors"
	"sync"

	"github.com/docker/docker/api/types/events"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// event is what handling needs of one engine event.
type event struct {
	seq    uint64 // its number in Source.received
	id     string // the container's
	action string
	signal string // a kill's
	// network: a connect or disconnect, which matters only for a container already known.
	network bool
}

// compact keeps what handling needs of m, numbered seq; false for an event of no interest: a
// container outside the label filter, a network's own event.
func (s *Source) compact(m events.Message, seq uint64) (event, bool) {
	e := event{seq: seq, id: m.Actor.ID, action: string(m.Action)}
	if m.Type == events.NetworkEventType {
		e.id, e.network = m.Actor.Attributes["container"], true
	} else if !s.matches(m.Actor.Attributes) {
		return event{}, false
	}
	if e.action == "kill" {
		e.signal = m.Actor.Attributes["signal"]
	}
	return e, e.id != ""
}

// queue holds the events read and not yet handled. The reader never waits on it: past cap
// events, it drops them all and says so (overflow), and drops what follows until the session
// takes that and resyncs, as the resync's list shows every change they made.
type queue struct {
	cap   int
	ready chan struct{} // holds a token while there is something to take

	mu       sync.Mutex
	events   []event
	overflow bool
	err      error // the stream's end
}

func newQueue(cap int) *queue {
	return &queue{cap: cap, ready: make(chan struct{}, 1)}
}

func (q *queue) push(e event) {
	q.mu.Lock()
	switch {
	case q.overflow:
	case len(q.events) >= q.cap:
		q.events, q.overflow = nil, true
	default:
		q.events = append(q.events, e)
	}
	q.mu.Unlock()
	q.wake()
}

func (q *queue) fail(err error) {
	q.mu.Lock()
	q.err = err
	q.mu.Unlock()
	q.wake()
}

func (q *queue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *queue) take() (batch []event, overflow bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, overflow, err = q.events, q.overflow, q.err
	q.events, q.overflow = nil, false
	return batch, overflow, err
}

// read moves events from the engine's stream to q until the stream ends or ctx does.
func (s *Source) read(ctx context.Context, msgs <-chan events.Message, errs <-chan error, q *queue) {
	for {
		select {
		case m := <-msgs:
			if e, ok := s.compact(m, s.received.Add(1)); ok {
				q.push(e)
			}
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			q.fail(err)
			return
		case <-ctx.Done():
			return
		}
	}
}

// process handles a batch of events, in order. What needs no API call is done at once: a die or
// destroy removes the container, its stop signal takes it out of rotation (see stops), a start
// or an unpause ends that (and marks it dirty). Any other event marks its container dirty, and each dirty container is then
// inspected once, however many events it had: the inspect is sent after the last of them, so it
// sees the state they led to. A die after a container's events makes them moot (no inspect), a
// start after a die marks it dirty again; a container dirty only for events that an inspect
// already in the cache came after (a resync's, say) needs no inspect either.
func (s *Source) process(ctx context.Context, batch []event, out chan<- discovery.Update) error {
	var order []string           // dirty containers, in the order they became dirty
	dirty := map[string]uint64{} // dirty container -> its last event
	for _, e := range batch {
		if e.network {
			// Only running containers matter, and all of them are cached (or dirty): a container
			// that is not has yet to start, and its start event will inspect it.
			s.mu.Lock()
			_, known := s.cache[e.id]
			s.mu.Unlock()
			if _, queued := dirty[e.id]; !known && !queued {
				continue
			}
		}
		if s.opt.OnEvent != nil {
			s.opt.OnEvent(e.action)
		}
		remove := discovery.Update{Source: SourceName, Removed: []string{e.id}}
		switch e.action {
		case "die", "destroy":
			s.forget(e.id)
			delete(dirty, e.id)
			if err := send(ctx, out, remove); err != nil { // a dead container needs no inspect to know it is gone
				return err
			}
			continue
		case "kill":
			// The stop signal is the first sign of a stop: leave the rotation now, before the
			// process exits, at no API cost. Other signals (a HUP to reload the app) change
			// nothing. A container's own stop signal is known from its inspect: one that is dirty
			// and not cached yet (started in this batch) is inspected now, as it would have been
			// before this kill had the events come one by one.
			if seq, queued := dirty[e.id]; queued && !s.inCache(e.id) && !standardStop(e.signal) {
				delete(dirty, e.id)
				if err := s.refresh(ctx, []string{e.id}, map[string]uint64{e.id: seq}, out); err != nil {
					return err
				}
			}
			if !s.stops(e.id, e.signal) {
				continue
			}
			s.mu.Lock()
			s.stopping[e.id] = true
			s.mu.Unlock()
			if err := send(ctx, out, remove); err != nil {
				return err
			}
			continue
		case "start", "unpause":
			s.mu.Lock()
			delete(s.stopping, e.id)
			s.mu.Unlock()
		}
		if _, queued := dirty[e.id]; !queued {
			order = append(order, e.id)
		}
		dirty[e.id] = e.seq
	}
	return s.refresh(ctx, order, dirty, out)
}

// refresh brings the dirty containers among ids up to date, in the order of ids, each after its
// last event dirty[id]: from the cache when its inspect came after that event, else by an
// inspect (inspectConcurrency at a time). A container stopping stays out; it needs nothing.
func (s *Source) refresh(ctx context.Context, ids []string, dirty map[string]uint64, out chan<- discovery.Update) error {
	type todo struct {
		id    string
		entry cached
		fresh bool // entry is up to date; else inspect
	}
	var todos []todo
	var stale []string
	s.mu.Lock()
	for _, id := range ids {
		seq, ok := dirty[id]
		if !ok || s.stopping[id] {
			continue // dead since, or a health check or network change while it stops: it stays out
		}
		delete(dirty, id) // once, though it may be in ids again after a die and a start
		c, hit := s.cache[id]
		fresh := hit && seq <= c.seen
		todos = append(todos, todo{id: id, entry: c, fresh: fresh})
		if !fresh {
			stale = append(stale, id)
		}
	}
	s.mu.Unlock()
	inspected, gone, err := s.inspectAll(ctx, stale)
	if err != nil {
		return err
	}
	j := 0
	for _, t := range todos {
		c := t.entry
		if !t.fresh {
			c = inspected[j]
			if gone[j] {
				j++
				s.forget(t.id)
				if err := send(ctx, out, discovery.Update{Source: SourceName, Removed: []string{t.id}}); err != nil {
					return err
				}
				continue
			}
			j++
			s.mu.Lock()
			s.cache[t.id] = c // not ok: no fingerprint, so the next resync looks again
			s.mu.Unlock()
		}
		u := discovery.Update{Source: SourceName, Removed: []string{t.id}}
		if c.ok {
			u = discovery.Update{Source: SourceName, Workloads: []discovery.Workload{c.workload}}
		}
		if err := send(ctx, out, u); err != nil {
			return err
		}
	}
	return nil
}

// inCache reports whether the container is in the cache.
func (s *Source) inCache(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.cache[id]
	return ok
}

// standardStop reports whether a kill's signal stops every container: TERM, KILL, INT, QUIT.
func standardStop(signal string) bool {
	switch signal {
	case "15", "9", "2", "3":
		return true
	}
	return false
}
