package render

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var opts = routing.Options{ProxyNetworks: []string{"frontend"}}

func renderScenario(t testing.TB, r *Renderer, ws []discovery.Workload) []byte {
	t.Helper()
	out, err := r.Render(NewData(routing.Build(ws, opts), Options{Listen: "80"}))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// proxyCase is one shipped template and what vhost-gen would run it with: the routing and
// render options, and the real proxy's check.
type proxyCase struct {
	name, binary, ext string
	routing           routing.Options
	render            Options
	check             apply.CheckFunc
}

var proxies = []proxyCase{
	{name: "nginx", binary: "nginx", ext: ".conf", routing: opts, render: Options{Listen: "80"}, check: apply.NginxCheck("nginx")},
	{name: "haproxy", binary: "haproxy", ext: ".cfg",
		routing: routing.Options{ProxyNetworks: []string{"frontend"}, TCP: true, ReservedPorts: map[int]string{80: "--listen", 8404: "--haproxy-stats"},
			UnsupportedProtos: UnsupportedProtos("haproxy", "")},
		render: Options{Listen: "80", Runtime: "/run/haproxy/admin.sock", Stats: "127.0.0.1:8404"},
		check:  haproxyCheck},
}

// haproxyCheck is stricter than vhost-gen's own check (haproxy -c -q): a warning fails too, and
// HAProxy's messages are kept for the test's output.
func haproxyCheck(ctx context.Context, file string) error {
	if err := apply.Run(ctx, []string{"haproxy", "-dW", "-c", "-f", file}); err != nil {
		return err
	}
	return apply.HAProxyCheck("haproxy")(ctx, file)
}

// requireBinary fails (never skips) when the real proxy is missing: the goldens are only worth
// something if the proxy itself accepts them.
func requireBinary(t testing.TB, binary string) {
	t.Helper()
	if _, err := exec.LookPath(binary); err != nil {
		t.Fatalf("%s is not installed: these tests check every rendered config with the real %s and never skip; install it (apt-get install %s, or make test): %v", binary, binary, binary, err)
	}
}

func (p proxyCase) renderScenario(t testing.TB, r *Renderer, ws []discovery.Workload) []byte {
	t.Helper()
	return p.renderWith(t, r, ws, p.render)
}

func (p proxyCase) renderWith(t testing.TB, r *Renderer, ws []discovery.Workload, o Options) []byte {
	t.Helper()
	out, err := r.Render(NewData(routing.Build(ws, p.routing), o))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// options are the render options for a scenario: the proxy's, with the scenario's settings.
func (p proxyCase) options(sc scenario) Options {
	o := p.render
	o.TrustDownstreamProxy = sc.trustDownstreamProxy
	o.DefaultRoot, o.ServerTokensOff = sc.defaultRoot, sc.serverTokensOff
	if files := sc.snippets[p.name]; files != nil {
		o.Snippets = snippets.New("/vhost-gen-test/snippets", files)
	}
	o.AccessLog, o.EnableIPv6, o.EnableHTTP2 = sc.accessLog, sc.ipv6, sc.ipv6
	o.ExternalHTTPPort, o.ExternalHTTPSPort = sc.externalPorts[0], sc.externalPorts[1]
	o.ProxyProtocol, o.Resolvers = sc.proxyProtocol, sc.resolvers
	if sc.errorPage {
		o.ErrorPages = snippets.New(strings.TrimSuffix(goldenRoot, "/")+"/errors", map[string]string{"50x.html": scenarioErrorPage})
	}
	if sc.htpasswd != nil {
		o.Htpasswd = snippets.New("/vhost-gen-test/htpasswd", sc.htpasswd)
	}
	return o
}

// scenarioData is what a scenario renders from with this proxy: its table and render options,
// with the test certificates under root (goldenRoot for the goldens).
func (p proxyCase) scenarioData(sc scenario, ws []discovery.Workload, root string) Data {
	ro, o := p.routing, p.options(sc)
	ro.DefaultHost, ro.PreferIPv6 = sc.defaultHost, sc.ipv6
	if sc.tls != nil {
		store := newTestStore(root, sc.tls)
		ro.TLS = sc.tls.routingOptions(store)
		o = sc.tls.renderOptions(o, store, root)
	}
	return NewData(routing.Build(ws, ro), o)
}

func renderData(t testing.TB, r *Renderer, d Data) []byte {
	t.Helper()
	out, err := r.Render(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareGolden compares got with a golden file (rewriting it first with -update).
func compareGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("rendered output differs from %s (run with -update if the change is intended):\n%s", golden, got)
	}
}

// stageGolden copies a golden config (and its crt-list, if any) into a directory where what it
// names under goldenRoot exists: the test certificates in certs/, the crt-list beside it.
func stageGolden(t *testing.T, golden, crtList string, maps []File) string {
	t.Helper()
	dir := t.TempDir()
	certs, err := filepath.Abs(testCertsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(certs, filepath.Join(dir, "certs")); err != nil {
		t.Fatal(err)
	}
	stage := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, bytes.ReplaceAll(b, []byte(goldenRoot), []byte(dir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The error page of the scenarios that have one (HAProxy reads it at its check).
	os.Mkdir(filepath.Join(dir, "errors"), 0o755)
	os.WriteFile(filepath.Join(dir, "errors", "50x.html"), []byte(scenarioErrorPage), 0o644)
	staged := filepath.Join(dir, filepath.Base(golden))
	stage(golden, staged)
	if crtList != "" {
		stage(crtList, filepath.Join(dir, "haproxy.crt-list"))
	}
	for _, m := range maps {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(m.Path)), m.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return staged
}

// haproxyMapFiles are the map files an HAProxy scenario with HTTPS reads (their entries are in
// the golden config, as comments).
func haproxyMapFiles(t *testing.T, proxy string, sc scenario, d Data) []File {
	t.Helper()
	if proxy != "haproxy" || sc.tls == nil {
		return nil
	}
	files, err := HAProxyTLSFiles(d.Sites, d.CrtList)
	if err != nil {
		t.Fatal(err)
	}
	return files[1:]
}

// haproxyCheckNoCerts accepts the one warning of an HTTPS bind without any certificate (its
// crt-list is empty; strict-sni keeps HAProxy starting, and certificates can be added at run
// time), and nothing else.
func haproxyCheckNoCerts(ctx context.Context, file string) error {
	err := apply.Run(ctx, []string{"haproxy", "-dW", "-c", "-f", file})
	if err == nil {
		return errors.New("no warning for an HTTPS bind without any certificate: use haproxyCheck")
	}
	warnings := regexp.MustCompile(`\[WARNING\][^\n]*`).FindAllString(err.Error(), -1)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no SSL certificate specified for bind") {
		return err
	}
	return apply.HAProxyCheck("haproxy")(ctx, file)
}

// TestGolden compares every scenario, rendered by every shipped template, with its golden file
// (testdata/golden/PROXY/SCENARIO.EXT), and passes each golden file through the real proxy's
// check (nginx -t, haproxy -c).
func TestGolden(t *testing.T) {
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			requireBinary(t, p.binary)
			r, err := Load(p.name, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					d := p.scenarioData(sc, sc.workloads, goldenRoot)
					golden := filepath.Join("testdata", "golden", p.name, sc.name+p.ext)
					compareGolden(t, golden, renderData(t, r, d))
					var crtList string
					check := p.check
					if p.name == "haproxy" && sc.tls != nil {
						crtList = filepath.Join("testdata", "golden", p.name, sc.name+".crt-list")
						compareGolden(t, crtList, CrtList(d.Sites))
						if sc.tls.noCerts {
							check = haproxyCheckNoCerts
						}
					}
					if err := check(context.Background(), stageGolden(t, golden, crtList, haproxyMapFiles(t, p.name, sc, d))); err != nil {
						t.Errorf("%s rejects %s: %v", p.binary, golden, err)
					}
				})
			}
		})
	}
}

