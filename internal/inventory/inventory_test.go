package inventory

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// wl builds a workload; its Name defaults to "n-"+id.
func wl(source, id string, opts ...func(*discovery.Workload)) discovery.Workload {
	w := discovery.Workload{ID: id, Name: "n-" + id, Source: source}
	for _, o := range opts {
		o(&w)
	}
	return w
}

func named(name string) func(*discovery.Workload) {
	return func(w *discovery.Workload) { w.Name = name }
}

func label(k, v string) func(*discovery.Workload) {
	return func(w *discovery.Workload) {
		if w.Labels == nil {
			w.Labels = map[string]string{}
		}
		w.Labels[k] = v
	}
}

func health(h string) func(*discovery.Workload) {
	return func(w *discovery.Workload) { w.Health = h }
}

func full(source string, ws ...discovery.Workload) discovery.Update {
	return discovery.Update{Source: source, Full: true, Workloads: ws}
}

func upsert(source string, ws ...discovery.Workload) discovery.Update {
	return discovery.Update{Source: source, Workloads: ws}
}

func remove(source string, ids ...string) discovery.Update {
	return discovery.Update{Source: source, Removed: ids}
}

// keys lists a snapshot as "source/ID" in snapshot order.
func keys(s Snapshot) []string {
	out := make([]string, 0, len(s.Workloads))
	for _, w := range s.Workloads {
		out = append(out, w.Source+"/"+w.ID)
	}
	return out
}

