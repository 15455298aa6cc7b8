package apply

import (
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestDebounceDue(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name     string
		min, max time.Duration
		changes  []time.Duration // offsets from t0, in order
		want     time.Duration   // offset from t0
	}{
		{
			name: "one change is due Min after it",
			min:  100 * ms, max: time.Second,
			changes: []time.Duration{0},
			want:    100 * ms,
		},
		{
			name: "one change late in time",
			min:  100 * ms, max: time.Second,
			changes: []time.Duration{5 * time.Second},
			want:    5*time.Second + 100*ms,
		},
		{
			name: "each change of a burst restarts the quiet period",
			min:  100 * ms, max: time.Second,
			changes: []time.Duration{0, 50 * ms, 120 * ms, 210 * ms},
			want:    310 * ms,
		},
		{
			name: "Max caps the wait from the first change",
			min:  100 * ms, max: 300 * ms,
			changes: []time.Duration{0, 90 * ms, 180 * ms, 270 * ms},
			want:    300 * ms, // the quiet period would end at 370ms
		},
		{
			name: "quiet period ending exactly at the cap",
			min:  100 * ms, max: 300 * ms,
			changes: []time.Duration{0, 200 * ms},
			want:    300 * ms,
		},
		{
			name: "quiet period ending just before the cap",
			min:  100 * ms, max: 300 * ms,
			changes: []time.Duration{0, 199 * ms},
			want:    299 * ms,
		},
		{
			name: "zero Min is due at the last change",
			min:  0, max: time.Second,
			changes: []time.Duration{0, 10 * ms},
			want:    10 * ms,
		},
		{
			name: "Min equal to Max is due Min after the first change",
			min:  200 * ms, max: 200 * ms,
			changes: []time.Duration{0, 150 * ms},
			want:    200 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Debounce{Min: tt.min, Max: tt.max}
			for _, c := range tt.changes {
				d.Change(at(c))
			}
			got, ok := d.Due()
			if !ok {
				t.Fatal("Due: ok = false after changes")
			}
			if want := at(tt.want); !got.Equal(want) {
				t.Errorf("Due = t0+%v, want t0+%v", got.Sub(t0), tt.want)
			}
		})
	}
}

func TestDebounceNothingPending(t *testing.T) {
	var zero Debounce
	if when, ok := zero.Due(); ok || !when.IsZero() {
		t.Errorf("zero Debounce: Due = %v, %v; want zero time, false", when, ok)
	}
	d := Debounce{Min: time.Millisecond, Max: time.Second}
	if _, ok := d.Due(); ok {
		t.Error("fresh Debounce: Due ok = true, want false")
	}
	d.Fired() // firing with nothing pending is harmless
	if _, ok := d.Due(); ok {
		t.Error("after Fired with nothing pending: Due ok = true, want false")
	}
}

func TestDebounceFiredResets(t *testing.T) {
	const ms = time.Millisecond
	d := Debounce{Min: 100 * ms, Max: 300 * ms}
	d.Change(at(0))
	d.Change(at(250 * ms))
	if got, _ := d.Due(); !got.Equal(at(300 * ms)) {
		t.Fatalf("first burst: Due = t0+%v, want t0+300ms", got.Sub(t0))
	}
	d.Fired()
	if when, ok := d.Due(); ok {
		t.Fatalf("after Fired: Due = %v, true; want ok = false", when)
	}
	// A change after Fired starts a new burst: both the quiet period and the cap are measured
	// from it, not from the first burst.
	d.Change(at(1000 * ms))
	if got, ok := d.Due(); !ok || !got.Equal(at(1100*ms)) {
		t.Fatalf("new burst: Due = t0+%v, %v; want t0+1.1s, true", got.Sub(t0), ok)
	}
	d.Change(at(1090 * ms))
	d.Change(at(1180 * ms))
	d.Change(at(1270 * ms))
	if got, _ := d.Due(); !got.Equal(at(1300 * ms)) {
		t.Errorf("new burst capped: Due = t0+%v, want t0+1.3s (Max from the new burst's first change)", got.Sub(t0))
	}
	d.Fired()
	if _, ok := d.Due(); ok {
		t.Error("after second Fired: Due ok = true, want false")
	}
}

func TestParseWait(t *testing.T) {
	tests := []struct {
		in       string
		min, max time.Duration
		wantErr  bool
	}{
		{in: "100ms:1s", min: 100 * time.Millisecond, max: time.Second},
		{in: "250ms", min: 250 * time.Millisecond, max: time.Second},
		{in: "1s", min: time.Second, max: 4 * time.Second},
		{in: "500ms:500ms", min: 500 * time.Millisecond, max: 500 * time.Millisecond},
		{in: "0", min: 0, max: 0},
		{in: "0s:2s", min: 0, max: 2 * time.Second},
		{in: "x", wantErr: true},
		{in: "", wantErr: true},
		{in: "1s:100ms", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "-1s:1s", wantErr: true},
		{in: "1s:y", wantErr: true},
		{in: "1s:", wantErr: true},
		{in: ":1s", wantErr: true},
		{in: "100", wantErr: true}, // a duration needs a unit
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			min, max, err := ParseWait(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseWait(%q) = %v, %v, nil; want an error", tt.in, min, max)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWait(%q): %v", tt.in, err)
			}
			if min != tt.min || max != tt.max {
				t.Errorf("ParseWait(%q) = %v, %v; want %v, %v", tt.in, min, max, tt.min, tt.max)
			}
		})
	}
}
