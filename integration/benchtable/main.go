// Command benchtable measures vhost-gen at scale and prints one Markdown table: against the
// engine simulator (integration/enginesim) at each N, and against the real dockerd at one N,
// with real HAProxy, vhost-gen built from this tree and run as its own process.
//
//	go run ./integration/benchtable              # N = 100, 1,000, 10,000 and the real engine at 100
//	go run ./integration/benchtable -short       # small N: what `make test` runs so that it cannot rot
//	go run ./integration/benchtable -profile DIR # also vhost-gen's CPU profiles, and its heap before the flips and after the storm
//
// Timings are measured, never asserted: it fails only when the pipeline does not work (no apply,
// a workload not routed, a host that never answers).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what to measure and how much.
type config struct {
	ns             []int
	engine         bool
	engineN        int
	short          bool
	profile        string
	idle           time.Duration
	flips, storm   int
	runs, restarts int
	bin, runID     string
}

func parseFlags() (*config, error) {
	c := &config{}
	short := flag.Bool("short", false, "small N and few samples (N = 20 and 100, the real engine at 10): a check that every figure still comes out")
	ns := flag.String("n", "", "the simulator's N, comma separated (default 100,1000,10000; with -short 20,100)")
	flag.BoolVar(&c.engine, "engine", true, "also measure against the real dockerd (make env starts it)")
	flag.IntVar(&c.engineN, "engine-n", 0, "containers on the real engine (default 100; with -short 10)")
	flag.StringVar(&c.profile, "profile", "", "save vhost-gen's CPU profiles and heap profiles into `DIR`")
	flag.Parse()
	c.short = *short
	c.idle, c.flips, c.storm, c.runs, c.restarts = 10*time.Second, 20, 1000, 10, 20
	def, engineN := "100,1000,10000", 100
	if c.short {
		c.idle, c.flips, c.runs, c.restarts = 2*time.Second, 6, 3, 4
		def, engineN = "20,100", 10
	}
	if c.engineN == 0 {
		c.engineN = engineN
	}
	if *ns == "" {
		*ns = def
	}
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return nil, fmt.Errorf("-n %q: want numbers of 2 or more, comma separated", *ns)
		}
		c.ns = append(c.ns, n)
	}
	if c.profile != "" {
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return nil, err
		}
	}
	c.runID = strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	return c, nil
}

func main() {
	c, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable: FAILED:", err)
		stop()
		os.Exit(1)
	}
}

// run builds vhost-gen, measures every N, then the real engine, and prints the table.
func run(ctx context.Context, c *config) error {
	start := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchtable-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	progress("building vhost-gen")
	if c.bin, err = buildVhostGen(root, dir); err != nil {
		return err
	}
	t := &table{}
	for _, n := range c.ns {
		progress("simulator, N = %d", n)
		r, err := runSim(ctx, c, n)
		if err != nil {
			return fmt.Errorf("simulator, N = %d: %w", n, err)
		}
		t.sims = append(t.sims, r)
	}
	if c.engine {
		progress("real engine, N = %d", c.engineN)
		r, err := runEngine(ctx, c, c.engineN)
		if err != nil {
			return fmt.Errorf("real engine, N = %d: %w", c.engineN, err)
		}
		t.engine = r
	}
	if len(t.sims) == 0 && t.engine == nil {
		return fmt.Errorf("nothing was measured")
	}
	t.print(os.Stdout, c, time.Since(start))
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s benchtable: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
