// Package discovery holds what every source reports: the Workload (one routable thing) and the
// Source interface that the Docker, Swarm and etcd readers implement.
package discovery

import (
	"cmp"
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Health values of a workload; empty means the workload has no healthcheck.
const (
	HealthNone      = ""
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Workload is one routable thing: a container, a Swarm task or an etcd entry.
// A Workload is immutable once handed on: sources build a new one for every change.
type Workload struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Source string `json:"source"`
	// ServiceLabels are a Swarm service's labels; they win over Labels, which win over Env.
	ServiceLabels map[string]string `json:"serviceLabels,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	// Networks the workload is attached to, sorted by name.
	Networks []Network `json:"networks,omitempty"`
	// Ports exposed by the workload, with their host bindings, sorted by (port, proto).
	Ports       []Port `json:"ports,omitempty"`
	NetworkMode string `json:"networkMode,omitempty"`
	// NodeAddress is the address of the node the workload runs on, for published ports and host
	// networking.
	NodeAddress string `json:"nodeAddress,omitempty"`
	Health      string `json:"health,omitempty"`
	// Service groups the workloads that are replicas of one another: a Swarm service, a Compose
	// project's service, else the image. TCP services use it to tell replicas from rivals.
	Service string `json:"service,omitempty"`
	// Created is when the workload (for a Swarm task: its service) was created; the earlier of two
	// rivals for one TCP port keeps it.
	Created time.Time `json:"created,omitzero"`
	// Address, when set ("ip:port"), is where the source says the workload answers (etcd's flat
	// layouts): address selection is skipped.
	Address string `json:"address,omitempty"`
	// Publisher is the etcd publisher that wrote the workload (etcd source only).
	Publisher string `json:"publisher,omitempty"`
	// Problem, when set, is why the source could not read a routable workload (a malformed etcd
	// value): the workload is not routed, and this is its problem.
	Problem string `json:"problem,omitempty"`
}

// Network is one attachment of a workload.
type Network struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	IP   string `json:"ip"`
	// IPv6 is the workload's global IPv6 address on a dual-stack or IPv6 network.
	IPv6 string `json:"ipv6,omitempty"`
}

// Port is a container port and, when published, where the host publishes it.
type Port struct {
	Port     int    `json:"port"`
	Proto    string `json:"proto"`
	HostIP   string `json:"hostIP,omitempty"`
	HostPort int    `json:"hostPort,omitempty"`
}

// Origin says where a setting came from, for messages that tell a user what to fix.
type Origin string

// The places a setting can come from, in the order they win.
const (
	FromServiceLabel Origin = "service label"
	FromLabel        Origin = "label"
	FromEnv          Origin = "env"
)

// Setting returns the named setting: a service label wins over a label, which wins over env.
func (w *Workload) Setting(name string) (value string, from Origin, ok bool) {
	if v, ok := w.ServiceLabels[name]; ok {
		return v, FromServiceLabel, true
	}
	if v, ok := w.Labels[name]; ok {
		return v, FromLabel, true
	}
	if v, ok := w.Env[name]; ok {
		return v, FromEnv, true
	}
	return "", "", false
}

// Network returns the attachment to the named network.
func (w *Workload) Network(name string) (Network, bool) {
	for _, n := range w.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

// Equal reports whether two workloads would route the same; it lets the inventory ignore
// events that change nothing (a container restarted into the same state).
func (w *Workload) Equal(o *Workload) bool {
	return w.ID == o.ID && w.Name == o.Name && w.Source == o.Source &&
		w.NetworkMode == o.NetworkMode && w.NodeAddress == o.NodeAddress && w.Health == o.Health &&
		w.Service == o.Service && w.Created.Equal(o.Created) &&
		w.Address == o.Address && w.Publisher == o.Publisher && w.Problem == o.Problem &&
		sameMap(w.ServiceLabels, o.ServiceLabels) && sameMap(w.Labels, o.Labels) &&
		sameMap(w.Env, o.Env) && sameSlice(w.Networks, o.Networks) && sameSlice(w.Ports, o.Ports)
}

// sameMap is maps.Equal, at once for the same map: a workload that did not change shares its
// maps with its last copy (routing's SettingsCache compares 10,000 of them per change).
func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() || maps.Equal(a, b)
}

// sameSlice is slices.Equal, at once for the same array.
func sameSlice[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || slices.Equal(a, b)
}

// Update is what a source sends: either its whole current set (Full), or upserts and removals.
type Update struct {
	Source string
	Full   bool
	// Workloads are never modified once sent: a source may send the same slice again when
	// nothing changed (the inventory then skips its comparison).
	Workloads []Workload
	Removed   []string // IDs
	// Revision is the source's revision of the state after this update (etcd's store revision),
	// or 0 for sources that have none.
	Revision int64
}

// Source is a place workloads come from.
type Source interface {
	// Name is the source's name in updates, logs and metrics ("docker", "swarm", "etcd").
	Name() string
	// List reads the whole current set once.
	List(ctx context.Context) ([]Workload, error)
	// Watch sends a Full update on every (re)connect and then changes, until ctx ends. While the
	// source is unreachable it sends nothing, so the last known set stays in force.
	Watch(ctx context.Context, out chan<- Update) error
}

// ParseEnv turns a container's KEY=VALUE environment into a map (nil when empty).
func ParseEnv(env []string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// Compare is the order of snapshots and tables: by source, name and ID.
func Compare(a, b *Workload) int {
	return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
}
