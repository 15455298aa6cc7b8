package enginesim

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// With DropSlowReaders, a subscriber that does not read loses what overflows its queue, after
// DropAfter each, as the engine's slow readers do; other subscribers' filters keep them out of it.
func TestSlowReaderDrops(t *testing.T) {
	b := newBus(Options{DropSlowReaders: true, EventBuffer: 2, DropAfter: time.Millisecond, History: 256})
	_, slow := b.subscribe(filters.NewArgs(), time.Time{}, time.Time{})
	_, other := b.subscribe(filters.NewArgs(filters.Arg("type", "service")), time.Time{}, time.Time{})
	for range 10 {
		b.publish(events.Message{Type: events.ContainerEventType, Action: "start"})
	}
	if got := b.dropped.Load(); got != 8 {
		t.Errorf("dropped %d, want 8", got)
	}
	if len(slow.ch) != 2 || len(other.ch) != 0 {
		t.Errorf("queues: %d and %d", len(slow.ch), len(other.ch))
	}
	b.unsubscribe(slow)
	b.unsubscribe(other)
}

// Without it, nothing is lost: the publisher waits for the reader.
func TestNoDropsByDefault(t *testing.T) {
	b := newBus(Options{History: 3})
	_, sub := b.subscribe(filters.NewArgs(), time.Time{}, time.Time{})
	done := make(chan int)
	go func() {
		n := 0
		for range sub.ch {
			if n++; n == 10 {
				break
			}
		}
		done <- n
	}()
	for range 10 {
		b.publish(events.Message{Type: events.ContainerEventType, Action: "start"})
	}
	if n := <-done; n != 10 || b.dropped.Load() != 0 {
		t.Errorf("read %d, dropped %d", n, b.dropped.Load())
	}
	if len(b.history) != 3 || b.history[0].TimeNano >= b.history[2].TimeNano {
		t.Errorf("history: %d events, times not increasing", len(b.history))
	}
	b.unsubscribe(sub)
}
