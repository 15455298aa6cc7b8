package docker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// hostileInspect is a running container with one hostile shape: a 1 MiB label, 10,000 host
// names, 1,000 networks, or every TCP port exposed and published (EXPOSE 1-65535, -P).
func hostileInspect(kind string) *container.InspectResponse {
	c := &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "hostile", Name: "/web-1", State: &container.State{Running: true}},
		Config:            &container.Config{Labels: map[string]string{"VIRTUAL_HOST": "web.example.com"}, ExposedPorts: nat.PortSet{"80/tcp": {}}},
		NetworkSettings:   &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"proxy": {NetworkID: "p", IPAddress: "10.0.0.2"}}},
	}
	switch kind {
	case "1MiB-label":
		c.Config.Labels["VIRTUAL_HOST"] = strings.Repeat("a", 1<<20)
	case "10000-hosts":
		var b strings.Builder
		for i := range 10000 {
			fmt.Fprintf(&b, "h%d.example.com,", i)
		}
		c.Config.Labels["VIRTUAL_HOST"] = b.String()
	case "1000-networks":
		for i := range 1000 {
			c.NetworkSettings.Networks[fmt.Sprintf("n%04d", i)] = &network.EndpointSettings{NetworkID: "x", IPAddress: fmt.Sprintf("10.8.%d.%d", i/200, i%200+2)}
		}
	case "65535-ports":
		c.NetworkSettings.Ports = nat.PortMap{}
		for p := 1; p <= 65535; p++ {
			port := nat.Port(fmt.Sprintf("%d/tcp", p))
			c.Config.ExposedPorts[port] = struct{}{}
			if p%2 == 0 { // half of them published, so that unbound entries are dropped beside bound ones
				c.NetworkSettings.Ports[port] = []nat.PortBinding{{HostIP: "0.0.0.0", HostPort: fmt.Sprint(p)}}
			}
		}
	}
	return c
}

// BenchmarkHostileInspect measures the conversion of one hostile container into a workload: the
// Docker source's part of a hostile event (routing's bounds then exclude it; see routing's
// BenchmarkHostileWorkloads). It must stay linear: the source's event loop serves every container.
func BenchmarkHostileInspect(b *testing.B) {
	for _, kind := range []string{"plain", "1MiB-label", "10000-hosts", "1000-networks", "65535-ports"} {
		c := hostileInspect(kind)
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := FromInspect(c, "127.0.0.1"); !ok {
					b.Fatal("not running")
				}
			}
		})
	}
}
