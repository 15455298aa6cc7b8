// Package registry is vhost-gen's etcd registry: the key layout, the encoding of published
// workloads and of the publishers' and gateways' records, and the connection settings. The
// publisher writes it, the etcd source and `vhost-gen gateways` read it; both sides share this
// package so that they cannot disagree on a key or a field.
//
//	PREFIX/v1/publishers/<publisher-id>                {hostname, version, started}   lease(publisher)
//	PREFIX/v1/workloads/<publisher-id>/<workload-id>   Record (a versioned Workload)   lease(publisher)
//	PREFIX/v1/gateways/<gateway-id>                   GatewayRecord                  lease(gateway)
package registry

import (
	"fmt"
	"path"
	"strings"
)

// DefaultPrefix is --etcd-prefix's default.
const DefaultPrefix = "/vhost-gen"

// Layout builds and parses keys under one prefix.
type Layout struct {
	Prefix string // "/vhost-gen": absolute, no trailing slash
}

// NewLayout validates a prefix (--etcd-prefix).
func NewLayout(prefix string) (Layout, error) {
	clean := path.Clean(prefix)
	if !strings.HasPrefix(prefix, "/") || clean == "/" || len(clean) > 200 {
		return Layout{}, fmt.Errorf("--etcd-prefix %q: must be an absolute key path such as /vhost-gen", prefix)
	}
	for _, c := range clean {
		if c < 0x21 || c > 0x7e {
			return Layout{}, fmt.Errorf("--etcd-prefix %q: printable ASCII only, no spaces", prefix)
		}
	}
	return Layout{Prefix: clean}, nil
}

func (l Layout) v1() string { return l.Prefix + "/v1/" }

// Workloads is the prefix of every published workload.
func (l Layout) Workloads() string { return l.v1() + "workloads/" }

// PublisherWorkloads is the prefix of one publisher's workloads.
func (l Layout) PublisherWorkloads(pub string) string { return l.Workloads() + pub + "/" }

// WorkloadKey is one published workload's key.
func (l Layout) WorkloadKey(pub, id string) string { return l.PublisherWorkloads(pub) + id }

// Publishers is the prefix of the publishers' records.
func (l Layout) Publishers() string { return l.v1() + "publishers/" }

// Publisher is one publisher's record key.
func (l Layout) Publisher(pub string) string { return l.Publishers() + pub }

// Gateways is the prefix of the gateways' records.
func (l Layout) Gateways() string { return l.v1() + "gateways/" }

// Gateway is one gateway's record key.
func (l Layout) Gateway(id string) string { return l.Gateways() + id }

// ParseWorkloadKey splits a workload key into its publisher and workload IDs.
func (l Layout) ParseWorkloadKey(key string) (pub, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, l.Workloads())
	if !ok {
		return "", "", false
	}
	pub, id, ok = strings.Cut(rest, "/")
	if !ok || CheckID(pub) != nil || CheckID(id) != nil {
		return "", "", false
	}
	return pub, id, true
}

// CheckID validates a publisher, gateway or workload ID: one key segment, [A-Za-z0-9._:-], at
// most 128 characters, so that no ID can climb out of its place in the layout.
func CheckID(id string) error {
	if id == "" || len(id) > 128 || id == "." || id == ".." {
		return fmt.Errorf("ID %q: must be 1 to 128 characters", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return fmt.Errorf("ID %q: character %q not allowed (letters, digits, '.', '_', '-', ':')", id, c)
		}
	}
	return nil
}

// SafeID turns a host name or container name into an ID: characters CheckID refuses become '_'.
func SafeID(s string) string {
	b := []byte(s)
	if len(b) > 128 {
		b = b[:128]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			b[i] = '_'
		}
	}
	if s := string(b); s != "" && s != "." && s != ".." {
		return s
	}
	return "_"
}
