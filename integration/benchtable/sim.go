package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/integration/enginesim"
)

// simResult is what one run against the simulator measured.
type simResult struct {
	n                      int
	startup                time.Duration
	apiPerEvent, apiStorm  float64
	render50, render99     float64 // seconds
	renders                float64
	write50, write99       float64 // seconds: the file put in place (write, fsync, rename)
	writes                 float64
	nginx50, nginx99       float64 // the same with nginx's template
	nginxRenders           float64
	runtime50, runtime99   time.Duration
	flips, flipReloads     int
	stormApplies, stormRel float64
	stormTook              time.Duration
	cpuPer1000             float64
	idleCPU                float64 // CPU seconds per second
	peakRSS                int64
}

// simSpec is the i-th simulated container: two replicas per site (so that one replica's health
// change is a server-only change, applied through HAProxy's runtime API), on a network the
// proxy does not share, reached at a port published on its own loopback address: HAProxy's
// health checks then get a reset at once, instead of filling a real bridge's ARP table.
func simSpec(i int) enginesim.ContainerSpec {
	return enginesim.ContainerSpec{
		Name:     fmt.Sprintf("app-%05d", i),
		Env:      []string{fmt.Sprintf("VIRTUAL_HOST=site-%05d.example", i/2), "VIRTUAL_PORT=80"},
		Ports:    []enginesim.Port{{Port: 80, Publish: true, HostIP: fmt.Sprintf("127.1.%d.%d", i/250, i%250+1), HostPort: 9}},
		Networks: []string{"frontend"},
		Health:   "healthy",
	}
}

// replicas are the simulated containers and which of them the benchmark made unhealthy.
type replicas struct {
	sim  *enginesim.Sim
	ids  []string
	down map[string]bool
}

// flip changes the health of site i's first replica (of the sites in turn): healthy to
// unhealthy, or back. Its other replica stays healthy, so the site stays and the change is a
// server-only one.
func (p *replicas) flip(i int) error {
	id := p.ids[2*(i%(len(p.ids)/2))]
	health := "unhealthy"
	if p.down[id] {
		health = "healthy"
	}
	if err := p.sim.SetHealth(id, health); err != nil {
		return err
	}
	p.down[id] = !p.down[id]
	return nil
}

// up is how many replicas are healthy, so routed.
func (p *replicas) up() int {
	n := len(p.ids)
	for _, d := range p.down {
		if d {
			n--
		}
	}
	return n
}

