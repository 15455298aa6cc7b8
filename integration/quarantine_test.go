package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// siteBreakingTemplates render each site on its own, and a directive the proxy does not know
// inside the config of any site one of whose servers has weight 13: the proxy's check then
// refuses that site alone. The second field is the proxy's message for it.
var siteBreakingTemplates = map[string][2]string{
	"nginx": {`{{ range .Sites }}{{ $b := (index .Routes 0).Backend }}
upstream {{ $b.Name }} {
{{- range $b.Servers }}
    server {{ .Address }};{{ if eq .Weight 13 }} this_is_not_a_directive;{{ end }}
{{- end }}
}
server { listen {{ $.Listen }}; server_name {{ .Host }}; location / { proxy_pass http://{{ $b.Name }}; } }
{{ end }}
server { listen {{ .Listen }} default_server; return 503; }
`, "unknown directive"},
	"haproxy": {`global
    stats socket {{ .Runtime }} mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http
    bind {{ bindAddr .Listen }}
{{- range .Sites }}
    use_backend {{ (index .Routes 0).Backend.Name }} if { hdr(host) -i {{ .Host }} }
{{- end }}
{{- range .Sites }}{{ $b := (index .Routes 0).Backend }}
backend {{ $b.Name }}
{{- range $b.Servers }}{{ if eq .Weight 13 }}
    this_is_not_a_keyword{{ end }}
    server {{ .Name }} {{ .Address }}
{{- end }}
{{- end }}
`, "unknown keyword 'this_is_not_a_keyword'"},
}

// TestQuarantine: in the gateway image, run nginx-proxy's way, one container whose site the
// proxy's check refuses is left out with a problem carrying the proxy's message; the other sites
// are applied and served, later changes are not blocked, the dry run (render) says the same, and
// the site is back once a good container replaces the bad one.
func TestQuarantine(t *testing.T) {
	forEachProxy(t, quarantine)
}

func quarantine(t *testing.T, proxy string) {
	tmpl := filepath.Join(t.TempDir(), "site.tmpl")
	writeFile(t, tmpl, siteBreakingTemplates[proxy][0])
	os.Chmod(filepath.Dir(tmpl), 0o755)
	net := netFor(t)
	g := startGateway(t, gatewaySpec{proxy: proxy, source: "docker", network: net,
		args: []string{"-v", tmpl + ":/etc/vhost-gen/site.tmpl:ro"}, flags: []string{"--template", "/etc/vhost-gen/site.tmpl"}})
	g.run("fine", "--network", net, "-e", "VIRTUAL_HOST="+g.host("fine"))
	g.waitBody(g.host("fine"), "/", "name=fine")

	g.run("breaker", "--network", net, "-e", "VIRTUAL_HOST="+g.host("broken"), "-e", "VIRTUAL_WEIGHT=13")
	message := siteBreakingTemplates[proxy][1]
	g.waitFor("a problem on the breaker with the proxy's message", func() error {
		if p := g.problem("breaker"); !strings.Contains(p, "left out of "+g.host("broken")) || !strings.Contains(p, message) {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
	// Not frozen: a container started after the bad one is served; the first one still is.
	g.run("later", "--network", net, "-e", "VIRTUAL_HOST="+g.host("later"))
	g.waitBody(g.host("later"), "/", "name=later")
	g.waitBody(g.host("fine"), "/", "name=fine")
	if code, body := g.get(g.host("broken"), "/"); code != 503 {
		t.Errorf("the quarantined site answers %d %q, want 503 (left out)", code, body)
	}
	if code, body := httpGet(g.adminURL+"/healthz", ""); code != 200 {
		t.Errorf("/healthz %d %q, want 200: the other sites are applied", code, body)
	}
	if n := g.metric("vhostgen_quarantined_sites"); n != 1 {
		t.Errorf("vhostgen_quarantined_sites %v, want 1", n)
	}

	// The dry run checks too, in the image where the proxy is installed.
	var stdout, stderr strings.Builder
	cmd := exec.Command("docker", "exec", g.container, "vhost-gen", "render", "--proxy", proxy, "--template", "/etc/vhost-gen/site.tmpl",
		"--label-filter", labelKey+"="+g.label)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("render in the gateway: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "container "+g.name("breaker")+": left out of "+g.host("broken")) || !strings.Contains(stderr.String(), message) {
		t.Errorf("render's stderr lacks the breaker's problem:\n%s", stderr.String())
	}
	if out := stdout.String(); strings.Contains(out, g.host("broken")) || !strings.Contains(out, g.host("later")) {
		t.Errorf("render's output should hold the good sites and not the broken one:\n%s", out)
	}

	// Fixed: a good container for the same host replaces the bad one, and the site is back.
	g.docker("rm", "-f", g.name("breaker"))
	g.run("fixed", "--network", net, "-e", "VIRTUAL_HOST="+g.host("broken"))
	g.waitBody(g.host("broken"), "/", "name=fixed")
	g.waitFor("the quarantine to be empty", func() error {
		if n := g.metric("vhostgen_quarantined_sites"); n != 0 {
			return fmt.Errorf("vhostgen_quarantined_sites %v", n)
		}
		return nil
	})
}

// TestStickyLongHost: nginx-proxy's own test host with VIRTUAL_STICKY, in the gateway image, is
// served on both proxies (nginx once refused the variable name made from so long a host).
func TestStickyLongHost(t *testing.T) {
	forEachProxy(t, func(t *testing.T, proxy string) {
		net := netFor(t)
		g := startGateway(t, gatewaySpec{proxy: proxy, source: "docker", network: net})
		host := g.host("loadbalance-enabled.nginx-proxy.tld.with-a-much-longer-name")
		g.run("sticky1", "--network", net, "-e", "VIRTUAL_HOST="+host, "-e", "VIRTUAL_STICKY=SRV")
		g.run("sticky2", "--network", net, "-e", "VIRTUAL_HOST="+host, "-e", "VIRTUAL_STICKY=SRV")
		g.run("plain", "--network", net, "-e", "VIRTUAL_HOST="+g.host("plain"))
		g.waitBody(g.host("plain"), "/", "name=plain")
		g.waitBody(host, "/", "name=sticky")
		if d := g.routes(); len(d.Problems) != 0 {
			t.Errorf("problems %+v, want none", d.Problems)
		}
	})
}

// netFor makes a bridge network for a gateway test, labelled for clean-up, named after the test.
func netFor(t *testing.T) string {
	t.Helper()
	name := testLabel(t) + "-net"
	if _, err := execDocker("network", "create", "--label", labelKey+"="+testLabel(t), name); err != nil {
		t.Fatal(err)
	}
	return name
}
