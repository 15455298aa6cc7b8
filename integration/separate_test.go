package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// nginx-proxy's separate-containers mode, against a real engine: nginx in a container of its own
// (the base image, carrying nginx-proxy's label), vhost-gen in another (the Dockerfile's dockergen
// target, FROM scratch, on a network of its own), sharing /etc/nginx/conf.d through a volume.

// sepNginxLabel is the label nginx-proxy's docs put on the nginx container, which the dockergen
// image's NGINX_CONTAINER_LABEL names.
const sepNginxLabel = "com.github.nginx-proxy.nginx-proxy.nginx"

const dockergenImage = "vhost-gen-dockergen:test"

var (
	dockergenOnce sync.Once
	dockergenErr  error
)

// buildDockergenImage builds the Dockerfile's dockergen target once per run, as buildImage builds
// the default one: a Go builder from this machine's toolchain, the legacy builder, no registry.
func buildDockergenImage(t testing.TB) string {
	dockergenOnce.Do(func() {
		for _, script := range []string{"../scripts/builder-image.sh", "../scripts/base-image.sh"} {
			if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
				dockergenErr = &buildError{script, err, out}
				return
			}
		}
		cmd := exec.Command("docker", "build", "-q", "--build-arg", "GO_IMAGE=vhost-gen-go:local",
			"--target", "dockergen", "-t", dockergenImage, "..")
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0") // the legacy builder: no buildx here
		if out, err := cmd.CombinedOutput(); err != nil {
			dockergenErr = &buildError{"docker build --target dockergen", err, out}
		}
	})
	if dockergenErr != nil {
		t.Fatal(dockergenErr)
	}
	return dockergenImage
}

// sepPublished is the 127.0.0.1 port a container's port was published on (-p 127.0.0.1::PORT).
func sepPublished(e *env, container, port string) string {
	e.t.Helper()
	out := e.docker("port", container, port+"/tcp")
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "127.0.0.1:"); ok {
			return p
		}
	}
	e.t.Fatalf("docker port %s %s: no 127.0.0.1 binding in %q", container, port, out)
	return ""
}

