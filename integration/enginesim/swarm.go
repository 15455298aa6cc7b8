package enginesim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
)

// ServiceSpec describes a Swarm service (Options.Swarm).
type ServiceSpec struct {
	Name  string // required
	Image string // default "vhost-gen-echo:test"
	// Labels are the service's labels (docker service create --label), where Swarm users put
	// VIRTUAL_HOST; ContainerLabels (--container-label) and Env go to every task.
	Labels          map[string]string
	ContainerLabels map[string]string
	Env             []string
	// Replicas is the replicated service's task count; Global runs one task per node instead.
	Replicas int
	Global   bool
	// Networks are overlay networks, by name, created on first use.
	Networks []string
	// Ports are the endpoint's ports; a published one (Publish) without HostPort gets the next
	// port from 30000, as the engine assigns them. Mode "host" publishes on each task's node.
	Ports []Port
}

// service, task and node are the Swarm objects the manager holds.
type service struct {
	id, name         string
	seq              uint64
	spec             ServiceSpec // as created; Ports have their PublishedPort
	version          uint64
	created, updated time.Time
	vips             map[string]string // network name: virtual IP
	nextSlot         int
}

type task struct {
	id, serviceID, nodeID string
	seq                   uint64
	slot                  int
	state, desired        string // running, shutdown
	created, updated      time.Time
	container             string            // the local container's ID, or a made-up one on other nodes
	ips                   map[string]string // network name: address
	hostPorts             []Port            // host-mode ports, as published on the node
}

type node struct {
	id, hostname, addr string
	created, updated   time.Time
	version            uint64
}

// taskHistory is how many finished tasks a service keeps listed (desired state shutdown), as the
// engine's task history does.
const taskHistory = 5

func (w *world) addNode() *node {
	i := len(w.nodes)
	n := &node{id: w.swarmID("node"), hostname: fmt.Sprintf("%s-%d", w.opt.Hostname, i),
		addr: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1), created: w.now(), version: w.seq}
	if i == 0 {
		n.hostname = w.opt.Hostname
	}
	n.updated = n.created
	w.nodes = append(w.nodes, n)
	return n
}

func (w *world) findService(ref string) *service {
	if s := w.services[ref]; s != nil {
		return s
	}
	return w.services[w.svcNames[ref]]
}

// CreateService creates a service and runs its tasks: events service create and update, and the
// container events (create, connect, start) of the tasks on this node. It returns the service ID.
func (s *Sim) CreateService(spec ServiceSpec) (id string, err error) {
	err = s.mutate(func(w *world) ([]event, error) {
		if !w.opt.Swarm {
			return nil, fmt.Errorf("%w: not a swarm manager", ErrConflict)
		}
		if _, taken := w.svcNames[spec.Name]; taken || spec.Name == "" {
			return nil, fmt.Errorf("%w: service name %q is empty or in use", ErrConflict, spec.Name)
		}
		spec.Labels, spec.ContainerLabels = maps.Clone(spec.Labels), maps.Clone(spec.ContainerLabels)
		spec.Env, spec.Networks, spec.Ports = slices.Clone(spec.Env), slices.Clone(spec.Networks), slices.Clone(spec.Ports)
		if spec.Image == "" {
			spec.Image = "vhost-gen-echo:test"
		}
		svc := &service{id: w.swarmID("service"), name: spec.Name, created: w.now(), vips: map[string]string{}, nextSlot: 1}
		svc.seq, svc.version, svc.updated = w.seq, w.seq, svc.created
		for i, p := range spec.Ports {
			if p.Mode == "" {
				spec.Ports[i].Mode = "ingress"
			}
			if p.Publish && p.HostPort == 0 && spec.Ports[i].Mode == "ingress" {
				spec.Ports[i].HostPort = w.nextIngressPort
				w.nextIngressPort++
			}
		}
		svc.spec = spec
		for _, n := range svc.networks() {
			svc.vips[n] = w.network(n, "overlay").ip()
		}
		w.services[svc.id], w.svcNames[svc.name] = svc, svc.id
		id = svc.id
		evs := []event{svc.event("create"), svc.event("update")}
		return append(evs, w.converge(svc)...), nil
	})
	return id, err
}

