package swarm

import (
	"testing"
	"time"
)

func TestStormProbe(t *testing.T) {
	e := newFakeSwarm(t)
	w := startWatch(t, e, Options{Poll: time.Minute})
	if _, ok := w.next(t, 2*time.Second); !ok {
		t.Fatal("no first update")
	}
	before := e.calls("/tasks")
	for range 30 {
		e.events <- containerEvent("start", map[string]string{"com.docker.swarm.task.id": "x"})
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	t.Logf("polls during a 30-event storm (150ms): %d", e.calls("/tasks")-before)
	time.Sleep(5 * time.Second)
	t.Logf("polls in all after the storm: %d", e.calls("/tasks")-before)
}
