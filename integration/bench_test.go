package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartToFirst200 measures convergence as a user sees it: from `docker run` returning
// (the container is started) to the first 200 through the proxy, with the default debounce
// (100ms:1s), once per proxy (sub-benchmarks nginx and haproxy).
// Run it with a fixed count: go test -run '^$' -bench StartToFirst200 -benchtime 20x ./integration/
func BenchmarkStartToFirst200(b *testing.B) {
	for _, proxy := range proxies {
		b.Run(proxy, func(b *testing.B) { startToFirst200(b, proxy) })
	}
}

func startToFirst200(b *testing.B, proxy string) {
	measureStartToFirst200(b, newProxyEnv(b, proxy, nil, "--proxy-networks", "bridge", "--wait", "100ms:1s"))
}

// measureStartToFirst200 starts a container per iteration on the engine e's vhost-gen watches
// (directly or through etcd) and reports the time from `docker run` to the first 200.
func measureStartToFirst200(b *testing.B, e *env) {
	var afterRun, total []time.Duration
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("c%d", i)
		h := e.host(name)
		t0 := time.Now()
		e.run(name, "-e", "VIRTUAL_HOST="+h)
		t1 := time.Now()
		pollStatus(b, e, h, 200)
		afterRun, total = append(afterRun, time.Since(t1)), append(total, time.Since(t0))
		e.docker("rm", "-f", e.name(name))
		i++
	}
	b.ReportMetric(ms(median(afterRun)), "ms-median-run-to-200")
	b.ReportMetric(ms(median(total)), "ms-median-incl-docker-run")
	b.ReportMetric(ms(slices.Max(afterRun)), "ms-max-run-to-200")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