// ScaleService sets a replicated service's replicas: event service update (with replicas.old
// and replicas.new, as the engine sends), then the local tasks' container events.
func (s *Sim) ScaleService(ref string, replicas int) error {
	return s.mutate(func(w *world) ([]event, error) {
		svc := w.findService(ref)
		if svc == nil {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, ref)
		}
		old := svc.spec.Replicas
		svc.spec.Replicas = replicas
		svc.version, svc.updated = w.bump(), w.now()
		evs := []event{svc.event("update", "replicas.new", strconv.Itoa(replicas), "replicas.old", strconv.Itoa(old))}
		return append(evs, w.converge(svc)...), nil
	})
}

// UpdateServiceLabels replaces a service's labels (docker service update --label-add/rm): event
// service update; the tasks stay as they are, as service labels do not reach them.
func (s *Sim) UpdateServiceLabels(ref string, labels map[string]string) error {
	return s.mutate(func(w *world) ([]event, error) {
		svc := w.findService(ref)
		if svc == nil {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, ref)
		}
		svc.spec.Labels = maps.Clone(labels)
		svc.version, svc.updated = w.bump(), w.now()
		return []event{svc.event("update")}, nil
	})
}

// RemoveService removes a service: event service remove, then its local tasks' containers stop
// and go (kill, die, disconnect, stop, destroy). Its tasks go from the task list.
func (s *Sim) RemoveService(ref string) error {
	return s.mutate(func(w *world) ([]event, error) {
		svc := w.findService(ref)
		if svc == nil {
			return nil, fmt.Errorf("%w: service %s", ErrNotFound, ref)
		}
		evs := []event{svc.event("remove")}
		for _, t := range w.serviceTasks(svc.id) {
			evs = append(evs, w.stopTask(t)...)
			delete(w.tasks, t.id)
		}
		delete(w.services, svc.id)
		delete(w.svcNames, svc.name)
		return evs, nil
	})
}

// SetNodeAddr changes a node's address (node index, 0 is this engine): event node update.
func (s *Sim) SetNodeAddr(index int, addr string) error {
	return s.mutate(func(w *world) ([]event, error) {
		if index < 0 || index >= len(w.nodes) {
			return nil, fmt.Errorf("%w: node %d", ErrNotFound, index)
		}
		n := w.nodes[index]
		n.addr, n.updated, n.version = addr, w.now(), w.bump()
		return []event{{typ: events.NodeEventType, action: "update", id: n.id, scope: "swarm",
			attrs: map[string]string{"name": n.hostname}}}, nil
	})
}

// Services returns the service IDs, oldest first.
func (s *Sim) Services() []string {
	var ids []string
	s.read(func(w *world) {
		svcs := slices.Collect(maps.Values(w.services))
		slices.SortFunc(svcs, func(a, b *service) int { return cmp.Compare(a.seq, b.seq) })
		for _, svc := range svcs {
			ids = append(ids, svc.id)
		}
	})
	return ids
}

func (svc *service) event(action string, extra ...string) event {
	attrs := map[string]string{"name": svc.name}
	for i := 0; i+1 < len(extra); i += 2 {
		attrs[extra[i]] = extra[i+1]
	}
	return event{typ: events.ServiceEventType, action: action, id: svc.id, attrs: attrs, scope: "swarm"}
}

// networks are the task's networks: ingress first when a port is published through it.
func (svc *service) networks() []string {
	var out []string
	if slices.ContainsFunc(svc.spec.Ports, func(p Port) bool { return p.Publish && p.Mode == "ingress" }) {
		out = append(out, "ingress")
	}
	return append(out, svc.spec.Networks...)
}

