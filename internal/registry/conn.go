package registry

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Conn is how to reach etcd, with etcdctl's settings: endpoints, TLS client certificate and CA,
// user and password, dial timeout.
type Conn struct {
	Endpoints   []string
	CACert      string
	Cert, Key   string
	User        string // "name" or etcdctl's "name:password"
	Password    string
	DialTimeout time.Duration
}

// EnvNames maps each setting to the etcdctl environment variable that supplies it when neither
// the flag nor its VHOST_GEN_ variable is set.
var EnvNames = map[string]string{
	"etcd-endpoints":    "ETCDCTL_ENDPOINTS",
	"etcd-cacert":       "ETCDCTL_CACERT",
	"etcd-cert":         "ETCDCTL_CERT",
	"etcd-key":          "ETCDCTL_KEY",
	"etcd-user":         "ETCDCTL_USER",
	"etcd-password":     "ETCDCTL_PASSWORD",
	"etcd-dial-timeout": "ETCDCTL_DIAL_TIMEOUT",
}

// Configured reports whether etcd is configured at all.
func (c Conn) Configured() bool { return len(c.Endpoints) > 0 }

// Config is the client configuration; its errors name the flag at fault.
func (c Conn) Config() (clientv3.Config, error) {
	if len(c.Endpoints) == 0 {
		return clientv3.Config{}, errors.New("--etcd-endpoints (or ETCDCTL_ENDPOINTS): no etcd endpoint given")
	}
	for _, e := range c.Endpoints {
		if strings.ContainsAny(e, " \t\n\"'") || e == "" {
			return clientv3.Config{}, fmt.Errorf("--etcd-endpoints %q: not an endpoint URL", e)
		}
	}
	cfg := clientv3.Config{
		// No DialTimeout here (but see the user below): a gateway must start (and keep serving)
		// while etcd is down. Timeout() bounds each call instead.
		Endpoints: c.Endpoints,
		// A gateway must not hang on an etcd that is gone: keepalives find a dead connection.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(), // errors reach vhost-gen's own log through the calls
	}
	user, pass := c.User, c.Password
	if u, p, ok := strings.Cut(user, ":"); ok && pass == "" {
		user, pass = u, p
	}
	cfg.Username, cfg.Password = user, pass
	if user != "" && pass != "" {
		// With a user and password, New authenticates before it returns, bounded only by
		// DialTimeout (the dial itself never blocks): without one it waits for ever on an etcd
		// that does not answer. Nothing else of the client uses DialTimeout without
		// RejectOldCluster, except the lease's first keepalive timeout (DialTimeout+1s).
		cfg.DialTimeout = c.Timeout()
	}
	if c.CACert != "" || c.Cert != "" || c.Key != "" {
		if (c.Cert == "") != (c.Key == "") {
			return clientv3.Config{}, errors.New("--etcd-cert and --etcd-key go together")
		}
		for flag, f := range map[string]string{"--etcd-cacert": c.CACert, "--etcd-cert": c.Cert, "--etcd-key": c.Key} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return clientv3.Config{}, fmt.Errorf("%s: %w", flag, err)
			}
		}
		tlsCfg, err := transport.TLSInfo{CertFile: c.Cert, KeyFile: c.Key, TrustedCAFile: c.CACert}.ClientConfig()
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd TLS settings: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	return cfg, nil
}

// Timeout bounds one call to etcd: --etcd-dial-timeout, 5 s by default.
func (c Conn) Timeout() time.Duration {
	if c.DialTimeout > 0 {
		return c.DialTimeout
	}
	return 5 * time.Second
}

// Dial makes a client. It does not wait for etcd: the calls that follow say whether it answers.
func (c Conn) Dial() (*clientv3.Client, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}
