package enginesim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"golang.org/x/sys/unix"
)

// ContainerSpec describes a container to add or start. Only Name is needed in practice; the rest
// defaults to an echo-like web server on the bridge network.
type ContainerSpec struct {
	Name   string            // without the leading slash; default "sim-<n>"
	Image  string            // default "vhost-gen-echo:test"
	Labels map[string]string // VIRTUAL_HOST and friends may be labels...
	Env    []string          // ...or environment: "VIRTUAL_HOST=a.example"
	// Ports are the exposed ports (EXPOSE or --expose), published when Publish is set.
	Ports []Port
	// Networks to attach to, by name; user-defined bridges are created on first use. Default
	// "bridge". NetworkMode "host" or "none" ignores them.
	Networks []string
	// NetworkMode is HostConfig.NetworkMode; default the first network's name ("default" for the
	// bridge, as 20.10 says).
	NetworkMode string
	// Health is the initial health: "" (no healthcheck), "starting", "healthy" or "unhealthy".
	Health string
	// StopSignal is Config.StopSignal, "" for the default (SIGTERM).
	StopSignal string
}

// Port is a container port; for Swarm services, a port of the service's endpoint.
type Port struct {
	Port  int
	Proto string // "tcp" (default) or "udp"
	// Publish publishes the port on the host: at HostPort, or, when 0, at the next free port.
	Publish  bool
	HostIP   string // containers only; default "0.0.0.0"
	HostPort int
	// Mode is a Swarm port's publish mode: "ingress" (default) or "host".
	Mode string
}

func (p Port) proto() string {
	if p.Proto == "" {
		return "tcp"
	}
	return p.Proto
}

// ctr is one container.
type ctr struct {
	seq                   uint64
	id, name, image       string
	labels                map[string]string
	env                   []string
	ports                 []Port // HostPort filled in for published ports
	networks              []string
	ips                   map[string]string // per network, kept across restarts
	networkMode           string
	health, stopSignal    string
	state                 string // created, running, paused, exited
	exitCode, pid         int
	created, started, end time.Time
	restarts              int
}

func (c *ctr) running() bool { return c.state == "running" || c.state == "paused" }

// DefaultContainer is the i-th container of a scale test: "app-00042", serving
// app-00042.example on port 80 (VIRTUAL_HOST and VIRTUAL_PORT in its environment), on the network
// "frontend".
func DefaultContainer(i int) ContainerSpec {
	name := fmt.Sprintf("app-%05d", i)
	return ContainerSpec{Name: name, Env: []string{"VIRTUAL_HOST=" + name + ".example", "VIRTUAL_PORT=80"},
		Ports: []Port{{Port: 80}}, Networks: []string{"frontend"}}
}

// newContainer builds a created (not started) container from spec.
func (w *world) newContainer(spec ContainerSpec) (*ctr, error) {
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("sim-%d", w.seq+1)
	}
	spec.Name = strings.TrimPrefix(spec.Name, "/")
	if _, taken := w.names[spec.Name]; taken {
		return nil, fmt.Errorf("%w: the container name %q is already in use", ErrConflict, "/"+spec.Name)
	}
	switch spec.Health {
	case "", "starting", "healthy", "unhealthy":
	default:
		return nil, fmt.Errorf("health %q: must be starting, healthy or unhealthy", spec.Health)
	}
	c := &ctr{id: w.hexID("container"), seq: w.seq, name: spec.Name, image: spec.Image, labels: maps.Clone(spec.Labels),
		env: slices.Clone(spec.Env), networkMode: spec.NetworkMode, health: spec.Health, stopSignal: spec.StopSignal,
		state: "created", created: w.now(), ips: map[string]string{}}
	if c.image == "" {
		c.image = "vhost-gen-echo:test"
	}
	if c.labels == nil {
		c.labels = map[string]string{}
	}
	c.networks = slices.Clone(spec.Networks)
	switch c.networkMode {
	case "host", "none":
		c.networks = []string{c.networkMode}
	case "":
		if len(c.networks) == 0 {
			c.networks = []string{"bridge"}
		}
		c.networkMode = c.networks[0]
		if c.networkMode == "bridge" {
			c.networkMode = "default"
		}
	}
	if len(c.networks) == 0 {
		c.networks = []string{"bridge"}
	}
	for _, n := range c.networks {
		w.network(n, "bridge")
	}
	for _, p := range spec.Ports {
		if p.Publish && p.HostPort == 0 {
			p.HostPort = w.nextPort
			w.nextPort++
		}
		if p.Publish && p.HostIP == "" {
			p.HostIP = "0.0.0.0"
		}
		c.ports = append(c.ports, p)
	}
	w.containers[c.id] = c
	w.names[c.name] = c.id
	return c, nil
}

