package enginesim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// notManager is the engine's refusal outside a Swarm (vhost-gen's swarm source recognises it).
const notManager = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`

// swarmRead answers a Swarm read: 503 outside a Swarm, 400 on bad filters, else f's answer; f
// runs under the read lock.
func (s *Sim) swarmRead(w http.ResponseWriter, r *http.Request, f func(wd *world, args filters.Args) (any, bool)) {
	if !s.opt.Swarm {
		writeError(w, http.StatusServiceUnavailable, notManager)
		return
	}
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var out any
	found := true
	s.read(func(wd *world) { out, found = f(wd, args) })
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// serviceList answers GET /services; filters id, name (prefixes), label, mode.
func (s *Sim) serviceList(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, f filters.Args) (any, bool) {
		out := []swarm.Service{}
		for _, svc := range wd.services {
			mode := "replicated"
			if svc.spec.Global {
				mode = "global"
			}
			if f.FuzzyMatch("id", svc.id) && f.FuzzyMatch("name", svc.name) && f.MatchKVList("label", svc.spec.Labels) && f.ExactMatch("mode", mode) {
				out = append(out, wd.serviceJSON(svc))
			}
		}
		slices.SortFunc(out, func(a, b swarm.Service) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
		return out, true
	})
}

func (s *Sim) serviceInspect(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, _ filters.Args) (any, bool) {
		if svc := wd.findService(r.PathValue("id")); svc != nil {
			return wd.serviceJSON(svc), true
		}
		return nil, false
	})
}

// taskList answers GET /tasks, oldest first; filters id, name, service (ID or name), node (ID
// or hostname), desired-state.
func (s *Sim) taskList(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, f filters.Args) (any, bool) {
		var ts []*task
		for _, t := range wd.tasks {
			svc, n := wd.services[t.serviceID], wd.node(t.nodeID)
			if f.FuzzyMatch("id", t.id) && f.FuzzyMatch("name", t.name(svc)) && f.ExactMatch("desired-state", t.desired) &&
				(f.ExactMatch("service", svc.id) || f.ExactMatch("service", svc.name)) &&
				(f.ExactMatch("node", n.id) || f.ExactMatch("node", n.hostname)) {
				ts = append(ts, t)
			}
		}
		slices.SortFunc(ts, func(a, b *task) int { return cmp.Compare(a.seq, b.seq) })
		out := make([]swarm.Task, len(ts))
		for i, t := range ts {
			out[i] = wd.taskJSON(t)
		}
		return out, true
	})
}

func (s *Sim) taskInspect(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, _ filters.Args) (any, bool) {
		if t := wd.tasks[r.PathValue("id")]; t != nil {
			return wd.taskJSON(t), true
		}
		return nil, false
	})
}

// nodeList answers GET /nodes; filters id, name, role.
func (s *Sim) nodeList(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, f filters.Args) (any, bool) {
		out := []swarm.Node{}
		for i, n := range wd.nodes {
			role := "worker"
			if i == 0 {
				role = "manager"
			}
			if f.FuzzyMatch("id", n.id) && f.ExactMatch("name", n.hostname) && f.ExactMatch("role", role) {
				out = append(out, wd.nodeJSON(i))
			}
		}
		return out, true
	})
}

func (s *Sim) nodeInspect(w http.ResponseWriter, r *http.Request) {
	s.swarmRead(w, r, func(wd *world, _ filters.Args) (any, bool) {
		for i, n := range wd.nodes {
			if n.id == r.PathValue("id") || n.hostname == r.PathValue("id") {
				return wd.nodeJSON(i), true
			}
		}
		return nil, false
	})
}

func (wd *world) node(id string) *node {
	for _, n := range wd.nodes {
		if n.id == id {
			return n
		}
	}
	return &node{}
}

// taskSpec is the service's task template, as both the service and its tasks show it.
func (wd *world) taskSpec(svc *service) swarm.TaskSpec {
	ts := swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: svc.spec.Image, Labels: svc.spec.ContainerLabels,
		Env: svc.spec.Env, Isolation: "default", DNSConfig: &swarm.DNSConfig{}},
		Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{}, Reservations: &swarm.Resources{}},
		Placement: &swarm.Placement{}}
	for _, name := range svc.spec.Networks {
		ts.Networks = append(ts.Networks, swarm.NetworkAttachmentConfig{Target: wd.netNames[name]})
	}
	return ts
}

// endpointPorts are the service's ports; resolved adds the assigned published ports.
func (svc *service) endpointPorts(resolved bool) []swarm.PortConfig {
	var out []swarm.PortConfig
	for _, p := range svc.spec.Ports {
		if !p.Publish {
			continue
		}
		pc := swarm.PortConfig{Protocol: swarm.PortConfigProtocol(p.proto()), TargetPort: uint32(p.Port),
			PublishMode: swarm.PortConfigPublishMode(p.Mode)}
		if resolved && p.Mode == "ingress" {
			pc.PublishedPort = uint32(p.HostPort)
		}
		out = append(out, pc)
	}
	return out
}

func (wd *world) serviceJSON(svc *service) swarm.Service {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: svc.name, Labels: svc.spec.Labels},
		TaskTemplate: wd.taskSpec(svc), EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: svc.endpointPorts(false)}}
	spec.TaskTemplate.Runtime = swarm.RuntimeContainer
	if svc.spec.Global {
		spec.Mode.Global = &swarm.GlobalService{}
	} else {
		replicas := uint64(svc.spec.Replicas)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	}
	out := swarm.Service{ID: svc.id, Meta: swarm.Meta{Version: swarm.Version{Index: svc.version}, CreatedAt: svc.created, UpdatedAt: svc.updated},
		Spec: spec, Endpoint: swarm.Endpoint{Spec: *spec.EndpointSpec, Ports: svc.endpointPorts(true)}}
	for _, name := range svc.networks() {
		n := wd.networks[wd.netNames[name]]
		out.Endpoint.VirtualIPs = append(out.Endpoint.VirtualIPs, swarm.EndpointVirtualIP{NetworkID: n.id, Addr: prefixed(svc.vips[name], n)})
	}
	return out
}

func (wd *world) taskJSON(t *task) swarm.Task {
	svc := wd.services[t.serviceID]
	out := swarm.Task{ID: t.id, Meta: swarm.Meta{Version: swarm.Version{Index: t.seq}, CreatedAt: t.created, UpdatedAt: t.updated},
		Annotations: swarm.Annotations{Labels: map[string]string{}}, Spec: wd.taskSpec(svc), ServiceID: t.serviceID, Slot: t.slot, NodeID: t.nodeID,
		DesiredState: swarm.TaskState(t.desired),
		Status: swarm.TaskStatus{Timestamp: t.updated, State: swarm.TaskState(t.state), Message: "started",
			ContainerStatus: &swarm.ContainerStatus{ContainerID: t.container}, PortStatus: swarm.PortStatus{}}}
	if t.state == "running" {
		out.Status.ContainerStatus.PID = 1000 + int(t.seq%30000)
	} else {
		out.Status.Message = "shutdown"
	}
	for _, p := range t.hostPorts {
		out.Status.PortStatus.Ports = append(out.Status.PortStatus.Ports, swarm.PortConfig{Protocol: swarm.PortConfigProtocol(p.proto()),
			TargetPort: uint32(p.Port), PublishedPort: uint32(p.HostPort), PublishMode: swarm.PortConfigPublishModeHost})
	}
	if t.state != "running" {
		return out // a finished task has let its addresses go
	}
	for _, name := range svc.networks() {
		n := wd.networks[wd.netNames[name]]
		sn := swarm.Network{ID: n.id, Meta: swarm.Meta{Version: swarm.Version{Index: 1}, CreatedAt: n.created, UpdatedAt: n.created},
			Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: n.name, Labels: n.labels}, Attachable: n.attachable, Ingress: n.ingress,
				DriverConfiguration: &swarm.Driver{Name: "overlay"}, IPAMOptions: &swarm.IPAMOptions{}, Scope: "swarm"},
			DriverState: swarm.Driver{Name: "overlay", Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4096"}},
			IPAMOptions: &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"},
				Configs: []swarm.IPAMConfig{{Subnet: n.subnet.String(), Gateway: n.gateway.String()}}}}
		out.NetworksAttachments = append(out.NetworksAttachments, swarm.NetworkAttachment{Network: sn, Addresses: []string{prefixed(t.ips[name], n)}})
	}
	return out
}

func (wd *world) nodeJSON(i int) swarm.Node {
	n := wd.nodes[i]
	out := swarm.Node{ID: n.id, Meta: swarm.Meta{Version: swarm.Version{Index: n.version}, CreatedAt: n.created, UpdatedAt: n.updated},
		Spec: swarm.NodeSpec{Annotations: swarm.Annotations{Labels: map[string]string{}}, Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive},
		Description: swarm.NodeDescription{Hostname: n.hostname, Platform: swarm.Platform{Architecture: "x86_64", OS: "linux"},
			Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 8 << 30}, Engine: swarm.EngineDescription{EngineVersion: engineVersion}},
		Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: n.addr}}
	if i == 0 {
		out.Spec.Role = swarm.NodeRoleManager
		out.ManagerStatus = &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: n.addr + ":2377"}
	}
	return out
}
