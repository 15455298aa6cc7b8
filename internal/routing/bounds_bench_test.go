package routing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// hostileSet is 100 ordinary workloads and web-1, which has one hostile shape.
func hostileSet(kind string) []discovery.Workload {
	ws := make([]discovery.Workload, 0, 101)
	for i := range 100 {
		ws = append(ws, wl(fmt.Sprintf("ok-%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+2), fmt.Sprintf("VIRTUAL_HOST=ok%d.example.com", i)))
	}
	h := wl("web-1", "10.9.0.2", "VIRTUAL_HOST=web.example.com")
	switch kind {
	case "1MiB-label":
		h.Labels[SettingHost] = strings.Repeat("a", 1<<20)
	case "1MiB-env":
		h.Env = map[string]string{SettingPath: "/" + strings.Repeat("a", 1<<20)}
	case "1MiB-of-commas":
		h.Labels[SettingHost] = strings.Repeat("a,", 1<<19)
	case "10000-hosts":
		h.Labels[SettingHost] = hostList(10000)
	case "1000-networks":
		h.Networks = manyNetworks(1000)
	case "65535-tcp-ports":
		h.Ports = allTCPPorts()
	}
	return append(ws, h)
}

// BenchmarkHostileWorkloads measures Build over 100 ordinary workloads and one hostile one; the
// bounds make each hostile case cost about what "none" does (before them: 50 ms and 10 MB for the
// 1 MiB label, 52 ms and 15 MB for 10,000 hosts, 1 s for every TCP port exposed).
func BenchmarkHostileWorkloads(b *testing.B) {
	for _, kind := range []string{"none", "1MiB-label", "1MiB-env", "1MiB-of-commas", "10000-hosts", "1000-networks", "65535-tcp-ports"} {
		ws := hostileSet(kind)
		b.Run(kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab := Build(ws, proxyOpts)
				if len(tab.Sites) != 101 && (len(tab.Sites) != 100 || len(problemsOf(tab, "web-1")) != 1) {
					b.Fatalf("%d sites, problems %v", len(tab.Sites), tab.Problems)
				}
			}
		})
	}
}
