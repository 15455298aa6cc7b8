package render

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
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

// TestGoldenNginx compares every scenario with its golden file, and passes each golden file
// through the real `nginx -t`.
func TestGoldenNginx(t *testing.T) {
	r, err := Load("nginx", "")
	if err != nil {
		t.Fatal(err)
	}
	check := apply.NginxCheck("nginx")
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got := renderScenario(t, r, sc.workloads)
			golden := filepath.Join("testdata", "golden", "nginx", sc.name+".conf")
			if *update {
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
			if err := check(context.Background(), golden); err != nil {
				t.Errorf("nginx -t rejects %s: %v", golden, err)
			}
		})
	}
}

// TestDeterministic renders every scenario in many orders: the bytes never change.
func TestDeterministic(t *testing.T) {
	r, err := Load("nginx", "")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sc := range scenarios {
		want := renderScenario(t, r, sc.workloads)
		for range 50 {
			ws := slices.Clone(sc.workloads)
			rng.Shuffle(len(ws), func(i, j int) { ws[i], ws[j] = ws[j], ws[i] })
			if got := renderScenario(t, r, ws); !bytes.Equal(got, want) {
				t.Fatalf("%s: a different order rendered different bytes", sc.name)
			}
		}
	}
}

// TestBadNeighbourNeverReachesConfig: values from the hostile containers appear nowhere.
func TestBadNeighbourNeverReachesConfig(t *testing.T) {
	r, _ := Load("nginx", "")
	ws := scenarios[len(scenarios)-1].workloads
	out := string(renderScenario(t, r, ws))
	for _, bad := range []string{"passwd", "evil", "return 200", "lost.example.com", "a.example.com"} {
		if strings.Contains(out, bad) {
			t.Errorf("config contains %q from a rejected container:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "server_name good.example.com;") {
		t.Errorf("the valid neighbour is missing:\n%s", out)
	}
	table := routing.Build(ws, opts)
	if len(table.Problems) != 4 {
		t.Errorf("want 4 problems, got %d: %v", len(table.Problems), table.Problems)
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
	got, err := r.Render(NewData(routing.Build(scenarios[2].workloads, opts), Options{Listen: "8080"}))
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
