package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/registry"
)

// Config is every flag, after the environment and the command line.
type Config struct {
	Proxy, Template, Out                  string
	CheckCmd, ReloadCmd                   string
	ReloadSignal, ReloadPidfile           string
	ReloadContainer, ReloadContainerLabel string
	Wait                                  string
	AddressMode                           string
	ProxyNetworks                         listFlag
	ProxyContainer, ProxyLabel            string
	LabelFilter                           string
	Sources                               listFlag
	AdminAddr, Listen, HostAddress        string
	AdminPprof                            bool
	IncludeUnhealthy                      bool
	Resync, SwarmPoll                     time.Duration
	CommandTimeout                        time.Duration
	Supervise                             bool
	LogLevel, LogFormat                   string
	JSON                                  bool
	HAProxySocket, HAProxyStats           string
	HAProxyRuntimeAPI                     bool
	TrustDownstreamProxy                  bool
	Etcd                                  etcdConfig
	TLS                                   tlsConfig
	Defaults                              defaultsConfig
	Files                                 filesConfig
	NginxContainerLabel                   string
	// ExplainHosts and ExplainWorkloads are what routes explains (--host, --workload).
	ExplainHosts, ExplainWorkloads listFlag
	// Command is the command these flags are for.
	Command string
}

// listFlag is a comma-separated, repeatable flag. Values from the environment are replaced, not
// extended, by values on the command line.
type listFlag struct {
	values  []string
	fromEnv bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if l.fromEnv {
		l.values, l.fromEnv = nil, false
	}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l.values = append(l.values, s)
		}
	}
	return nil
}

const envPrefix = "VHOST_GEN_"

// envAliases are nginx-proxy's names for a few flags, so that the gateway image takes nginx-proxy's
// environment: a flag's alias is read only when its VHOST_GEN_* variable is unset, and the command
// line wins over both.
// etcd's connection flags also read etcdctl's ETCDCTL_* variables.
var envAliases = func() map[string]string {
	m := map[string]string{"trust-downstream-proxy": "TRUST_DOWNSTREAM_PROXY", "listen": "HTTP_PORT"}
	maps.Copy(m, registry.EnvNames)
	maps.Copy(m, tlsEnvAliases)
	maps.Copy(m, defaultsEnvAliases)
	maps.Copy(m, filesEnvAliases)
	maps.Copy(m, separateEnvAliases)
	return m
}()

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

var commandHelp = map[string]string{
	"watch": `vhost-gen watch: the daemon. Watches the source, and on every burst of changes renders the
proxy config, checks it, puts it in place and reloads the proxy, never when nothing changed.
Example: vhost-gen watch --out /etc/nginx/conf.d/vhost-gen.conf --proxy-networks frontend`,
	"render": `vhost-gen render: render once from the live source to --out (or stdout) and exit; the
problems go to stderr. A dry run: no reload. The config is checked as watch checks it when the
check is available (--check-cmd, or the proxy installed here), and sites the check refuses are
left out with a problem each. Exits non-zero only when nothing could be rendered (source
unreachable, template error, a check that fails without any site).`,
	"publish": `vhost-gen publish: write this engine's workloads (--source docker, or swarm on a manager) into
etcd under --etcd-prefix, each key under a lease kept alive (--etcd-ttl), so that gateways on any
machine (watch --source etcd) route them. Only what changed is written; a dead publisher's keys go
with its lease. Example: vhost-gen publish --etcd-endpoints http://10.0.0.1:2379 --address-mode host-port`,
	"gateways": `vhost-gen gateways: list every live gateway that reads etcd, with the registry revision it
rendered, the hash of the config it applied, when, its last error, and whether it agrees with the
newest one, lags or differs. --json prints them for machines.`,
	"routes": `vhost-gen routes: print the routing table (sites, paths, servers) and the problems, then exit.
--json prints them for machines.
--host NAME explains one host instead: the site that answers it (its exact name or a wildcard),
every workload that asked for it, the servers with the address rule that chose each (with
--proxy haproxy, their live state from the runtime API at --haproxy-socket), the workloads left
out and why, and the path routes. --workload NAME explains a workload (by name, ID or service):
its settings as written and as read, what it serves, what it was left out of and why.
Example: vhost-gen routes --host shop.example.com`,
}

