package render

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// scenario is one state of the world whose rendered config is kept as a golden file.
type scenario struct {
	name      string
	workloads []discovery.Workload
	// trustDownstreamProxy renders with --trust-downstream-proxy.
	trustDownstreamProxy bool
	// tls, when set, serves HTTPS too, with the test certificates (tls_test.go).
	tls *tlsScenario
	// defaultHost, defaultRoot and serverTokensOff are DEFAULT_HOST, DEFAULT_ROOT and
	// SERVER_TOKENS=off.
	defaultHost     string
	defaultRoot     routing.DefaultRoot
	serverTokensOff bool
	// snippets are the operator's snippet files, by proxy ("nginx", "haproxy"), by name.
	snippets map[string]map[string]string
	// htpasswd are nginx-proxy's htpasswd files, by name.
	htpasswd map[string]string
	// accessLog is nginx-proxy's access-log settings.
	accessLog AccessLog
	// errorPage: nginx-proxy's errors/50x.html answers what no site does.
	errorPage bool
	// ipv6: ENABLE_IPV6 and PREFER_IPV6_NETWORK (and ENABLE_HTTP2).
	ipv6 bool
	// externalPorts are EXTERNAL_HTTP_PORT and EXTERNAL_HTTPS_PORT (with tls.port the latter).
	externalPorts [2]int
	// proxyProtocol: ENABLE_PROXY_PROTOCOL; resolvers: RESOLVERS.
	proxyProtocol bool
	resolvers     string
}

