// Package watch runs the pipeline: sources' updates into the inventory, then, once per burst of
// changes, routing, render and apply; failed applies are retried with backoff.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/inventory"
	"github.com/vhost-gen/vhost-gen/internal/quarantine"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Pipeline is everything the loop needs; Build and Render are the pure middle of the pipeline.
type Pipeline struct {
	Sources  []discovery.Source
	Build    func([]discovery.Workload) routing.Table
	Render   func(routing.Table) ([]byte, error)
	Applier  *apply.Applier
	Min, Max time.Duration
	Log      *slog.Logger
	Metrics  *admin.Metrics
	State    *admin.State
	// Applied, if set, runs after every successful apply (the supervisor starts the proxy then).
	Applied func()
	// Changes, if set, says that something Build or Render reads besides the workloads changed
	// (a certificate): the table is built again, debounced like any change.
	Changes <-chan struct{}
	// AfterApply, if set, hears every apply attempt: the sources' revisions it rendered, the
	// config in force after it (nil when it failed), and its error.
	AfterApply func(revisions map[string]int64, applied []byte, err error)
	// quarantine holds the sites the proxy's check refused.
	quarantine quarantine.Set
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
			deb.Change(time.Now())
			at, _ := deb.Due()
			timer.Reset(time.Until(at))
		case u := <-updates:
			changed := inv.Apply(u)
			if u.Full && !reported[u.Source] {
				reported[u.Source], changed = true, true
			}
			if changed { // also while retrying: a change may be the fix
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

func (p *Pipeline) applyOnce(ctx context.Context, snap inventory.Snapshot, problems map[string]bool) error {
	table := p.quarantine.Filter(p.Build(snap.Workloads))
	data, err := p.Render(table)
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
	switch {
	case data == nil && err != nil:
		p.Metrics.Applies.WithLabelValues("render_failed").Inc()
	case errors.Is(err, apply.ErrCheck):
		p.Metrics.Applies.WithLabelValues("check_failed").Inc()
	case errors.Is(err, apply.ErrReload):
		p.Metrics.Applies.WithLabelValues("reload_failed").Inc()
	case err != nil:
		p.Metrics.Applies.WithLabelValues("failed").Inc()
	case outcome == apply.Unchanged:
		p.Metrics.Applies.WithLabelValues("unchanged").Inc()
		p.Metrics.LastApplied.Set(float64(now.Unix()))
		p.Log.Debug("config unchanged; nothing to apply", "generation", snap.Generation)
	case outcome == apply.Updated:
		p.Metrics.Applies.WithLabelValues("updated").Inc()
		p.Metrics.LastApplied.Set(float64(now.Unix()))
		p.Log.Info("servers updated without a reload (runtime API)", "file", p.Applier.Path, "generation", snap.Generation,
			"sites", len(table.Sites), "problems", len(table.Problems))
	default:
		p.Metrics.Applies.WithLabelValues("applied").Inc()
		p.Metrics.Reloads.Inc()
		p.Metrics.LastApplied.Set(float64(now.Unix()))
		p.Log.Info("config applied", "file", p.Applier.Path, "generation", snap.Generation,
			"sites", len(table.Sites), "problems", len(table.Problems), "bytes", len(data))
	}
	return err
}

// isolate runs after the check refused the config: the quarantine finds the sites that make it
// fail, and the config without them is applied. When no site explains the failure (a broken
// template or main config), the check's own error stands.
func (p *Pipeline) isolate(ctx context.Context, table routing.Table, checkErr error) (routing.Table, []byte, apply.Outcome, error) {
	check := func(ctx context.Context, data []byte) error { return p.Applier.CheckData(ctx, data) }
	kept, data, err := p.quarantine.Isolate(ctx, table, p.Render, check)
	if err != nil {
		if !errors.Is(err, quarantine.ErrUnisolated) {
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
