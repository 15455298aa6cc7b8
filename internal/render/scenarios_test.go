package render

import (
	"strings"
	"time"

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

// replica sets the Service a workload belongs to and when it was created (TCP services use both).
func replica(w discovery.Workload, service string, created time.Time) discovery.Workload {
	w.Service, w.Created = service, created
	return w
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

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
	// Paths: HAProxy must try them longest first (its rules match in order), whatever their
	// alphabetical order; a DEST with '%' must reach the backend as written.
	{name: "paths", workloads: []discovery.Workload{
		ctr("site", "10.0.1.2", host("app.example.com")),
		ctr("api", "10.0.1.3", with(host("app.example.com"), "VIRTUAL_PATH", "/api/", "VIRTUAL_DEST", "/")),
		ctr("api-v2", "10.0.1.5", with(host("app.example.com"), "VIRTUAL_PATH", "/api/v2/")),
		ctr("legacy", "10.0.1.6", with(host("app.example.com"), "VIRTUAL_PATH", "/old%20name/", "VIRTUAL_DEST", "/new%20name/")),
		ctr("docs", "10.0.1.4", with(host("docs.example.com"), "VIRTUAL_PATH", "/v2")),
	}},
	// Wildcards: HAProxy must try exact names first, then "*.x" longest first, then "x.*" longest
	// first (nginx's order), although the table sorts them alphabetically.
	{name: "wildcards", workloads: []discovery.Workload{
		ctr("any-sub", "10.0.1.2", host("*.example.com")),
		ctr("any-shop-sub", "10.0.1.4", host("*.shop.example.com")),
		ctr("any-tld", "10.0.1.3", host("example.*")),
		ctr("any-www-tld", "10.0.1.5", host("www.example.*")),
		ctr("exact", "10.0.1.6", host("www.example.com, example.com")),
		ctr("sub-static", "10.0.1.7", with(host("*.example.com"), "VIRTUAL_PATH", "/static/")),
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
	// TCP services (HAProxy only; with nginx every TCP workload is a problem): two replicas of
	// one service share port 5432, a rival service created later asks for it too and is left
	// out, another service has its own port, one asks for the HTTP port, and one serves HTTP and
	// TCP.
	{name: "tcp", workloads: []discovery.Workload{
		ctr("admin", "10.0.2.2", host("admin.example.com")),
		replica(ctr("shop-db-2", "10.0.2.4", map[string]string{"VIRTUAL_TCP_PORT": "5432"}, 5432), "shop_db", t0.Add(time.Minute)),
		replica(ctr("shop-db-1", "10.0.2.3", map[string]string{"VIRTUAL_TCP_PORT": "5432"}, 5432), "shop_db", t0),
		replica(ctr("rival-db", "10.0.2.5", map[string]string{"VIRTUAL_TCP_PORT": "5432"}, 5432), "rival_db", t0.Add(time.Hour)),
		replica(ctr("cache", "10.0.2.6", map[string]string{"VIRTUAL_TCP_PORT": "6379"}, 6379), "cache", t0),
		replica(ctr("sneaky", "10.0.2.7", map[string]string{"VIRTUAL_TCP_PORT": "80"}, 80), "sneaky", t0),
		replica(ctr("solr", "10.0.2.8", with(host("solr.example.com"), "VIRTUAL_TCP_PORT", "8983"), 8983), "solr", t0),
	}},
	// Host names that spell the template's own section names must not collide with them.
	{name: "reserved-names", workloads: []discovery.Workload{
		ctr("n503", "10.0.3.2", host("vhost_gen_503")),
		ctr("n404", "10.0.3.3", with(host("vhost_gen_404"), "VIRTUAL_PATH", "/x/")),
		ctr("nhttp", "10.0.3.4", host("http")),
		ctr("nstats", "10.0.3.5", host("vhost_gen_stats")),
	}},
	{name: "bad-neighbour", workloads: []discovery.Workload{
		ctr("good", "10.0.1.2", host("good.example.com")),
		ctr("evil", "10.0.1.3", host("evil.example.com; include /etc/passwd")),
		ctr("evil-path", "10.0.1.4", with(host("evil2.example.com"), "VIRTUAL_PATH", "/x { return 200; }")),
		ctr("evil-newline", "10.0.1.5", host("a.example.com\nserver { }")),
		ctr("unreachable", "", host("lost.example.com")),
	}},
}

func scenarioNamed(name string) scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	panic("no scenario " + name)
}
