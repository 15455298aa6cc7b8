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
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	swarmsrc "github.com/vhost-gen/vhost-gen/internal/discovery/swarm"
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
	cli      *client.Client
	sources  []discovery.Source
	renderer *render.Renderer
	routing  routing.Options
	// renderOpts are the flags templates see.
	renderOpts render.Options
	// sup runs the proxy with --supervise.
	sup *supervise.Supervisor
	// self is this process's container, when vhost-gen runs in one and found it.
	self string
}

func newApp(cfg *Config, stderr io.Writer) (*app, error) {
	a := &app{cfg: cfg, stderr: stderr, metrics: admin.NewMetrics()}
	var err error
	if a.log, err = newLogger(cfg, stderr); err != nil {
		return nil, err
	}
	mode, err := validate(cfg)
	if err != nil {
		return nil, err
	}
	a.renderOpts = render.Options{Listen: cfg.Listen, Runtime: cfg.HAProxySocket, Stats: cfg.HAProxyStats}
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
	hostAddr := cfg.HostAddress
	if hostAddr == "" {
		hostAddr = defaultHostAddress(a.cli.DaemonHost())
	}
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
			return nil, fmt.Errorf("--source %s: not available in this version (docker and swarm are)", s)
		default:
			return nil, fmt.Errorf("--source %q: must be docker or swarm", s)
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

// defaultHostAddress is where published ports answer: DOCKER_HOST's host for a TCP engine,
// otherwise this machine.
func defaultHostAddress(daemonHost string) string {
	if u, err := url.Parse(daemonHost); err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}

func (a *app) build(ws []discovery.Workload) routing.Table { return routing.Build(ws, a.routing) }

func (a *app) renderTable(t routing.Table) ([]byte, error) {
	return a.renderer.Render(render.NewData(t, a.renderOpts))
}

// applier builds the check and reload the flags ask for.
func (a *app) applier() (*apply.Applier, error) {
	ap := &apply.Applier{Path: a.cfg.Out}
	switch c := a.cfg.CheckCmd; {
	case c == "none":
	case c != "":
		check, err := apply.CommandCheck(c)
		if err != nil {
			return nil, err
		}
		ap.Check = check
	case a.cfg.Proxy == "nginx":
		ap.Check = apply.NginxCheck("nginx")
	case a.cfg.Proxy == "haproxy":
		ap.Check = apply.HAProxyCheck("haproxy")
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
	state := &admin.State{}
	if a.cfg.AdminAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("--admin-addr: %w", err)
		}
		srv := &http.Server{Handler: admin.Handler(state, a.metrics), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		a.log.Info("admin server listening", "addr", ln.Addr().String())
	}
	a.log.Info("vhost-gen watching", "version", versionString(), "out", a.cfg.Out, "proxy", a.cfg.Proxy,
		"sources", a.cfg.Sources.String(), "wait", a.cfg.Wait)
	p := &watch.Pipeline{Sources: a.sources, Build: a.build, Render: a.renderTable, Applier: ap,
		Min: min, Max: max, Log: a.log, Metrics: a.metrics, State: state}
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
	t := a.build(ws)
	a.printProblems(t)
	data, err := a.renderTable(t)
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
			Sites         []routing.Site       `json:"sites"`
			TCP           []routing.TCPService `json:"tcp"`
			Problems      []routing.Problem    `json:"problems"`
		}{t.ProxyNetworks, t.Sites, t.TCP, t.Problems})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPATH\tBACKEND\tSERVERS")
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			path := r.Path
			if r.Dest != "" {
				path += " -> " + r.Dest
			}
			fmt.Fprintf(tw, "%s\t%s\t%s://%s\t%s\n", s.Host, path, r.Backend.Proto, r.Backend.Name, serverList(r.Backend.Servers))
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
