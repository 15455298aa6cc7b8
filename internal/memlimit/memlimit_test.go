package memlimit

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	tests := []struct {
		live, want int64
	}{
		{0, Floor},
		{10 << 20, Floor},
		{40 << 20, Floor},
		{50 << 20, 80 << 20},
		{100 << 20, 160 << 20},
	}
	for _, tt := range tests {
		if got := Limit(Ratio, Floor, tt.live); got != tt.want {
			t.Errorf("Limit(%d MiB live) = %d MiB, want %d", tt.live>>20, got>>20, tt.want>>20)
		}
	}
}

// After a collection the limit is ratio × what is live, above the floor; stop lifts it.
func TestFollow(t *testing.T) {
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "GOGC")
	f := Follow(2, 1<<20)
	if f == nil {
		t.Fatal("Follow did nothing with neither GOMEMLIMIT nor GOGC set")
	}
	defer debug.SetMemoryLimit(math.MaxInt64)
	for _, size := range []int{16 << 20, 48 << 20} {
		keep := make([]byte, size)
		want := int64(0)
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			want = 2 * Live()
			time.Sleep(10 * time.Millisecond) // the cleanup runs on its own goroutine
			if got := debug.SetMemoryLimit(-1); got == want || time.Now().After(deadline) {
				if got != want {
					t.Fatalf("with %d MiB kept the limit is %d, want %d (2 × live)", size>>20, got, want)
				}
				break
			}
		}
		if want < int64(size) {
			t.Fatalf("live heap %d with %d bytes kept", want/2, size)
		}
		runtime.KeepAlive(keep)
	}
	f.Stop()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("after stop the limit is %d, want none", got)
	}
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("a collection after stop set the limit to %d", got)
	}
}

// An operator's GOMEMLIMIT or GOGC is left alone.
func TestFollowYields(t *testing.T) {
	for _, env := range []string{"GOMEMLIMIT", "GOGC"} {
		unsetenv(t, "GOMEMLIMIT")
		unsetenv(t, "GOGC")
		t.Setenv(env, "100")
		before := debug.SetMemoryLimit(-1)
		f := Follow(2, 1)
		if f != nil || debug.SetMemoryLimit(-1) != before {
			t.Errorf("with %s set, Follow changed the limit", env)
		}
		f.Stop()
		f.Settle() // a nil Follower does nothing
	}
}

func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restored after the test
	os.Unsetenv(name)
}

// Settle collects, once the limit is above the floor.
func TestSettle(t *testing.T) {
	unsetenv(t, "GOMEMLIMIT")
	unsetenv(t, "GOGC")
	defer debug.SetMemoryLimit(math.MaxInt64)
	forced := func(f *Follower) uint32 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f.Settle()
		time.Sleep(50 * time.Millisecond)
		runtime.ReadMemStats(&after)
		return after.NumForcedGC - before.NumForcedGC
	}
	low := Follow(2, 1<<40) // a floor no heap here reaches
	if n := forced(low); n != 0 {
		t.Errorf("Settle collected %d times below the floor", n)
	}
	low.Stop()
	high := Follow(2, 1)
	defer high.Stop()
	t0 := time.Now()
	if n := forced(high); n != 1 {
		t.Errorf("Settle above the floor collected %d times, want 1", n)
	}
	if high.next.Load() <= t0.UnixNano() {
		t.Error("after a collection, Settle may collect again at once")
	}
	high.next.Store(time.Now().Add(time.Hour).UnixNano())
	if n := forced(high); n != 0 {
		t.Errorf("Settle before its next time collected %d times, want 0", n)
	}
	high.next.Store(0)
	if n := forced(high); n != 1 {
		t.Errorf("Settle after its next time collected %d times, want 1", n)
	}
}
