package render

import (
	"fmt"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// everyCert has a certificate for every host, so that every site is served over HTTPS too.
type everyCert struct{}

func (everyCert) Select(host, _ string, _ bool) routing.CertChoice {
	return routing.CertChoice{Via: "exact", Cert: routing.CertInfo{Name: host, Source: "file",
		CertFile: "/certs/" + host + ".crt", KeyFile: "/certs/" + host + ".key", PEMFile: "/certs/" + host + ".pem"}}
}

// BenchmarkRender10k renders 10,000 sites (one workload each) with the shipped templates, HTTP
// only and HTTP and HTTPS: the scale MaxOutput and Timeout are set against (the "bytes" metric is
// the config's size), and the cost of the bounds (the writer, the ticks) on a real render.
func BenchmarkRender10k(b *testing.B) {
	ws := make([]discovery.Workload, 0, 10000)
	for i := range 10000 {
		ws = append(ws, ctr(fmt.Sprintf("web-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256+1),
			host(fmt.Sprintf("site-%05d.example.com", i))))
	}
	for _, p := range proxies {
		for _, https := range []bool{false, true} {
			ro, o := p.routing, p.render
			name := p.name + "/http"
			if https {
				name = p.name + "/https"
				ro.TLS = &routing.TLSOptions{Certs: everyCert{}, Method: routing.MethodRedirect, HTTPSPort: 443, HSTS: "max-age=31536000", Policy: "Mozilla-Intermediate"}
				o.HTTPS, o.CrtList = "443", "/etc/haproxy/crt-list"
			}
			b.Run(name, func(b *testing.B) {
				r, err := Load(p.name, "")
				if err != nil {
					b.Fatal(err)
				}
				d := NewData(routing.Build(ws, ro), o)
				b.ReportAllocs()
				size := 0
				for b.Loop() {
					r.parts = &siteStore{} // a whole render: no part kept from the last
					out, err := r.Render(d)
					if err != nil {
						b.Fatal(err)
					}
					size = len(out)
				}
				b.ReportMetric(float64(size), "bytes")
			})
		}
	}
}
