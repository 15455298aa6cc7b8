package routing

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// tcpClaim is one workload asking for a TCP port.
type tcpClaim struct {
	w      *discovery.Workload
	server Server
}

// assembleTCP makes one TCP service per port. Replicas (one Service) share the port; of two rival
// services the one created first keeps it, so a newcomer can never take a port from a running
// service, and the later one gets a problem.
func (b *builder) assembleTCP() ([]TCPService, []Problem) {
	claims := b.tcp
	services := []TCPService{}
	var problems []Problem
	for _, port := range slices.Sorted(maps.Keys(claims)) {
		cs := claims[port]
		// A workload without a service is a service of its own.
		service := func(c tcpClaim) string { return cmp.Or(c.w.Service, "workload "+c.w.ID) }
		first := map[string]tcpClaim{} // each service's earliest workload
		for _, c := range cs {
			if f, ok := first[service(c)]; !ok || compareClaims(c, f) < 0 {
				first[service(c)] = c
			}
		}
		var owner tcpClaim
		for i, svc := range slices.Sorted(maps.Keys(first)) {
			if c := first[svc]; i == 0 || compareClaims(c, owner) < 0 {
				owner = c
			}
		}
		// "tcp:PORT": a ':' never comes out of backendName, so no site can take the name.
		ts := TCPService{Port: port, Service: owner.w.Service, Backend: Backend{Name: "tcp:" + strconv.Itoa(port), Proto: "tcp"}}
		for _, c := range cs {
			if service(c) == service(owner) {
				ts.Backend.Servers = append(ts.Backend.Servers, c.server)
				continue
			}
			value, from, _ := c.w.Setting(SettingTCPPort)
			reason := fmt.Sprintf("port %d is already served by %s, which came first; left out of the TCP service", port, describe(owner))
			problems = append(problems, newProblem(c.w, SettingTCPPort, from, value, reason))
			b.excluded = append(b.excluded, Exclusion{Source: c.w.Source, Workload: c.w.Name, WorkloadID: c.w.ID, Port: port,
				Why: ExcludedConflict, Reason: reason, Holder: owner.w.Name})
		}
		var dropped [][2]Server
		ts.Backend.Servers, dropped = dedupServers(ts.Backend.Servers)
		for _, d := range dropped {
			e := sameAddress(b.workloads[[2]string{d[0].WorkloadID, d[0].Workload}], d[0], d[1])
			e.Port = port
			b.excluded = append(b.excluded, e)
		}
		nameServers(ts.Backend.Servers)
		services = append(services, ts)
	}
	return services, problems
}

// compareClaims orders by creation, then by service and workload name, so that the outcome does
// not depend on the order workloads were listed in.
func compareClaims(a, b tcpClaim) int {
	return cmp.Or(a.w.Created.Compare(b.w.Created), cmp.Compare(a.w.Service, b.w.Service),
		cmp.Compare(a.w.Name, b.w.Name), cmp.Compare(a.w.ID, b.w.ID))
}

// nameServers gives each server of one backend a name: the workload's, made safe for HAProxy
// ([A-Za-z0-9_.-]), with a suffix when two workloads would share one.
func nameServers(ss []Server) {
	taken := make(map[string]bool, len(ss))
	for i := range ss {
		base := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
				return r
			}
			return '_'
		}, ss[i].Workload)
		if base == "" {
			base = "server"
		}
		name := base
		for n := 2; taken[name]; n++ {
			name = base + "-" + strconv.Itoa(n)
		}
		taken[name] = true
		ss[i].Name = name
	}
}

func describe(c tcpClaim) string {
	if c.w.Service == "" {
		return "workload " + c.w.Name
	}
	return fmt.Sprintf("service %q", c.w.Service)
}
