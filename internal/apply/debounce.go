package apply

import (
	"fmt"
	"strings"
	"time"
)

// Debounce decides when a burst of changes is due: Min after the last change of the burst, but
// no later than Max after its first. It holds no clock and no timer, so it is tested without
// either; the caller sets a timer to Due().
type Debounce struct {
	Min, Max    time.Duration
	first, last time.Time
	pending     bool
}

// ParseWait parses --wait's "MIN:MAX" (or "MIN", which makes MAX four times MIN).
func ParseWait(v string) (min, max time.Duration, err error) {
	lo, hi, two := strings.Cut(v, ":")
	if min, err = time.ParseDuration(lo); err != nil {
		return 0, 0, fmt.Errorf("--wait %q: %w", v, err)
	}
	max = 4 * min
	if two {
		if max, err = time.ParseDuration(hi); err != nil {
			return 0, 0, fmt.Errorf("--wait %q: %w", v, err)
		}
	}
	if min < 0 || max < min {
		return 0, 0, fmt.Errorf("--wait %q: needs 0 <= MIN <= MAX", v)
	}
	return min, max, nil
}

// Change records a change at now.
func (d *Debounce) Change(now time.Time) {
	if !d.pending {
		d.first, d.pending = now, true
	}
	d.last = now
}

// Due returns when the pending burst should be applied; ok is false when nothing is pending.
func (d *Debounce) Due() (at time.Time, ok bool) {
	if !d.pending {
		return time.Time{}, false
	}
	quiet, latest := d.last.Add(d.Min), d.first.Add(d.Max)
	if latest.Before(quiet) {
		return latest, true
	}
	return quiet, true
}

// Fired marks the burst as taken: changes from now on start a new one.
func (d *Debounce) Fired() { d.pending = false }
