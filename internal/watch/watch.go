// Package watch runs the pipeline: sources' updates into the inventory, then, once per burst of
// changes, routing, render and apply; failed applies are retried with backoff.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/history"
	"github.com/vhost-gen/vhost-gen/internal/inventory"
	"github.com/vhost-gen/vhost-gen/internal/quarantine"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Pipeline is everything the loop needs; Build and Render are the pure middle of the pipeline.
type Pipeline struct {
	Sources []discovery.Source
	Build   func([]discovery.Workload) routing.Table
	Render  func(routing.Table) ([]byte, error)
	// RenderUnshared, if set, renders without what every site shares besides the template (the
	// operator's default snippets): when that passes the check the full render fails, the cause
	// is shared, so no site is held for it and the live config stays.
	RenderUnshared func(routing.Table) ([]byte, error)
	Applier        *apply.Applier
	Min, Max       time.Duration
	Log            *slog.Logger
	Metrics        *admin.Metrics
	State          *admin.State
	// Applied, if set, runs after every successful apply (the supervisor starts the proxy then).
	Applied func()
	// Changes, if set, says that something Build or Render reads besides the workloads changed
	// (a certificate): the table is built again, debounced like any change.
	Changes <-chan struct{}
	// AfterApply, if set, hears every apply attempt: the sources' revisions it rendered, the
	// config in force after it (nil when it failed), and its error.
	AfterApply func(revisions map[string]int64, applied []byte, err error)
	// History, if set, keeps the applies that changed the proxy or failed (the dashboard's).
	History *history.Log
	// quarantine holds the sites the proxy's check refused.
	quarantine quarantine.Set
	// applied is the table of the config last put live: each apply's log line and history
	// entry say what changed since.
	applied routing.Table
	// burst is when the first change not yet applied came (zero: none).
	burst time.Time
}

const (
	minRetry = time.Second
	maxRetry = time.Minute
)

// Run runs until ctx ends. Nothing is applied until every source has reported its first full set,
// so a source that is not reachable yet never produces an empty config.
func (p *Pipeline) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a failing source stops the others too
	updates := make(chan discovery.Update, 256)
	errc := make(chan error, len(p.Sources))
	for _, src := range p.Sources {
		go func() { errc <- src.Watch(ctx, updates) }()
	}
	inv := inventory.New()
	reported := map[string]bool{}
	deb := apply.Debounce{Min: p.Min, Max: p.Max}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retry := time.Duration(0)
	problems := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-p.Changes:
			// What changed (a certificate, a snippet) may be what a held site was refused for.
			p.quarantine.Release()
			p.changed(time.Now())
			deb.Change(time.Now())
			at, _ := deb.Due()
			timer.Reset(time.Until(at))
		case u := <-updates:
			p.State.SourceSeen(u.Source, u.Full, time.Now())
			changed := inv.Apply(u)
			if u.Full && !reported[u.Source] {
				reported[u.Source], changed = true, true
			}
			if changed { // also while retrying: a change may be the fix
				p.changed(time.Now())
				deb.Change(time.Now())
				at, _ := deb.Due()
				timer.Reset(time.Until(at))
			}
		case <-timer.C:
			deb.Fired()
			if len(reported) < len(p.Sources) {
				continue
			}
			if err := p.applyOnce(ctx, inv.Snapshot(), problems); err != nil {
				if ctx.Err() != nil {
					return nil // stopping: a check or reload cut short is not a failure
				}
				retry = min(max(2*retry, minRetry), maxRetry)
				p.Log.Error("apply failed; the live config is unchanged; retrying", "in", retry, "err", err)
				timer.Reset(retry)
				continue
			}
			retry = 0
			if p.Applied != nil {
				p.Applied()
			}
		}
	}
}

// changed notes a change for the event-to-apply latency.
func (p *Pipeline) changed(at time.Time) {
	if p.burst.IsZero() {
		p.burst = at
	}
}

