package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	etcdsrc "github.com/vhost-gen/vhost-gen/internal/discovery/etcd"
	"github.com/vhost-gen/vhost-gen/internal/gateways"
	"github.com/vhost-gen/vhost-gen/internal/publish"
	"github.com/vhost-gen/vhost-gen/internal/registry"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/watch"
)

// etcdConfig is the etcd flags: the connection (etcdctl's settings and ETCDCTL_* variables),
// the registry's prefix and leases, the flat layouts to read, and the IDs.
type etcdConfig struct {
	Endpoints         listFlag
	CACert, Cert, Key string
	User, Password    string
	DialTimeout       time.Duration
	Prefix            string
	TTL               time.Duration
	Registry          bool
	Flat              multiFlag
	VHosts            string
	PublisherID       string
	GatewayID         string
	PublishFlat       string
	layout            registry.Layout
	flat              []etcdsrc.FlatDir
	conn              registry.Conn
	client            *clientv3.Client
}

// multiFlag is a repeatable flag whose values may hold commas (--etcd-flat DIR=a.com,b.com).
type multiFlag struct{ values []string }

func (m *multiFlag) String() string     { return strings.Join(m.values, " ") }
func (m *multiFlag) Set(v string) error { m.values = append(m.values, v); return nil }

func registerEtcdFlags(fs *flag.FlagSet, c *etcdConfig) {
	fs.Var(&c.Endpoints, "etcd-endpoints", "etcd's `URLS`, comma separated (also ETCDCTL_ENDPOINTS): for --source etcd, publish, gateways")
	fs.StringVar(&c.CACert, "etcd-cacert", "", "CA bundle `FILE` that signs etcd's server certificate (also ETCDCTL_CACERT)")
	fs.StringVar(&c.Cert, "etcd-cert", "", "client certificate `FILE` for etcd (also ETCDCTL_CERT)")
	fs.StringVar(&c.Key, "etcd-key", "", "client key `FILE` for etcd (also ETCDCTL_KEY)")
	fs.StringVar(&c.User, "etcd-user", "", "etcd `USER`, or USER:PASSWORD as etcdctl takes it (also ETCDCTL_USER)")
	fs.StringVar(&c.Password, "etcd-password", "", "etcd `PASSWORD` (also ETCDCTL_PASSWORD)")
	fs.DurationVar(&c.DialTimeout, "etcd-dial-timeout", 5*time.Second, "bound on each etcd call (also ETCDCTL_DIAL_TIMEOUT)")
	fs.StringVar(&c.Prefix, "etcd-prefix", registry.DefaultPrefix, "the registry's key `PREFIX` in etcd")
	fs.DurationVar(&c.TTL, "etcd-ttl", 10*time.Second, "the lease TTL of a publisher's keys and of a gateway's record: a dead publisher's routes go after this")
	fs.BoolVar(&c.Registry, "etcd-registry", true, "--source etcd reads the registry that publish writes (false: only --etcd-flat and --etcd-vhosts)")
	fs.Var(&c.Flat, "etcd-flat", "--source etcd also reads a flat directory of HOST:PORT values: `DIR=HOST[,HOST]`, DIR=tcp:PORT, or DIR (the mapping from DIR/_host or DIR/_tcp_port); repeatable")
	fs.StringVar(&c.VHosts, "etcd-vhosts", "", "--source etcd also reads the ambassador's tree `DIR`/<host>/services/<service>/<server> = HOST:PORT")
	fs.StringVar(&c.PublisherID, "publisher-id", "", "publish: this publisher's `ID`, one writer per ID (default: the engine's host name)")
	fs.StringVar(&c.GatewayID, "gateway-id", "", "watch --source etcd: this gateway's `ID` in `vhost-gen gateways` (default: the host name and a hash of --out)")
	fs.StringVar(&c.PublishFlat, "publish-flat", "", "publish: also write the flat layout `DIR`/<service>/<name> = ADDRESS:PORT, for confd templates during a migration")
}

