package render

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/Masterminds/sprig/v3"
)

// FuzzCounts: until, untilStep and seq, bounded, make what sprig's make wherever sprig's own loop
// ends (its step can overflow and loop for ever: the seed in testdata, untilStep 53 MinInt
// MinInt), and never more than their bound, whatever the ints.
func FuzzCounts(f *testing.F) {
	for _, s := range [][3]int{{0, 10, 1}, {10, 0, -3}, {0, 0, 0}, {-5, 5, 2}, {5, -5, 2}, {1, 1, -1},
		{math.MinInt, math.MaxInt, 1}, {math.MaxInt, math.MinInt, -1}, {math.MaxInt - 3, math.MaxInt, 1},
		{math.MinInt, math.MinInt + 5, 2}, {0, math.MaxInt, math.MaxInt}, {0, math.MinInt, math.MinInt},
		{math.MinInt, math.MaxInt, math.MaxInt}, {53, math.MinInt, math.MinInt + 1}} {
		f.Add(s[0], s[1], s[2])
	}
	const small = 10000
	sp := sprig.TxtFuncMap()
	bounded := funcBounds{list: small, str: MaxString}.funcs()
	untilStep, seq := bounded["untilStep"].(func(int, int, int) ([]int, error)), bounded["seq"].(func(...int) (string, error))
	sprigUntilStep, sprigSeq := sp["untilStep"].(func(int, int, int) []int), sp["seq"].(func(...int) string)
	// sprig's loops end, and compute end±1, without overflowing for ints this far from the ends.
	tame := func(ns ...int) bool {
		for _, n := range ns {
			if n > 1<<40 || n < -1<<40 {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, a, b, step int) {
		v, err := untilStep(a, b, step)
		switch {
		case err != nil:
			if untilCount(a, b, step) <= small {
				t.Errorf("untilStep(%d, %d, %d): %v", a, b, step, err)
			}
		case len(v) > small:
			t.Errorf("untilStep(%d, %d, %d): %d elements", a, b, step, len(v))
		case tame(a, b, step) && fmt.Sprint(v) != fmt.Sprint(sprigUntilStep(a, b, step)):
			t.Errorf("untilStep(%d, %d, %d) = %v, sprig makes %v", a, b, step, v, sprigUntilStep(a, b, step))
		}
		for _, p := range [][]int{{a}, {a, b}, {a, step, b}} {
			s, err := seq(p...)
			switch {
			case err != nil:
				if seqCount(p) <= small {
					t.Errorf("seq(%v): %v", p, err)
				}
			case len(strings.Fields(s)) > small:
				t.Errorf("seq(%v): %d numbers", p, len(strings.Fields(s)))
			case tame(p...) && s != sprigSeq(p...):
				t.Errorf("seq(%v) = %q, sprig writes %q", p, s, sprigSeq(p...))
			}
		}
	})
}
