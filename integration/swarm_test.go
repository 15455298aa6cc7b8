package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// gateway is the edge gateway image run as a container: vhost-gen supervising the proxy, reading
// the Swarm.
type gateway struct {
	*env
	container string
	edge      string // the attachable overlay network it is on (none with host networking)
	port      int    // the proxy's port, published on 127.0.0.1
	adminURL  string // vhost-gen's admin server, published on 127.0.0.1
}

// newGateway starts the gateway container with the Docker socket, on a new attachable overlay
// network (g.edge), or with host networking when hostNet. Services are picked by the test's label.
func newGateway(t testing.TB, proxy string, hostNet bool, extra ...string) *gateway {
	t.Helper()
	return startGateway(t, gatewaySpec{proxy: proxy, source: "swarm", hostNet: hostNet, overlay: !hostNet, flags: extra})
}

// gatewaySpec says how to run the gateway image.
type gatewaySpec struct {
	proxy   string
	source  string   // "docker" (nginx-proxy's way: the engine's containers) or "swarm"
	hostNet bool     // --network host
	overlay bool     // on a new attachable overlay network (g.edge)
	network string   // else on this (bridge) network, made by the test
	env     []string // -e KEY=VALUE for the gateway container
	args    []string // more docker run arguments
	flags   []string // more vhost-gen flags
}

// startGateway runs the gateway image as its users do: a container with the Docker socket,
// vhost-gen supervising the proxy. The proxy's port and the admin server are published on
// 127.0.0.1 (or bound there, with host networking). Workloads are picked by the test's label.
func startGateway(t testing.TB, s gatewaySpec) *gateway {
	t.Helper()
	img := buildImage(t)
	e := &env{t: t, proxy: s.proxy, label: testLabel(t), dir: t.TempDir()}
	if s.source == "swarm" {
		// After a dockerd restart (TestEngineRestart) the manager takes a moment to lead again.
		e.waitFor("the Swarm manager to answer", func() error {
			_, err := execDocker("node", "ls", "-q")
			return err
		})
	}
	t.Cleanup(func() { removeServices(e.label); removeLabelled(labelKey + "=" + e.label) })
	g := &gateway{env: e, container: e.name("gw"), port: freePort(t)}
	net := "host"
	switch {
	case s.overlay:
		g.edge = g.overlay("edge")
		net = g.edge
	case !s.hostNet:
		net = s.network
	}
	out := map[string]string{"nginx": "/etc/nginx/conf.d/vhost-gen.conf", "haproxy": "/etc/haproxy/haproxy.cfg"}[s.proxy]
	args := []string{"run", "-d", "--name", g.container, "--label", labelKey + "=" + e.label,
		"-v", "/var/run/docker.sock:/var/run/docker.sock", "--network", net}
	for _, kv := range s.env {
		args = append(args, "-e", kv)
	}
	args = append(args, s.args...)
	flags := []string{"watch", "--supervise", "--proxy", s.proxy, "--out", out, "--source", s.source,
		"--label-filter", labelKey + "=" + e.label, "--wait", "50ms:500ms"}
	admin := freePort(t)
	g.adminURL = "http://127.0.0.1:" + strconv.Itoa(admin)
	if s.hostNet {
		// On the host network the gateway listens where it is told: not on the image's HTTPS port.
		args = append(args, "-e", "VHOST_GEN_CERTS_DIR=")
		flags = append(flags, "--listen", "127.0.0.1:"+strconv.Itoa(g.port), "--admin-addr", "127.0.0.1:"+strconv.Itoa(admin),
			"--haproxy-socket", "/run/haproxy/"+e.label+".sock")
	} else {
		args = append(args, "-p", fmt.Sprintf("127.0.0.1:%d:80", g.port), "-p", fmt.Sprintf("127.0.0.1:%d:9180", admin))
		flags = append(flags, "--admin-addr", "0.0.0.0:9180")
	}
	flags = append(flags, s.flags...)
	e.port = g.port
	e.admin = strings.TrimPrefix(g.adminURL, "http://")
	e.docker(append(append(args, img), flags...)...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := execDocker("logs", g.container)
			t.Logf("gateway log:\n%s", logs)
		}
	})
	e.waitFor("the gateway's first apply", func() error {
		if code, body := httpGet(g.adminURL+"/healthz", ""); code != 200 {
			return fmt.Errorf("healthz %d: %s", code, body)
		}
		return nil
	})
	return g
}