// prepare validates the etcd flags; uses says what needs etcd ("--source etcd", "publish").
func (c *etcdConfig) prepare(uses string) error {
	var err error
	if c.layout, err = registry.NewLayout(c.Prefix); err != nil {
		return err
	}
	c.flat = nil
	for _, v := range c.Flat.values {
		d, err := etcdsrc.ParseFlatFlag(v)
		if err != nil {
			return err
		}
		c.flat = append(c.flat, d)
	}
	if c.VHosts != "" {
		d, err := etcdsrc.ParseFlatFlag(c.VHosts)
		if err != nil {
			return fmt.Errorf("--etcd-vhosts: %w", err)
		}
		c.VHosts = d.Dir
	}
	if c.PublishFlat != "" {
		d, err := etcdsrc.ParseFlatFlag(c.PublishFlat)
		if err != nil {
			return fmt.Errorf("--publish-flat: %w", err)
		}
		c.PublishFlat = d.Dir
	}
	for flag, id := range map[string]string{"--publisher-id": c.PublisherID, "--gateway-id": c.GatewayID} {
		if id != "" {
			if err := registry.CheckID(id); err != nil {
				return fmt.Errorf("%s: %w", flag, err)
			}
		}
	}
	if c.TTL < 2*time.Second {
		return fmt.Errorf("--etcd-ttl %s: at least 2s", c.TTL)
	}
	c.conn = registry.Conn{Endpoints: c.Endpoints.values, CACert: c.CACert, Cert: c.Cert, Key: c.Key,
		User: c.User, Password: c.Password, DialTimeout: c.DialTimeout}
	if _, err := c.conn.Config(); err != nil {
		return fmt.Errorf("%s needs etcd: %w", uses, err)
	}
	return nil
}

// dial makes the one etcd client of this process.
func (c *etcdConfig) dial() (*clientv3.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	cli, err := c.conn.Dial()
	if err != nil {
		return nil, err
	}
	c.client = cli
	return cli, nil
}

// etcdSource is --source etcd.
func (a *app) etcdSource() (discovery.Source, error) {
	c := &a.cfg.Etcd
	if err := c.prepare("--source etcd"); err != nil {
		return nil, err
	}
	if !c.Registry && len(c.flat) == 0 && c.VHosts == "" {
		return nil, errors.New("--source etcd with --etcd-registry=false: give --etcd-flat or --etcd-vhosts")
	}
	cli, err := c.dial()
	if err != nil {
		return nil, err
	}
	return etcdsrc.New(etcdsrc.Options{Client: cli, Layout: c.layout, Registry: c.Registry, Flat: c.flat, VHosts: c.VHosts,
		Timeout: c.conn.Timeout(), Log: a.log.With("source", "etcd"),
		OnEvent: func(action string) { a.metrics.SourceEvents.WithLabelValues("etcd", action).Inc() },
		OnState: a.sourceState("etcd"),
	}), nil
}

// publish is `vhost-gen publish`: the engine's workloads into etcd.
func (a *app) publish(ctx context.Context) error {
	c := &a.cfg.Etcd
	if err := c.prepare("publish"); err != nil {
		return err
	}
	if len(a.sources) != 1 || a.sources[0].Name() == "etcd" {
		return errors.New("publish: give one engine source, --source docker (default) or --source swarm")
	}
	src := a.sources[0]
	cli, err := c.dial()
	if err != nil {
		return err
	}
	hostname, err := a.engineHostname(ctx)
	if err != nil {
		return err
	}
	id := c.PublisherID
	if id == "" {
		id = registry.SafeID(hostname)
	}
	o := publish.Options{Client: cli, Layout: c.layout, ID: id, TTL: c.TTL, Timeout: c.conn.Timeout(),
		Record: registry.PublisherRecord{Hostname: hostname, Version: versionString(), Source: src.Name(), Started: time.Now().UTC()},
		Log:    a.log.With("publisher", id),
		OnWrite: func(op string) {
			a.metrics.EtcdWrites.WithLabelValues(op).Inc()
		},
		OnSync: func(err error) { a.state.SetApply(err, time.Now()) },
	}
	if c.PublishFlat != "" {
		o.FlatDir = c.PublishFlat
		o.Flat = a.flatEntries(c.PublishFlat)
	}
	stopAdmin, err := a.startAdmin()
	if err != nil {
		return err
	}
	defer stopAdmin()
	if h := a.routing.HostAddress; src.Name() == "docker" && isLoopback(h.Address) {
		// The node address travels with every workload: gateways on other machines would reach
		// published ports and host-network containers on their own loopback.
		a.log.Warn("publishing the node address "+h.Address+" ("+h.Origin+"): gateways on other machines cannot reach this host's published ports there; set --host-address to this host's LAN address",
			"host-address", h.Address)
	}
	a.log.Info("vhost-gen publishing", "version", versionString(), "publisher", id, "source", src.Name(),
		"etcd", strings.Join(c.conn.Endpoints, ","), "prefix", c.layout.Prefix, "ttl", c.TTL)
	return publish.New(o).Run(ctx, src)
}

