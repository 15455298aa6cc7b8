package render

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

// userPerSite is a user's template that has per-site parts, with a value passed for all sites;
// userPlain has none (every render runs all of it).
const (
	userPerSite = `sites: {{ len .Sites }} listen {{ .Listen }}
{{- perSite "site" .Sites $ (len .Sites) }}
{{- define "site" }}
{{ .Site.Host }} of {{ .With }}{{ if .Site.TLS }} tls={{ .Site.TLS.HTTPS }}{{ end }}:{{ range .Site.Routes }} {{ .Path }}={{ range .Backend.Servers }}{{ .Address }}/{{ .Weight }},{{ end }}{{ end }} root={{ .DefaultRoot }}
{{- end }}
`
	userPlain = `{{ range .Sites }}{{ .Host }}:{{ range .Routes }} {{ .Backend.Name }}{{ end }}
{{ end }}`
)

// incrementalWorld is a random set of workloads and settings that random steps change: the kinds
// of change a gateway sees (a container's labels, networks, health; the proxy's networks; the
// operator's settings and snippets).
type incrementalWorld struct {
	rng   *rand.Rand
	ws    []discovery.Workload
	next  int
	ro    routing.Options
	o     Options
	hosts []string
}

func newWorld(seed uint64, ro routing.Options, o Options) *incrementalWorld {
	w := &incrementalWorld{rng: rand.New(rand.NewPCG(seed, 1)), ro: ro, o: o,
		hosts: []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com", "*.example.org", "shop.*", "api.example.org"}}
	w.ro.ProxyNetworks = []string{"frontend"}
	for range 12 {
		w.add()
	}
	return w
}

func (w *incrementalWorld) pick(xs ...string) string { return xs[w.rng.IntN(len(xs))] }

func (w *incrementalWorld) add() {
	w.next++
	labels := host(w.pick(w.hosts...))
	if w.rng.IntN(3) == 0 {
		labels["VIRTUAL_HOST"] += "," + w.pick(w.hosts...)
	}
	w.ws = append(w.ws, ctr(fmt.Sprintf("w%03d", w.next), fmt.Sprintf("10.0.%d.%d", w.next/200, w.next%200+2), labels, 80))
}

// labelChanges are the settings a step may set on a workload (empty: removed).
var labelChanges = map[string][]string{
	"VIRTUAL_PATH":             {"", "/api/", "/static/", "/"},
	"VIRTUAL_DEST":             {"", "/v1/"},
	"VIRTUAL_PROTO":            {"", "https", "grpc"},
	"VIRTUAL_WEIGHT":           {"", "0", "3"},
	"NETWORK_ACCESS":           {"", "internal"},
	"SERVER_TOKENS":            {"", "off", "build"},
	"HTTPS_METHOD":             {"", "redirect", "noredirect", "nohttp", "nohttps"},
	"HSTS":                     {"", "off", "max-age=600"},
	routing.SettingLoadBalance: {"", "least_conn;", "hash $cookie_session consistent;"},
	routing.SettingKeepalive:   {"", "disabled", "16"},
}

// step changes the world once, at random.
func (w *incrementalWorld) step() string {
	if len(w.ws) == 0 {
		w.add()
		return "add"
	}
	i := w.rng.IntN(len(w.ws))
	wl := &w.ws[i]
	// Copy what is changed: the render of the last step holds the old maps and slices.
	switch w.rng.IntN(12) {
	case 0:
		w.add()
		return "add"
	case 1:
		w.ws = append(w.ws[:i:i], w.ws[i+1:]...)
		return "remove " + wl.Name
	case 2, 3, 4:
		key := w.pick(sortedKeys(labelChanges)...)
		v := w.pick(labelChanges[key]...)
		wl.Labels = with(clone(wl.Labels), key, v)
		if v == "" {
			delete(wl.Labels, key)
		}
		return fmt.Sprintf("%s %s=%q", wl.Name, key, v)
	case 5:
		wl.Labels = with(clone(wl.Labels), "VIRTUAL_HOST", w.pick(w.hosts...))
		return wl.Name + " VIRTUAL_HOST " + wl.Labels["VIRTUAL_HOST"]
	case 6:
		nets := []discovery.Network{{Name: w.pick("frontend", "frontend", "backend"), ID: "n", IP: fmt.Sprintf("10.1.%d.%d", w.rng.IntN(3), w.rng.IntN(200)+2)}}
		wl.Networks = nets
		return wl.Name + " network " + nets[0].Name + " " + nets[0].IP
	case 7:
		wl.Health = w.pick("", discovery.HealthStarting, discovery.HealthUnhealthy, discovery.HealthHealthy)
		return wl.Name + " health " + wl.Health
	case 8:
		w.ro.ProxyNetworks = [][]string{{"frontend"}, {"frontend", "backend"}, {"backend"}}[w.rng.IntN(3)]
		return "proxy networks " + strings.Join(w.ro.ProxyNetworks, ",")
	case 9:
		switch w.rng.IntN(4) {
		case 0:
			w.o.TrustDownstreamProxy = !w.o.TrustDownstreamProxy
		case 1:
			w.o.DefaultRoot, _ = routing.ParseDefaultRoot(w.pick("", "none", "301 https://example.net/"))
		case 2:
			w.o.EnableIPv6 = !w.o.EnableIPv6
		case 3:
			w.o.ExternalHTTPPort = w.rng.IntN(2) * 8080
		}
		return "options"
	case 10:
		files := map[string]string{}
		if w.rng.IntN(2) == 0 {
			files[w.pick(w.hosts[:4]...)] = fmt.Sprintf("# snippet %d", w.rng.IntN(100))
		}
		w.o.Snippets = snippets.New("/snippets", files)
		return fmt.Sprintf("snippets %v", files)
	default:
		w.ro.DefaultHost = w.pick("", "a.example.com", "shop.example.net")
		return "DEFAULT_HOST " + w.ro.DefaultHost
	}
}

func clone(m map[string]string) map[string]string { return maps.Clone(m) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// TestIncrementalRender is the property the per-site parts rest on: over random sequences of
// changes, a renderer that keeps its parts from render to render, of tables a routing.Cache
// builds, writes the bytes a new renderer (which runs every part) writes of tables built whole, for both shipped templates (HTTP only and with HTTPS) and for
// users' templates with and without per-site parts.
func TestIncrementalRender(t *testing.T) {
	type tmpl struct{ name, proxy, text string }
	tmpls := []tmpl{{"nginx", "nginx", ""}, {"haproxy", "haproxy", ""}, {"user-persite", "", userPerSite}, {"user-plain", "", userPlain}}
	for _, tc := range tmpls {
		for _, https := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/https=%v", tc.name, https), func(t *testing.T) {
				load := func() *Renderer {
					if tc.text != "" {
						r, err := Parse(tc.name, tc.text)
						if err != nil {
							t.Fatal(err)
						}
						return r
					}
					r, err := Load(tc.proxy, "")
					if err != nil {
						t.Fatal(err)
					}
					return r
				}
				ro, o := routing.Options{TCP: tc.proxy == "haproxy"}, Options{Listen: "80", Runtime: "/run/admin.sock"}
				if https {
					ro.TLS = &routing.TLSOptions{Certs: everyCert{}, Method: routing.MethodRedirect, HTTPSPort: 443, Policy: "Mozilla-Intermediate"}
					o.HTTPS, o.CrtList = "443", "/etc/haproxy/crt-list"
				}
				for seed := range uint64(4) {
					w := newWorld(seed, ro, o)
					kept := load()
					var tables routing.Cache
					var log []string
					for step := range 120 {
						log = append(log, w.step())
						got, err := kept.Render(NewData(tables.Build(slices.Clone(w.ws), w.ro), w.o))
						if err != nil {
							t.Fatalf("seed %d step %d: %v", seed, step, err)
						}
						want, err := load().Render(NewData(routing.Build(w.ws, w.ro), w.o))
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("seed %d, after %d steps (the last: %s): the render that reused parts differs from a full one:\n%s",
								seed, step+1, strings.Join(log[max(0, len(log)-5):], "; "), firstDiff(got, want))
						}
					}
				}
			})
		}
	}
}