// serviceTasks are the service's tasks, oldest first.
func (w *world) serviceTasks(id string) []*task {
	var out []*task
	for _, t := range w.tasks {
		if t.serviceID == id {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// converge starts or stops tasks until the service runs as many as it should, and prunes the
// task history; it returns the local containers' events.
func (w *world) converge(svc *service) []event {
	var evs []event
	var live []*task
	for _, t := range w.serviceTasks(svc.id) {
		if t.desired == "running" {
			live = append(live, t)
		}
	}
	want := svc.spec.Replicas
	if svc.spec.Global {
		want = len(w.nodes)
	}
	for len(live) > want { // the highest slots go first
		t := live[len(live)-1]
		live = live[:len(live)-1]
		evs = append(evs, w.stopTask(t)...)
	}
	for i := len(live); i < want; i++ {
		slot, n := svc.nextSlot, w.nodes[(svc.nextSlot-1)%len(w.nodes)]
		if svc.spec.Global {
			slot, n = 0, w.nodes[i]
		} else {
			svc.nextSlot++
		}
		evs = append(evs, w.startTask(svc, slot, n)...)
	}
	var done []*task
	for _, t := range w.serviceTasks(svc.id) {
		if t.desired != "running" {
			done = append(done, t)
		}
	}
	for len(done) > taskHistory {
		delete(w.tasks, done[0].id)
		done = done[1:]
	}
	return evs
}

// startTask runs a task of svc on node n: on this engine as a local container (with its events),
// elsewhere with addresses alone.
func (w *world) startTask(svc *service, slot int, n *node) []event {
	t := &task{id: w.swarmID("task"), seq: w.seq, serviceID: svc.id, nodeID: n.id, slot: slot, state: "running",
		desired: "running", created: w.now(), ips: map[string]string{}}
	t.updated = t.created
	w.tasks[t.id] = t
	for _, p := range svc.spec.Ports {
		if p.Publish && p.Mode == "host" {
			if p.HostPort == 0 {
				p.HostPort = w.nextPort
				w.nextPort++
			}
			t.hostPorts = append(t.hostPorts, p)
		}
	}
	if n != w.nodes[0] {
		t.container = hashHex("remote/" + t.id)
		for _, name := range svc.networks() {
			t.ips[name] = w.network(name, "overlay").ip()
		}
		return nil
	}
	labels := maps.Clone(svc.spec.ContainerLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	name := t.name(svc)
	maps.Copy(labels, map[string]string{"com.docker.swarm.node.id": n.id, "com.docker.swarm.service.id": svc.id,
		"com.docker.swarm.service.name": svc.name, "com.docker.swarm.task": "", "com.docker.swarm.task.id": t.id,
		"com.docker.swarm.task.name": name})
	c, err := w.newContainer(ContainerSpec{Name: name, Image: svc.spec.Image, Labels: labels, Env: svc.spec.Env,
		Networks: svc.networks(), NetworkMode: "default"})
	if err != nil {
		panic(err) // task names are unique
	}
	t.container = c.id
	evs := append([]event{c.event("create")}, w.start(c)...)
	maps.Copy(t.ips, c.ips)
	return evs
}

// name is the task's container name: service.slot.taskid (service.nodeid.taskid when global).
func (t *task) name(svc *service) string {
	slot := strconv.Itoa(t.slot)
	if t.slot == 0 {
		slot = t.nodeID
	}
	return strings.Join([]string{svc.name, slot, t.id}, ".")
}

// stopTask shuts a task down; a local one's container stops and goes.
func (w *world) stopTask(t *task) []event {
	t.desired, t.state, t.updated = "shutdown", "shutdown", w.now()
	c := w.containers[t.container]
	if c == nil {
		return nil
	}
	var evs []event
	if c.running() {
		evs = append(evs, c.event("kill", "signal", "15"))
		evs = append(evs, w.exit(c, 0)...)
		evs = append(evs, c.event("stop"))
	}
	return append(evs, w.remove(c)...)
}
