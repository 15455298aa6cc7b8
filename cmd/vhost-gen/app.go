package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	swarmsrc "github.com/vhost-gen/vhost-gen/internal/discovery/swarm"
	"github.com/vhost-gen/vhost-gen/internal/history"
	"github.com/vhost-gen/vhost-gen/internal/memlimit"
	"github.com/vhost-gen/vhost-gen/internal/render"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/supervise"
	"github.com/vhost-gen/vhost-gen/internal/watch"
)

// app is the wired pipeline for one command.
type app struct {
	cfg      *Config
	stderr   io.Writer
	log      *slog.Logger
	metrics  *admin.Metrics
	state    *admin.State
	cli      *client.Client
	sources  []discovery.Source
	renderer *render.Renderer
	routing  routing.Options
	// tables keeps what one build found for the next (the workloads' settings, the last table).
	tables routing.Cache
	// renderOpts are the flags templates see.
	renderOpts render.Options
	// sup runs the proxy with --supervise.
	sup *supervise.Supervisor
	// certs are the certificates (--certs-dir and ACME's), nil when HTTPS is off; acme is the
	// ACME client, nil when off.
	certs *certStore
	acme  *acme.Manager
	// self is this process's container, when vhost-gen runs in one and found it.
	self string
	// changed wakes the pipeline when something it renders besides the workloads changed (the
	// certificates, the operator's snippets).
	changed chan struct{}
	// snippets, htpasswd and confD are the operator's snippet and htpasswd files, and the other
	// files of nginx's conf.d (files.go).
	snippets, htpasswd, confD, errorPages *dirStore
}

func newApp(cfg *Config, stderr io.Writer) (*app, error) {
	a := &app{cfg: cfg, stderr: stderr, metrics: admin.NewMetrics(), state: &admin.State{}, changed: make(chan struct{}, 1)}
	var err error
	if a.log, err = newLogger(cfg, stderr); err != nil {
		return nil, err
	}
	mode, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	a.renderOpts = render.Options{Listen: cfg.Listen, Runtime: cfg.HAProxySocket, Stats: cfg.HAProxyStats, TrustDownstreamProxy: cfg.TrustDownstreamProxy}
	a.routing = routing.Options{Mode: mode, ProxyNetworks: cfg.ProxyNetworks.values,
		ProxyContainer: cfg.ProxyContainer, ProxyLabel: cfg.ProxyLabel, IncludeUnhealthy: cfg.IncludeUnhealthy,
		TCP: cfg.Proxy == "haproxy", ReservedPorts: reservedPorts(cfg), UnsupportedProtos: render.UnsupportedProtos(cfg.Proxy, cfg.Template)}
	if err := a.applyDefaults(); err != nil {
		return nil, err
	}
	if err := a.applySeparate(); err != nil {
		return nil, err
	}
	if err := a.applyFiles(); err != nil {
		return nil, err
	}
	if len(cfg.ProxyNetworks.values) == 0 && cfg.ProxyContainer == "" && a.routing.ProxyLabel == "" {
		if self := docker.SelfContainerID(); self != "" {
			a.routing.ProxyContainer, a.self = self, self
			a.log.Info("running in a container: the proxy's networks are this container's", "container", self[:12])
		}
	}
	if a.renderer, err = render.Load(cfg.Proxy, cfg.Template); err != nil {
		return nil, err
	}
	a.cli, err = docker.NewClient(func(op string) { a.metrics.DockerRequests.WithLabelValues(op).Inc() })
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	a.routing.HostAddress = a.hostAddress()
	hostAddr := a.routing.HostAddress.Address
	for _, s := range slices.Compact(slices.Sorted(slices.Values(cfg.Sources.values))) {
		switch s {
		case "docker":
			a.sources = append(a.sources, docker.New(a.cli, docker.Options{
				NodeAddress: hostAddr, Resync: cfg.Resync, Log: a.log.With("source", "docker"), LabelFilter: cfg.LabelFilter,
				OnEvent: func(action string) { a.metrics.SourceEvents.WithLabelValues("docker", action).Inc() },
				OnState: a.sourceState("docker"),
			}))
		case "swarm":
			a.sources = append(a.sources, swarmsrc.New(a.cli, swarmsrc.Options{
				Poll: cfg.SwarmPoll, Log: a.log.With("source", "swarm"), LabelFilter: cfg.LabelFilter,
				OnEvent: func(action string) { a.metrics.SourceEvents.WithLabelValues("swarm", action).Inc() },
				OnState: a.sourceState("swarm"),
			}))
		case "etcd":
			src, err := a.etcdSource()
			if err != nil {
				return nil, err
			}
			a.sources = append(a.sources, src)
		default:
			return nil, fmt.Errorf("--source %q: must be docker, swarm or etcd", s)
		}
	}
	if cfg.Command != "publish" && cfg.Command != "gateways" {
		if err := a.prepareTLS(); err != nil {
			return nil, err
		}
	}
	if cfg.Command == "publish" || cfg.Command == "gateways" {
		if err := cfg.Etcd.prepare(cfg.Command); err != nil {
			return nil, err
		}
	}
	if err := a.resolveProxyNetworks(); err != nil {
		return nil, err
	}
	return a, nil
}