// firstDiff shows where two outputs part.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, bytes.LastIndexByte(got[:i], '\n')-200)
	return fmt.Sprintf("got:\n%s\nwant:\n%s", got[from:min(len(got), i+200)], want[from:min(len(want), i+200)])
}

// TestPartsReused: after a change of one workload, a render runs that site's parts only; the
// others are reused.
func TestPartsReused(t *testing.T) {
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			var ws []discovery.Workload
			for i := range 30 {
				ws = append(ws, ctr(fmt.Sprintf("w%02d", i), fmt.Sprintf("10.0.0.%d", i+2), host(fmt.Sprintf("s%02d.example.com", i)), 80))
			}
			r, err := Load(p.name, "")
			if err != nil {
				t.Fatal(err)
			}
			render := func() {
				t.Helper()
				out, err := r.Render(NewData(routing.Build(ws, p.routing), p.render))
				if err != nil {
					t.Fatal(err)
				}
				inOutput(t, r, out)
			}
			render()
			if r.parts.ran < len(ws) {
				t.Fatalf("the first render ran %d parts for %d sites", r.parts.ran, len(ws))
			}
			perSite := r.parts.ran / len(ws)
			render()
			if r.parts.ran != 0 {
				t.Errorf("a render of the same table ran %d parts, want 0", r.parts.ran)
			}
			ws[7].Networks = []discovery.Network{{Name: "frontend", ID: "net1", IP: "10.0.9.9"}}
			render()
			if r.parts.ran != perSite {
				t.Errorf("after one workload's change, a render ran %d parts, want %d (that site's)", r.parts.ran, perSite)
			}
			if len(r.parts.sites) != len(ws) {
				t.Errorf("%d sites stored, want %d", len(r.parts.sites), len(ws))
			}
			ws = ws[:20]
			render()
			if len(r.parts.sites) != 20 {
				t.Errorf("after 10 sites went, %d sites stored, want 20", len(r.parts.sites))
			}
		})
	}
}

