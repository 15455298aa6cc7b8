package render

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
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
		routing: routing.Options{ProxyNetworks: []string{"frontend"}, TCP: true, ReservedPorts: map[int]string{80: "--listen", 8404: "--haproxy-stats"}},
		render:  Options{Listen: "80", Runtime: "/run/haproxy/admin.sock", Stats: "127.0.0.1:8404"},
		check:   haproxyCheck},
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
	out, err := r.Render(NewData(routing.Build(ws, p.routing), p.render))
	if err != nil {
		t.Fatal(err)
	}
	return out
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
					got := p.renderScenario(t, r, sc.workloads)
					golden := filepath.Join("testdata", "golden", p.name, sc.name+p.ext)
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
						t.Errorf("rendered config differs from %s (run with -update if the change is intended):\n%s", golden, got)
					}
					if err := p.check(context.Background(), golden); err != nil {
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
			name := strings.TrimSuffix(filepath.Base(f), p.ext)
			if !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.name == name && filepath.Ext(f) == p.ext }) {
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
			want := p.renderScenario(t, r, sc.workloads)
			for range 50 {
				ws := slices.Clone(sc.workloads)
				rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
				if got := p.renderScenario(t, r, ws); !bytes.Equal(got, want) {
					t.Fatalf("%s %s: a different order rendered different bytes", p.name, sc.name)
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
