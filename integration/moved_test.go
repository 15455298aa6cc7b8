package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestMovedServerServesAtOnce: a Swarm service routed to a port where nothing listens is down in
// HAProxy; a label change that moves its task's server to the right port goes through the runtime
// API (no reload), and the very next request is served, as nginx would serve it, rather than
// answered 503 until the server's health checks pass again.
func TestMovedServerServesAtOnce(t *testing.T) {
	t.Parallel()
	g := newGateway(t, "haproxy", false)
	h := g.host("web")
	// VIRTUAL_PORT defaults to 80, where the echo does not listen: connections are refused.
	g.service("web", "--network", g.edge, "--env", "ECHO_PORTS=8080", "--label", "VIRTUAL_HOST="+h)
	// HAProxy's own 503, not the catch-all's: the backend is live and its only server, refused
	// on live traffic, is down (observe layer4 ... on-error mark-down).
	g.waitFor(h+" to have no server up", func() error {
		if code, body := g.get(h, "/"); code != 503 || !strings.Contains(body, "No server is available") {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	updated := g.metric("vhostgen_applies_total", `result="updated"`)
	applied := g.metric("vhostgen_applies_total", `result="applied"`)

	g.docker("service", "update", "--detach", "--quiet", "--label-add", "VIRTUAL_PORT=8080", g.name("web"))
	g.waitFor("the move through the runtime API", func() error {
		n := g.metric("vhostgen_applies_total", `result="updated"`)
		if servers := g.servers(h); n <= updated || len(servers) != 1 || !strings.HasSuffix(servers[0], ":8080") {
			return fmt.Errorf("runtime updates %v (before %v), servers %v", n, updated, servers)
		}
		return nil
	})
	if code, body := g.get(h, "/"); code != 200 || field(body, "port") != "8080" {
		t.Errorf("the first request after the move: %d %q; want 200 from port 8080 at once", code, body)
	}
	if n := g.metric("vhostgen_applies_total", `result="applied"`); n != applied {
		t.Errorf("the move reloaded HAProxy (%v reloads, want none): it should go through the runtime API", n-applied)
	}
}