// TestGoldenFilesHaveScenarios: a scenario that was renamed or removed leaves no stale golden.
func TestGoldenFilesHaveScenarios(t *testing.T) {
	for _, p := range proxies {
		files, err := filepath.Glob(filepath.Join("testdata", "golden", p.name, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			base := filepath.Base(f)
			if !slices.ContainsFunc(scenarios, func(sc scenario) bool {
				return base == sc.name+p.ext || p.name == "haproxy" && sc.tls != nil && base == sc.name+".crt-list"
			}) {
				t.Errorf("%s has no scenario: delete it", f)
			}
		}
	}
}

// TestDeterministic renders every scenario in many orders: the bytes never change.
func TestDeterministic(t *testing.T) {
	for _, p := range proxies {
		r, err := Load(p.name, "")
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for _, sc := range scenarios {
			d := p.scenarioData(sc, sc.workloads, goldenRoot)
			want, wantList := renderData(t, r, d), CrtList(d.Sites)
			for range 50 {
				ws := slices.Clone(sc.workloads)
				rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
				d := p.scenarioData(sc, ws, goldenRoot)
				if got := renderData(t, r, d); !bytes.Equal(got, want) {
					t.Fatalf("%s %s: a different order rendered different bytes", p.name, sc.name)
				}
				if got := CrtList(d.Sites); !bytes.Equal(got, wantList) {
					t.Fatalf("%s %s: a different order gave a different crt-list", p.name, sc.name)
				}
			}
		}
	}
}

// TestBadNeighbourNeverReachesConfig: values from the hostile containers appear nowhere.
func TestBadNeighbourNeverReachesConfig(t *testing.T) {
	ws := scenarioNamed("bad-neighbour").workloads
	for _, p := range proxies {
		r, _ := Load(p.name, "")
		out := string(p.renderScenario(t, r, ws))
		for _, bad := range []string{"passwd", "evil", "return 200", "lost.example.com", "a.example.com"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s config contains %q from a rejected container:\n%s", p.name, bad, out)
			}
		}
		if !strings.Contains(out, "good.example.com") {
			t.Errorf("%s: the valid neighbour is missing:\n%s", p.name, out)
		}
		table := routing.Build(ws, p.routing)
		if len(table.Problems) != 4 {
			t.Errorf("%s: want 4 problems, got %d: %v", p.name, len(table.Problems), table.Problems)
		}
	}
	r, _ := Load("nginx", "")
	if out := string(renderScenario(t, r, ws)); !strings.Contains(out, "server_name good.example.com;") {
		t.Errorf("the valid neighbour is missing:\n%s", out)
	}
}

