package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// metrics is one scrape of vhost-gen's /metrics: each sample's value by its series, as written
// ("vhostgen_applies_total{result=\"updated\"}").
type metrics map[string]float64

var httpc = &http.Client{Timeout: 10 * time.Second}

// scrape reads the Prometheus text format; comments and blank lines aside, each line is
// "series value".
func scrape(admin string) (metrics, error) {
	resp, err := httpc.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	m := metrics{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, nil
}

// sum adds the samples of a metric whose labels hold every given `k="v"`.
func (m metrics) sum(name string, labels ...string) float64 {
	total := 0.0
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			total += v
		}
	}
	return total
}

// bucket is a histogram's cumulative count up to le.
type bucket struct{ le, count float64 }

// buckets are a histogram's cumulative buckets, by le, +Inf last.
func (m metrics) buckets(name string) []bucket {
	var out []bucket
	for series, v := range m {
		rest, ok := strings.CutPrefix(series, name+`_bucket{le="`)
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
		if err == nil {
			out = append(out, bucket{le, v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out
}

// histDelta is the observations of a histogram between two scrapes.
func histDelta(before, after metrics, name string) []bucket {
	old := map[float64]float64{}
	for _, b := range before.buckets(name) {
		old[b.le] = b.count
	}
	var out []bucket
	for _, b := range after.buckets(name) {
		out = append(out, bucket{b.le, b.count - old[b.le]})
	}
	return out
}

// quantile estimates the q-quantile of a histogram's observations as Prometheus's
// histogram_quantile does: linearly within the bucket it falls in (the buckets are 1.33 apart, so
// the estimate is within a third of the truth). NaN when there is none.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].count
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lo // beyond the last finite bucket: its bound is all that is known
			}
			if b.count == below {
				return b.le
			}
			return lo + (b.le-lo)*(rank-below)/(b.count-below)
		}
		lo, below = b.le, b.count
	}
	return lo
}