func testLabel(t testing.TB) string {
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "-"), "-")
	if len(name) > 30 {
		name = name[:30]
	}
	return "it" + runID + "-" + name
}

// removeServices removes the Swarm services with the label value.
func removeServices(label string) {
	out, _ := execDocker("service", "ls", "-q", "--filter", "label="+labelKey+"="+label)
	if ids := strings.Fields(out); len(ids) > 0 {
		execDocker(append([]string{"service", "rm"}, ids...)...)
	}
}

// overlay creates an attachable overlay network for the test.
func (g *gateway) overlay(name string) string {
	g.t.Helper()
	g.docker("network", "create", "-d", "overlay", "--attachable", "--label", labelKey+"="+g.label, g.name(name))
	return g.name(name)
}

// service creates a Swarm service of the echo image; args go before the image.
func (g *gateway) service(name string, args ...string) {
	g.t.Helper()
	full := append([]string{"service", "create", "--detach", "--quiet", "--name", g.name(name),
		"--label", labelKey + "=" + g.label, "--env", "ECHO_NAME=" + name}, args...)
	g.docker(append(full, echoImage)...)
}

// taskContainers lists the running containers of a service.
func (g *gateway) taskContainers(name string) []string {
	out := g.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+g.name(name))
	ids := strings.Fields(out)
	slices.Sort(ids)
	return ids
}

// waitReplicas waits until n distinct task containers answer host (the echo's id is its hostname,
// which Swarm sets to the container's short ID).
func (g *gateway) waitReplicas(host string, n int) map[string]int {
	g.t.Helper()
	var seen map[string]int
	g.waitFor(fmt.Sprintf("%d replicas to answer %s", n, host), func() error {
		seen = map[string]int{}
		for range 8 * n {
			code, body := g.get(host, "/")
			if code != 200 {
				return fmt.Errorf("got %d %q", code, body)
			}
			seen[field(body, "id")]++
		}
		if len(seen) != n {
			return fmt.Errorf("seen %d replicas: %v", len(seen), seen)
		}
		return nil
	})
	return seen
}

// TestSwarmGateway: the gateway image on an attachable overlay network serves a Swarm service
// over its tasks' overlay IPs, follows scaling and a rolling update, and restarts its proxy when
// it dies.
func TestSwarmGateway(t *testing.T) {
	t.Parallel()
	g := newGateway(t, "nginx", false)
	h := g.host("shop")
	g.service("shop", "--network", g.edge, "--replicas", "3", "--label", "VIRTUAL_HOST="+h)
	g.waitReplicas(h, 3)
	for _, s := range g.routes().Sites {
		for _, r := range s.Routes {
			for _, srv := range r.Backend.Servers {
				if !strings.HasPrefix(srv.Address, "10.") {
					t.Errorf("server %s is not an overlay address", srv.Address)
				}
			}
		}
	}
	g.docker("service", "scale", "--detach", g.name("shop")+"=5")
	g.waitReplicas(h, 5)
	g.docker("service", "scale", "--detach", g.name("shop")+"=1")
	g.waitReplicas(h, 1)

	// A rolling update replaces the task: the route follows it.
	before := g.taskContainers("shop")
	g.docker("tag", echoImage, "vhost-gen-echo:test-v2")
	g.docker("service", "update", "--detach", "--quiet", "--image", "vhost-gen-echo:test-v2", g.name("shop"))
	g.waitFor("the updated task to answer", func() error {
		after := g.taskContainers("shop")
		if len(after) != 1 || slices.Equal(after, before) {
			return fmt.Errorf("containers %v (before %v)", after, before)
		}
		if code, body := g.get(h, "/"); code != 200 || field(body, "id") != after[0] {
			return fmt.Errorf("got %d %q from a container other than %s", code, body, after[0])
		}
		return nil
	})

	// The proxy dies: vhost-gen restarts it and traffic resumes.
	g.docker("exec", g.container, "sh", "-c", "kill -9 $(cat /run/nginx.pid)")
	g.waitFor("the restarted proxy", func() error {
		if n := g.metric("vhostgen_proxy_restarts_total"); n != 1 {
			return fmt.Errorf("restarts %v", n)
		}
		return nil
	})
	g.waitBody(h, "/", "name=shop")
}

