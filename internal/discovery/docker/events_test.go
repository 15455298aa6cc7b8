package docker

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/events"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// batch numbers events as the reader does.
func (s *Source) batch(ms ...events.Message) []event {
	var out []event
	for _, m := range ms {
		if e, ok := s.compact(m, s.received.Add(1)); ok {
			out = append(out, e)
		}
	}
	return out
}

// drain returns the updates sent so far.
func drain(out chan discovery.Update) []discovery.Update {
	var us []discovery.Update
	for {
		select {
		case u := <-out:
			us = append(us, u)
		default:
			return us
		}
	}
}

// describe is an update in short: "+vgt-plain(healthy)" for a workload, "-e79f2e545edc" for a
// removal, "full:N" for a full update.
func describe(us []discovery.Update) []string {
	var out []string
	for _, u := range us {
		if u.Full {
			out = append(out, "full:"+strings.Repeat("w", len(u.Workloads)))
			continue
		}
		for _, w := range u.Workloads {
			out = append(out, "+"+w.Name)
		}
		for _, id := range u.Removed {
			out = append(out, "-"+id[:12])
		}
	}
	return out
}

func plainInspects(e *fakeEngine) int {
	return e.count(func(r string) bool { return strings.HasPrefix(r, "GET /v1.41/containers/"+plainID+"/json") })
}

// Events for one container in a batch cost one inspect, sent after the last of them.
func TestProcessCoalesces(t *testing.T) {
	e := newFakeEngine(t)
	var actions []string
	s := New(e.client(), Options{Log: quiet, OnEvent: func(a string) { actions = append(actions, a) }})
	out := make(chan discovery.Update, 16)
	connect := events.Message{Type: events.NetworkEventType, Action: "connect",
		Actor: events.Actor{ID: bridgeID, Attributes: map[string]string{"container": plainID}}}
	b := s.batch(
		connect, // before the start: not known yet, not queued: ignored, as one by one
		containerEvent("start", plainID, nil),
		containerEvent("health_status: healthy", plainID, nil),
		connect, // now queued: counts, and costs nothing more
		containerEvent("health_status: unhealthy", plainID, nil),
		containerEvent("start", pausedID, nil),
	)
	if err := s.process(context.Background(), b, out); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(drain(out)), []string{"+vgt-plain", "-" + pausedID[:12]}; !slices.Equal(got, want) {
		t.Errorf("updates %v, want %v (in the order the containers became dirty)", got, want)
	}
	if n := plainInspects(e); n != 1 {
		t.Errorf("vgt-plain inspected %d times for 4 events, want 1", n)
	}
	if n := e.inspects(); n != 2 {
		t.Errorf("%d inspects, want 2", n)
	}
	want := []string{"start", "health_status: healthy", "connect", "health_status: unhealthy", "start"}
	if !slices.Equal(actions, want) {
		t.Errorf("OnEvent heard %v, want %v", actions, want)
	}
}

// Order within a batch decides: a die after the events makes them moot, a start after a die ends
// in the started state.
func TestProcessOrder(t *testing.T) {
	tests := []struct {
		name     string
		actions  []string
		want     []string
		inspects int
	}{
		{"start, die", []string{"start", "health_status: healthy", "die"}, []string{"-" + plainID[:12]}, 0},
		{"die, start", []string{"health_status: healthy", "die", "start"}, []string{"-" + plainID[:12], "+vgt-plain"}, 1},
		{"restart", []string{"kill", "die", "start"}, []string{"-" + plainID[:12], "-" + plainID[:12], "+vgt-plain"}, 1},
		{"stop", []string{"health_status: healthy", "kill", "die", "destroy"}, []string{"-" + plainID[:12], "-" + plainID[:12], "-" + plainID[:12]}, 0},
		{"kill while starting", []string{"start", "kill"}, []string{"-" + plainID[:12]}, 0},
		{"unpause after kill", []string{"kill", "unpause"}, []string{"-" + plainID[:12], "+vgt-plain"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFakeEngine(t)
			s := New(e.client(), Options{Log: quiet})
			out := make(chan discovery.Update, 16)
			var ms []events.Message
			for _, a := range tt.actions {
				ms = append(ms, containerEvent(a, plainID, map[string]string{"signal": "15"}))
			}
			if err := s.process(context.Background(), s.batch(ms...), out); err != nil {
				t.Fatal(err)
			}
			if got := describe(drain(out)); !slices.Equal(got, tt.want) {
				t.Errorf("updates %v, want %v", got, tt.want)
			}
			if n := e.inspects(); n != tt.inspects {
				t.Errorf("%d inspects, want %d", n, tt.inspects)
			}
		})
	}
}

