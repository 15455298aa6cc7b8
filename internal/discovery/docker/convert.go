package docker

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// SourceName is the name of this source in updates, problems and metrics.
const SourceName = "docker"

// FromInspect turns an inspected container into a workload. ok is false for a container that
// cannot serve (not running, paused, restarting).
func FromInspect(c *container.InspectResponse, nodeAddress string) (w discovery.Workload, ok bool) {
	if c.ContainerJSONBase == nil || c.State == nil || !c.State.Running || c.State.Paused || c.State.Restarting {
		return w, false
	}
	w = discovery.Workload{
		ID:          c.ID,
		Name:        strings.TrimPrefix(c.Name, "/"),
		Source:      SourceName,
		NodeAddress: nodeAddress,
	}
	if c.State.Health != nil {
		w.Health = string(c.State.Health.Status)
	}
	if c.HostConfig != nil {
		w.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	w.Created, _ = time.Parse(time.RFC3339Nano, c.Created)
	if c.Config != nil {
		w.Service = serviceOf(c.Config.Labels, c.Config.Image)
		w.Labels = c.Config.Labels
		w.Env = discovery.ParseEnv(c.Config.Env)
		for p := range c.Config.ExposedPorts {
			w.Ports = appendPort(w.Ports, p.Proto(), p.Int(), "", "")
		}
	}
	if ns := c.NetworkSettings; ns != nil {
		for p, bindings := range ns.Ports {
			for _, b := range bindings {
				w.Ports = appendPort(w.Ports, p.Proto(), p.Int(), b.HostIP, b.HostPort)
			}
		}
		w.Networks = make([]discovery.Network, 0, len(ns.Networks))
		for name, ep := range ns.Networks {
			if ep != nil {
				w.Networks = append(w.Networks, discovery.Network{Name: name, ID: ep.NetworkID, IP: ep.IPAddress, IPv6: ep.GlobalIPv6Address})
			}
		}
		slices.SortFunc(w.Networks, func(a, b discovery.Network) int { return cmp.Compare(a.Name, b.Name) })
	}
	w.Ports = normalizePorts(w.Ports)
	return w, true
}

func appendPort(ps []discovery.Port, proto string, port int, hostIP, hostPort string) []discovery.Port {
	hp, _ := strconv.Atoi(hostPort)
	return append(ps, discovery.Port{Port: port, Proto: proto, HostIP: hostIP, HostPort: hp})
}

// normalizePorts sorts ports and drops an unbound entry for a port that also has bindings.
func normalizePorts(ps []discovery.Port) []discovery.Port {
	slices.SortFunc(ps, func(a, b discovery.Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	ps = slices.Compact(ps)
	// One pass over each (port, proto) group, which the sort made adjacent: a container can expose
	// every port (EXPOSE 1-65535), and a search per entry took seconds of the event loop.
	out := ps[:0]
	for i := 0; i < len(ps); {
		j, bound := i, false
		for ; j < len(ps) && ps[j].Port == ps[i].Port && ps[j].Proto == ps[i].Proto; j++ {
			bound = bound || ps[j].HostPort != 0
		}
		for _, p := range ps[i:j] {
			if p.HostPort != 0 || !bound {
				out = append(out, p)
			}
		}
		i = j
	}
	return out
}

// serviceOf names the group a container is a replica of: its Swarm service, its Compose service,
// else its image.
func serviceOf(labels map[string]string, image string) string {
	if s := labels["com.docker.swarm.service.name"]; s != "" {
		return s
	}
	if p, s := labels["com.docker.compose.project"], labels["com.docker.compose.service"]; s != "" {
		return p + "_" + s
	}
	return image
}