// sepProxyNetworks reads the proxy's networks from vhost-gen's /routes.
func sepProxyNetworks(e *env) []string {
	e.t.Helper()
	_, body := httpGet("http://"+e.admin+"/routes?format=json", "")
	var d struct {
		ProxyNetworks []string `json:"proxyNetworks"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		e.t.Fatalf("/routes: %v\n%s", err, body)
	}
	return d.ProxyNetworks
}

// sepWorkers lists the PIDs (on the host) of the nginx container's live workers: a reload
// replaces them, under the same master.
func sepWorkers(e *env, nginx string) []string {
	e.t.Helper()
	var pids []string
	for _, line := range strings.Split(e.docker("top", nginx), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasSuffix(line, "nginx: worker process") {
			pids = append(pids, f[1])
		}
	}
	return pids
}

// TestSeparateContainers: nginx-proxy's separate-containers mode. nginx runs alone in a container
// with nginx-proxy's label, on the front network, its port published; vhost-gen runs in the
// dockergen image (FROM scratch: no nginx in it), on a network of its own, sharing conf.d with it
// through a volume, with the Docker socket at nginx-proxy's /tmp/docker.sock and vhost.d mounted.
//   - The proxy's networks are the labelled nginx container's: a backend on the front network is
//     served through nginx's published port; one on vhost-gen's own network only is a problem
//     (503), and /routes says the proxy's networks are [front].
//   - The config reaches nginx by the shared volume and a signal: a backend started later is
//     served by new workers of the same master (a reload, not a restart of the container).
//   - The check runs in the nginx container (docker exec nginx -t): a broken vhost.d snippet for
//     one host takes that site alone out (503) with a problem quoting nginx's message and naming
//     the nginx container, while the other site answers every request; the check's throwaway
//     files do not linger in conf.d; the fixed snippet brings the site back with its effect.
func TestSeparateContainers(t *testing.T) {
	t.Parallel()
	img := buildDockergenImage(t)
	e := &env{t: t, proxy: "nginx", label: testLabel(t), dir: t.TempDir()}
	vol := e.name("confd")
	// Cleanups run last-first: the containers and networks go, then the volume they used.
	t.Cleanup(func() { execDocker("volume", "rm", "-f", vol) })
	t.Cleanup(func() { removeLabelled(labelKey + "=" + e.label) })

	front, own := e.network("front"), e.network("own")
	e.docker("volume", "create", "--label", labelKey+"="+e.label, vol)
	vhostD := filepath.Join(e.dir, "vhost.d")
	if err := os.MkdirAll(vhostD, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(e.dir, 0o755)

	// nginx alone, as nginx-proxy's separate-containers docs run it.
	nginx := e.name("nginx")
	e.docker("run", "-d", "--name", nginx, "--label", sepNginxLabel, "--label", labelKey+"="+e.label,
		"--network", front, "-p", "127.0.0.1::80", "-v", vol+":/etc/nginx/conf.d",
		"vhost-gen-base:bookworm", "nginx", "-g", "daemon off;")
	nginxStarted := e.docker("inspect", "-f", "{{.State.StartedAt}}", nginx)
	port := sepPublished(e, nginx, "80")
	fmt.Sscan(port, &e.port)

	// The backends: two sites on the front network, one on vhost-gen's own network only.
	web, brk, late, ownOnly := e.host("web"), e.host("brk"), e.host("late"), e.host("own")
	e.run("web", "--network", front, "-e", "VIRTUAL_HOST="+web)
	e.run("brk", "--network", front, "-e", "VIRTUAL_HOST="+brk)
	e.run("own", "--network", own, "-e", "VIRTUAL_HOST="+ownOnly)

	// vhost-gen in the dockergen image, its command the image's own.
	vg := e.name("vg")
	e.docker("run", "-d", "--name", vg, "--label", labelKey+"="+e.label, "--network", own,
		"-p", "127.0.0.1::9180",
		"-v", vol+":/etc/nginx/conf.d",
		"-v", "/var/run/docker.sock:/tmp/docker.sock:ro",
		"-v", vhostD+":/etc/nginx/vhost.d:ro",
		"-e", "VHOST_GEN_LABEL_FILTER="+labelKey+"="+e.label,
		"-e", "VHOST_GEN_ADMIN_ADDR=0.0.0.0:9180",
		"-e", "VHOST_GEN_WAIT=50ms:500ms",
		"-e", "VHOST_GEN_LOG_LEVEL=debug",
		img)
	e.admin = "127.0.0.1:" + sepPublished(e, vg, "9180")
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := execDocker("logs", vg)
			t.Logf("vhost-gen container log:\n%s", logs)
			nlogs, _ := execDocker("logs", nginx)
			elog, _ := execDocker("exec", nginx, "cat", "/var/log/nginx/error.log")
			t.Logf("nginx container log:\n%s\nnginx error.log:\n%s", nlogs, elog)
			ls, _ := execDocker("exec", nginx, "ls", "-la", "/etc/nginx/conf.d")
			t.Logf("conf.d:\n%s", ls)
		}
	})
	filesWait(e, "vhost-gen's first apply (/healthz 200)", func() error {
		if code, body := httpGet("http://"+e.admin+"/healthz", ""); code != 200 {
			return fmt.Errorf("healthz %d: %s", code, body)
		}
		return nil
	})

	// The proxy's networks are the nginx container's, found by its label: not vhost-gen's own.
	filesWait(e, "web and brk served through the nginx container", func() error {
		for _, h := range []struct{ host, name string }{{web, "web"}, {brk, "brk"}} {
			if code, body := e.get(h.host, "/"); code != 200 || field(body, "name") != h.name {
				return fmt.Errorf("%s: %d %q", h.host, code, strings.TrimSpace(body))
			}
		}
		return nil
	})
	if nets := sepProxyNetworks(e); !slices.Equal(nets, []string{front}) {
		t.Errorf("the proxy's networks %v, want [%s] (the nginx container's)", nets, front)
	}
	if got, want := e.servers(web), e.ip("web", front)+":80"; len(got) != 1 || got[0] != want {
		t.Errorf("%s served by %v, want [%s] (its %s address)", web, got, want, front)
	}
	if ps := e.problemsOf("own"); len(ps) == 0 {
		t.Errorf("the backend on vhost-gen's own network only has no problem: %+v", e.routes())
	} else {
		t.Logf("own's problem: %s", ps[0])
	}
	if code, body := e.get(ownOnly, "/"); code != 503 {
		t.Errorf("%s (on vhost-gen's network only): %d %q, want 503", ownOnly, code, strings.TrimSpace(body))
	}
	// The config is in the shared volume, where nginx reads it.
	if cfg := e.docker("exec", nginx, "cat", "/etc/nginx/conf.d/default.conf"); !strings.Contains(cfg, web) || strings.Contains(cfg, ownOnly) {
		t.Errorf("the nginx container's conf.d/default.conf should name %s and not %s:\n%s", web, ownOnly, cfg)
	}

	// vhost-gen's one-shot routes works in the FROM-scratch image, and finds the same networks.
	out := e.docker("exec", vg, "/usr/local/bin/vhost-gen", "routes", "--json", "--label-filter", labelKey+"="+e.label)
	var doc struct {
		ProxyNetworks []string `json:"proxyNetworks"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Errorf("routes --json in the vhost-gen container: %v\n%s", err, out)
	} else if !slices.Equal(doc.ProxyNetworks, []string{front}) {
		t.Errorf("routes --json in the vhost-gen container: proxy networks %v, want [%s]", doc.ProxyNetworks, front)
	}

	// Reload by signal: a backend started now is served, after a SIGHUP to the nginx container.
	workers, reloads := sepWorkers(e, nginx), e.reloads()
	poll := filesPoll(e, web, "web")
	e.run("late", "--network", front, "-e", "VIRTUAL_HOST="+late)
	filesWait(e, "late served", func() error {
		if code, body := e.get(late, "/"); code != 200 || field(body, "name") != "late" {
			return fmt.Errorf("%s: %d %q", late, code, strings.TrimSpace(body))
		}
		return nil
	})
	if n := e.reloads(); n <= reloads {
		t.Errorf("vhostgen_reloads_total %v, was %v: want more after late", n, reloads)
	}
	// nginx logs the SIGHUP only at the notice level: its new workers show the reload.
	filesWait(e, "new nginx workers after late", func() error {
		now := sepWorkers(e, nginx)
		if len(now) == 0 || slices.ContainsFunc(now, func(p string) bool { return slices.Contains(workers, p) }) {
			return fmt.Errorf("workers %v, before late %v", now, workers)
		}
		return nil
	})

	// The check runs in the nginx container: a broken snippet for brk takes brk alone out.
	writeFile(t, filepath.Join(vhostD, brk), "this is not a directive;\n")
	nginxMsg, where := `unknown directive "this"`, "nginx in container "+nginx
	quarantined := func() error {
		ps := e.problemsOf("brk")
		if len(ps) != 1 || !strings.Contains(ps[0], "left out of "+brk) || !strings.Contains(ps[0], nginxMsg) {
			return fmt.Errorf("brk's problems %q, want one saying it is left out of %s with %q", ps, brk, nginxMsg)
		}
		if code, body := e.get(brk, "/"); code != 503 {
			return fmt.Errorf("%s: %d %q, want 503", brk, code, strings.TrimSpace(body))
		}
		return nil
	}
	filesWait(e, "brk quarantined with nginx's message", quarantined)
	p := e.problemsOf("brk")[0]
	t.Logf("brk's problem: %s", p)
	if !strings.Contains(p, where) {
		t.Errorf("brk's problem does not say the check ran in the nginx container (%q): %s", where, p)
	}
	if n := e.metric("vhostgen_quarantined_sites"); n != 1 {
		t.Errorf("vhostgen_quarantined_sites %v, want 1", n)
	}
	if code, body := httpGet("http://"+e.admin+"/healthz", ""); code != 200 {
		t.Errorf("/healthz %d %q, want 200: the other sites are applied", code, body)
	}
	for _, h := range []struct{ host, name string }{{web, "web"}, {late, "late"}} {
		if code, body := e.get(h.host, "/"); code != 200 || field(body, "name") != h.name {
			t.Errorf("with brk quarantined, %s: %d %q", h.host, code, strings.TrimSpace(body))
		}
	}
	if cfg := e.docker("exec", nginx, "cat", "/etc/nginx/conf.d/default.conf"); strings.Contains(cfg, brk) || strings.Contains(cfg, "this is not a directive") {
		t.Errorf("the quarantined site or its snippet reached the live config:\n%s", cfg)
	}

	// Fixed: brk is back, with the fixed snippet's effect.
	writeFile(t, filepath.Join(vhostD, brk), "add_header X-Brk fixed always;\n")
	waitBrkFixed(e, brk)
	ok, bad := poll.end()
	if len(bad) > 0 || ok == 0 {
		t.Errorf("%s while late came and brk was broken and fixed: %d requests answered, %d not:\n%s", web, ok, len(bad), strings.Join(bad, "\n"))
	} else {
		t.Logf("%s answered all %d requests while late came and brk was broken and fixed", web, ok)
	}

	// The check's throwaway files and the staged configs do not linger in the shared conf.d.
	filesWait(e, "no check or staged files left in conf.d", func() error {
		ls := e.docker("exec", nginx, "ls", "-a", "/etc/nginx/conf.d")
		for _, n := range strings.Fields(ls) {
			if strings.HasPrefix(n, ".vhost-gen-check-") || strings.Contains(n, ".staged-") {
				return fmt.Errorf("conf.d holds %s:\n%s", n, ls)
			}
		}
		return nil
	})
	// nginx was reloaded by signals all along, never restarted.
	if now := e.docker("inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", nginx); now != nginxStarted+" 0" {
		t.Errorf("the nginx container was restarted: started %q, now %q", nginxStarted, now)
	}
	if st := e.docker("inspect", "-f", "{{.State.Running}}", vg); st != "true" {
		t.Errorf("the vhost-gen container is not running")
	}
}