const scenarioErrorPage = "<html><body><h1>Nothing here</h1></body></html>\n"

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
	// The longest host names (253 characters, an exact one and a wildcard) with sticky sessions
	// and paths: no name derived from a host (nginx's sticky variables, upstream and backend
	// names, HAProxy's dynamic-cookie-key and ACL values) may outgrow what the proxies accept.
	{name: "longest-host-sticky-paths", workloads: []discovery.Workload{
		ctr("max", "10.0.1.2", with(host(longestHost("a")), "VIRTUAL_STICKY", "SESSIONID")),
		ctr("max-api", "10.0.1.3", with(host(longestHost("a")), "VIRTUAL_STICKY", "SESSIONID", "VIRTUAL_PATH", "/api/", "VIRTUAL_DEST", "/")),
		ctr("max-cart", "10.0.1.4", with(host(longestHost("a")), "VIRTUAL_STICKY", "cart_session_"+strings.Repeat("x", 51), "VIRTUAL_PATH", "/cart/")),
		ctr("max-wild", "10.0.1.5", with(host("*."+longestHost("w")[2:]), "VIRTUAL_STICKY", "SESSIONID", "VIRTUAL_PATH", "/w/")),
	}},
	// --trust-downstream-proxy: the client's forwarded headers are kept.
	{name: "trust-downstream-proxy", trustDownstreamProxy: true, workloads: []discovery.Workload{
		ctr("shop", "10.0.1.2", host("shop.example.com"), 80),
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
	// HTTPS. Hosts under example.com have a certificate (example.com's, their parent's; a few
	// their own), those under example.net have none. The gateway's defaults are nginx-proxy's:
	// redirect, HSTS max-age=31536000, Mozilla-Intermediate, 301, HTTP on a missing certificate.
	//
	// Each HTTPS_METHOD with and without a certificate: without one, redirect and nohttp fall
	// back to noredirect, unless ENABLE_HTTP_ON_MISSING_CERT=false (then not served at all).
	{name: "tls-methods", tls: &tlsScenario{}, workloads: []discovery.Workload{
		ctr("redirect", "10.0.4.2", host("redirect.example.com")),
		ctr("noredirect", "10.0.4.3", with(host("noredirect.example.com"), "HTTPS_METHOD", "noredirect")),
		ctr("nohttp", "10.0.4.4", with(host("nohttp.example.com"), "HTTPS_METHOD", "nohttp")),
		ctr("nohttps", "10.0.4.5", with(host("nohttps.example.com"), "HTTPS_METHOD", "nohttps")),
		ctr("docs", "10.0.4.6", with(host("docs.example.com"), "VIRTUAL_PATH", "/v2/")),
		ctr("redirect-nocert", "10.0.4.7", host("redirect.example.net")),
		ctr("noredirect-nocert", "10.0.4.8", with(host("noredirect.example.net"), "HTTPS_METHOD", "noredirect")),
		ctr("nohttp-nocert", "10.0.4.9", with(host("nohttp.example.net"), "HTTPS_METHOD", "nohttp")),
		ctr("nohttps-nocert", "10.0.4.10", with(host("nohttps.example.net"), "HTTPS_METHOD", "nohttps")),
		ctr("strict-nocert", "10.0.4.11", with(host("strict.example.net"), "ENABLE_HTTP_ON_MISSING_CERT", "false")),
	}},
	// HSTS: the default, off, a value of the site's own, and never with noredirect.
	{name: "tls-hsts", tls: &tlsScenario{}, workloads: []discovery.Workload{
		ctr("default", "10.0.4.2", host("default.example.com")),
		ctr("off", "10.0.4.3", with(host("off.example.com"), "HSTS", "off")),
		ctr("custom", "10.0.4.4", with(host("custom.example.com"), "HSTS", "max-age=63072000; includeSubDomains; preload")),
		ctr("nohttp", "10.0.4.5", with(host("nohttp.example.com"), "HTTPS_METHOD", "nohttp", "HSTS", "max-age=600")),
		ctr("noredirect", "10.0.4.6", with(host("noredirect.example.com"), "HTTPS_METHOD", "noredirect", "HSTS", "max-age=600")),
	}},
	// NON_GET_REDIRECT (env, or nginx-proxy's label), and the default 301.
	{name: "tls-redirect-codes", tls: &tlsScenario{}, workloads: []discovery.Workload{
		ctr("c301", "10.0.4.2", host("c301.example.com")),
		ctr("c307", "10.0.4.3", with(host("c307.example.com"), "NON_GET_REDIRECT", "307")),
		ctr("c308", "10.0.4.4", with(host("c308.example.com"), "com.github.nginx-proxy.nginx-proxy.non-get-redirect", "308")),
	}},
	// HTTPS on another port: redirects name it; a wildcard site redirects to the request's host.
	{name: "tls-redirect-port", tls: &tlsScenario{https: "127.0.0.1:8443", port: 8443}, workloads: []discovery.Workload{
		ctr("shop", "10.0.4.2", with(host("shop.example.com"), "NON_GET_REDIRECT", "307")),
		ctr("any", "10.0.4.3", host("*.example.com")),
	}},
	// A port mapping in front of the proxy (EXTERNAL_HTTP_PORT=8080, EXTERNAL_HTTPS_PORT=10443):
	// redirects name 10443, backends see both in X-Forwarded-Port; SERVER_TOKENS on a container
	// is its site's (the first by name that sets it: blog-1's), a bad one a warning.
	// With ENABLE_PROXY_PROTOCOL and IPv6: every listen takes the PROXY protocol.
	{name: "external-ports", tls: &tlsScenario{https: "8443", port: 10443}, externalPorts: [2]int{8080, 10443}, proxyProtocol: true, ipv6: true, workloads: []discovery.Workload{
		ctr("shop", "10.0.4.2", with(host("shop.example.com"), "SERVER_TOKENS", "off", "EXTERNAL_HTTPS_PORT", "9443")),
		ctr("blog-1", "10.0.4.3", with(host("blog.example.com"), "VIRTUAL_PATH", "/api/", "SERVER_TOKENS", "build")),
		ctr("blog-2", "10.0.4.4", with(host("blog.example.com"), "VIRTUAL_PATH", "/", "SERVER_TOKENS", "off")),
		ctr("wiki", "10.0.4.5", with(host("wiki.example.com"), "SERVER_TOKENS", "loud", "HTTPS_METHOD", "noredirect")),
	}},
	// SSL policies; chained.example.com's certificate has a chain (OCSP stapling, with RESOLVERS)
	// and DH parameters, and it asks its clients for a certificate (mutual TLS).
	{name: "tls-policies", tls: &tlsScenario{clientCA: true}, resolvers: "127.0.0.11 [fd00::53]:53 valid=30s", workloads: []discovery.Workload{
		ctr("modern", "10.0.4.2", with(host("modern.example.com"), "SSL_POLICY", "Mozilla-Modern")),
		ctr("chained", "10.0.4.3", host("chained.example.com")),
		ctr("old", "10.0.4.4", with(host("old.example.com"), "SSL_POLICY", "Mozilla-Old")),
	}},
	// ACME: every HTTP server, the catch-all's too, sends challenges to the responder, also for
	// a nohttp host that asked for a certificate and for a site with a path of its own there.
	{name: "tls-acme", tls: &tlsScenario{acme: true}, workloads: []discovery.Workload{
		ctr("acme", "10.0.4.2", with(host("acme.example.com"), "HTTPS_METHOD", "nohttp", "ACME_HOST", "acme.example.com")),
		ctr("nohttp", "10.0.4.3", with(host("nohttp.example.com"), "HTTPS_METHOD", "nohttp")),
		ctr("redirect", "10.0.4.4", host("redirect.example.com")),
		ctr("noredirect", "10.0.4.5", with(host("noredirect.example.com"), "HTTPS_METHOD", "noredirect")),
		ctr("nohttps", "10.0.4.6", with(host("nohttps.example.com"), "HTTPS_METHOD", "nohttps")),
		ctr("own-path", "10.0.4.7", with(host("noredirect.example.com"), "HTTPS_METHOD", "noredirect", "VIRTUAL_PATH", "/.well-known/acme-challenge/")),
	}},
	// A default certificate, trusted by one site only: the others without a certificate are
	// served over HTTP, and their names refused at the handshake over HTTPS (nginx, as
	// nginx-proxy) or given the default certificate and 503 (HAProxy).
	{name: "tls-default-cert", tls: &tlsScenario{defaultCert: true}, workloads: []discovery.Workload{
		ctr("own", "10.0.4.2", host("own.example.com")),
		ctr("trusting", "10.0.4.3", with(host("trusting.example.net"), "com.github.nginx-proxy.nginx-proxy.trust-default-cert", "true")),
		ctr("untrusting", "10.0.4.4", host("untrusting.example.net")),
	}},
	// Wildcard hosts: "*.x" with its parent's certificate (the SNI filter is the host), an exact
	// host under it with other settings, "x.*" with CERT_NAME, "*.x" without a certificate.
	{name: "tls-wildcards", tls: &tlsScenario{}, workloads: []discovery.Workload{
		ctr("wild", "10.0.4.2", host("*.wild.example.com")),
		ctr("exact", "10.0.4.3", with(host("a.wild.example.com"), "HTTPS_METHOD", "noredirect")),
		ctr("tld", "10.0.4.4", with(host("www.example.*"), "CERT_NAME", "shared")),
		ctr("nocert", "10.0.4.5", host("*.example.net")),
	}},
	// HTTPS on, but no certificate at all: every site is served over HTTP, every name refused at
	// the handshake (HAProxy starts with an empty crt-list, with a warning).
	{name: "tls-no-certs", tls: &tlsScenario{noCerts: true}, workloads: []discovery.Workload{
		ctr("shop", "10.0.4.2", host("shop.example.com")),
		ctr("blog", "10.0.4.3", with(host("blog.example.com"), "HTTPS_METHOD", "nohttp")),
	}},
	// nginx-proxy's loadbalance and keepalive labels: every accepted form (with and without ';',
	// in any spacing), a backend whose first workload sets none (the next one's applies), a
	// conflicting workload left out, values that are never passed on (warnings: round robin and
	// the default keepalive), and a loadbalance beside VIRTUAL_STICKY (ignored).
	{name: "upstream-tuning", workloads: []discovery.Workload{
		ctr("lc-0", "10.0.5.2", host("lc.example.com")),
		ctr("lc-1", "10.0.5.3", with(host("lc.example.com"), lbLabel, "least_conn;", kaLabel, "32")),
		ctr("lc-2", "10.0.5.4", with(host("lc.example.com"), lbLabel, " least_conn ", kaLabel, "32")),
		ctr("lc-3", "10.0.5.5", with(host("lc.example.com"), lbLabel, "ip_hash;")),
		ctr("ip", "10.0.5.6", with(host("ip.example.com"), lbLabel, "ip_hash")),
		ctr("addr", "10.0.5.7", with(host("addr.example.com"), lbLabel, "hash $remote_addr consistent;")),
		ctr("addr-plain", "10.0.5.8", with(host("addr.example.com"), lbLabel, "hash $remote_addr;", "VIRTUAL_PATH", "/plain/")),
		ctr("cookie", "10.0.5.9", with(host("cookie.example.com"), lbLabel, "hash  $cookie_SESSION   consistent ;")),
		ctr("cookie-cart", "10.0.5.10", with(host("cookie.example.com"), lbLabel, "hash $cookie_cart", "VIRTUAL_PATH", "/cart/")),
		ctr("rand", "10.0.5.11", with(host("rand.example.com"), lbLabel, "random;", kaLabel, "auto")),
		ctr("rand2", "10.0.5.12", with(host("rand2.example.com"), lbLabel, "random two least_conn;", kaLabel, "disabled")),
		ctr("rr", "10.0.5.13", with(host("rr.example.com"), lbLabel, "round_robin", kaLabel, "8")),
		ctr("bad", "10.0.5.14", with(host("bad.example.com"), lbLabel, "least_conn; include /etc/passwd", kaLabel, "lots")),
		ctr("sticky", "10.0.5.15", with(host("sticky.example.com"), "VIRTUAL_STICKY", "SESSION", lbLabel, "least_conn")),
	}},
	// DEFAULT_HOST names a site with a root and a path: unknown hosts get it; DEFAULT_ROOT=418 on a
	// site with paths only; SERVER_TOKENS=off.
	{name: "default-host", defaultHost: "www.example.com", defaultRoot: routing.DefaultRoot{Status: 418}, serverTokensOff: true,
		workloads: []discovery.Workload{
			ctr("www", "10.0.6.2", host("www.example.com")),
			ctr("www-api", "10.0.6.3", with(host("www.example.com"), "VIRTUAL_PATH", "/api/")),
			ctr("docs", "10.0.6.4", with(host("docs.example.com"), "VIRTUAL_PATH", "/v1/")),
		}},
	// DEFAULT_HOST names a site with paths only, and DEFAULT_ROOT redirects: unknown hosts get its
	// paths, and its "/" redirects, as on its own host.
	{name: "default-root-redirect", defaultHost: "paths.example.com",
		defaultRoot: routing.DefaultRoot{Status: 308, URL: "https://www.example.com/start?from=root&x=%2F"},
		workloads: []discovery.Workload{
			ctr("paths", "10.0.6.2", with(host("paths.example.com"), "VIRTUAL_PATH", "/app/")),
			ctr("other", "10.0.6.3", host("other.example.com")),
		}},
	// DEFAULT_ROOT=none: no answer of vhost-gen's own for "/" on a paths-only site; DEFAULT_HOST
	// names no site (a warning; unknown hosts get 503).
	{name: "default-root-none", defaultHost: "missing.example.com", defaultRoot: routing.DefaultRoot{None: true},
		workloads: []discovery.Workload{
			ctr("paths", "10.0.6.2", with(host("paths.example.com"), "VIRTUAL_PATH", "/app/")),
		}},
	// HTTPS with DEFAULT_HOST: its site (a certificate, redirected) answers unknown names on both
	// ports (nginx: with its own certificate; HAProxy: names with no certificate get the default
	// one); DEFAULT_ROOT=444 closes the connection.
	{name: "tls-default-host", tls: &tlsScenario{defaultCert: true}, defaultHost: "www.example.com", defaultRoot: routing.DefaultRoot{Status: 444},
		workloads: []discovery.Workload{
			ctr("www", "10.0.4.2", with(host("www.example.com"), "HSTS", "max-age=600")),
			ctr("docs", "10.0.4.3", with(host("docs.example.com"), "VIRTUAL_PATH", "/v1/", "HTTPS_METHOD", "noredirect")),
		}},
	// Regular-expression hosts (nginx-proxy's "~"): after exact names and wildcards, in the
	// table's order, whatever their length; a quantifier's braces and a class.
	{name: "regex-hosts", workloads: []discovery.Workload{
		ctr("exact", "10.0.7.2", host("api1.example.com")),
		ctr("wild", "10.0.7.3", host("*.example.com")),
		ctr("numbered", "10.0.7.4", host(`~^api\d+\.example\.com$`)),
		ctr("shops", "10.0.7.5", with(host(`~^(?:www\.)?shop-[a-z]{2}\.example\.net$`), "VIRTUAL_PATH", "/cart/")),
	}},
	// A regular-expression host over HTTPS: its certificate by CERT_NAME, its site in HAProxy's
	// maps by a key of its own.
	{name: "tls-regex-hosts", tls: &tlsScenario{}, workloads: []discovery.Workload{
		ctr("numbered", "10.0.7.4", with(host(`~^api\d+\.example\.com$`), "CERT_NAME", "shared", "HSTS", "max-age=60")),
		ctr("plain", "10.0.7.6", with(host(`~^plain\d+\.example\.com$`), "HTTPS_METHOD", "noredirect", "CERT_NAME", "shared")),
	}},
	// nginx-proxy's VIRTUAL_PROTO values and NETWORK_ACCESS: uwsgi and FastCGI (nginx only: on
	// HAProxy each is a problem), gRPC in clear and over TLS, an internal path.
	{name: "backend-protos", workloads: []discovery.Workload{
		ctr("uwsgi", "10.0.8.2", with(host("py.example.com"), "VIRTUAL_PROTO", "uwsgi")),
		ctr("php", "10.0.8.3", with(host("php.example.com"), "VIRTUAL_PROTO", "fastcgi", "VIRTUAL_ROOT", "/app/public", "VIRTUAL_PORT", "9000"), 9000),
		ctr("grpc", "10.0.8.4", with(host("grpc.example.com"), "VIRTUAL_PROTO", "grpc", "VIRTUAL_PORT", "50051"), 50051),
		ctr("grpcs", "10.0.8.5", with(host("grpcs.example.com"), "VIRTUAL_PROTO", "grpcs", "VIRTUAL_PORT", "50052"), 50052),
		ctr("site", "10.0.8.6", host("app.example.com")),
		ctr("admin", "10.0.8.7", with(host("app.example.com"), "VIRTUAL_PATH", "/admin/", "NETWORK_ACCESS", "internal")),
	}},
	// NETWORK_ACCESS behind a trusted proxy: the client is the last X-Forwarded-For address.
	{name: "network-access-trusted", trustDownstreamProxy: true, workloads: []discovery.Workload{
		ctr("intranet", "10.0.8.8", with(host("intranet.example.com"), "NETWORK_ACCESS", "internal")),
		ctr("public", "10.0.8.9", host("www.example.com")),
	}},
	// The operator's snippets, nginx-proxy's vhost.d names: a host's own server snippet, the
	// default one for the others (and the redirect server), a path's location snippet by the
	// path's SHA-1, a host's, the default location one, a location replaced whole, a regular
	// expression host's files by its SHA-1; HAProxy's frontend and backend snippets.
	{name: "snippets", workloads: []discovery.Workload{
		ctr("shop", "10.0.9.2", host("shop.example.com")),
		ctr("shop-api", "10.0.9.3", with(host("shop.example.com"), "VIRTUAL_PATH", "/api/")),
		ctr("docs", "10.0.9.4", host("docs.example.com")),
		ctr("numbered", "10.0.9.5", host(`~^api\d+\.example\.com$`)),
	}, snippets: map[string]map[string]string{
		"nginx": {
			"default":          "client_max_body_size 1m;\n",
			"shop.example.com": "client_max_body_size 50m;\n# two lines\nadd_header X-Shop yes always;\n",
			"shop.example.com_" + sha1Hex("/api/") + "_location": "proxy_read_timeout 5s;\n",
			"default_location":                               "proxy_buffering off;\n",
			"docs.example.com_location_override":             "location / {\n    return 200 \"docs\\n\";\n}\n",
			sha1Hex(`~^api\d+\.example\.com$`) + "_location": "add_header X-Numbered yes;\n",
			"unrelated.example.com":                          "this would not parse;;; {\n",
		},
		"haproxy": {
			"frontend":                 "http-request set-header X-Gateway vhost-gen\n",
			"shop.example.com_backend": "timeout server 5s\n",
			"shop.example.com_" + sha1Hex("/api/") + "_backend": "http-response set-header X-Api yes\n",
			"default_backend": "http-response set-header X-Default yes\n",
		},
	}},
	// VIRTUAL_HOST_MULTIPORTS: one container's hosts and paths on several ports, merged with a
	// plain container's route; a gRPC path; the HAProxy template leaves the uwsgi one out.
	{name: "multiports", workloads: []discovery.Workload{
		ctr("multi", "10.0.9.6", map[string]string{"VIRTUAL_HOST_MULTIPORTS": "www.example.org:\napi.example.org:\n  /:\n    port: 8000\n  /v2/:\n    port: 9000\n    dest: /\n  /rpc/:\n    port: 50051\n    proto: grpc\n  /py/:\n    port: 7000\n    proto: uwsgi\n"}, 8000, 9000, 50051, 7000),
		ctr("plain", "10.0.9.7", with(host("api.example.org"), "VIRTUAL_PORT", "8000")),
	}},
	// nginx-proxy's LOG_JSON (its format, JSON escapes) on every server of vhost-gen's; and
	// DISABLE_ACCESS_LOGS. HAProxy's config does not change.
	{name: "access-log-json", accessLog: mustAccessLog(false, "", "", true), workloads: []discovery.Workload{
		ctr("shop", "10.0.9.8", host("shop.example.com")),
	}},
	{name: "access-log-off", accessLog: mustAccessLog(true, "", "", false), defaultHost: "shop.example.com", workloads: []discovery.Workload{
		ctr("shop", "10.0.9.8", host("shop.example.com")),
	}},
	// ENABLE_IPV6 and PREFER_IPV6_NETWORK: every listen on all IPv4 addresses has its IPv6 twin;
	// a dual-stack workload is reached on IPv6, an IPv4-only one on IPv4; HTTPS and a TCP service.
	{name: "tls-ipv6", ipv6: true, tls: &tlsScenario{}, workloads: []discovery.Workload{
		dualStack(ctr("shop", "10.0.9.9", host("shop.example.com")), "fd00::9"),
		ctr("legacy", "10.0.9.10", host("legacy.example.com")),
		dualStack(replica(ctr("db", "10.0.9.11", map[string]string{"VIRTUAL_TCP_PORT": "5432", "VIRTUAL_PORT": "5432"}, 5432), "db", t0), "fd00::b"),
	}},
	// nginx-proxy's errors/50x.html for unknown hosts.
	{name: "error-page", errorPage: true, workloads: []discovery.Workload{
		ctr("shop", "10.0.9.8", host("shop.example.com")),
	}},
	// Basic authentication from nginx-proxy's htpasswd directory: a host's file, a path's own file
	// (which wins), a regular-expression host's file by its SHA-1; HAProxy leaves out the entries
	// it cannot check ($apr1$, {SHA}) and the unsafe ones, saying why.
	{name: "basic-auth", workloads: []discovery.Workload{
		ctr("shop", "10.0.9.2", host("shop.example.com")),
		ctr("shop-admin", "10.0.9.3", with(host("shop.example.com"), "VIRTUAL_PATH", "/admin/", "NETWORK_ACCESS", "internal")),
		ctr("open", "10.0.9.4", host("open.example.com")),
		ctr("numbered", "10.0.9.5", host(`~^api\d+\.example\.com$`)),
	}, htpasswd: map[string]string{
		"shop.example.com": "alice:$2y$05$4MQZtFB6EIMsKSx8kJ1.reEPnEoDqdQZf1NqFkpuVlFSVQu.VJYFC\n" +
			"bob:$apr1$x1yR0dGA$Uu4NlZT8CbPUUlFbiw6xq/\ncarol:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n" +
			"dave:$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.\n" +
			"bad'user:$1$salt$abc\n",
		"shop.example.com_" + sha1Hex("/admin/"): "root:$5$salt$Gcm6FsVtF/Qa77ZKD.iwsJlCVPY0XSMgLJL0Hnww/c1\n",
		sha1Hex(`~^api\d+\.example\.com$`):       "api:$2b$05$4MQZtFB6EIMsKSx8kJ1.reEPnEoDqdQZf1NqFkpuVlFSVQu.VJYFC\n",
	}},
}

func mustAccessLog(off bool, format, escape string, json bool) AccessLog {
	l, err := NewAccessLog(off, format, escape, json, "")
	if err != nil {
		panic(err)
	}
	return l
}

// dualStack gives a workload an IPv6 address on its network too.
func dualStack(w discovery.Workload, v6 string) discovery.Workload {
	w.Networks[0].IPv6 = v6
	return w
}

// sha1Hex is nginx-proxy's hash of a path or a regular-expression host in snippet names.
func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// The loadbalance and keepalive labels.
const (
	lbLabel = "com.github.nginx-proxy.nginx-proxy.loadbalance"
	kaLabel = "com.github.nginx-proxy.nginx-proxy.keepalive"
)

// longestHost is a host name of 253 characters, the most DNS allows: labels of 63 characters
// made of c, the last one shorter.
func longestHost(c string) string {
	return strings.Repeat(c, 63) + "." + strings.Repeat(c, 63) + "." + strings.Repeat(c, 63) + "." + strings.Repeat(c, 61)
}

func scenarioNamed(name string) scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	panic("no scenario " + name)
}