func (p *Pipeline) applyOnce(ctx context.Context, snap inventory.Snapshot, problems map[string]bool) error {
	start := time.Now()
	table := p.quarantine.Filter(p.Build(snap.Workloads))
	data, err := p.Render(table)
	p.Metrics.RenderSeconds.Observe(time.Since(start).Seconds())
	var outcome apply.Outcome
	if err == nil {
		outcome, err = p.Applier.Apply(ctx, data)
		if errors.Is(err, apply.ErrCheck) && ctx.Err() == nil {
			table, data, outcome, err = p.isolate(ctx, table, err)
		}
	}
	p.logProblems(table, problems)
	p.State.SetTable(table, snap.Generation)
	p.observe(table, snap.Generation)
	p.Metrics.Quarantined.Set(float64(len(p.quarantine.Held())))
	now := time.Now()
	p.State.SetApply(err, now)
	if p.AfterApply != nil {
		applied := data
		if err != nil {
			applied = nil
		}
		p.AfterApply(snap.Revisions, applied, err)
	}
	result := "failed"
	switch {
	case data == nil && err != nil:
		result = "render_failed"
	case errors.Is(err, apply.ErrCheck):
		result = "check_failed"
	case errors.Is(err, apply.ErrReload):
		result = "reload_failed"
	case err != nil:
	case outcome == apply.Unchanged:
		result = "unchanged"
	case outcome == apply.Updated:
		result = "updated"
	default:
		result = "applied"
		p.Metrics.Reloads.Inc()
	}
	p.Metrics.Applies.WithLabelValues(result).Inc()
	if err == nil {
		p.Metrics.MarkApplied(now)
		if outcome != apply.Unchanged && !p.burst.IsZero() {
			p.Metrics.EventToApply.Observe(now.Sub(p.burst).Seconds())
		}
		p.burst = time.Time{}
	}
	p.record(table, snap.Generation, result, err, now, now.Sub(start))
	if err == nil && outcome == apply.Unchanged {
		p.Log.Debug("config unchanged; nothing to apply", "generation", snap.Generation)
	}
	return err
}

// record logs an apply that changed the proxy, in one line saying what changed, and keeps it in
// the history with the failures (which the caller logs).
func (p *Pipeline) record(table routing.Table, gen uint64, result string, err error, at time.Time, took time.Duration) {
	if result == "unchanged" {
		return
	}
	e := history.Entry{At: at, Result: result, Duration: took, Generation: gen, Quarantined: p.quarantine.Held()}
	e.Change = history.Diff(p.applied, table, true)
	if err != nil {
		e.Error = err.Error()
	} else {
		p.applied = table
		p.Log.Info("applied: "+e.Change.String(), "how", e.How(), "took", took.Round(time.Microsecond),
			"file", p.Applier.Path, "generation", gen, "sites", len(table.Sites), "problems", len(table.Problems))
	}
	if p.History != nil {
		p.History.Add(e)
	}
}

// isolate runs after the check refused the config: the quarantine finds the sites that make it
// fail, and the config without them is applied. When no site explains the failure (a broken
// template or main config), the check's own error stands.
func (p *Pipeline) isolate(ctx context.Context, table routing.Table, checkErr error) (routing.Table, []byte, apply.Outcome, error) {
	check := func(ctx context.Context, data []byte) error { return p.Applier.CheckData(ctx, data) }
	if p.RenderUnshared != nil {
		if data, err := p.RenderUnshared(table); err == nil && check(ctx, data) == nil {
			return table, []byte{}, apply.Unchanged, fmt.Errorf("the config passes the check without the operator's shared snippets (default, default_location, default_backend, frontend), so one of them is the cause; the live config stays: %w", checkErr)
		}
	}
	kept, data, err := p.quarantine.Isolate(ctx, table, p.Render, check)
	if err != nil {
		if errors.Is(err, quarantine.ErrUnisolated) {
			if strings.Contains(err.Error(), "every site fails") {
				return table, []byte{}, apply.Unchanged, fmt.Errorf("%w (%w)", err, checkErr)
			}
		} else {
			p.Log.Warn("could not isolate the sites that fail the check", "err", err)
		}
		return table, []byte{}, apply.Unchanged, checkErr
	}
	p.Log.Warn("the proxy's check refused some sites; applying the others", "quarantined", strings.Join(p.quarantine.Held(), ", "))
	outcome, err := p.Applier.Apply(ctx, data)
	return kept, data, outcome, err
}

// logProblems logs each problem once when it appears and once when it is resolved.
func (p *Pipeline) logProblems(t routing.Table, seen map[string]bool) {
	now := make(map[string]bool, len(t.Problems))
	for _, pr := range t.Problems {
		s := pr.String()
		now[s] = true
		if !seen[s] {
			p.Log.Warn("routing problem: " + s)
		}
	}
	for s := range seen {
		if !now[s] {
			p.Log.Info("routing problem resolved: " + s)
			delete(seen, s)
		}
	}
	for s := range now {
		seen[s] = true
	}
}

func (p *Pipeline) observe(t routing.Table, gen uint64) {
	servers := 0
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			servers += len(r.Backend.Servers)
		}
	}
	p.Metrics.Problems.Set(float64(len(t.Problems)))
	p.Metrics.Sites.Set(float64(len(t.Sites)))
	p.Metrics.Servers.Set(float64(servers))
	p.Metrics.Generation.Set(float64(gen))
}
