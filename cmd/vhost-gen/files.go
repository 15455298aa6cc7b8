package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/access"
	"github.com/vhost-gen/vhost-gen/internal/dirwatch"
	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

// filesConfig are the operator's files that nginx-proxy's image reads from mounts, which the
// gateway image reads at the same paths. At their default paths they are optional; a path given
// explicitly must exist.
type filesConfig struct {
	// NetworkInternal is nginx-proxy's network_internal.conf: the networks NETWORK_ACCESS=internal
	// lets in.
	NetworkInternal    string
	networkInternalSet bool
	// SnippetsDir holds the operator's snippets: nginx-proxy's vhost.d for nginx, its HAProxy
	// equivalent for HAProxy.
	SnippetsDir    string
	snippetsDirSet bool
	// HtpasswdDir is nginx-proxy's htpasswd directory: basic authentication per host and path.
	HtpasswdDir    string
	htpasswdDirSet bool
	// ErrorPagesDir is nginx-proxy's error pages directory (its 50x.html).
	ErrorPagesDir    string
	errorPagesDirSet bool
}

// The files' default paths: nginx-proxy's image's, and HAProxy's equivalent.
const (
	defaultNetworkInternal = "/etc/nginx/network_internal.conf"
	defaultNginxSnippets   = "/etc/nginx/vhost.d"
	defaultHAProxySnippets = "/etc/haproxy/snippets.d"
	defaultHtpasswd        = "/etc/nginx/htpasswd"
	defaultErrorPages      = "/usr/share/nginx/html/errors"
)

// filesEnvAliases are nginx-proxy's names for these flags: none (its image takes the files from
// fixed paths, which are these flags' defaults).
var filesEnvAliases = map[string]string{}

func registerFilesFlags(fs *flag.FlagSet, c *filesConfig) {
	fs.Func("network-internal", "a `FILE` in nginx-proxy's network_internal.conf format (\"allow NETWORK;\" lines, then \"deny all;\"): the clients NETWORK_ACCESS=internal lets in (default: "+defaultNetworkInternal+" when it exists, else loopback, 10/8, 172.16/12, 192.168/16, ::1 and fc00::/7)", func(v string) error {
		c.NetworkInternal, c.networkInternalSet = v, true
		return nil
	})
	fs.Func("snippets-dir", "the operator's config snippets `DIR`, watched: nginx-proxy's vhost.d names for nginx (HOST, default, HOST_location, default_location, HOST_location_override...), HOST_backend, default_backend and frontend for HAProxy; each checked with the config (default: "+defaultNginxSnippets+" for nginx, "+defaultHAProxySnippets+" for HAProxy, when it exists)", func(v string) error {
		c.SnippetsDir, c.snippetsDirSet = v, true
		return nil
	})
	fs.Func("htpasswd-dir", "nginx-proxy's htpasswd `DIR`, watched: basic authentication for a host (a file named after it; a regular expression's SHA-1) or for one of its paths (HOST_SHA1-OF-PATH); nginx reads every htpasswd hash, HAProxy the crypt(3) ones (default: "+defaultHtpasswd+" when it exists)", func(v string) error {
		c.HtpasswdDir, c.htpasswdDirSet = v, true
		return nil
	})
	fs.Func("error-pages-dir", "nginx-proxy's error pages `DIR`, watched: its 50x.html answers the hosts no site claims, instead of vhost-gen's plain 503 (default: "+defaultErrorPages+" when it exists)", func(v string) error {
		c.ErrorPagesDir, c.errorPagesDirSet = v, true
		return nil
	})
}

// applyFiles reads the operator's files into the render options; newApp calls it.
func (a *app) applyFiles() error {
	c := &a.cfg.Files
	path := c.NetworkInternal
	if !c.networkInternalSet {
		path = defaultNetworkInternal
	}
	if path != "" {
		nets, err := access.ReadInternalNetworks(path)
		switch {
		case err == nil:
			a.renderOpts.InternalNetworks = nets
		case errors.Is(err, fs.ErrNotExist) && !c.networkInternalSet:
		default:
			return fmt.Errorf("--network-internal: %w", err)
		}
	}
	if !c.snippetsDirSet {
		c.SnippetsDir = defaultNginxSnippets
		if a.cfg.Proxy == "haproxy" {
			c.SnippetsDir = defaultHAProxySnippets
		}
	}
	if !c.htpasswdDirSet {
		c.HtpasswdDir = defaultHtpasswd
	}
	a.snippets = &dirStore{flag: "--snippets-dir", dir: c.SnippetsDir, explicit: c.snippetsDirSet}
	a.htpasswd = &dirStore{flag: "--htpasswd-dir", dir: c.HtpasswdDir, explicit: c.htpasswdDirSet}
	if a.cfg.Proxy == "haproxy" && a.cfg.Template == "" {
		a.htpasswd.warnings = access.HAProxySkipped
	}
	if !c.errorPagesDirSet {
		c.ErrorPagesDir = defaultErrorPages
	}
	a.errorPages = &dirStore{flag: "--error-pages-dir", dir: c.ErrorPagesDir, explicit: c.errorPagesDirSet,
		match: func(n string) bool { return n == "50x.html" }}
	if a.cfg.Proxy == "nginx" && a.cfg.Out != "" && a.cfg.Command == "watch" {
		a.retireNginxProxyConfig()
	}
	if a.cfg.Proxy == "nginx" && a.cfg.CheckCmd == "" && a.cfg.Out != "" {
		// nginx's own include of the output's directory (conf.d/*.conf) loads the operator's
		// files there with it: they are checked with it, and watched.
		out := filepath.Base(a.cfg.Out)
		a.confD = &dirStore{flag: "--out", dir: filepath.Dir(a.cfg.Out),
			match: func(n string) bool { return strings.HasSuffix(n, ".conf") && n != out }}
	}
	for _, d := range a.dirStores() {
		if err := d.load(a); err != nil {
			return err
		}
	}
	return nil
}

