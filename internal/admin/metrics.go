package admin

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are vhost-gen's Prometheus metrics, on a registry of their own.
type Metrics struct {
	Registry       *prometheus.Registry
	DockerRequests *prometheus.CounterVec // by operation
	SourceEvents   *prometheus.CounterVec // by source, action
	EtcdWrites     *prometheus.CounterVec // by op
	CertExpiry     *prometheus.GaugeVec   // by name, source
	Applies        *prometheus.CounterVec // by result
	Reloads        prometheus.Counter
	ProxyRestarts  prometheus.Counter
	Problems       prometheus.Gauge
	Quarantined    prometheus.Gauge
	Sites          prometheus.Gauge
	Servers        prometheus.Gauge
	Generation     prometheus.Gauge
	LastApplied    prometheus.Gauge
	// EventToApply is the time from the first change of a burst to its apply (the debounce
	// included), for the applies that changed the proxy.
	EventToApply prometheus.Histogram
	// RenderSeconds is the time from a burst's debounce firing to its rendered bytes (routing
	// table, quarantine filter, template): an event's cost to the pipeline, the debounce excluded.
	RenderSeconds prometheus.Histogram
	// SourceConnected is 1 while a source answers, 0 while it does not, by source.
	SourceConnected *prometheus.GaugeVec
	CheckSeconds    prometheus.Histogram
	ReloadSeconds   prometheus.Histogram
	// WriteSeconds is the time putting a config file in place took (write, fsync, rename), its
	// check excluded.
	WriteSeconds prometheus.Histogram
	// RuntimeCommands are HAProxy runtime API commands, by result: ok, refused (HAProxy said
	// no), error (the socket failed).
	RuntimeCommands *prometheus.CounterVec
	// lastOK is LastApplied as Unix nanoseconds, for the time-since gauge.
	lastOK atomic.Int64
}

// MarkApplied records a successful apply (or one that found the config unchanged) at t.
func (m *Metrics) MarkApplied(t time.Time) {
	m.LastApplied.Set(float64(t.Unix()))
	m.lastOK.Store(t.UnixNano())
}

// NewMetrics registers the metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		DockerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vhostgen_docker_api_requests_total", Help: "Docker Engine API requests, by operation.",
		}, []string{"op"}),
		SourceEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vhostgen_source_events_total", Help: "Source events handled, by source and action.",
		}, []string{"source", "action"}),
		EtcdWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vhostgen_etcd_writes_total", Help: "etcd writes by a publisher: put and delete of workload keys, txn (transactions carrying them), record (its own record).",
		}, []string{"op"}),
		CertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vhostgen_certificate_expiry_timestamp_seconds", Help: "When each usable certificate expires, by name and source (file, acme).",
		}, []string{"name", "source"}),
		Applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vhostgen_applies_total", Help: "Apply attempts, by result (applied, updated, unchanged, render_failed, check_failed, reload_failed, failed).",
		}, []string{"result"}),
		Reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vhostgen_reloads_total", Help: "Successful proxy reloads.",
		}),
		ProxyRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vhostgen_proxy_restarts_total", Help: "Times the supervised proxy (--supervise) died and was restarted.",
		}),
		Problems:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_problems", Help: "Problems in the current routing table."}),
		Quarantined: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_quarantined_sites", Help: "Sites and TCP services left out because the proxy's check refused their config."}),
		Sites:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_sites", Help: "Sites (host names) in the current routing table."}),
		Servers:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_servers", Help: "Servers over all backends of the current routing table."}),
		Generation:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_inventory_generation", Help: "Generation of the workload inventory last rendered."}),
		LastApplied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vhostgen_last_apply_success_timestamp_seconds", Help: "When a config was last applied or found unchanged."}),
	}
	m.EventToApply = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vhostgen_event_to_apply_seconds", Help: "From the first change of a burst to the apply that put it live (the debounce included).",
		Buckets: []float64{.05, .1, .2, .5, 1, 2, 5, 10, 30, 60},
	})
	m.RenderSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vhostgen_render_duration_seconds", Help: "From a burst's debounce firing to its rendered config: routing table, quarantine filter and template.",
		// Fine buckets (x1.33) from 0.1 ms: a benchmark reads its p50 and p99 from them.
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 41),
	})
	m.SourceConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vhostgen_source_connected", Help: "1 while a source (docker, swarm, etcd) answers, 0 while it does not.",
	}, []string{"source"})
	m.CheckSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vhostgen_check_duration_seconds", Help: "Duration of the proxy's config check (nginx -t, haproxy -c).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.ReloadSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vhostgen_reload_duration_seconds", Help: "Duration of the proxy's reload, as vhost-gen waits for it.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.WriteSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vhostgen_write_duration_seconds", Help: "Putting a rendered config in place: the staged file written and synced, the previous one kept, the rename (the check excluded).",
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 41),
	})
	m.RuntimeCommands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vhostgen_haproxy_runtime_commands_total", Help: "HAProxy runtime API commands, by result: ok, refused (HAProxy answered with an error), error (the socket failed).",
	}, []string{"result"})
	sinceApply := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vhostgen_seconds_since_last_apply_success", Help: "Seconds since a config was last applied or found unchanged (-1 before the first).",
	}, func() float64 {
		at := m.lastOK.Load()
		if at == 0 {
			return -1
		}
		return time.Since(time.Unix(0, at)).Seconds()
	})
	m.Registry.MustRegister(m.EventToApply, m.RenderSeconds, m.SourceConnected, m.CheckSeconds, m.ReloadSeconds, m.WriteSeconds, m.RuntimeCommands, sinceApply)
	m.Registry.MustRegister(m.DockerRequests, m.SourceEvents, m.EtcdWrites, m.CertExpiry, m.Applies, m.Reloads, m.ProxyRestarts, m.Problems, m.Quarantined, m.Sites,
		m.Servers, m.Generation, m.LastApplied, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