// resolveProxyNetworks reads the proxy's networks once at start when no source lists the proxy's
// own container (--source swarm alone: the source has tasks, not containers).
func (a *app) resolveProxyNetworks() error {
	o := &a.routing
	if slices.Contains(a.cfg.Sources.values, "docker") || len(o.ProxyNetworks) > 0 || (o.ProxyContainer == "" && o.ProxyLabel == "") {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nets, err := docker.ProxyNetworks(ctx, a.cli, o.ProxyContainer, o.ProxyLabel)
	if err != nil {
		return fmt.Errorf("the proxy's networks: %w", err)
	}
	a.log.Info("the proxy's networks, read once at start", "networks", strings.Join(nets, ","))
	o.ProxyNetworks, o.ProxyContainer, o.ProxyLabel, a.self = nets, "", "", ""
	return nil
}

func (a *app) build(ws []discovery.Workload) routing.Table {
	t := a.tables.Build(ws, a.routing)
	a.wantCerts(t)
	return t
}

// renderTable renders the config; with HAProxy and HTTPS it also writes the crt-list and the maps
// the config names (HAProxy reads them at each (re)load, so they are written before the config
// goes live).
func (a *app) renderTable(t routing.Table) ([]byte, error) { return a.renderWith(t, false) }

// renderUnshared renders without the operator's shared snippets (watch.Pipeline.RenderUnshared);
// nothing to compare when there are none.
func (a *app) renderUnshared(t routing.Table) ([]byte, error) {
	set := a.snippets.get()
	if set.Equal(set.WithoutShared()) {
		return nil, errors.New("no shared snippets")
	}
	return a.renderWith(t, true)
}

func (a *app) renderWith(t routing.Table, unshared bool) ([]byte, error) {
	opts := a.renderOpts
	opts.DefaultCert = a.defaultCert()
	opts.Snippets, opts.Htpasswd, opts.ConfD = a.snippets.get(), a.htpasswd.get(), a.confD.get()
	opts.ErrorPages = a.errorPages.get()
	if unshared {
		opts.Snippets = opts.Snippets.WithoutShared()
	}
	data, err := a.renderer.Render(render.NewData(t, opts))
	if err != nil {
		return nil, err
	}
	if opts.CrtList != "" && a.cfg.Command == "watch" { // a dry run writes nothing
		if err := writeTLSFiles(t.Sites, opts.CrtList); err != nil {
			return nil, err
		}
	}
	return data, nil
}

func (a *app) watch(ctx context.Context) error {
	if a.cfg.Out == "" {
		return errors.New("--out is required: where should the config go?")
	}
	min, max, err := apply.ParseWait(a.cfg.Wait)
	if err != nil {
		return err
	}
	ap, err := a.applier()
	if err != nil {
		return err
	}
	a.state.SetServerStates(a.serverStates())
	stopAdmin, err := a.startAdmin()
	if err != nil {
		return err
	}
	defer stopAdmin()
	a.log.Info("vhost-gen watching", "version", versionString(), "out", a.cfg.Out, "proxy", a.cfg.Proxy,
		"sources", a.cfg.Sources.String(), "wait", a.cfg.Wait)
	p := &watch.Pipeline{Sources: a.sources, Build: a.build, Render: a.renderTable, RenderUnshared: a.renderUnshared, Applier: ap,
		Min: min, Max: max, Log: a.log, Metrics: a.metrics, State: a.state, History: history.New(20)}
	a.state.SetHistory(p.History)
	p.Changes = a.changed
	a.watchFiles(ctx)
	if a.certs != nil {
		if err := a.runTLS(ctx); err != nil {
			return err
		}
	}
	if err := a.recordApplies(ctx, p); err != nil {
		return err
	}
	// Memory in proportion to what vhost-gen holds (internal/memlimit), unless the operator set
	// GOMEMLIMIT or GOGC.
	limit := memlimit.Follow(memlimit.Ratio, memlimit.Floor)
	defer limit.Stop()
	p.Applied = limit.Settle
	if a.sup != nil {
		p.Applied = func() {
			if err := a.sup.Ensure(); err != nil {
				a.log.Error("the proxy cannot start", "err", err)
			}
			limit.Settle()
		}
		defer a.sup.Stop(30 * time.Second) // SIGTERM to vhost-gen: the proxy finishes its connections
	}
	return p.Run(ctx)
}

// startAdmin starts the admin server (--admin-addr; empty: none) and returns its stop.
func (a *app) startAdmin() (func(), error) {
	if a.cfg.AdminAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	h := admin.Handler(a.state, a.metrics)
	if a.cfg.AdminPprof {
		h = admin.WithPprof(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.log.Info("admin server listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