func TestApply(t *testing.T) {
	type step struct {
		u           discovery.Update
		wantChanged bool
		want        []string // snapshot keys after the step, in order
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "full update sets a source's workloads",
			steps: []step{
				{u: full("docker", wl("docker", "b"), wl("docker", "a")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
			},
		},
		{
			name: "full update removes IDs it no longer lists",
			steps: []step{
				{u: full("docker", wl("docker", "a"), wl("docker", "b"), wl("docker", "c")), wantChanged: true, want: []string{"docker/a", "docker/b", "docker/c"}},
				{u: full("docker", wl("docker", "b")), wantChanged: true, want: []string{"docker/b"}},
			},
		},
		{
			name: "full update with nothing empties the source",
			steps: []step{
				{u: full("docker", wl("docker", "a"), wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: full("docker"), wantChanged: true, want: []string{}},
				{u: full("docker"), wantChanged: false, want: []string{}},
			},
		},
		{
			name: "full update replacing every workload",
			steps: []step{
				{u: full("docker", wl("docker", "a")), wantChanged: true, want: []string{"docker/a"}},
				{u: full("docker", wl("docker", "x"), wl("docker", "y")), wantChanged: true, want: []string{"docker/x", "docker/y"}},
			},
		},
		{
			name: "full update that only changes a workload",
			steps: []step{
				{u: full("docker", wl("docker", "a"), wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: full("docker", wl("docker", "a", health("unhealthy")), wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
			},
		},
		{
			name: "full update equal to the current set",
			steps: []step{
				{u: full("docker", wl("docker", "a", label("VIRTUAL_HOST", "a.example")), wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: full("docker", wl("docker", "b"), wl("docker", "a", label("VIRTUAL_HOST", "a.example"))), wantChanged: false, want: []string{"docker/a", "docker/b"}},
			},
		},
		{
			name: "upserts add and replace, keeping the others",
			steps: []step{
				{u: upsert("docker", wl("docker", "a")), wantChanged: true, want: []string{"docker/a"}},
				{u: upsert("docker", wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: upsert("docker", wl("docker", "a", label("VIRTUAL_HOST", "x"))), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: upsert("docker", wl("docker", "a", label("VIRTUAL_HOST", "x"))), wantChanged: false, want: []string{"docker/a", "docker/b"}},
			},
		},
		{
			name: "removals",
			steps: []step{
				{u: upsert("docker", wl("docker", "a"), wl("docker", "b"), wl("docker", "c")), wantChanged: true, want: []string{"docker/a", "docker/b", "docker/c"}},
				{u: remove("docker", "b"), wantChanged: true, want: []string{"docker/a", "docker/c"}},
				{u: remove("docker", "b"), wantChanged: false, want: []string{"docker/a", "docker/c"}},
				{u: remove("docker", "zzz"), wantChanged: false, want: []string{"docker/a", "docker/c"}},
				{u: remove("docker", "a", "c"), wantChanged: true, want: []string{}},
			},
		},
		{
			name: "removal of an unknown source changes nothing",
			steps: []step{
				{u: remove("etcd", "a"), wantChanged: false, want: []string{}},
				{u: upsert("etcd"), wantChanged: false, want: []string{}},
				{u: full("etcd"), wantChanged: false, want: []string{}},
			},
		},
		{
			name: "upsert and removal in one update",
			steps: []step{
				{u: upsert("docker", wl("docker", "a"), wl("docker", "b")), wantChanged: true, want: []string{"docker/a", "docker/b"}},
				{u: discovery.Update{Source: "docker", Workloads: []discovery.Workload{wl("docker", "c")}, Removed: []string{"a"}}, wantChanged: true, want: []string{"docker/b", "docker/c"}},
			},
		},
		{
			name: "sources are independent",
			steps: []step{
				{u: full("a", wl("a", "1"), wl("a", "2")), wantChanged: true, want: []string{"a/1", "a/2"}},
				{u: full("b", wl("b", "1"), wl("b", "3")), wantChanged: true, want: []string{"a/1", "a/2", "b/1", "b/3"}},
				// A full update of "a" leaves "b"'s workloads, even those with the same IDs.
				{u: full("a", wl("a", "2")), wantChanged: true, want: []string{"a/2", "b/1", "b/3"}},
				{u: full("a"), wantChanged: true, want: []string{"b/1", "b/3"}},
				// A removal in "b" of an ID that "a" once had does not touch "a".
				{u: upsert("a", wl("a", "1")), wantChanged: true, want: []string{"a/1", "b/1", "b/3"}},
				{u: remove("b", "1"), wantChanged: true, want: []string{"a/1", "b/3"}},
				{u: remove("b", "1"), wantChanged: false, want: []string{"a/1", "b/3"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := New()
			gen := inv.Snapshot().Generation
			for i, s := range tt.steps {
				changed := inv.Apply(s.u)
				if changed != s.wantChanged {
					t.Errorf("step %d: Apply = %v, want %v", i, changed, s.wantChanged)
				}
				snap := inv.Snapshot()
				if got := keys(snap); !slices.Equal(got, s.want) {
					t.Errorf("step %d: snapshot = %v, want %v", i, got, s.want)
				}
				switch {
				case s.wantChanged && snap.Generation <= gen:
					t.Errorf("step %d: changed, but generation %d did not move past %d", i, snap.Generation, gen)
				case !s.wantChanged && snap.Generation != gen:
					t.Errorf("step %d: nothing changed, but generation moved from %d to %d", i, gen, snap.Generation)
				}
				gen = snap.Generation
			}
		})
	}
}

func TestApplyStoresTheNewWorkload(t *testing.T) {
	inv := New()
	inv.Apply(full("docker", wl("docker", "a", label("VIRTUAL_HOST", "old.example"))))
	inv.Apply(upsert("docker", wl("docker", "a", named("renamed"), label("VIRTUAL_HOST", "new.example"))))
	snap := inv.Snapshot()
	if len(snap.Workloads) != 1 {
		t.Fatalf("snapshot has %d workloads, want 1", len(snap.Workloads))
	}
	w := snap.Workloads[0]
	if w.Name != "renamed" || w.Labels["VIRTUAL_HOST"] != "new.example" {
		t.Errorf("workload = %+v, want the upserted one", w)
	}
	// A full update with a changed workload stores the change too.
	inv.Apply(full("docker", wl("docker", "a", named("renamed"), label("VIRTUAL_HOST", "full.example"))))
	if got := inv.Snapshot().Workloads[0].Labels["VIRTUAL_HOST"]; got != "full.example" {
		t.Errorf("after full update: VIRTUAL_HOST = %q, want full.example", got)
	}
}

func TestGenerationCounts(t *testing.T) {
	inv := New()
	if g := inv.Snapshot().Generation; g != 0 {
		t.Errorf("new inventory: generation %d, want 0", g)
	}
	if s := inv.Snapshot(); len(s.Workloads) != 0 {
		t.Errorf("new inventory: %d workloads", len(s.Workloads))
	}
	inv.Apply(full("docker", wl("docker", "a")))
	g1 := inv.Snapshot().Generation
	for range 5 {
		// Equal updates of every kind leave the generation alone.
		inv.Apply(full("docker", wl("docker", "a")))
		inv.Apply(upsert("docker", wl("docker", "a")))
		inv.Apply(remove("docker", "missing"))
		inv.Apply(discovery.Update{Source: "docker"})
	}
	if g := inv.Snapshot().Generation; g != g1 {
		t.Errorf("generation moved from %d to %d on updates that changed nothing", g1, g)
	}
	inv.Apply(upsert("docker", wl("docker", "a", health("healthy"))))
	g2 := inv.Snapshot().Generation
	if g2 <= g1 {
		t.Errorf("generation %d after a change, want > %d", g2, g1)
	}
	// Nil and empty maps and slices are the same state (sources differ in which they produce).
	inv.Apply(upsert("docker", discovery.Workload{
		ID: "a", Name: "n-a", Source: "docker", Health: "healthy",
		Labels: map[string]string{}, Env: map[string]string{}, ServiceLabels: map[string]string{},
		Networks: []discovery.Network{}, Ports: []discovery.Port{},
	}))
	if g := inv.Snapshot().Generation; g != g2 {
		t.Errorf("generation moved from %d to %d when only nil became empty", g2, g)
	}
}

func TestSnapshotSorted(t *testing.T) {
	// The same workloads, inserted in several orders and ways, always come out sorted by
	// (source, name, ID).
	ws := []discovery.Workload{
		wl("swarm", "t2", named("web.1")),
		wl("docker", "c3", named("api")),
		wl("docker", "c1", named("web")),
		wl("swarm", "t1", named("web.1")),
		wl("docker", "c2", named("api")),
		wl("etcd", "e1", named("zzz")),
		wl("docker", "c0", named("Web")), // upper case sorts first
		wl("swarm", "t0", named("api.1")),
	}
	want := []string{"docker/c0", "docker/c2", "docker/c3", "docker/c1", "etcd/e1", "swarm/t0", "swarm/t1", "swarm/t2"}
	orders := [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7},
		{7, 6, 5, 4, 3, 2, 1, 0},
		{3, 0, 6, 2, 7, 1, 5, 4},
	}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			for _, oneByOne := range []bool{false, true} {
				inv := New()
				if oneByOne {
					for _, i := range order {
						inv.Apply(upsert(ws[i].Source, ws[i]))
					}
				} else {
					bySource := map[string][]discovery.Workload{}
					var sources []string
					for _, i := range order {
						s := ws[i].Source
						if bySource[s] == nil {
							sources = append(sources, s)
						}
						bySource[s] = append(bySource[s], ws[i])
					}
					for _, s := range sources {
						inv.Apply(full(s, bySource[s]...))
					}
				}
				for range 3 { // map iteration order varies from call to call
					if got := keys(inv.Snapshot()); !slices.Equal(got, want) {
						t.Errorf("oneByOne=%v: snapshot order %v, want %v", oneByOne, got, want)
					}
				}
			}
		})
	}
}

// TestSnapshotStays: a snapshot (read only, shared with the inventory) stays as it was when the
// inventory changes, by a full list or by events.
func TestSnapshotStays(t *testing.T) {
	inv := New()
	inv.Apply(full("docker", wl("docker", "a"), wl("docker", "b")))
	gen := inv.Snapshot().Generation
	s3 := inv.Snapshot()
	inv.Apply(upsert("docker", wl("docker", "aa")))
	inv.Snapshot()
	inv.Apply(full("docker", wl("docker", "c")))
	inv.Snapshot()
	if got := keys(s3); !slices.Equal(got, []string{"docker/a", "docker/b"}) || s3.Generation != gen {
		t.Errorf("old snapshot changed to %v (gen %d), want [docker/a docker/b] (gen %d)", got, s3.Generation, gen)
	}
	// The update's slice is not kept either: reusing it does not change the inventory.
	u := full("docker", wl("docker", "d"))
	inv.Apply(u)
	u.Workloads[0] = wl("docker", "e")
	if got := keys(inv.Snapshot()); !slices.Equal(got, []string{"docker/d"}) {
		t.Errorf("after reusing the update's slice: %v, want [docker/d]", got)
	}
}

func TestConcurrentApplyAndSnapshot(t *testing.T) {
	inv := New()
	const writers, rounds = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		source := fmt.Sprintf("src%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				id := fmt.Sprintf("%03d", i%10)
				switch i % 3 {
				case 0:
					inv.Apply(full(source, wl(source, id), wl(source, "fixed")))
				case 1:
					inv.Apply(upsert(source, wl(source, id, label("round", fmt.Sprint(i)))))
				case 2:
					inv.Apply(remove(source, id))
				}
			}
		}()
	}
	const readers = 4
	errs := make(chan string, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for range rounds {
				s := inv.Snapshot()
				if s.Generation < last {
					errs <- fmt.Sprintf("generation went back from %d to %d", last, s.Generation)
					return
				}
				last = s.Generation
				if !slices.IsSortedFunc(s.Workloads, func(a, b discovery.Workload) int {
					return strings.Compare(a.Source+"\x00"+a.Name+"\x00"+a.ID, b.Source+"\x00"+b.Name+"\x00"+b.ID)
				}) {
					errs <- fmt.Sprintf("snapshot not sorted: %v", keys(s))
					return
				}
				for _, w := range s.Workloads {
					_ = w.Labels["round"] // read what writers built
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Each writer's last two rounds: 198 (198%3 == 0) is a full update of 008 + fixed, 199
	// (199%3 == 1) upserts 009.
	want := []string{}
	for w := range writers {
		s := fmt.Sprintf("src%d", w)
		want = append(want, s+"/008", s+"/009", s+"/fixed")
	}
	if got := keys(inv.Snapshot()); !reflect.DeepEqual(got, want) {
		t.Errorf("final snapshot = %v, want %v", got, want)
	}
}

// A source that sends the same slice again (the Swarm source's idle poll) changes nothing, and
// is not compared; a partial update in between, or another slice, is taken as usual.
func TestApplySameSliceAgain(t *testing.T) {
	inv := New()
	ws := []discovery.Workload{{ID: "a", Name: "a", Source: "swarm"}, {ID: "b", Name: "b", Source: "swarm"}}
	if !inv.Apply(discovery.Update{Source: "swarm", Full: true, Workloads: ws}) {
		t.Fatal("the first full update changed nothing")
	}
	gen := inv.Snapshot().Generation
	if inv.Apply(discovery.Update{Source: "swarm", Full: true, Workloads: ws}) || inv.Snapshot().Generation != gen {
		t.Error("the same slice again changed the set")
	}
	if !inv.Apply(discovery.Update{Source: "swarm", Removed: []string{"b"}}) {
		t.Fatal("removing b changed nothing")
	}
	if !inv.Apply(discovery.Update{Source: "swarm", Full: true, Workloads: ws}) {
		t.Error("the same slice after a partial update was skipped: b stays removed")
	}
	if n := len(inv.Snapshot().Workloads); n != 2 {
		t.Errorf("%d workloads, want 2", n)
	}
	other := []discovery.Workload{ws[0]}
	if !inv.Apply(discovery.Update{Source: "swarm", Full: true, Workloads: other}) {
		t.Error("another slice without b changed nothing")
	}
}

// A Full update's slice is not kept alive by the inventory (the Docker source sends a new one at
// every resync: 2.5 MB at 10,000 containers).
func TestApplyKeepsNoFullSlice(t *testing.T) {
	inv := New()
	freed := make(chan struct{})
	func() {
		ws := make([]discovery.Workload, 100)
		for i := range ws {
			ws[i] = discovery.Workload{ID: fmt.Sprint(i), Name: fmt.Sprint(i), Source: "docker"}
		}
		runtime.AddCleanup(&ws[0], func(ch chan struct{}) { close(ch) }, freed)
		inv.Apply(discovery.Update{Source: "docker", Full: true, Workloads: ws})
		inv.Snapshot()
	}()
	for range 20 {
		runtime.GC()
		select {
		case <-freed:
			runtime.KeepAlive(inv)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	runtime.KeepAlive(inv)
	t.Fatal("the last Full update's slice is still alive")
}

// TestSnapshotMerged: over random updates (upserts that rename, removals, full sets, two sources),
// every snapshot, merged from the last one or sorted whole, is the sorted set.
func TestSnapshotMerged(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 3))
		inv := New()
		want := map[[2]string]discovery.Workload{}
		for step := range 400 {
			src := []string{"docker", "etcd"}[rng.IntN(2)]
			w := wl(src, fmt.Sprintf("id%02d", rng.IntN(60)), named(fmt.Sprintf("n%02d", rng.IntN(30))), health([]string{"", "healthy"}[rng.IntN(2)]))
			switch rng.IntN(10) {
			case 0: // a full set: what it names, no more
				var ws []discovery.Workload
				for k := range want {
					if k[0] == src {
						delete(want, k)
					}
				}
				for range rng.IntN(40) {
					w := wl(src, fmt.Sprintf("id%02d", rng.IntN(60)), named(fmt.Sprintf("n%02d", rng.IntN(30))))
					ws = append(ws, w)
					want[[2]string{src, w.ID}] = w
				}
				inv.Apply(full(src, ws...))
			case 1, 2:
				inv.Apply(remove(src, w.ID))
				delete(want, [2]string{src, w.ID})
			default:
				inv.Apply(upsert(src, w))
				want[[2]string{src, w.ID}] = w
			}
			if rng.IntN(3) > 0 { // not after every update: dirty sets of several
				continue
			}
			var ws []discovery.Workload
			for _, w := range want {
				ws = append(ws, w)
			}
			slices.SortFunc(ws, func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
			if got := inv.Snapshot().Workloads; !reflect.DeepEqual(slices.Clip(got), slices.Clip(ws)) && !(len(got) == 0 && len(ws) == 0) {
				t.Fatalf("seed %d step %d: snapshot\n%v\nwant\n%v", seed, step, keysOf(got), keysOf(ws))
			}
		}
	}
}

func keysOf(ws []discovery.Workload) []string {
	return keys(Snapshot{Workloads: ws})
}
