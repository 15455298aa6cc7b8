// Package swarm reads workloads from a Docker Swarm manager: every running task of every service,
// addressed on its overlay networks or through its node's published ports. Swarm sends no task
// events, so tasks are polled: one service list and one task list per poll, whatever the number of
// tasks, with the node list cached; service, node and task-container events trigger a poll at once.
// A poll decodes only the services and tasks whose answer changed (cache.go): at 10,000 tasks, a
// poll that changed nothing reads the lists' bytes and converts nothing.
package swarm

import (
	"cmp"
	"net"
	"slices"
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// SourceName is the name of this source in updates, problems and metrics.
const SourceName = "swarm"

// FromTask turns a task of svc into a workload; ok is false for a task that is not running.
// nodes maps node IDs to their addresses.
func FromTask(t *swarm.Task, svc *swarm.Service, nodes map[string]string) (w discovery.Workload, ok bool) {
	if t.Status.State != swarm.TaskStateRunning || t.DesiredState != swarm.TaskStateRunning {
		return w, false
	}
	slot := strconv.Itoa(t.Slot)
	if t.Slot == 0 { // a global service's task: Docker names its container after the node
		slot = t.NodeID
	}
	w = discovery.Workload{
		ID:            t.ID,
		Name:          svc.Spec.Name + "." + slot + "." + t.ID,
		Source:        SourceName,
		ServiceLabels: svc.Spec.Labels,
		NodeAddress:   nodes[t.NodeID],
		Service:       svc.Spec.Name,
		Created:       svc.CreatedAt,
	}
	if cs := t.Spec.ContainerSpec; cs != nil {
		w.Labels = cs.Labels
		w.Env = discovery.ParseEnv(cs.Env)
	}
	for _, a := range t.NetworksAttachments {
		n := discovery.Network{Name: a.Network.Spec.Name, ID: a.Network.ID}
		for _, addr := range a.Addresses {
			ip, _, err := net.ParseCIDR(addr)
			switch {
			case err != nil:
			case ip.To4() != nil && n.IP == "":
				n.IP = ip.String()
			case ip.To4() == nil && n.IPv6 == "":
				n.IPv6 = ip.String()
			}
		}
		w.Networks = append(w.Networks, n)
	}
	slices.SortFunc(w.Networks, func(a, b discovery.Network) int { return cmp.Compare(a.Name, b.Name) })
	// Host-mode ports are published on the task's own node; ingress-mode ports on every node
	// (the routing mesh), so the task's node serves them too.
	for _, p := range t.Status.PortStatus.Ports {
		w.Ports = appendPort(w.Ports, p)
	}
	for _, p := range svc.Endpoint.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeIngress {
			w.Ports = appendPort(w.Ports, p)
		}
	}
	slices.SortFunc(w.Ports, func(a, b discovery.Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.HostPort, b.HostPort))
	})
	w.Ports = slices.Compact(w.Ports)
	return w, true
}

func appendPort(ps []discovery.Port, p swarm.PortConfig) []discovery.Port {
	if p.PublishedPort == 0 {
		return ps
	}
	return append(ps, discovery.Port{Port: int(p.TargetPort), Proto: string(p.Protocol), HostPort: int(p.PublishedPort)})
}

// nodeAddress is where a node's published ports answer: its status address, else its manager
// address.
func nodeAddress(n *swarm.Node) string {
	if a := n.Status.Addr; a != "" && a != "0.0.0.0" {
		return a
	}
	if n.ManagerStatus != nil {
		if host, _, err := net.SplitHostPort(n.ManagerStatus.Addr); err == nil {
			return host
		}
	}
	return ""
}