// A container started in the batch and sent its own stop signal (not TERM) in the same batch: its
// stop signal is known only from its inspect, so it is inspected before the kill is judged, and
// the kill drains it as it would had the events come one by one.
func TestProcessKillWithOwnStopSignal(t *testing.T) {
	e := newFakeEngine(t)
	var doc map[string]any
	if err := json.Unmarshal(e.inspect[plainID], &doc); err != nil {
		t.Fatal(err)
	}
	doc["Config"].(map[string]any)["StopSignal"] = "SIGWINCH"
	e.inspect[plainID], _ = json.Marshal(doc)
	s := New(e.client(), Options{Log: quiet})
	out := make(chan discovery.Update, 16)
	b := s.batch(containerEvent("start", plainID, nil), containerEvent("kill", plainID, map[string]string{"signal": "28"}),
		containerEvent("health_status: healthy", plainID, nil))
	if err := s.process(context.Background(), b, out); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(drain(out)), []string{"+vgt-plain", "-" + plainID[:12]}; !slices.Equal(got, want) {
		t.Errorf("updates %v, want %v", got, want)
	}
	if n := e.inspects(); n != 1 {
		t.Errorf("%d inspects, want 1", n)
	}
	s.mu.Lock()
	stopping := s.stopping[plainID]
	s.mu.Unlock()
	if !stopping {
		t.Error("the container's own stop signal did not drain it")
	}
	// A HUP to a container started in the same batch changes nothing, and costs the one inspect.
	s2 := New(e.client(), Options{Log: quiet})
	before := e.inspects()
	if err := s2.process(context.Background(), s2.batch(containerEvent("start", plainID, nil), containerEvent("kill", plainID, map[string]string{"signal": "1"})), out); err != nil {
		t.Fatal(err)
	}
	if got, want := describe(drain(out)), []string{"+vgt-plain"}; !slices.Equal(got, want) {
		t.Errorf("start, kill -HUP: updates %v, want %v", got, want)
	}
	if n := e.inspects() - before; n != 1 {
		t.Errorf("start, kill -HUP: %d inspects, want 1", n)
	}
}

// Events queued during a resync, for containers the resync inspected after them, cost no other
// inspect: the cached inspect is newer. Events after the inspect cost one.
func TestProcessSkipsEventsTheResyncSaw(t *testing.T) {
	e := newFakeEngine(t)
	s := New(e.client(), Options{Log: quiet})
	ctx := context.Background()
	early := s.batch(containerEvent("start", plainID, nil), containerEvent("kill", plainID, map[string]string{"signal": "15"}),
		containerEvent("start", plainID, nil)) // a restart during the resync, before its inspect
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	before := e.inspects()
	out := make(chan discovery.Update, 16)
	if err := s.process(ctx, early, out); err != nil {
		t.Fatal(err)
	}
	// The kill's removal, then the workload again, from the cache.
	if got, want := describe(drain(out)), []string{"-" + plainID[:12], "+vgt-plain"}; !slices.Equal(got, want) {
		t.Errorf("updates %v, want %v", got, want)
	}
	if n := e.inspects() - before; n != 0 {
		t.Errorf("events the resync saw cost %d inspects, want 0", n)
	}
	late := s.batch(containerEvent("health_status: healthy", plainID, nil))
	if err := s.process(ctx, late, out); err != nil {
		t.Fatal(err)
	}
	if n := e.inspects() - before; n != 1 {
		t.Errorf("an event after the resync's inspect cost %d inspects, want 1", n)
	}
}

// The resync's workloads come in the order of their IDs, whatever the list's order.
func TestListSortedByID(t *testing.T) {
	e := newFakeEngine(t)
	var list []map[string]any
	if err := json.Unmarshal(e.list, &list); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(list)
	e.list, _ = json.Marshal(list)
	ws, err := New(e.client(), Options{Log: quiet}).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(ws, func(a, b discovery.Workload) int { return strings.Compare(a.ID, b.ID) }) || len(ws) != len(runningNames) {
		t.Errorf("List order: %v", names(ws))
	}
}

// The queue never blocks its reader: past its cap it drops what it holds, says so once, and drops
// what follows until taken.
func TestQueueOverflow(t *testing.T) {
	q := newQueue(3)
	for i := range 3 {
		q.push(event{seq: uint64(i + 1), id: "a"})
	}
	b, overflow, err := q.take()
	if len(b) != 3 || overflow || err != nil {
		t.Fatalf("take = %d events, overflow %v, err %v", len(b), overflow, err)
	}
	for i := range 10 {
		q.push(event{seq: uint64(i + 4), id: "b"})
	}
	<-q.ready
	if b, overflow, _ := q.take(); len(b) != 0 || !overflow {
		t.Fatalf("past the cap: take = %d events, overflow %v; want none, overflow", len(b), overflow)
	}
	q.push(event{seq: 20, id: "c"})
	if b, overflow, _ := q.take(); len(b) != 1 || b[0].seq != 20 || overflow {
		t.Errorf("after the overflow was taken: %v, overflow %v", b, overflow)
	}
	q.fail(context.Canceled)
	<-q.ready
	if _, _, err := q.take(); err != context.Canceled {
		t.Errorf("err = %v", err)
	}
}
