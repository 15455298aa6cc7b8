package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Version is the version of the published Record; a gateway refuses others with a problem.
const Version = 1

// Bounds on what a published value may hold: etcd's prefix is writable by anyone with access to
// it, so a value is untrusted input, and a huge one is a problem on its key, not a gateway's
// memory.
const (
	MaxValue      = 64 << 10
	maxMapEntries = 512
	maxKey        = 256
	maxSetting    = 16 << 10
	maxNetworks   = 64
	maxPorts      = 256
	maxName       = 255
)

// Record is what a publisher writes for one workload.
type Record struct {
	V        int                `json:"v"`
	Workload discovery.Workload `json:"workload"`
}

// EncodeWorkload is the value a publisher writes for w. The same workload always encodes to the
// same bytes (struct fields in order, map keys sorted by encoding/json), so a publisher can
// compare bytes to know whether a key needs a write.
func EncodeWorkload(w discovery.Workload) ([]byte, error) {
	w.Publisher, w.Problem = "", "" // the gateway's to set
	return json.Marshal(Record{V: Version, Workload: w})
}

// DecodeWorkload reads one published workload. Whatever the value holds, the result is a
// workload: a malformed one carries a Problem naming the key, and is not routed.
func DecodeWorkload(l Layout, key string, value []byte) discovery.Workload {
	pub, id, ok := l.ParseWorkloadKey(key)
	bad := func(format string, args ...any) discovery.Workload {
		return discovery.Workload{ID: "etcd:" + strconv.Quote(key), Name: strconv.Quote(key), Source: "etcd", Publisher: pub,
			Problem: fmt.Sprintf("etcd key %q: ", key) + fmt.Sprintf(format, args...)}
	}
	if !ok {
		return bad("not a workload key (want %s<publisher>/<workload-id>, each [A-Za-z0-9._:-])", l.Workloads())
	}
	if len(value) > MaxValue {
		return bad("value of %d bytes, more than the %d allowed", len(value), MaxValue)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(value))
	if err := dec.Decode(&r); err != nil {
		return bad("not a published workload (JSON): %s", cut(err.Error()))
	}
	if r.V != Version {
		return bad("record version %d; this vhost-gen reads version %d (upgrade the gateway or the publisher)", r.V, Version)
	}
	w := r.Workload
	if w.ID != id {
		return bad("the workload's ID %q is not the key's %q", cut(w.ID), id)
	}
	if err := checkWorkload(&w); err != nil {
		return bad("%s", err)
	}
	w.Source, w.Publisher, w.Problem = "etcd", pub, ""
	return w
}

// checkWorkload bounds and validates what routing does not: names, maps, networks and ports.
// The VIRTUAL_* values themselves are validated by routing, as for any source.
func checkWorkload(w *discovery.Workload) error {
	if err := checkText("name", w.Name, maxName); err != nil {
		return err
	}
	if err := checkText("service", w.Service, maxName); err != nil {
		return err
	}
	for what, m := range map[string]map[string]string{"service labels": w.ServiceLabels, "labels": w.Labels, "env": w.Env} {
		if len(m) > maxMapEntries {
			return fmt.Errorf("%d %s, more than %d", len(m), what, maxMapEntries)
		}
		for k, v := range m {
			if len(k) > maxKey || len(v) > maxSetting || !utf8.ValidString(k) || !utf8.ValidString(v) {
				return fmt.Errorf("%s: an entry over %d/%d bytes or not UTF-8", what, maxKey, maxSetting)
			}
		}
	}
	if len(w.Networks) > maxNetworks || len(w.Ports) > maxPorts {
		return fmt.Errorf("more than %d networks or %d ports", maxNetworks, maxPorts)
	}
	for _, n := range w.Networks {
		if err := checkText("network name", n.Name, maxName); err != nil {
			return err
		}
		if _, err := routing.ParseNetwork(n.Name); err != nil {
			return fmt.Errorf("network %q: %w", cut(n.Name), err)
		}
		if err := checkIP("network "+n.Name, n.IP); err != nil {
			return err
		}
	}
	for _, p := range w.Ports {
		if p.Port < 1 || p.Port > 65535 || p.HostPort < 0 || p.HostPort > 65535 || (p.Proto != "tcp" && p.Proto != "udp" && p.Proto != "sctp") {
			return fmt.Errorf("port %d/%q (host port %d): out of range", p.Port, cut(p.Proto), p.HostPort)
		}
		if err := checkIP("port binding", p.HostIP); err != nil {
			return err
		}
	}
	if err := checkNodeAddress(w.NodeAddress); err != nil {
		return err
	}
	switch w.Health {
	case discovery.HealthNone, discovery.HealthStarting, discovery.HealthHealthy, discovery.HealthUnhealthy:
	default:
		return fmt.Errorf("health %q: unknown", cut(w.Health))
	}
	switch mode := strings.TrimPrefix(w.NetworkMode, "container:"); mode {
	case "", "host", "bridge", "default", "none":
	default:
		if _, err := routing.ParseNetwork(mode); err != nil {
			return fmt.Errorf("network mode %q: %w", cut(w.NetworkMode), err)
		}
	}
	if w.Address != "" {
		if _, err := routing.ParseEndpoint(w.Address); err != nil {
			return fmt.Errorf("address: %w", err)
		}
	}
	return nil
}

func checkText(what, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%s: more than %d bytes or not UTF-8", what, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q: control characters", what, cut(s))
		}
	}
	return nil
}

func checkIP(what, ip string) error {
	if ip == "" {
		return nil
	}
	if _, err := netip.ParseAddr(ip); err != nil {
		return fmt.Errorf("%s: %q is not an IP address", what, cut(ip))
	}
	return nil
}

// checkNodeAddress: an IP address, or a host name (a node's address may be one).
func checkNodeAddress(a string) error {
	if a == "" || checkIP("", a) == nil {
		return nil
	}
	if _, err := routing.ParseHostName(a); err != nil || bytes.ContainsRune([]byte(a), '*') {
		return fmt.Errorf("node address %q: neither an IP address nor a host name", cut(a))
	}
	return nil
}

// cut bounds text quoted in a problem.
func cut(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// PublisherRecord is a publisher's liveness record.
type PublisherRecord struct {
	Hostname string    `json:"hostname"`
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	Started  time.Time `json:"started"`
}

// GatewayRecord is what a gateway last applied: the registry revision it rendered, the hash of
// the bytes it applied, when, and its last error. The revision is never in the config itself
// (that would change the bytes at every revision).
type GatewayRecord struct {
	Hostname  string    `json:"hostname"`
	Version   string    `json:"version"`
	Revision  int64     `json:"revision"`
	SHA256    string    `json:"sha256"`
	AppliedAt time.Time `json:"appliedAt"`
	Error     string    `json:"error,omitempty"`
}