// dirStores are the operator's watched directories.
func (a *app) dirStores() []*dirStore {
	return slices.DeleteFunc([]*dirStore{a.snippets, a.htpasswd, a.confD, a.errorPages}, func(d *dirStore) bool { return d == nil || d.dir == "" })
}

// confDFiles are the other conf.d files nginx loads with the output, for its check.
func (a *app) confDFiles() []string {
	set := a.confD.get()
	var paths []string
	for _, n := range set.Names() {
		paths = append(paths, filepath.Join(set.Dir, n))
	}
	return paths
}

// dirStore holds one watched directory of the operator's files (snippets, htpasswd), replaced
// by the watch; the pipeline renders with the newest.
type dirStore struct {
	flag, dir string
	explicit  bool // given on the command line: it must exist
	// warnings, if set, are what to log about a new set of files besides those left out.
	warnings func(*snippets.Set) []string
	// match, if set, picks the files to read.
	match func(name string) bool
	mu    sync.Mutex
	cur   *snippets.Set
}

// get returns the newest files; nil (none) for a nil store or no directory.
func (d *dirStore) get() *snippets.Set {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// load reads the directory at start.
func (d *dirStore) load(a *app) error {
	if d.dir == "" {
		return nil
	}
	set, err := snippets.LoadMatching(d.dir, d.match)
	if err == nil && d.explicit && dirwatch.Of(d.dir) == nil {
		err = fs.ErrNotExist
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", d.flag, d.dir, err)
	}
	d.set(set, a)
	return nil
}

// set replaces the files and logs those left out; it reports whether they changed.
func (d *dirStore) set(set *snippets.Set, a *app) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur.Equal(set) {
		return false
	}
	for _, p := range set.Problems {
		a.log.Warn("file left out", "dir", d.dir, "reason", p)
	}
	if d.warnings != nil {
		for _, w := range d.warnings(set) {
			a.log.Warn("htpasswd entry left out of HAProxy's userlist", "entry", w)
		}
	}
	d.cur = set
	return true
}

// watchFiles polls the operator's directories and wakes the pipeline when their files change.
func (a *app) watchFiles(ctx context.Context) {
	for _, d := range a.dirStores() {
		go d.watch(ctx, a)
	}
}

func (d *dirStore) watch(ctx context.Context, a *app) {
	var track dirwatch.Tracker
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		if fp := dirwatch.Of(d.dir); track.Due(fp) {
			set, err := snippets.LoadMatching(d.dir, d.match)
			if err != nil {
				a.log.Error("reading the operator's files", "dir", d.dir, "err", err)
			}
			if track.Loaded(fp, dirwatch.Of(d.dir), err == nil) && d.set(set, a) {
				a.log.Info("the operator's files changed", "dir", d.dir, "files", len(set.Names()))
				select {
				case a.changed <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retireNginxProxyConfig moves nginx-proxy's own generated config (conf.d/default.conf, whose
// first line says so) out of the way when it sits beside --out: a conf.d volume carried over
// from nginx-proxy still holds it, and nginx would load both (duplicate directives, every apply
// refused). nginx-proxy rewrote that file at every change; it is kept as default.conf.nginx-proxy.
func (a *app) retireNginxProxyConfig() {
	old := filepath.Join(filepath.Dir(a.cfg.Out), "default.conf")
	if old == filepath.Clean(a.cfg.Out) {
		return
	}
	f, err := os.Open(old)
	if err != nil {
		return
	}
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	f.Close()
	if !strings.HasPrefix(string(head[:n]), "# nginx-proxy") {
		return
	}
	if err := os.Rename(old, old+".nginx-proxy"); err != nil {
		a.log.Warn("nginx-proxy's generated config is beside --out and nginx loads both: remove it", "file", old, "err", err)
		return
	}
	a.log.Warn("moved nginx-proxy's generated config out of nginx's way", "from", old, "to", old+".nginx-proxy")
}