// flatEntries is --publish-flat: each routed server of a workload, as this publisher's flags
// route it (--address-mode host-port for a proxy on another machine), as DIR/<service>/<name>.
func (a *app) flatEntries(dir string) func(w discovery.Workload) map[string][]byte {
	return func(w discovery.Workload) map[string][]byte {
		t := routing.Build([]discovery.Workload{w}, a.routing)
		var servers []etcdsrc.FlatServer
		add := func(ss []routing.Server) {
			for _, s := range ss {
				servers = append(servers, etcdsrc.FlatServer{Service: w.Service, Name: w.Name, Address: s.Address})
			}
		}
		for _, s := range t.Sites {
			for _, r := range s.Routes {
				add(r.Backend.Servers)
			}
		}
		for _, ts := range t.TCP {
			add(ts.Backend.Servers)
		}
		out := map[string][]byte{}
		for _, kv := range etcdsrc.FlatEntries(dir, servers) {
			out[kv.Key] = kv.Value // one key per workload: several hosts share its address
		}
		return out
	}
}

// engineHostname is the engine's host name (the default publisher ID).
func (a *app) engineHostname(ctx context.Context) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := a.cli.Info(cctx)
	if err != nil {
		return "", fmt.Errorf("the engine's host name (or give --publisher-id): %w", err)
	}
	return info.Name, nil
}

// recorder is the gateway's record in etcd, when it reads etcd.
func (a *app) recorder() (*gateways.Recorder, error) {
	c := &a.cfg.Etcd
	if c.client == nil {
		return nil, nil
	}
	id := c.GatewayID
	if id == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("--gateway-id: no host name to default to: %w", err)
		}
		// Two gateways on one machine write different files: the file tells them apart, and
		// stays the same across restarts.
		sum := sha256.Sum256([]byte(a.cfg.Out))
		id = registry.SafeID(h + "-" + hex.EncodeToString(sum[:4]))
	}
	host, _ := os.Hostname()
	return &gateways.Recorder{Client: c.client, Layout: c.layout, ID: id, TTL: c.TTL, Timeout: c.conn.Timeout(),
		Base: registry.GatewayRecord{Hostname: host, Version: versionString()}, Log: a.log}, nil
}

// recordApplies records every apply in etcd (the gateway's record) and lists the gateways on
// /routes, when the gateway reads etcd.
func (a *app) recordApplies(ctx context.Context, p *watch.Pipeline) error {
	rec, err := a.recorder()
	if err != nil || rec == nil {
		return err
	}
	go rec.Run(ctx)
	p.AfterApply = func(revisions map[string]int64, applied []byte, err error) {
		rec.Record(revisions["etcd"], applied, err, time.Now())
	}
	c := &a.cfg.Etcd
	a.state.SetGateways(func(ctx context.Context) (any, error) {
		es, _, err := gateways.List(ctx, c.client, c.layout)
		return es, err
	})
	return nil
}

// gateways is `vhost-gen gateways`: every live gateway's record, and which agree.
func (a *app) gateways(ctx context.Context, stdout io.Writer) error {
	c := &a.cfg.Etcd
	if err := c.prepare("gateways"); err != nil {
		return err
	}
	cli, err := c.dial()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, c.conn.Timeout())
	defer cancel()
	es, rev, err := gateways.List(cctx, cli, c.layout)
	if err != nil {
		return err
	}
	if a.cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Revision int64            `json:"revision"`
			Gateways []gateways.Entry `json:"gateways"`
		}{rev, es})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tSTATE\tREVISION\tSHA256\tAPPLIED\tERROR")
	for _, e := range es {
		sha := e.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		at := ""
		if !e.AppliedAt.IsZero() {
			at = e.AppliedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.State, e.Revision, sha, at, e.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(es) == 0 {
		fmt.Fprintf(stdout, "no live gateway under %s (etcd revision %d)\n", c.layout.Gateways(), rev)
	}
	return nil
}

func isLoopback(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	return addr == "localhost" || err == nil && ip.Unmap().IsLoopback()
}
