package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// spoofed are forwarded headers a client makes up, and the Proxy header of httpoxy.
var spoofed = map[string]string{
	"X-Forwarded-For":   "1.2.3.4",
	"X-Forwarded-Port":  "1234",
	"X-Forwarded-Proto": "https",
	"X-Forwarded-Host":  "evil",
	"X-Forwarded-Ssl":   "on",
	"X-Real-IP":         "1.2.3.4",
	"Proxy":             "http://evil",
}

// TestForwarded runs the gateway image nginx-proxy's way (the engine's containers, on a bridge
// network) with each proxy. By default a client's forwarded headers never reach the backend: they
// are set from its connection, X-Forwarded-For is its address alone, and Proxy is dropped. With
// nginx-proxy's TRUST_DOWNSTREAM_PROXY=true, the client's values are kept and its address is
// appended to its X-Forwarded-For; those it did not send come from its connection.
func TestForwarded(t *testing.T) {
	forEachProxy(t, func(t *testing.T, proxy string) {
		for _, trust := range []bool{false, true} {
			t.Run(map[bool]string{false: "untrusted", true: "trusted"}[trust], func(t *testing.T) {
				t.Parallel()
				forwarded(t, proxy, trust)
			})
		}
	})
}

func forwarded(t *testing.T, proxy string, trust bool) {
	label := testLabel(t)
	t.Cleanup(func() { removeLabelled(labelKey + "=" + label) })
	net := label + "-net"
	if out, err := execDocker("network", "create", "--label", labelKey+"="+label, net); err != nil {
		t.Fatalf("docker network create: %v\n%s", err, out)
	}
	spec := gatewaySpec{proxy: proxy, source: "docker", network: net}
	if trust {
		spec.env = []string{"TRUST_DOWNSTREAM_PROXY=true"}
	}
	g := startGateway(t, spec)
	h := g.host("fwd")
	g.run("fwd", "--network", net, "-e", "VIRTUAL_HOST="+h)
	g.waitBody(h, "/", "name=fwd")

	got := g.headers(h, spoofed)
	client := got["X-Real-Ip"]
	if client == "" || client == "1.2.3.4" {
		t.Fatalf("X-Real-IP %q: want the client's address from the connection\n%v", client, got)
	}
	if v, ok := got["Proxy"]; ok {
		t.Errorf("the client's Proxy header reached the backend: %q", v)
	}
	want := map[string]string{
		"X-Forwarded-For":   client,
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  h,
		"X-Forwarded-Port":  "80", // the gateway's port inside its container
		"X-Forwarded-Ssl":   "off",
	}
	if trust {
		want = map[string]string{
			"X-Forwarded-For":   "1.2.3.4, " + client,
			"X-Forwarded-Proto": "https",
			"X-Forwarded-Host":  "evil",
			"X-Forwarded-Port":  "1234",
			"X-Forwarded-Ssl":   "on",
		}
	}
	checkHeaders(t, "spoofed request", got, want)

	// A request without forwarded headers gets them from its connection in both modes.
	got = g.headers(h, nil)
	checkHeaders(t, "plain request", got, map[string]string{
		"X-Real-Ip":         client,
		"X-Forwarded-For":   client,
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  h,
		"X-Forwarded-Port":  "80",
		"X-Forwarded-Ssl":   "off",
	})
	if trust {
		// X-Forwarded-Ssl follows the X-Forwarded-Proto passed on, when the client sent none.
		got = g.headers(h, map[string]string{"X-Forwarded-Proto": "https"})
		checkHeaders(t, "trusted https", got, map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Port": "80"})
	}
}

// headers sends GET /_headers for host with extra request headers and returns the headers the
// echo backend received, by canonical name.
func (g *gateway) headers(host string, extra map[string]string) map[string]string {
	g.t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/_headers", g.port), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	req.Host = host
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		g.t.Fatalf("GET /_headers: %d %q", resp.StatusCode, body)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			g.t.Fatalf("not a header line: %q in\n%s", line, body)
		}
		got[http.CanonicalHeaderKey(k)] = v
	}
	return got
}

func checkHeaders(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[http.CanonicalHeaderKey(k)] != v {
			t.Errorf("%s: the backend got %s: %q, want %q", what, k, got[http.CanonicalHeaderKey(k)], v)
		}
	}
	if t.Failed() {
		t.Logf("%s: the backend got %v", what, got)
	}
}
