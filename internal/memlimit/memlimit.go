// Package memlimit keeps a long-running vhost-gen's memory in proportion to what it holds.
//
// Go's default collector lets the heap grow to twice what was live after the last collection,
// and returns freed memory to the system slowly. vhost-gen's heap is mostly what it keeps from
// change to change (the workloads, the routing table, the rendered config and its parts), so at
// scale the default spends memory on garbage: at 10,000 workloads about 50 MB were live and the
// process peaked at 150 MB. Follow sets the runtime's soft memory limit, after every collection,
// to Ratio times the live heap (never below Floor): the collector then runs before the heap grows
// past it, and the runtime returns what it freed to stay under it. The cost is collections more
// often, only once the live heap is above Floor/Ratio. An operator's own GOMEMLIMIT or GOGC wins.
package memlimit

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The defaults: the limit follows the live heap once it passes 40 MiB.
const (
	Ratio = 1.6
	Floor = 64 << 20
)

const liveHeap = "/gc/heap/live:bytes"

// Follower keeps the limit following the live heap; a nil Follower does nothing.
type Follower struct {
	ratio      float64
	floor      int64
	stopped    atomic.Bool
	collecting atomic.Bool
	// next is when Settle may collect again (UnixNano): its collections take at most a tenth of
	// the time, so that applies in quick succession do not keep one running.
	next atomic.Int64
}

// Follow sets the soft memory limit to max(floor, ratio × live heap) now and after every
// collection, until Stop; it returns nil, and changes nothing, when the environment sets
// GOMEMLIMIT or GOGC.
func Follow(ratio float64, floor int64) *Follower {
	if os.Getenv("GOMEMLIMIT") != "" || os.Getenv("GOGC") != "" {
		return nil
	}
	f := &Follower{ratio: ratio, floor: floor}
	f.set()
	arm(&f.stopped, f.set)
	return f
}

func (f *Follower) set() {
	if !f.stopped.Load() {
		debug.SetMemoryLimit(Limit(f.ratio, f.floor, Live()))
	}
}

// Stop lifts the limit.
func (f *Follower) Stop() {
	if f == nil {
		return
	}
	f.stopped.Store(true)
	debug.SetMemoryLimit(math.MaxInt64)
}

// Settle collects now, on a goroutine of its own, when the limit is above the floor: one
// collection at a time, and after one that took d, none for the next 9d. Called after an apply,
// while vhost-gen waits for the next change: the next render then starts with the whole
// headroom, instead of collecting (and helping to) while it renders.
func (f *Follower) Settle() {
	if f == nil || f.stopped.Load() || time.Now().UnixNano() < f.next.Load() ||
		Limit(f.ratio, f.floor, Live()) <= f.floor || !f.collecting.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer f.collecting.Store(false)
		start := time.Now()
		runtime.GC()
		end := time.Now()
		f.next.Store(end.Add(9 * end.Sub(start)).UnixNano())
	}()
}

// Limit is the limit for a live heap of live bytes.
func Limit(ratio float64, floor, live int64) int64 {
	return max(floor, int64(ratio*float64(live)))
}

// Live is the heap live after the last collection, in bytes.
func Live() int64 {
	s := []metrics.Sample{{Name: liveHeap}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// sentinel is an object that nothing references: the collection after it was made frees it and
// runs its cleanup. The pointer keeps it out of the tiny allocator, whose blocks are shared and
// freed late.
type sentinel struct {
	_ *int
	_ [2]int64
}

// arm calls f after the next collection, and again after every one after, until stopped.
func arm(stopped *atomic.Bool, f func()) {
	runtime.AddCleanup(new(sentinel), func(struct{}) {
		if stopped.Load() {
			return
		}
		f()
		arm(stopped, f)
	}, struct{}{})
}