// inOutput fails unless every part the store keeps is the bytes of out it was written to: the
// store keeps no part twice, and no older output alive.
func inOutput(t *testing.T, r *Renderer, out []byte) {
	t.Helper()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(out)))
	n := 0
	for host, sp := range r.parts.sites {
		for _, o := range sp.outs {
			at := uintptr(unsafe.Pointer(unsafe.StringData(o.text)))
			if o.text != "" && (at < lo || at+uintptr(len(o.text)) > lo+uintptr(len(out)) || string(out[at-lo:at-lo+uintptr(len(o.text))]) != o.text) {
				t.Fatalf("site %s: part %s is not in the render's output", host, o.name)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no parts stored")
	}
}

// TestPartsStoreBusy: a render that finds the store held (an abandoned render past its timeout
// still holds it) runs every part and writes the same bytes.
func TestPartsStoreBusy(t *testing.T) {
	ws := []discovery.Workload{ctr("a", "10.0.0.2", host("a.example.com"), 80), ctr("b", "10.0.0.3", host("b.example.com"), 80)}
	r, _ := Load("nginx", "")
	d := NewData(routing.Build(ws, opts), Options{Listen: "80"})
	want, err := r.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	r.parts.mu.Lock()
	got, err := r.Render(d)
	r.parts.mu.Unlock()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("render with the store held: %v\n%s", err, firstDiff(got, want))
	}
}

// TestPerSiteErrors: a part's error names its site; perSite needs the render's own data.
func TestPerSiteErrors(t *testing.T) {
	ws := []discovery.Workload{ctr("a", "10.0.0.2", host("a.example.com"), 80)}
	d := NewData(routing.Build(ws, opts), Options{Listen: "80"})
	for text, want := range map[string]string{
		`{{ perSite "p" .Sites $ }}{{ define "p" }}{{ fail "no" }}{{ end }}`:  "site a.example.com: ",
		`{{ perSite "p" .Sites $ 1 2 }}{{ define "p" }}{{ end }}`:             "at most one value",
		`{{ perSite "missing" .Sites $ }}`:                                    `no template "missing"`,
		`{{ perSite "p" .Sites $ }}{{ define "p" }}{{ .Site.Nope }}{{ end }}`: "site a.example.com: ",
	} {
		r, err := Parse("user", text)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Render(d); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one with %q", text, err, want)
		}
	}
}

// BenchmarkChange10k is the cost of one change at 10,000 workloads (3,334 sites): one workload's
// address changes, then the table is built (parsing only that workload's settings again) and
// rendered (running only its site's parts), as the watch loop does.
func BenchmarkChange10k(b *testing.B) { benchChange(b, 10000, false) }

// BenchmarkChange1k is BenchmarkChange10k at 1,000 workloads (334 sites).
func BenchmarkChange1k(b *testing.B) { benchChange(b, 1000, false) }

// BenchmarkWholeChange10k is BenchmarkChange10k when the table is built whole (a TCP service or
// an ACME request changed, new options, new certificates): the render still reuses the parts of
// the sites that did not change.
func BenchmarkWholeChange10k(b *testing.B) { benchChange(b, 10000, true) }

func benchChange(b *testing.B, n int, whole bool) {
	for _, p := range proxies {
		b.Run(p.name, func(b *testing.B) {
			ws := make([]discovery.Workload, 0, n)
			for i := range n {
				ws = append(ws, ctr(fmt.Sprintf("web-%05d", i), fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256+1),
					host(fmt.Sprintf("site-%05d.example.com", i/3))))
			}
			r, err := Load(p.name, "")
			if err != nil {
				b.Fatal(err)
			}
			var c routing.Cache
			if _, err := r.Render(NewData(c.Build(ws, p.routing), p.render)); err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				ws = slices.Clone(ws) // as the inventory's snapshots: a Build's workloads do not change
				ws[i%len(ws)].Networks = []discovery.Network{{Name: "frontend", ID: "net1", IP: fmt.Sprintf("10.99.%d.%d", i/256%256, i%256)}}
				if whole {
					c.Invalidate()
				}
				if _, err := r.Render(NewData(c.Build(ws, p.routing), p.render)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSameSite: two sites that share their routes but differ in any one field are not the same
// (a field added to routing.Site and not to sameSite fails here).
func TestSameSite(t *testing.T) {
	routes := []routing.Route{{Path: "/"}}
	base := routing.Site{Host: "a.example.com", Routes: routes}
	if !sameSite(&base, &base) {
		t.Fatal("a site is not the same as itself")
	}
	typ := reflect.TypeFor[routing.Site]()
	for i := range typ.NumField() {
		other := base
		f := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.ValueOf(slices.Clone(routes)))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", typ.Field(i).Name, f.Kind())
		}
		if sameSite(&base, &other) {
			t.Errorf("sites differing in %s are taken for the same", typ.Field(i).Name)
		}
	}
}