// TestSwarmBlueGreen: promotion and rollback by flipping a service label, with HAProxy; no task
// restarts.
func TestSwarmBlueGreen(t *testing.T) {
	t.Parallel()
	g := newGateway(t, "haproxy", false)
	edge := g.edge
	h, next := g.host("shop"), g.host("new-shop")
	g.service("blue", "--network", edge, "--replicas", "2", "--label", "VIRTUAL_HOST="+h)
	g.service("green", "--network", edge, "--replicas", "2", "--label", "VIRTUAL_HOST="+next)
	g.waitBody(h, "/", "name=blue")
	g.waitBody(next, "/", "name=green")
	// Every task is up before its containers are recorded: one replica can answer while the
	// other's container is still being created.
	g.waitReplicas(h, 2)
	g.waitReplicas(next, 2)
	blue, green := g.taskContainers("blue"), g.taskContainers("green")

	flip := func(to, from string) {
		g.docker("service", "update", "--detach", "--quiet", "--label-add", "VIRTUAL_HOST="+h, g.name(to))
		g.docker("service", "update", "--detach", "--quiet", "--label-rm", "VIRTUAL_HOST", g.name(from))
		g.waitFor(h+" to serve only "+to, func() error {
			for range 10 {
				if _, body := g.get(h, "/"); field(body, "name") != to {
					return fmt.Errorf("got %q", body)
				}
			}
			return nil
		})
	}
	flip("green", "blue") // promote
	flip("blue", "green") // roll back
	if b, gr := g.taskContainers("blue"), g.taskContainers("green"); !slices.Equal(b, blue) || !slices.Equal(gr, green) {
		t.Errorf("a label flip restarted tasks: blue %v → %v, green %v → %v", blue, b, green, gr)
	}
}

// TestSwarmPublishedPort: a gateway with host networking shares no overlay with the services: one
// with a host-mode published port is reached on its node's address and that port; one with
// neither is a problem, and the other is unaffected.
func TestSwarmPublishedPort(t *testing.T) {
	t.Parallel()
	g := newGateway(t, "haproxy", true)
	back := g.overlay("back")
	pub := freePort(t)
	g.service("pub", "--network", back, "--label", "VIRTUAL_HOST="+g.host("pub"),
		"--publish", fmt.Sprintf("mode=host,target=80,published=%d", pub))
	g.service("hidden", "--network", back, "--label", "VIRTUAL_HOST="+g.host("hidden"))
	g.waitBody(g.host("pub"), "/", "name=pub")
	if got := g.servers(g.host("pub")); len(got) != 1 || got[0] != "127.0.0.1:"+strconv.Itoa(pub) {
		t.Errorf("pub served by %v, want the node address and the published port", got)
	}
	g.waitFor("a problem for hidden", func() error {
		for _, p := range g.routes().Problems {
			if strings.HasPrefix(p.Workload, g.name("hidden")+".") && strings.Contains(p.Reason, "no address") {
				return nil
			}
		}
		return fmt.Errorf("problems %+v", g.routes().Problems)
	})
	if code, _ := g.get(g.host("hidden"), "/"); code != 503 {
		t.Errorf("hidden: got %d, want 503", code)
	}
	g.waitBody(g.host("pub"), "/", "name=pub")
}