// attrs are a container event's attributes: its labels, image and name, and extra pairs.
func (c *ctr) attrs(extra ...string) map[string]string {
	a := make(map[string]string, len(c.labels)+2+len(extra)/2)
	maps.Copy(a, c.labels)
	a["image"], a["name"] = c.image, c.name
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = extra[i+1]
	}
	return a
}

func (c *ctr) event(action string, extra ...string) event {
	return event{typ: events.ContainerEventType, action: action, id: c.id, attrs: c.attrs(extra...)}
}

// netEvents are the network connect or disconnect events of the container's networks.
func (w *world) netEvents(c *ctr, action string) []event {
	var out []event
	for _, name := range c.networks {
		if name == "none" {
			continue
		}
		n := w.networks[w.netNames[name]]
		out = append(out, event{typ: events.NetworkEventType, action: action, id: n.id,
			attrs: map[string]string{"container": c.id, "name": n.name, "type": n.driver}})
	}
	return out
}

// start starts a created or exited container: connect events, then start.
func (w *world) start(c *ctr) []event {
	for _, name := range c.networks {
		if _, ok := c.ips[name]; !ok {
			c.ips[name] = w.networks[w.netNames[name]].ip()
		}
	}
	c.state, c.started, c.exitCode = "running", w.now(), 0
	c.pid = 1000 + int(c.seq%30000)
	if c.health != "" && !c.end.IsZero() {
		c.health = "starting" // a restarted container's healthcheck starts over
	}
	return append(w.netEvents(c, "connect"), c.event("start"))
}

// exit ends a running container's process: die, then disconnect events.
func (w *world) exit(c *ctr, code int) []event {
	c.state, c.exitCode, c.end, c.pid = "exited", code, w.now(), 0
	return append([]event{c.event("die", "exitCode", strconv.Itoa(code))}, w.netEvents(c, "disconnect")...)
}

func (w *world) remove(c *ctr) []event {
	delete(w.containers, c.id)
	delete(w.names, c.name)
	return []event{c.event("destroy")}
}

// findContainer finds a container by ID, name or unique ID prefix, as the engine does.
func (w *world) findContainer(ref string) *ctr {
	if c := w.containers[ref]; c != nil {
		return c
	}
	if id, ok := w.names[strings.TrimPrefix(ref, "/")]; ok {
		return w.containers[id]
	}
	var found *ctr
	for id, c := range w.containers {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil // ambiguous
			}
			found = c
		}
	}
	return found
}

// running finds a running container, or says why not.
// existingContainer finds a container by ID, name or ID prefix, or says it is not there as the
// engine does.
func (w *world) existingContainer(ref string) (*ctr, error) {
	if c := w.findContainer(ref); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%w: no such container: %s", ErrNotFound, ref)
}

func (w *world) runningContainer(ref string) (*ctr, error) {
	c, err := w.existingContainer(ref)
	if err != nil {
		return nil, err
	}
	if !c.running() {
		return nil, fmt.Errorf("%w: container %s is not running", ErrConflict, ref)
	}
	return c, nil
}

// signalNumber turns a signal name or number into its number ("TERM", "SIGTERM", "15": 15); 0
// for none or an unknown one.
func signalNumber(sig string) int {
	if n, err := strconv.Atoi(sig); err == nil {
		return n
	}
	if sig == "" {
		return 0
	}
	return int(unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(sig), "SIG")))
}