func TestUserTemplate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "custom.tmpl")
	text := `{{ range .Sites }}{{ .Host | upper }}{{ range .Routes }} {{ len .Backend.Servers }}{{ end }}
{{ end }}{{ range .Workloads }}{{ .Name }}={{ index .Labels "VIRTUAL_HOST" | default "-" }};{{ end }} listen={{ .Listen }}`
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load("nginx", file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Render(NewData(routing.Build(scenarioNamed("replicas").workloads, opts), Options{Listen: "8080"}))
	if err != nil {
		t.Fatal(err)
	}
	want := "WEB.EXAMPLE.COM 3\nweb-1=web.example.com;web-2=web.example.com;web-3=web.example.com; listen=8080"
	if string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTemplateErrors(t *testing.T) {
	if _, err := Parse("broken.tmpl", "{{ range .Sites }"); err == nil || !strings.Contains(err.Error(), "broken.tmpl") {
		t.Errorf("parse error should name the template, got %v", err)
	}
	r, err := Parse("missing.tmpl", "{{ .NoSuchField }}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render(Data{}); err == nil || !strings.Contains(err.Error(), "missing.tmpl") {
		t.Errorf("execution error should name the template, got %v", err)
	}
	if _, err := Load("nginx", "/does/not/exist.tmpl"); err == nil || !strings.Contains(err.Error(), "/does/not/exist.tmpl") {
		t.Errorf("missing file should be named, got %v", err)
	}
	if _, err := Load("traefik", ""); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("unknown proxy should list the shipped ones, got %v", err)
	}
}