// parseConfig reads flags for one command, each flag defaulting to its VHOST_GEN_* variable.
func parseConfig(cmd string, args []string, stderr io.Writer) (*Config, error) {
	c := &Config{Command: cmd}
	fs := flag.NewFlagSet("vhost-gen "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Proxy, "proxy", "nginx", "which proxy, nginx or haproxy: selects the shipped template, the check and the reload")
	fs.StringVar(&c.Template, "template", "", "a template `FILE` of your own instead of the shipped one (Go text/template with sprig functions)")
	fs.StringVar(&c.Out, "out", "", "where the rendered config goes (`FILE`); required by watch, stdout for render")
	fs.StringVar(&c.Listen, "listen", "80", "where the proxy listens for HTTP, passed to the template (`PORT` or ADDR:PORT; nginx-proxy's HTTP_PORT is read too)")
	fs.StringVar(&c.CheckCmd, "check-cmd", "", "check command for the staged config, {{.File}} is the staged file; `CMD` \"none\" skips the check (default: nginx -t on a config that includes the staged file; haproxy -c -f {{.File}})")
	fs.StringVar(&c.ReloadCmd, "reload-cmd", "", "reload command; `CMD` \"none\" skips the reload (default: nginx -s reload; for haproxy, USR2 to the master in /run/haproxy.pid; unless another --reload-* is set)")
	fs.StringVar(&c.ReloadPidfile, "reload-pidfile", "", "reload by sending --reload-signal to the process whose PID is in `FILE`")
	fs.StringVar(&c.ReloadContainer, "reload-container", "", "reload by sending --reload-signal to the proxy's container `NAME` (or ID)")
	fs.StringVar(&c.ReloadContainerLabel, "reload-container-label", "", "reload by sending --reload-signal to every running container with the label `KEY=VALUE`")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", 30*time.Second, "stop a check, reload or runtime API update still running after `DURATION`: the apply fails saying so, the live config stays as it was, and the apply is retried")
	fs.StringVar(&c.ReloadSignal, "reload-signal", "", "the `SIGNAL` for --reload-pidfile and --reload-container[-label] (default: HUP for nginx, USR2 for haproxy's master)")
	fs.StringVar(&c.HAProxySocket, "haproxy-socket", "/run/haproxy/admin.sock", "HAProxy's runtime API socket `PATH`: the template declares it, vhost-gen uses it for server-only changes")
	fs.BoolVar(&c.HAProxyRuntimeAPI, "haproxy-runtime-api", true, "apply server-only changes (scaling, replaced replicas, weights) through HAProxy's runtime API, without a reload")
	fs.StringVar(&c.HAProxyStats, "haproxy-stats", "", "serve HAProxy's stats page on `ADDR` (PORT alone binds 127.0.0.1); empty: no stats page")
	fs.StringVar(&c.Wait, "wait", "100ms:1s", "debounce `MIN:MAX`: apply MIN after the last change of a burst, at most MAX after its first")
	fs.StringVar(&c.AddressMode, "address-mode", "auto", "how to reach workloads: auto (the README's address rules, in order), network (shared networks only), host-port (published ports only)")
	fs.Var(&c.ProxyNetworks, "proxy-networks", "the proxy's `NETWORKS` (comma separated), when vhost-gen does not run in the proxy's container")
	fs.StringVar(&c.ProxyContainer, "proxy-container", "", "the proxy's container `NAME` (or ID), whose networks are the proxy's networks")
	fs.StringVar(&c.ProxyLabel, "proxy-label", "", "the proxy's containers carry this label (`KEY` or KEY=VALUE); their networks are the proxy's")
	fs.StringVar(&c.LabelFilter, "label-filter", "", "only containers (with --source swarm: services) with this label (`KEY` or KEY=VALUE) are considered, for several proxies on one engine")
	fs.Var(&c.Sources, "source", "where workloads come from: docker (one engine's containers), swarm (a manager's services and tasks) or etcd (what publishers wrote, and flat layouts); repeatable, they merge")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:9180", "the admin HTTP server (/healthz, /metrics, /routes) `ADDR`; empty disables it")
	fs.BoolVar(&c.AdminPprof, "admin-pprof", false, "also serve Go's profiles on the admin server, under /debug/pprof/ (for benchmarks and debugging)")
	fs.StringVar(&c.HostAddress, "host-address", "", "the engine host's `ADDRESS` for published ports and host networking (default: DOCKER_HOST's host; else, in a container off the host network, its first non-internal network's gateway; else 127.0.0.1)")
	fs.BoolVar(&c.TrustDownstreamProxy, "trust-downstream-proxy", false, "keep the X-Forwarded-Proto, -Host, -Port and -Ssl a client sends and append to its X-Forwarded-For, for a proxy that only a trusted proxy reaches; off, they are replaced from the connection (also read from nginx-proxy's TRUST_DOWNSTREAM_PROXY)")
	fs.BoolVar(&c.IncludeUnhealthy, "include-unhealthy", false, "route containers whose healthcheck is starting or unhealthy too")
	fs.DurationVar(&c.Resync, "resync", 5*time.Minute, "full re-read of the source every `DURATION`; events do the rest")
	fs.BoolVar(&c.Supervise, "supervise", false, "run the proxy as vhost-gen's child (the gateway image): start it after the first apply, reload it, restart it if it dies, stop it gracefully on SIGTERM")
	fs.DurationVar(&c.SwarmPoll, "swarm-poll", 3*time.Second, "--source swarm: read services and tasks every `DURATION` (Swarm has no task events); service, node and task-container events poll at once")
	registerEtcdFlags(fs, &c.Etcd)
	registerTLSFlags(fs, &c.TLS)
	registerDefaultsFlags(fs, &c.Defaults)
	registerFilesFlags(fs, &c.Files)
	registerSeparateFlags(fs, c)
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	if cmd == "routes" || cmd == "gateways" {
		fs.BoolVar(&c.JSON, "json", false, "print the table and the problems as JSON")
	}
	if cmd == "routes" {
		fs.Var(&c.ExplainHosts, "host", "explain these host `NAMES` (comma separated, repeatable) instead of printing the table: who asked, who serves and at which address by which rule, who was left out and why")
		fs.Var(&c.ExplainWorkloads, "workload", "explain these workloads (`NAMES`, IDs or services; comma separated, repeatable): their settings, what they serve, what they were left out of and why")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags (each also read from the environment variable shown):\n", commandHelp[cmd])
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "  --%s %s\t[%s]\n    \t%s", f.Name, name, envName(f.Name), usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
		fmt.Fprintln(stderr, "\nThe Docker client honours DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI does.")
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if alias := envAliases[f.Name]; !ok && alias != "" {
			name = alias
			v, ok = os.LookupEnv(alias)
		}
		if ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	c.ProxyNetworks.fromEnv, c.Sources.fromEnv, c.Etcd.Endpoints.fromEnv = true, true, true
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see vhost-gen %s --help)", fs.Arg(0), cmd)
	}
	if len(c.Sources.values) == 0 {
		c.Sources.values = []string{"docker"}
	}
	return c, nil
}
