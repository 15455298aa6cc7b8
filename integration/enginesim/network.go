package enginesim

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// netw is one network. Every network gets a /16, so that 10,000 workloads fit on one.
type netw struct {
	id, name, driver, scope string
	internal, attachable    bool
	ingress                 bool
	labels                  map[string]string
	created                 time.Time
	subnet                  netip.Prefix // invalid for host and none
	gateway                 netip.Addr
	next                    netip.Addr // the next address to hand out
}

// ip hands out the network's next address ("" on host and none).
func (n *netw) ip() string {
	if !n.subnet.IsValid() {
		return ""
	}
	a := n.next
	n.next = a.Next()
	return a.String()
}

func (n *netw) hasIPs() bool { return n.subnet.IsValid() }

// newNetwork adds a network; IDs are 64 hex digits for local networks, 25 characters for Swarm's.
func (w *world) newNetwork(name, driver string, subnet string) *netw {
	n := &netw{name: name, driver: driver, scope: "local", created: w.now(), labels: map[string]string{}}
	if driver == "overlay" {
		n.scope, n.id, n.attachable = "swarm", w.swarmID("network"), true
	} else {
		n.id = w.hexID("network")
	}
	if subnet != "" {
		n.subnet = netip.MustParsePrefix(subnet)
		n.gateway = n.subnet.Addr().Next()
		n.next = n.gateway.Next()
	}
	w.networks[n.id] = n
	w.netNames[name] = n.id
	return n
}

// network returns the network with the name, creating a user-defined one (a bridge, or an
// overlay for Swarm services) on first use.
func (w *world) network(name, driver string) *netw {
	if id, ok := w.netNames[name]; ok {
		return w.networks[id]
	}
	w.userNets++
	k := w.userNets
	subnet := fmt.Sprintf("172.%d.0.0/16", 17+k) // 172.18 and up, as the engine picks (172.31 is Swarm's gwbridge)
	if driver == "overlay" || k > 13 {
		subnet = fmt.Sprintf("10.%d.0.0/16", k%200+10)
	}
	return w.newNetwork(name, driver, subnet)
}

// findNetwork finds a network by ID, name or unique ID prefix.
func (w *world) findNetwork(ref string) *netw {
	if n := w.networks[ref]; n != nil {
		return n
	}
	if id, ok := w.netNames[ref]; ok {
		return w.networks[id]
	}
	var found *netw
	for id, n := range w.networks {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil
			}
			found = n
		}
	}
	return found
}

// AddNetwork creates a user-defined bridge network (internal: no route out) without an event;
// containers' networks are created on first use anyway, this is for internal ones.
func (s *Sim) AddNetwork(name string, internal bool) (id string) {
	s.mutate(func(w *world) ([]event, error) {
		n := w.network(name, "bridge")
		n.internal = internal
		id = n.id
		return nil, nil
	})
	return id
}

// inspect is the network as /networks answers; members adds the Containers map (inspect only:
// the list leaves it empty, as the engine does).
func (w *world) inspectNetwork(n *netw, members bool) network.Inspect {
	out := network.Inspect{Name: n.name, ID: n.id, Created: n.created, Scope: n.scope, Driver: n.driver,
		EnableIPv4: true, Internal: n.internal, Attachable: n.attachable, Ingress: n.ingress,
		IPAM:       network.IPAM{Driver: "default", Options: map[string]string{}, Config: []network.IPAMConfig{}},
		Containers: map[string]network.EndpointResource{}, Options: map[string]string{}, Labels: n.labels}
	if n.hasIPs() {
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: n.subnet.String(), Gateway: n.gateway.String()})
	}
	if members {
		for _, c := range w.containers {
			if ip, ok := c.ips[n.name]; ok && c.running() {
				out.Containers[c.id] = network.EndpointResource{Name: c.name, EndpointID: hashHex(c.id + "/" + n.id),
					MacAddress: mac(ip), IPv4Address: prefixed(ip, n)}
			}
		}
	}
	return out
}

// prefixed is "ip/bits" for a network's address, "" for none.
func prefixed(ip string, n *netw) string {
	if ip == "" {
		return ""
	}
	return fmt.Sprintf("%s/%d", ip, n.subnet.Bits())
}

// networkList answers GET /networks, with the engine's filters: id, name (substring), driver,
// label, scope, type (builtin or custom).
func (s *Sim) networkList(w http.ResponseWriter, r *http.Request) {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var out []network.Inspect
	s.read(func(wd *world) {
		for _, n := range wd.networks {
			builtin := n.name == "bridge" || n.name == "host" || n.name == "none"
			kind := "custom"
			if builtin {
				kind = "builtin"
			}
			if !f.FuzzyMatch("id", n.id) || !f.Match("name", n.name) || !f.ExactMatch("driver", n.driver) ||
				!f.MatchKVList("label", n.labels) || !f.ExactMatch("scope", n.scope) || !f.ExactMatch("type", kind) {
				continue
			}
			out = append(out, wd.inspectNetwork(n, false))
		}
	})
	slices.SortFunc(out, func(a, b network.Inspect) int { return strings.Compare(a.Name, b.Name) })
	if out == nil {
		out = []network.Inspect{}
	}
	writeJSON(w, http.StatusOK, out)
}

// networkInspect answers GET /networks/{id}.
func (s *Sim) networkInspect(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	var out network.Inspect
	found := false
	s.read(func(wd *world) {
		if n := wd.findNetwork(ref); n != nil {
			out, found = wd.inspectNetwork(n, true), true
		}
	})
	if !found {
		writeError(w, http.StatusNotFound, "network "+ref+" not found")
		return
	}
	writeJSON(w, http.StatusOK, out)
}