func TestFuncs(t *testing.T) {
	if a, b := ident("a-b.c"), ident("a_b.c"); a == b {
		t.Errorf("ident collides: %s", a)
	}
	if got := ident("Shop.example.com_api"); strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Errorf("ident %q has characters outside [a-z0-9_]", got)
	}
	if got := comment("x\n}{;$\"'`\\\x00é"); strings.ContainsAny(got, "\n}{;$\"'`\\\x00") || strings.ContainsRune(got, 'é') {
		t.Errorf("comment left unsafe characters: %q", got)
	}
}

func BenchmarkBuildAndRender(b *testing.B) {
	r, _ := Load("nginx", "")
	var ws []discovery.Workload
	for i := range 300 {
		ws = append(ws, ctr("web-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "10.0.1."+string(rune('0'+i%10)),
			host("site"+string(rune('a'+i%50))+".example.com")))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(NewData(routing.Build(ws, opts), Options{Listen: "80"})); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNameHashSizesAcceptedByNginx renders one site per host-name length around the bucket
// boundaries and lets the real nginx -t judge the computed hash sizes.
func TestNameHashSizesAcceptedByNginx(t *testing.T) {
	r, _ := Load("nginx", "")
	check := apply.NginxCheck("nginx")
	dir := t.TempDir()
	for _, n := range []int{1, 40, 60, 100, 109, 110, 111, 112, 118, 119, 120, 200, 237, 238, 239, 246, 247, 253} {
		var labels []string
		for rest := n; rest > 0; rest -= 64 { // labels of up to 63 characters and a dot
			labels = append(labels, strings.Repeat("a", min(63, rest)))
		}
		name := strings.Join(labels, ".")[:n]
		name = strings.TrimSuffix(name, ".") + strings.Repeat("b", n-len(strings.TrimSuffix(name, ".")))
		if _, err := routing.ParseHost(name); err != nil || len(name) != n {
			t.Fatalf("bad test name of length %d: %v", n, err)
		}
		out := renderScenario(t, r, []discovery.Workload{ctr("w", "10.0.0.2", host(name))})
		file := filepath.Join(dir, "len.conf")
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := check(context.Background(), file); err != nil {
			t.Errorf("host name of %d characters: %v", n, err)
		}
	}
}

// TestLongestNamesAccepted renders the longest values the settings allow — 253-character host
// names (exact and wildcard), 1024-character paths and destinations, a 64-character sticky cookie —
// and lets the real nginx -t and haproxy -c judge every name derived from them.
func TestLongestNamesAccepted(t *testing.T) {
	path := "/" + strings.Repeat("p", 1022) + "/"
	dest := "/" + strings.Repeat("d", 1022) + "/"
	cookie := strings.Repeat("C", 64)
	ws := []discovery.Workload{
		ctr("root", "10.0.0.2", with(host(longestHost("a")), "VIRTUAL_STICKY", cookie)),
		ctr("path", "10.0.0.3", with(host(longestHost("a")), "VIRTUAL_STICKY", cookie, "VIRTUAL_PATH", path, "VIRTUAL_DEST", dest)),
		ctr("wild", "10.0.0.4", with(host("*."+longestHost("b")[2:]), "VIRTUAL_STICKY", cookie, "VIRTUAL_PATH", path)),
		ctr("tail", "10.0.0.5", with(host(longestHost("c")[:251]+".*"), "VIRTUAL_STICKY", "s", "VIRTUAL_PATH", path, "VIRTUAL_PROTO", "https")),
	}
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) {
			requireBinary(t, p.binary)
			r, err := Load(p.name, "")
			if err != nil {
				t.Fatal(err)
			}
			table := routing.Build(ws, p.routing)
			if len(table.Problems) != 0 || len(table.Sites) != 3 {
				t.Fatalf("want 3 sites and no problems, got %d sites, problems %v", len(table.Sites), table.Problems)
			}
			for _, trust := range []bool{false, true} {
				o := p.render
				o.TrustDownstreamProxy = trust
				file := filepath.Join(t.TempDir(), "longest"+p.ext)
				if err := os.WriteFile(file, p.renderWith(t, r, ws, o), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := p.check(context.Background(), file); err != nil {
					t.Errorf("trust-downstream-proxy %v: %s rejects the longest names: %v", trust, p.binary, err)
				}
			}
			// Over HTTPS too: each site with a certificate, redirected (the wildcards' to the
			// request's host) and with HSTS, or served on both ports.
			var tlsWs []discovery.Workload
			for i, w := range ws {
				w.Labels = with(maps.Clone(w.Labels), "CERT_NAME", "shared", "NON_GET_REDIRECT", "308")
				if i == 0 {
					w.Labels["HTTPS_METHOD"] = "noredirect"
				}
				tlsWs = append(tlsWs, w)
			}
			testdata, err := filepath.Abs("testdata")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			d := p.scenarioData(scenario{tls: &tlsScenario{acme: true}}, tlsWs, testdata+"/")
			d.CrtList = filepath.Join(dir, "crt-list")
			if len(d.Problems) != 0 || len(d.Sites) != 3 || !d.Sites[0].TLS.HTTPS() {
				t.Fatalf("want 3 sites served over HTTPS and no problems, got %d sites, problems %v", len(d.Sites), d.Problems)
			}
			file := filepath.Join(dir, "longest"+p.ext)
			writeTLSFiles(t, d.Sites, d.CrtList)
			if err := os.WriteFile(file, renderData(t, r, d), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := p.check(context.Background(), file); err != nil {
				t.Errorf("HTTPS: %s rejects the longest names: %v", p.binary, err)
			}
		})
	}
}

// TestNginxStickyVars: one short variable per cookie name, whatever the host, and two cookie
// names whose hashes collide still get two variables, the same ones in any order.
func TestNginxStickyVars(t *testing.T) {
	site := func(h string, cookies ...string) routing.Site {
		s := routing.Site{Host: h}
		for _, c := range cookies {
			s.Routes = append(s.Routes, routing.Route{Path: "/" + c, Backend: routing.Backend{Name: h + c, Sticky: c}})
		}
		return s
	}
	vars := nginxStickyVars([]routing.Site{site(longestHost("a"), "SESSIONID", ""), site("b.example.com", "SESSIONID", "other")})
	if len(vars) != 2 || vars["SESSIONID"] == vars["other"] {
		t.Fatalf("want one variable per cookie name, got %v", vars)
	}
	for c, v := range vars {
		if !regexp.MustCompile(`^vhost_gen_sticky_[0-9a-f]{8}$`).MatchString(v) {
			t.Errorf("cookie %s: variable %q is not vhost_gen_sticky_ and 8 hex digits", c, v)
		}
	}
	// Two cookie names whose hashes collide (found by trying "c0", "c1", ...), a first in sorted
	// order.
	a, b := "c1170850", "c693596"
	if stickyVar(a, 0) != stickyVar(b, 0) {
		t.Fatalf("%s and %s no longer collide: %s, %s", a, b, stickyVar(a, 0), stickyVar(b, 0))
	}
	for _, order := range [][]string{{a, b}, {b, a}} {
		got := nginxStickyVars([]routing.Site{site("x.example.com", order...)})
		if len(got) != 2 || got[a] == got[b] {
			t.Fatalf("colliding cookies %s and %s share a variable: %v", a, b, got)
		}
		if got[a] != stickyVar(a, 0) || got[b] != stickyVar(b, 1) {
			t.Errorf("the first cookie in sorted order keeps its hash, the next hashes again: got %v", got)
		}
	}
}

// writeTLSFiles writes the crt-list and the maps an HAProxy config with HTTPS reads.
func writeTLSFiles(t *testing.T, sites []routing.Site, crtList string) {
	t.Helper()
	files, err := HAProxyTLSFiles(sites, crtList)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(f.Path, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
