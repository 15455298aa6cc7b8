package render

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// TestDefaultHostTLSLive runs nginx and HAProxy with HTTPS and DEFAULT_HOST naming a redirected
// site, without and with a default certificate: a host no site claims on HTTP (unknown, or a
// nohttp site's) is redirected to DEFAULT_HOST's own name, with its NON_GET_REDIRECT, and still
// answers ACME challenges; over HTTPS, a Host no site claims gets DEFAULT_HOST's site with its
// HSTS; DEFAULT_ROOT answers "/" of a site with paths only. One difference, on purpose: an SNI
// name no site claims gets DEFAULT_HOST's certificate from nginx (as nginx-proxy, whose default
// server is then DEFAULT_HOST's), while HAProxy 2.6 shows the default certificate, or refuses the
// handshake without one (its crt-list has no fallback of its own).
func TestDefaultHostTLSLive(t *testing.T) {
	requireBinary(t, "nginx")
	requireBinary(t, "haproxy")
	const lo = "127.0.0.1"
	responder := acmeResponder(t)
	backends := map[string]*liveBackend{}
	port := func(name string) int {
		if backends[name] == nil {
			backends[name] = newLiveBackend(t, name, false)
		}
		return backends[name].port()
	}
	ws := []discovery.Workload{
		ctr("www", lo, with(host("www.example.com"), "NON_GET_REDIRECT", "307", "HSTS", "max-age=600"), port("www")),
		ctr("nohttp", lo, with(host("nohttp.example.com"), "HTTPS_METHOD", "nohttp"), port("nohttp")),
		ctr("docs", lo, with(host("docs.example.com"), "VIRTUAL_PATH", "/v2/"), port("docs")),
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	const sts = "max-age=31536000"
	served := func(name, sts string) tlsSeen {
		return tlsSeen{Status: 200, Served: name, XFP: "https", XFSsl: "on", XFPort: "P443", STS: sts, Cert: "example.com"}
	}
	redirect := func(code int, to string) tlsSeen { return tlsSeen{Status: code, Location: to} }
	for _, withDefault := range []bool{false, true} {
		unknownSNI := tlsSeen{Cert: "refused: remote error: tls: unrecognized name"}
		if withDefault {
			unknownSNI = served("www", "max-age=600")
			unknownSNI.Cert = "default.invalid"
		}
		nginxUnknownSNI := served("www", "max-age=600")
		cases := []tlsCase{
			{name: "HTTP unknown", host: "unknown.example.org", path: "/a?b=1", want: redirect(301, "https://www.example.com:P443/a?b=1")},
			{name: "HTTP unknown POST", method: "POST", host: "unknown.example.org", path: "/f", want: redirect(307, "https://www.example.com:P443/f")},
			{name: "HTTP unknown, not a host name", host: "evil.test?x", path: "/", want: redirect(301, "https://www.example.com:P443/")},
			{name: "HTTP nohttp site", host: "nohttp.example.com", want: redirect(301, "https://www.example.com:P443/")},
			{name: "HTTP the site itself", host: "www.example.com", want: redirect(301, "https://www.example.com:P443/")},
			{name: "HTTP another site", host: "docs.example.com", path: "/v2/x", want: redirect(301, "https://docs.example.com:P443/v2/x")},
			{name: "ACME unknown host", host: "unknown.example.org", path: "/.well-known/acme-challenge/known-token", want: tlsSeen{Status: 200, Responder: true}},
			{name: "HTTPS Host unknown", https: true, sni: "www.example.com", host: "unknown.example.org", path: "/x", want: served("www", "max-age=600")},
			{name: "HTTPS Host unknown, other SNI", https: true, sni: "docs.example.com", host: "unknown.example.org", want: served("www", "max-age=600")},
			{name: "HTTPS the site itself", https: true, host: "www.example.com", want: served("www", "max-age=600")},
			{name: "HTTPS nohttp site", https: true, host: "nohttp.example.com", want: served("nohttp", sts)},
			{name: "HTTPS DEFAULT_ROOT", https: true, host: "docs.example.com", want: tlsSeen{Status: 418, STS: sts, Cert: "example.com"}},
			{name: "HTTPS a path", https: true, host: "docs.example.com", path: "/v2/y", want: served("docs", sts)},
			{name: "SNI unknown", https: true, host: "unknown.example.org", want: unknownSNI, nginxWant: &nginxUnknownSNI},
		}
		name := "strict-sni"
		if withDefault {
			name = "default-cert"
		}
		t.Run(name, func(t *testing.T) {
			for _, proxy := range []string{"nginx", "haproxy"} {
				t.Run(proxy, func(t *testing.T) {
					httpAddr, httpsAddr := lo+":"+strconv.Itoa(freePort(t)), lo+":"+strconv.Itoa(freePort(t))
					_, p443, _ := net.SplitHostPort(httpsAddr)
					n443, _ := strconv.Atoi(p443)
					ts := &tlsScenario{https: httpsAddr, port: n443, acme: true, acmeResponder: responder, defaultCert: withDefault}
					store := newTestStore(testdata+"/", ts)
					table := routing.Build(ws, routing.Options{ProxyNetworks: []string{"frontend"}, TLS: ts.routingOptions(store), DefaultHost: "www.example.com"})
					if len(table.Problems) != 0 {
						t.Fatalf("problems: %v", table.Problems)
					}
					o := ts.renderOptions(Options{Listen: httpAddr, Runtime: filepath.Join(t.TempDir(), "admin.sock")}, store, testdata+"/")
					o.CrtList = filepath.Join(t.TempDir(), "crt-list")
					o.DefaultRoot = routing.DefaultRoot{Status: 418}
					writeTLSFiles(t, table.Sites, o.CrtList)
					r, err := Load(proxy, "")
					if err != nil {
						t.Fatal(err)
					}
					cfg, err := r.Render(NewData(table, o))
					if err != nil {
						t.Fatal(err)
					}
					if proxy == "nginx" {
						startNginx(t, cfg, httpAddr)
					} else {
						startHAProxy(t, cfg, httpAddr)
					}
					l := tlsLive{http: httpAddr, https: httpsAddr}
					for _, c := range cases {
						want := c.want
						if c.nginxWant != nil && proxy == "nginx" {
							want = *c.nginxWant
						}
						if got := l.do(t, c); got != want {
							t.Errorf("%s:\n got %v\nwant %v", c.name, got, want)
						}
					}
				})
			}
		})
	}
}
