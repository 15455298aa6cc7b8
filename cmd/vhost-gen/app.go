package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/internal/acme"
	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	swarmsrc "github.com/vhost-gen/vhost-gen/internal/discovery/swarm"
	"github.com/vhost-gen/vhost-gen/internal/quarantine"
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
}

func newApp(cfg *Config, stderr io.Writer) (*app, error) {
	a := &app{cfg: cfg, stderr: stderr, metrics: admin.NewMetrics(), state: &admin.State{}}
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
		TCP: cfg.Proxy == "haproxy", ReservedPorts: reservedPorts(cfg)}
	if len(cfg.ProxyNetworks.values) == 0 && cfg.ProxyContainer == "" && cfg.ProxyLabel == "" {
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
			}))
		case "swarm":
			a.sources = append(a.sources, swarmsrc.New(a.cli, swarmsrc.Options{
				Poll: cfg.SwarmPoll, Log: a.log.With("source", "swarm"), LabelFilter: cfg.LabelFilter,
				OnEvent: func(action string) { a.metrics.SourceEvents.WithLabelValues("swarm", action).Inc() },
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

// validate checks the flags that nothing else checks; each error names its flag.
func validate(cfg *Config) (routing.AddressMode, error) {
	mode, err := routing.ParseAddressMode(cfg.AddressMode)
	if err != nil {
		return "", fmt.Errorf("--address-mode: %w", err)
	}
	if err := checkListen(cfg.Listen); err != nil {
		return "", err
	}
	for _, f := range [][2]string{{"--label-filter", cfg.LabelFilter}, {"--proxy-label", cfg.ProxyLabel}} {
		if k, _, _ := strings.Cut(f[1], "="); f[1] != "" && strings.TrimSpace(k) == "" {
			return "", fmt.Errorf("%s %q: must be KEY or KEY=VALUE", f[0], f[1])
		}
	}
	if !slices.Contains(render.Shipped(), cfg.Proxy) {
		return "", fmt.Errorf("--proxy %q: must be one of %s", cfg.Proxy, strings.Join(render.Shipped(), ", "))
	}
	if err := checkHostAddress(cfg.HostAddress); err != nil {
		return "", err
	}
	if err := checkHAProxy(cfg); err != nil {
		return "", err
	}
	for _, n := range cfg.ProxyNetworks.values {
		if _, err := routing.ParseNetwork(n); err != nil {
			return "", fmt.Errorf("--proxy-networks %q: %w", n, err)
		}
	}
	return mode, nil
}

func newLogger(cfg *Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: must be debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: must be text or json", cfg.LogFormat)
}

// checkListen keeps --listen to what can only be a port or an address with a port.
func checkListen(v string) error {
	if v == "" || strings.Trim(v, "0123456789abcdefABCDEF.:[]") != "" {
		return fmt.Errorf("--listen %q: must be PORT or ADDR:PORT", v)
	}
	return nil
}

// checkHAProxy validates the HAProxy flags; a bare --haproxy-stats port binds to localhost only.
func checkHAProxy(cfg *Config) error {
	if v := cfg.HAProxyStats; v != "" {
		if strings.Trim(v, "0123456789") == "" {
			cfg.HAProxyStats = "127.0.0.1:" + v
		}
		host, port, err := net.SplitHostPort(cfg.HAProxyStats)
		if n, perr := routing.ParsePort(port); err != nil || perr != nil || n == 0 || port != strings.TrimSpace(port) || (host != "" && net.ParseIP(host) == nil) {
			return fmt.Errorf("--haproxy-stats %q: must be PORT or IP:PORT", v)
		}
	}
	if s := cfg.HAProxySocket; s == "" || strings.ContainsAny(s, " \t\n\r\"'#$\\") {
		return fmt.Errorf("--haproxy-socket %q: must be a socket path without spaces, quotes, '$' or '#'", s)
	}
	return nil
}

// reservedPorts are the ports the proxy listens on already, which no TCP service may take.
func reservedPorts(cfg *Config) map[int]string {
	ports := map[int]string{}
	for _, f := range [][2]string{{"--listen", cfg.Listen}, {"--haproxy-stats", cfg.HAProxyStats}} {
		p := f[1]
		if i := strings.LastIndexByte(p, ':'); i >= 0 {
			p = p[i+1:]
		}
		if n, err := routing.ParsePort(p); err == nil {
			ports[n] = f[0]
		}
	}
	return ports
}

// checkHostAddress keeps --host-address to an IP address or a plain host name: it goes into the
// proxy's config as the address of published ports.
func checkHostAddress(v string) error {
	if v == "" || net.ParseIP(v) != nil {
		return nil
	}
	if _, err := routing.ParseHost(v); err != nil || strings.Contains(v, "*") {
		return fmt.Errorf("--host-address %q: must be an IP address or a host name", v)
	}
	return nil
}

// defaultHostAddress is where published ports answer outside a container: DOCKER_HOST's host for
// a TCP engine, otherwise this machine.
func defaultHostAddress(daemonHost string) string {
	return chooseHostAddress("", daemonHost, nil).Address
}

// dockerHostAddress is DOCKER_HOST's host for a TCP engine, else "".
func dockerHostAddress(daemonHost string) string {
	if u, err := url.Parse(daemonHost); err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		return u.Hostname()
	}
	return ""
}

// chooseHostAddress: --host-address wins; then DOCKER_HOST's host; then, in a container off the
// host network (self), its gateway, since 127.0.0.1 there is the container itself; else 127.0.0.1.
func chooseHostAddress(flag, daemonHost string, self *docker.Self) routing.HostAddress {
	switch h := dockerHostAddress(daemonHost); {
	case flag != "":
		return routing.HostAddress{Address: flag, Origin: "--host-address"}
	case h != "":
		return routing.HostAddress{Address: h, Origin: "DOCKER_HOST"}
	case self != nil && self.Gateway != "":
		return routing.HostAddress{Address: self.Gateway, Origin: "gateway of network " + self.GatewayNetwork}
	}
	return routing.HostAddress{Address: "127.0.0.1", Origin: "default"}
}

// hostAddress chooses the engine host's address once at start. In a container it reads its own
// container once: for the gateway, and, when that container is the proxy's (self-detected or
// --supervise), for routing's rule that the proxy cannot reach the host's loopback.
func (a *app) hostAddress() routing.HostAddress {
	id := docker.SelfContainerID()
	// Only the docker source uses it: Swarm tasks are reached at their nodes' addresses.
	needGateway := a.cfg.HostAddress == "" && dockerHostAddress(a.cli.DaemonHost()) == "" &&
		slices.Contains(a.cfg.Sources.values, "docker")
	proxyIsSelf := a.self != "" || a.cfg.Supervise
	var self *docker.Self
	if id != "" && (needGateway || proxyIsSelf) {
		self = a.inspectSelf(id)
	}
	if self != nil && proxyIsSelf {
		a.routing.ProxyNetworkMode = self.NetworkMode
	}
	h := chooseHostAddress(a.cfg.HostAddress, a.cli.DaemonHost(), self)
	if self != nil && needGateway && self.Gateway == "" && self.NetworkMode != "host" {
		a.log.Warn("in a container, but none of its non-internal networks has a gateway: published ports and host-network containers "+
			"are addressed at "+h.Address+", which is this container (set --host-address)", "container", id[:12], "network_mode", self.NetworkMode)
	}
	level := slog.LevelDebug
	if self != nil && h.Address == self.Gateway {
		level = slog.LevelInfo // new in a container: say where host-network backends will be reached
	}
	a.log.Log(context.Background(), level, "host address for published ports and host networking", "address", h.Address, "origin", h.Origin)
	return h
}

// inspectSelf reads this container's network mode and gateway; nil, logged, if the engine cannot
// say (the host address then falls back).
func (a *app) inspectSelf(id string) *docker.Self {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := docker.InspectSelf(ctx, a.cli, id)
	if err != nil {
		a.log.Warn("cannot read this container's networks: the host address falls back", "err", err)
		return nil
	}
	return &s
}

func (a *app) build(ws []discovery.Workload) routing.Table {
	t := routing.Build(ws, a.routing)
	a.wantCerts(t)
	return t
}

// renderTable renders the config; with HAProxy and HTTPS it also writes the crt-list the config
// names (HAProxy reads it at each (re)load, so it is written before the config goes live).
func (a *app) renderTable(t routing.Table) ([]byte, error) {
	opts := a.renderOpts
	opts.DefaultCert = a.defaultCert()
	data, err := a.renderer.Render(render.NewData(t, opts))
	if err != nil {
		return nil, err
	}
	if opts.CrtList != "" && a.cfg.Command == "watch" { // a dry run writes nothing
		if err := writeCrtList(opts.CrtList, render.CrtList(t.Sites)); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// check is the check command the flags ask for; nil with --check-cmd none.
func (a *app) check() (apply.CheckFunc, error) {
	switch c := a.cfg.CheckCmd; {
	case c == "none":
		return nil, nil
	case c != "":
		return apply.CommandCheck(c)
	case a.cfg.Proxy == "haproxy":
		return apply.HAProxyCheck("haproxy"), nil
	case a.cfg.Proxy == "nginx":
		return apply.NginxCheck("nginx"), nil
	}
	return nil, nil
}

// applier builds the check and reload the flags ask for.
func (a *app) applier() (*apply.Applier, error) {
	ap := &apply.Applier{Path: a.cfg.Out}
	var err error
	if ap.Check, err = a.check(); err != nil {
		return nil, err
	}
	signal := a.cfg.ReloadSignal
	if signal == "" {
		signal = "HUP" // nginx's, and most daemons'
		if a.cfg.Proxy == "haproxy" {
			signal = "USR2" // the master's reload
		}
	}
	sig, err := apply.ParseSignal(signal)
	if err != nil {
		return nil, fmt.Errorf("--reload-signal: %w", err)
	}
	chosen := 0
	for _, v := range []string{a.cfg.ReloadCmd, a.cfg.ReloadPidfile, a.cfg.ReloadContainer, a.cfg.ReloadContainerLabel} {
		if v != "" {
			chosen++
		}
	}
	if chosen > 1 {
		return nil, errors.New("choose one of --reload-cmd, --reload-pidfile, --reload-container, --reload-container-label")
	}
	if a.cfg.Supervise && chosen > 0 {
		return nil, errors.New("--supervise reloads the proxy it runs: drop --reload-cmd, --reload-pidfile, --reload-container and --reload-container-label")
	}
	switch {
	case a.cfg.Supervise:
		a.sup = a.supervisor(sig)
		ap.Reload = a.sup.ReloadFunc
	case a.cfg.ReloadCmd == "none":
	case a.cfg.ReloadCmd != "":
		if ap.Reload, err = apply.CommandReload(a.cfg.ReloadCmd); err != nil {
			return nil, err
		}
	case a.cfg.ReloadPidfile != "" && a.cfg.Proxy == "haproxy" && sig == syscall.SIGUSR2:
		ap.Reload = apply.HAProxyMasterReload(a.cfg.ReloadPidfile, sig)
	case a.cfg.ReloadPidfile != "":
		ap.Reload = apply.PidfileReload(a.cfg.ReloadPidfile, sig)
	case a.cfg.ReloadContainer != "" || a.cfg.ReloadContainerLabel != "":
		// The engine wants a signal name ("HUP"); sig.String() would be "hangup".
		name := strings.TrimPrefix(strings.ToUpper(signal), "SIG")
		ap.Reload = docker.SignalContainers(a.cli, a.cfg.ReloadContainer, a.cfg.ReloadContainerLabel, name)
	case a.cfg.Proxy == "nginx":
		ap.Reload, _ = apply.CommandReload("nginx -s reload")
	case a.cfg.Proxy == "haproxy":
		// The master re-reads the file and starts new workers; old ones finish their connections.
		ap.Reload = apply.HAProxyMasterReload("/run/haproxy.pid", sig)
	}
	if a.cfg.Proxy == "haproxy" && a.cfg.HAProxyRuntimeAPI {
		rt := &haproxy.Runtime{Socket: a.cfg.HAProxySocket}
		ap.Hot = rt.Hot
		ap.HotFailed = func(err error) {
			a.log.Warn("runtime API update failed; reloading instead", "socket", a.cfg.HAProxySocket, "err", err)
		}
	}
	return ap, nil
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
	stopAdmin, err := a.startAdmin()
	if err != nil {
		return err
	}
	defer stopAdmin()
	a.log.Info("vhost-gen watching", "version", versionString(), "out", a.cfg.Out, "proxy", a.cfg.Proxy,
		"sources", a.cfg.Sources.String(), "wait", a.cfg.Wait)
	p := &watch.Pipeline{Sources: a.sources, Build: a.build, Render: a.renderTable, Applier: ap,
		Min: min, Max: max, Log: a.log, Metrics: a.metrics, State: a.state}
	if a.certs != nil {
		p.Changes = a.certs.changed
		if err := a.runTLS(ctx); err != nil {
			return err
		}
	}
	if err := a.recordApplies(ctx, p); err != nil {
		return err
	}
	if a.sup != nil {
		p.Applied = func() {
			if err := a.sup.Ensure(); err != nil {
				a.log.Error("the proxy cannot start", "err", err)
			}
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
	srv := &http.Server{Handler: admin.Handler(a.state, a.metrics), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.log.Info("admin server listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// supervisor runs the shipped proxy in the foreground with its default config paths.
func (a *app) supervisor(sig syscall.Signal) *supervise.Supervisor {
	s := &supervise.Supervisor{Log: a.log.With("proxy", a.cfg.Proxy), OnRestart: a.metrics.ProxyRestarts.Inc}
	switch a.cfg.Proxy {
	case "haproxy":
		s.Argv = []string{"haproxy", "-W", "-db", "-f", a.cfg.Out, "-p", "/run/haproxy.pid"}
		s.StopSignal = syscall.SIGUSR1 // soft stop: finish the connections, then exit
		s.Reload = func(ctx context.Context, pid int) error {
			return apply.ReloadHAProxyMaster(ctx, pid, sig, "--supervise")
		}
	default:
		// nginx's main config (/etc/nginx/nginx.conf) includes --out, as the gateway image's does.
		s.Argv = []string{"nginx", "-g", "daemon off;"}
		s.StopSignal = syscall.SIGQUIT // graceful shutdown
		s.Reload = func(_ context.Context, pid int) error {
			if err := syscall.Kill(pid, sig); err != nil {
				return fmt.Errorf("signal %s to nginx, pid %d: %w", sig, pid, err)
			}
			return nil
		}
	}
	return s
}

// snapshot reads every source once. Run in a container, it waits (briefly) for its own container
// to be listed: the engine marks a container running only after its process has started, and a
// one-shot command can be quicker than that.
func (a *app) snapshot(ctx context.Context) ([]discovery.Workload, error) {
	for attempt := 0; ; attempt++ {
		var all []discovery.Workload
		for _, s := range a.sources {
			ws, err := s.List(ctx)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", s.Name(), err)
			}
			all = append(all, ws...)
		}
		if a.self == "" || attempt == 20 || slices.ContainsFunc(all, func(w discovery.Workload) bool { return w.ID == a.self }) {
			return all, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *app) render(ctx context.Context, stdout io.Writer) error {
	ws, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	t, data, err := a.renderChecked(ctx, a.build(ws))
	a.printProblems(t)
	if err != nil {
		return err
	}
	if a.cfg.Out == "" {
		_, err = stdout.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.cfg.Out), "."+filepath.Base(a.cfg.Out)+".staged-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), a.cfg.Out)
}

// renderChecked renders t and, when the check is available (--check-cmd, or the proxy's own
// binary on the PATH), runs it as watch would: sites the check refuses are left out with a problem
// each, so a dry run shows what watch would apply. A check that fails without any site is an
// error.
func (a *app) renderChecked(ctx context.Context, t routing.Table) (routing.Table, []byte, error) {
	data, err := a.renderTable(t)
	if err != nil {
		return t, nil, err
	}
	check, err := a.check()
	if err != nil || check == nil {
		return t, data, err
	}
	if a.cfg.CheckCmd == "" {
		if _, lerr := exec.LookPath(a.cfg.Proxy); lerr != nil {
			fmt.Fprintf(a.stderr, "note: not checked: %s is not installed here (--check-cmd sets a check)\n", a.cfg.Proxy)
			return t, data, nil
		}
	}
	dir, err := os.MkdirTemp("", "vhost-gen-render-")
	if err != nil {
		return t, nil, err
	}
	defer os.RemoveAll(dir)
	ap := &apply.Applier{Path: filepath.Join(dir, "vhost-gen.conf"), Check: check}
	cerr := ap.CheckData(ctx, data)
	if cerr == nil {
		return t, data, nil
	}
	var q quarantine.Set
	kept, qdata, err := q.Isolate(ctx, t, a.renderTable, ap.CheckData)
	if err != nil {
		return t, nil, fmt.Errorf("%w: %w", apply.ErrCheck, cerr)
	}
	return kept, qdata, nil
}

func (a *app) printProblems(t routing.Table) {
	for _, p := range t.Problems {
		fmt.Fprintln(a.stderr, "problem:", p.String())
	}
}

func (a *app) routes(ctx context.Context, stdout io.Writer) error {
	ws, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	t := a.build(ws)
	if a.cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			ProxyNetworks []string             `json:"proxyNetworks"`
			HostAddress   routing.HostAddress  `json:"hostAddress"`
			Sites         []routing.Site       `json:"sites"`
			TCP           []routing.TCPService `json:"tcp"`
			Problems      []routing.Problem    `json:"problems"`
		}{t.ProxyNetworks, t.HostAddress, t.Sites, t.TCP, t.Problems})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPATH\tBACKEND\tSERVERS\tHTTPS")
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			path := r.Path
			if r.Dest != "" {
				path += " -> " + r.Dest
			}
			fmt.Fprintf(tw, "%s\t%s\t%s://%s\t%s\t%s\n", s.Host, path, r.Backend.Proto, r.Backend.Name, serverList(r.Backend.Servers), tlsSummary(s.TLS))
		}
	}
	for _, ts := range t.TCP {
		fmt.Fprintf(tw, "tcp :%d\t\t%s (%s)\t%s\n", ts.Port, ts.Backend.Name, ts.Service, serverList(ts.Backend.Servers))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a.printProblems(t)
	return nil
}

func serverList(ss []routing.Server) string {
	out := make([]string, len(ss))
	for i, sv := range ss {
		out[i] = fmt.Sprintf("%s (%s, weight %d)", sv.Address, sv.Workload, sv.Weight)
	}
	return strings.Join(out, ", ")
}

// tlsSummary is a site's HTTPS decision in a few words: "redirect, cert shop (file, until 2027-03-01)".
func tlsSummary(t *routing.SiteTLS) string {
	if t == nil {
		return "-"
	}
	if t.Cert == nil {
		return t.Method + ", no certificate"
	}
	return fmt.Sprintf("%s, cert %s (%s, until %s)", t.Method, t.Cert.Name, t.CertSource, t.Cert.NotAfter.Format("2006-01-02"))
}