// runSim measures one N against the simulator, HAProxy and vhost-gen with its default debounce.
func runSim(ctx context.Context, c *config, n int) (*simResult, error) {
	dir, err := os.MkdirTemp("", "benchtable-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sim := enginesim.New(enginesim.Options{})
	if err := sim.Listen(filepath.Join(dir, "docker.sock")); err != nil {
		return nil, err
	}
	defer sim.Close()
	ids, err := sim.AddContainers(n, simSpec)
	reps := &replicas{sim: sim, ids: ids, down: map[string]bool{}}
	if err != nil {
		return nil, err
	}
	hp, err := startHAProxy(dir)
	if err != nil {
		return nil, err
	}
	defer hp.stop()
	v, err := startVhostGen(c.bin, dir, []string{"DOCKER_HOST=" + sim.Host()}, haproxyArgs(c, hp, "--proxy-networks", "bridge")...)
	if err != nil {
		return nil, err
	}
	defer v.stop()
	r := &simResult{n: n}
	first, err := v.nextApply(5 * time.Minute)
	if err != nil {
		return nil, fmt.Errorf("start-up: %w", err)
	}
	r.startup = first.at.Sub(v.started)
	m0, err := v.settle(1500*time.Millisecond, 5*time.Minute, routed(n, 0))
	if err != nil {
		return nil, err
	}
	if r.idleCPU, err = idle(ctx, v, c.idle); err != nil {
		return nil, err
	}
	// The flips' allocations are the difference of this profile and the last one.
	if err := heapProfile(c, v, fmt.Sprintf("vhost-gen-n%d-heap-settled.pprof", r.n)); err != nil {
		return nil, err
	}
	stopFlipsProfile := profile(c, v, fmt.Sprintf("vhost-gen-n%d-flips.pprof", r.n), 5)
	if err := flips(ctx, c, reps, v, r); err != nil {
		return nil, err
	}
	if err := stopFlipsProfile(); err != nil {
		return nil, err
	}
	m1, err := storm(ctx, c, reps, v, r)
	if err != nil {
		return nil, err
	}
	if err := r.renderTimes(m0, m1); err != nil {
		return nil, err
	}
	// The target is the peak including resyncs: each lists every container again.
	if err := resyncs(reps.sim, v, 2); err != nil {
		return nil, err
	}
	if r.peakRSS, err = peakRSS(v.pid()); err != nil {
		return nil, err
	}
	// Alone on the machine: the next vhost-gen's renders compete with neither this one nor
	// HAProxy's health checks.
	v.stop()
	hp.stop()
	return r, nginxRenders(ctx, c, reps, dir, r)
}

// nginxRenders times the renders of the same changes with nginx's template: vhost-gen writes the
// file and neither checks nor reloads anything, as no nginx runs here.
func nginxRenders(ctx context.Context, c *config, reps *replicas, dir string, r *simResult) error {
	args := []string{"--proxy", "nginx", "--out", filepath.Join(dir, "nginx.conf"), "--check-cmd", "none", "--reload-cmd", "none",
		"--wait", "100ms:1s", "--proxy-networks", "bridge"}
	if c.profile != "" {
		args = append(args, "--admin-pprof")
	}
	v, err := startVhostGen(c.bin, dir, []string{"DOCKER_HOST=" + reps.sim.Host()}, args...)
	if err != nil {
		return err
	}
	defer v.stop()
	if _, err := v.nextApply(5 * time.Minute); err != nil {
		return fmt.Errorf("nginx: start-up: %w", err)
	}
	m0, err := v.settle(1500*time.Millisecond, 5*time.Minute, routed(reps.up(), 0))
	if err != nil {
		return err
	}
	var scratch simResult
	stopProfile := profile(c, v, fmt.Sprintf("vhost-gen-n%d-nginx-flips.pprof", r.n), 5)
	if err := flips(ctx, c, reps, v, &scratch); err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	if err := stopProfile(); err != nil {
		return err
	}
	m1, err := scrape(v.admin)
	if err != nil {
		return err
	}
	if err := scratch.renderTimes(m0, m1); err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	r.nginx50, r.nginx99, r.nginxRenders = scratch.render50, scratch.render99, scratch.renders
	return nil
}

// renderTimes reads the renders' and the writes' p50 and p99 between two scrapes (the start-up's
// aside).
func (r *simResult) renderTimes(m0, m1 metrics) error {
	var err error
	if r.render50, r.render99, r.renders, err = timed(m0, m1, "vhostgen_render_duration_seconds", "render"); err != nil {
		return err
	}
	r.write50, r.write99, r.writes, err = timed(m0, m1, "vhostgen_write_duration_seconds", "write")
	return err
}

// timed is a histogram's p50, p99 and count between two scrapes; none is an error.
func timed(m0, m1 metrics, name, what string) (p50, p99, n float64, err error) {
	h := histDelta(m0, m1, name)
	if len(h) > 0 {
		n = h[len(h)-1].count
	}
	if n == 0 {
		return 0, 0, 0, fmt.Errorf("no %s timed: %s is missing or empty", what, name)
	}
	return quantile(0.5, h), quantile(0.99, h), n, nil
}

// haproxyArgs are vhost-gen's flags for the HAProxy hp, with the default debounce, then extra.
func haproxyArgs(c *config, hp *haproxyProc, extra ...string) []string {
	args := []string{"--proxy", "haproxy", "--out", hp.cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", hp.port),
		"--reload-pidfile", filepath.Join(hp.dir, "haproxy.pid"), "--haproxy-socket", filepath.Join(hp.dir, "admin.sock"),
		"--wait", "100ms:1s"}
	if c.profile != "" {
		args = append(args, "--admin-pprof")
	}
	return append(args, extra...)
}

// idle is vhost-gen's CPU seconds per second while nothing changes.
func idle(ctx context.Context, v *vhostGen, d time.Duration) (float64, error) {
	c0, err := runNanos(v.pid())
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	c1, err := runNanos(v.pid())
	return float64(c1-c0) / 1e9 / time.Since(t0).Seconds(), err
}

// flips changes one replica's health at a time, each alone (the apply comes before the next), and
// times each from the change to vhost-gen's log line of its apply: the debounce's MIN included.
// Every other flip undoes the one before, so the sites stay as they were.
func flips(ctx context.Context, c *config, reps *replicas, v *vhostGen, r *simResult) error {
	before := reps.sim.Requests()
	v.drainApplies()
	var took []time.Duration
	for k := range c.flips {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := time.Now()
		if err := reps.flip(k / 2); err != nil {
			return err
		}
		a, err := v.nextApply(30 * time.Second)
		if err != nil {
			return fmt.Errorf("health flip %d: %w", k, err)
		}
		took = append(took, a.at.Sub(t0))
		if a.how != "runtime API" {
			r.flipReloads++
		}
	}
	r.flips = len(took)
	slices.Sort(took)
	r.runtime50, r.runtime99 = took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	r.apiPerEvent = float64(apiCalls(before, reps.sim.Requests())) / float64(len(took))
	return nil
}

// apiCalls is the requests between two counts, the event stream aside (one long request).
func apiCalls(before, after map[string]int64) int64 {
	var n int64
	for k, v := range after {
		if !strings.HasSuffix(k, " /events") {
			n += v - before[k]
		}
	}
	return n
}

// storm makes c.storm health changes in one second (one replica of each site in turn, back and
// forth), waits until vhost-gen has applied the last of them, and counts the applies and the CPU
// it took.
func storm(ctx context.Context, c *config, reps *replicas, v *vhostGen, r *simResult) (metrics, error) {
	m0, err := scrape(v.admin)
	if err != nil {
		return nil, err
	}
	c0, err := readCPU(v.pid())
	if err != nil {
		return nil, err
	}
	before := reps.sim.Requests()
	stopProfile := profile(c, v, fmt.Sprintf("vhost-gen-n%d-storm.pprof", r.n), 5)
	t0 := time.Now()
	for i := range c.storm {
		if err := sleepUntil(ctx, t0.Add(time.Duration(i)*time.Second/time.Duration(c.storm))); err != nil {
			return nil, err
		}
		if err := reps.flip(i); err != nil {
			return nil, err
		}
	}
	r.stormTook = time.Since(t0)
	m1, err := v.settle(1500*time.Millisecond, 2*time.Minute, routed(reps.up(), m0.sum("vhostgen_applies_total")))
	if err != nil {
		return nil, err
	}
	c1, err := readCPU(v.pid())
	if err != nil {
		return nil, err
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	if err := heapProfile(c, v, fmt.Sprintf("vhost-gen-n%d-heap-storm.pprof", r.n)); err != nil {
		return nil, err
	}
	r.stormApplies = m1.sum("vhostgen_applies_total") - m0.sum("vhostgen_applies_total")
	r.stormRel = m1.sum("vhostgen_reloads_total") - m0.sum("vhostgen_reloads_total")
	r.cpuPer1000 = c1.sub(c0).self * 1000 / float64(c.storm)
	r.apiStorm = float64(apiCalls(before, reps.sim.Requests())) / float64(c.storm)
	return m1, nil
}

// resyncs makes vhost-gen read every container again n times, one after the other, as its periodic
// resync does: the simulator ends the event stream, and vhost-gen lists at the reconnect. Nothing
// changed, so it applies nothing.
func resyncs(sim *enginesim.Sim, v *vhostGen, n int) error {
	const list = "GET /containers/json"
	for range n {
		before := sim.Requests()[list]
		if sim.EndEventStreams() == 0 {
			return fmt.Errorf("resync: vhost-gen has no event stream open")
		}
		deadline := time.Now().Add(2 * time.Minute)
		for sim.Requests()[list] == before || sim.Subscribers() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("resync: vhost-gen did not list the containers again; log: %s", v.logPath)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := v.settle(1500*time.Millisecond, 2*time.Minute, nil); err != nil {
			return err
		}
	}
	return nil
}

func sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// heapProfile saves vhost-gen's heap profile (what is live, and what was allocated) into
// c.profile/name, when -profile is set.
func heapProfile(c *config, v *vhostGen, name string) error {
	if c.profile == "" {
		return nil
	}
	resp, err := (&http.Client{}).Get(fmt.Sprintf("http://%s/debug/pprof/heap?gc=1", v.admin))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(c.profile, name))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// profile takes vhost-gen's CPU profile for the next secs seconds into c.profile/name, when
// -profile is set; the returned func waits for it.
func profile(c *config, v *vhostGen, name string, secs int) func() error {
	if c.profile == "" {
		return func() error { return nil }
	}
	errc := make(chan error, 1)
	go func() {
		// A client of its own: the shared one gives up after 10 s.
		resp, err := (&http.Client{}).Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", v.admin, secs))
		if err != nil {
			errc <- err
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(c.profile, name))
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		errc <- err
	}()
	return func() error { return <-errc }
}
