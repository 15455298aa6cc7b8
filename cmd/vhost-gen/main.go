// Command vhost-gen turns Docker workloads' VIRTUAL_* settings into a live reverse-proxy config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `vhost-gen turns Docker workloads into a working reverse proxy: containers with VIRTUAL_HOST
(label or env) are routed by nginx, load-balanced over every replica.

Usage:
  vhost-gen watch  [flags]   the daemon: watch the source(s), render, apply, repeat
  vhost-gen render [flags]   render once from the live source to --out (or stdout), problems on stderr
  vhost-gen routes [flags]   print the routing table and the problems (--json for machines)
  vhost-gen publish [flags]  write this engine's workloads into etcd, for gateways on other machines
  vhost-gen gateways [flags] list the gateways that read etcd, and whether they agree
  vhost-gen version

"vhost-gen COMMAND --help" lists a command's flags; every flag can also be set by VHOST_GEN_<FLAG>.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "vhost-gen", versionString())
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "watch", "render", "routes", "publish", "gateways":
	default:
		fmt.Fprintf(stderr, "vhost-gen: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	cfg, err := parseConfig(cmd, rest, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vhost-gen %s: %v\n", cmd, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := newApp(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vhost-gen %s: %v\n", cmd, err)
		return 2
	}
	switch cmd {
	case "watch":
		err = a.watch(ctx)
	case "render":
		err = a.render(ctx, stdout)
	case "routes":
		err = a.routes(ctx, stdout)
	case "publish":
		err = a.publish(ctx)
	case "gateways":
		err = a.gateways(ctx, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vhost-gen %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
