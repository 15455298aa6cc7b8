package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// table is every result, printed as one Markdown table: a row per figure, a column per N.
type table struct {
	sims   []*simResult
	engine *engineResult
}

// row is a figure and how to show it for one simulator result or the engine's.
type row struct {
	name   string
	sim    func(r *simResult) string
	engine func(r *engineResult) string
}

func (t *table) rows(c *config) []row {
	storm := fmt.Sprintf("applies per storm of %s events in 1 s (`--wait 100ms:1s`)", thousands(c.storm))
	return []row{
		{name: "Docker API calls per event (one change / in a storm)", sim: func(r *simResult) string {
			return fmt.Sprintf("%.2f / %.2f", r.apiPerEvent, r.apiStorm)
		}},
		{name: "event → rendered bytes, p50 / p99 (debounce excluded): HAProxy", sim: func(r *simResult) string {
			return fmt.Sprintf("%s / %s ms (%.0f renders)", msf(r.render50), msf(r.render99), r.renders)
		}},
		{name: "rendered bytes → new file on disk (write, fsync, rename), p50 / p99: HAProxy", sim: func(r *simResult) string {
			return fmt.Sprintf("%s / %s ms (%.0f writes)", msf(r.write50), msf(r.write99), r.writes)
		}},
		{name: "event → rendered bytes, p50 / p99 (debounce excluded): nginx", sim: func(r *simResult) string {
			return fmt.Sprintf("%s / %s ms (%.0f renders)", msf(r.nginx50), msf(r.nginx99), r.nginxRenders)
		}},
		{name: "event → applied through HAProxy's runtime API, p50 / p99 (100 ms debounce included)", sim: func(r *simResult) string {
			s := fmt.Sprintf("%s / %s ms", msd(r.runtime50), msd(r.runtime99))
			if r.flipReloads > 0 {
				s += fmt.Sprintf(" (%d of %d by reload)", r.flipReloads, r.flips)
			}
			return s
		}},
		{name: storm, sim: func(r *simResult) string {
			return fmt.Sprintf("%.0f (%.0f reloads; storm took %.2f s)", r.stormApplies, r.stormRel, r.stormTook.Seconds())
		}},
		{name: "start-up to first apply", sim: func(r *simResult) string { return fmt.Sprintf("%.2f s", r.startup.Seconds()) }},
		{name: "peak RSS (VmHWM)", sim: func(r *simResult) string { return fmt.Sprintf("%.1f MB", float64(r.peakRSS)/1e6) }},
		{name: fmt.Sprintf("CPU seconds per 1,000 events (storm of %s, until applied)", thousands(c.storm)), sim: func(r *simResult) string {
			return fmt.Sprintf("%.3f", r.cpuPer1000)
		}},
		{name: "idle CPU", sim: func(r *simResult) string { return fmt.Sprintf("%.2f ms/s", r.idleCPU*1000) }},
		{name: fmt.Sprintf("real engine: `docker run` → first 200 (median of %d; incl. `docker run`)", c.runs), engine: func(r *engineResult) string {
			return fmt.Sprintf("%s ms (%s ms)", msd(r.toFirst200), msd(r.withRun))
		}},
		{name: "real engine: Docker API calls per started container", engine: func(r *engineResult) string {
			return fmt.Sprintf("%.1f", r.apiPerStart)
		}},
		{name: fmt.Sprintf("real engine: CPU seconds for %d restarts, vhost-gen (+ its checks) / dockerd", c.restarts), engine: func(r *engineResult) string {
			return fmt.Sprintf("%.2f (+%.2f) / %.2f", r.vgCPU, r.vgChild, r.engCPU)
		}},
	}
}

// print writes the table, then the machine and how long the run took.
func (t *table) print(w io.Writer, c *config, took time.Duration) {
	var ns []int
	for _, r := range t.sims {
		ns = append(ns, r.n)
	}
	if t.engine != nil && !slices.Contains(ns, t.engine.n) {
		ns = append(ns, t.engine.n)
	}
	slices.Sort(ns)
	head := []string{"figure"}
	for _, n := range ns {
		head = append(head, "N = "+thousands(n))
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(head)))
	for _, rw := range t.rows(c) {
		cells := []string{rw.name}
		for _, n := range ns {
			cells = append(cells, t.cell(rw, n))
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	mode := "full"
	if c.short {
		mode = "short (-short)"
	}
	fmt.Fprintf(w, "\nSimulator: N containers, 2 replicas per site (N/2 sites), HAProxy (the nginx row: nginx's template, no check, no reload); real engine: N echo containers, one site each, HAProxy.\n")
	fmt.Fprintf(w, "Machine: %s. Mode: %s; the run took %s.\n", machine(), mode, took.Round(time.Second))
}

func (t *table) cell(rw row, n int) string {
	if rw.sim != nil {
		for _, r := range t.sims {
			if r.n == n {
				return rw.sim(r)
			}
		}
	}
	if rw.engine != nil && t.engine != nil && t.engine.n == n {
		return rw.engine(t.engine)
	}
	return "–"
}

// msf shows seconds in milliseconds, with the precision the value needs.
func msf(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	switch ms := s * 1000; {
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.0f", ms)
	}
}

func msd(d time.Duration) string { return msf(d.Seconds()) }

// thousands writes n with commas: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
