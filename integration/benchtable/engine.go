package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// labelKey marks every container this tool creates on the real engine; its value is the run's.
const labelKey = "vhost-gen.bench"

// echoImage is the integration tests' echo backend under a tag of its own, so that a run of the
// integration tests beside this one never sees it replaced.
const echoImage = "vhost-gen-echo:bench"

// engineResult is what the run against the real engine measured.
type engineResult struct {
	n                      int
	runs                   int
	toFirst200, withRun    time.Duration // medians: from docker run returning, and from its start
	apiPerStart            float64
	restarts               int
	vgCPU, vgChild, engCPU float64
}

// runEngine measures against the real dockerd: n echo containers routed through HAProxy, then
// c.runs more started one at a time, then c.restarts restarts.
func runEngine(ctx context.Context, c *config, n int) (*engineResult, error) {
	dir, err := os.MkdirTemp("", "benchtable-engine-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	label := labelKey + "=" + c.runID
	removeStale()
	defer removeLabelled(label)
	if err := buildEchoImage(dir); err != nil {
		return nil, err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-%03d", c.runID, i)
	}
	if err := runAll(ctx, names, label); err != nil {
		return nil, err
	}
	hp, err := startHAProxy(dir)
	if err != nil {
		return nil, err
	}
	defer hp.stop()
	v, err := startVhostGen(c.bin, dir, nil, haproxyArgs(c, hp, "--proxy-networks", "bridge", "--label-filter", label)...)
	if err != nil {
		return nil, err
	}
	defer v.stop()
	if _, err := v.nextApply(time.Minute); err != nil {
		return nil, fmt.Errorf("start-up: %w", err)
	}
	if _, err := v.settle(1500*time.Millisecond, time.Minute, routed(n, 0)); err != nil {
		return nil, err
	}
	r := &engineResult{n: n}
	if err := firstRequests(ctx, c, v, hp, label, r); err != nil {
		return nil, err
	}
	return r, restarts(ctx, c, v, names, r)
}

// firstRequests starts c.runs containers one at a time and times each to its first 200 through
// HAProxy; vhost-gen's Docker API requests over them, per container, come with it.
func firstRequests(ctx context.Context, c *config, v *vhostGen, hp *haproxyProc, label string, r *engineResult) error {
	m0, err := scrape(v.admin)
	if err != nil {
		return err
	}
	var after, total []time.Duration
	url := fmt.Sprintf("http://127.0.0.1:%d/", hp.port)
	for i := range c.runs {
		name := fmt.Sprintf("bench-%s-run%d", c.runID, i)
		host := name + ".bench.test"
		t0 := time.Now()
		if err := dockerRun(ctx, name, label, host); err != nil {
			return err
		}
		t1 := time.Now()
		err := waitFor(30*time.Second, func() error {
			if code := get(url, host); code != 200 {
				return fmt.Errorf("%s answers %d", host, code)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%w; log: %s", err, v.logPath)
		}
		after, total = append(after, time.Since(t1)), append(total, time.Since(t0))
	}
	m1, err := v.settle(1500*time.Millisecond, time.Minute, routed(r.n+c.runs, m0.sum("vhostgen_applies_total")))
	if err != nil {
		return err
	}
	r.runs = len(after)
	r.toFirst200, r.withRun = median(after), median(total)
	r.apiPerStart = (m1.sum("vhostgen_docker_api_requests_total") - m0.sum("vhostgen_docker_api_requests_total")) / float64(r.runs)
	return nil
}

// restarts restarts c.restarts of the containers one after the other (docker restart, a second
// to stop) and counts the CPU of vhost-gen and of dockerd until vhost-gen has routed them all again.
func restarts(ctx context.Context, c *config, v *vhostGen, names []string, r *engineResult) error {
	epid, err := dockerdPID()
	if err != nil {
		return err
	}
	m0, err := scrape(v.admin)
	if err != nil {
		return err
	}
	v0, err := readCPU(v.pid())
	if err != nil {
		return err
	}
	e0, err := readCPU(epid)
	if err != nil {
		return err
	}
	stopProfile := profile(c, v, fmt.Sprintf("vhost-gen-engine-n%d-restarts.pprof", r.n), 3+c.restarts*3/2)
	for i := range c.restarts {
		if _, err := docker(ctx, "restart", "-t", "1", names[i%len(names)]); err != nil {
			return err
		}
	}
	if _, err := v.settle(1500*time.Millisecond, time.Minute, routed(r.n+c.runs, m0.sum("vhostgen_applies_total"))); err != nil {
		return err
	}
	v1, err := readCPU(v.pid())
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	e1, err := readCPU(epid)
	if err != nil {
		return err
	}
	r.restarts = c.restarts
	r.vgCPU, r.vgChild, r.engCPU = v1.sub(v0).self, v1.sub(v0).children, e1.sub(e0).self
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// dockerRun starts an echo container that asks for host.
func dockerRun(ctx context.Context, name, label, host string) error {
	_, err := docker(ctx, "run", "-d", "--name", name, "--label", label, "-e", "ECHO_NAME="+name, "-e", "VIRTUAL_HOST="+host, echoImage)
	return err
}

// runAll starts the containers, four at a time (the engine serializes much of a start anyway).
func runAll(ctx context.Context, names []string, label string) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = dockerRun(ctx, name, label, name+".bench.test")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// docker runs the CLI; an error carries what it printed.
func docker(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// removeLabelled removes the containers with the label, whatever happened before.
func removeLabelled(label string) {
	out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label="+label).Output()
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
	}
}

// removeStale removes this tool's containers older than an hour: a run killed before its clean-up
// left them, and a run going on beside this one is younger.
func removeStale() {
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label="+labelKey, "--format", "{{.ID}} {{.CreatedAt}}").Output()
	var stale []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, created, ok := strings.Cut(line, " ")
		// The CLI prints "2006-01-02 15:04:05 -0700 MST", possibly with fractional seconds.
		at, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", created)
		if ok && err == nil && time.Since(at) > time.Hour {
			stale = append(stale, id)
		}
	}
	if len(stale) > 0 {
		exec.Command("docker", append([]string{"rm", "-f"}, stale...)...).Run()
	}
}
