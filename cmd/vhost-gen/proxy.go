package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	"github.com/vhost-gen/vhost-gen/internal/supervise"
)

// check is the check command the flags ask for; nil with --check-cmd none.
func (a *app) check() (apply.CheckFunc, error) {
	switch c := a.cfg.CheckCmd; {
	case c == "none":
		return nil, nil
	case c != "":
		return apply.CommandCheck(c)
	case a.cfg.Proxy == "haproxy":
		return apply.HAProxyCheck("haproxy"), nil
	case a.cfg.Proxy == "nginx" && a.cfg.NginxContainerLabel != "":
		return a.separateCheck(), nil
	case a.cfg.Proxy == "nginx":
		return apply.NginxCheckWith("nginx", a.confDFiles), nil
	}
	return nil, nil
}

// applier builds the check and reload the flags ask for.
func (a *app) applier() (*apply.Applier, error) {
	ap := &apply.Applier{Path: a.cfg.Out, Timeout: a.cfg.CommandTimeout}
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
		rt := &haproxy.Runtime{Socket: a.cfg.HAProxySocket,
			Observe: func(result string) { a.metrics.RuntimeCommands.WithLabelValues(result).Inc() }}
		ap.Hot, ap.HotOnly = rt.Hot, rt.HotOnly
		ap.HotFailed = func(err error) {
			a.log.Warn("runtime API update failed; reloading instead", "socket", a.cfg.HAProxySocket, "err", err)
		}
	}
	a.timeApplier(ap)
	return ap, nil
}

// timeApplier makes the write, the check and the reload report their durations.
func (a *app) timeApplier(ap *apply.Applier) {
	ap.Wrote = func(d time.Duration) { a.metrics.WriteSeconds.Observe(d.Seconds()) }
	if check := ap.Check; check != nil {
		ap.Check = func(ctx context.Context, staged string) error {
			defer a.observeSince(a.metrics.CheckSeconds, time.Now())
			return check(ctx, staged)
		}
	}
	if reload := ap.Reload; reload != nil {
		ap.Reload = func(ctx context.Context) error {
			defer a.observeSince(a.metrics.ReloadSeconds, time.Now())
			return reload(ctx)
		}
	}
}

func (a *app) observeSince(h prometheus.Histogram, start time.Time) {
	h.Observe(time.Since(start).Seconds())
}

// sourceState reports a source's connection on /healthz, the dashboard and
// vhostgen_source_connected.
func (a *app) sourceState(name string) func(bool, error) {
	return func(ok bool, err error) {
		a.state.SetSource(name, ok, err)
		v := 0.0
		if ok {
			v = 1
		}
		a.metrics.SourceConnected.WithLabelValues(name).Set(v)
	}
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
