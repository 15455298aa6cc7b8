package render

import (
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// scenario is one state of the world whose rendered config is kept as a golden file.
type scenario struct {
	name      string
	workloads []discovery.Workload
}

func ctr(name, ip string, labels map[string]string, ports ...int) discovery.Workload {
	w := discovery.Workload{ID: name + "-id", Name: name, Source: "docker", Labels: labels, NodeAddress: "127.0.0.1",
		Networks: []discovery.Network{{Name: "frontend", ID: "net1", IP: ip}}}
	for _, p := range ports {
		w.Ports = append(w.Ports, discovery.Port{Port: p, Proto: "tcp"})
	}
	return w
}

func host(h string) map[string]string { return map[string]string{"VIRTUAL_HOST": h} }

func with(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// scenarios are shared by every proxy's goldens, so that the proxies are compared on equal terms.
var scenarios = []scenario{
	{name: "empty"},
	{name: "two-hosts", workloads: []discovery.Workload{
		ctr("shop", "10.0.1.2", host("shop.example.com"), 80),
		ctr("blog", "10.0.1.3", host("blog.example.com"), 8080),
	}},
	{name: "replicas", workloads: []discovery.Workload{
		ctr("web-3", "10.0.1.12", host("web.example.com")),
		ctr("web-1", "10.0.1.10", host("web.example.com")),
		ctr("web-2", "10.0.1.11", host("web.example.com")),
	}},
	{name: "multi-host-blue-green", workloads: []discovery.Workload{
		ctr("shop-v1", "10.0.1.2", host("old.shop.example.com")),
		ctr("shop-v2", "10.0.1.3", host("shop.example.com, new.shop.example.com,")),
	}},
	{name: "paths", workloads: []discovery.Workload{
		ctr("site", "10.0.1.2", host("app.example.com")),
		ctr("api", "10.0.1.3", with(host("app.example.com"), "VIRTUAL_PATH", "/api/", "VIRTUAL_DEST", "/")),
		ctr("docs", "10.0.1.4", with(host("docs.example.com"), "VIRTUAL_PATH", "/v2")),
	}},
	{name: "wildcards", workloads: []discovery.Workload{
		ctr("any-sub", "10.0.1.2", host("*.example.com")),
		ctr("any-tld", "10.0.1.3", host("example.*")),
	}},
	{name: "weights-sticky-https", workloads: []discovery.Workload{
		ctr("blue", "10.0.1.2", with(host("canary.example.com"), "VIRTUAL_WEIGHT", "9")),
		ctr("green", "10.0.1.3", with(host("canary.example.com"), "VIRTUAL_WEIGHT", "1")),
		ctr("old", "10.0.1.4", with(host("canary.example.com"), "VIRTUAL_WEIGHT", "0")),
		ctr("cart-1", "10.0.1.5", with(host("cart.example.com"), "VIRTUAL_STICKY", "SESSIONID")),
		ctr("cart-2", "10.0.1.6", with(host("cart.example.com"), "VIRTUAL_STICKY", "SESSIONID")),
		ctr("secure", "10.0.1.7", with(host("secure.example.com"), "VIRTUAL_PROTO", "https", "VIRTUAL_PORT", "8443")),
	}},
	{name: "long-host-names", workloads: []discovery.Workload{
		ctr("long", "10.0.1.2", host("a-rather-long-host-name-for-a-service.team-platform.eu-west-1.internal.example.com")),
		ctr("longest", "10.0.1.3", host(strings.Repeat("l", 63)+"."+strings.Repeat("m", 63)+"."+strings.Repeat("n", 63)+"."+strings.Repeat("o", 61))),
	}},
	{name: "bad-neighbour", workloads: []discovery.Workload{
		ctr("good", "10.0.1.2", host("good.example.com")),
		ctr("evil", "10.0.1.3", host("evil.example.com; include /etc/passwd")),
		ctr("evil-path", "10.0.1.4", with(host("evil2.example.com"), "VIRTUAL_PATH", "/x { return 200; }")),
		ctr("evil-newline", "10.0.1.5", host("a.example.com\nserver { }")),
		ctr("unreachable", "", host("lost.example.com")),
	}},
}
