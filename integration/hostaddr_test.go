package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestHostAddressInContainer: the gateway image run nginx-proxy's way (the Docker socket, on a
// bridge network) reaches a host-network backend and a port published on all addresses through
// its network's gateway, never its own 127.0.0.1; a port published on 127.0.0.1 alone is a
// problem naming that address; /routes shows the host address and where it came from.
func TestHostAddressInContainer(t *testing.T) {
	forEachProxy(t, hostAddressInContainer)
}

func hostAddressInContainer(t *testing.T, proxy string) {
	pre := &env{t: t, label: testLabel(t)}
	t.Cleanup(func() { removeLabelled(labelKey + "=" + pre.label) })
	net := pre.network("edge")
	gw := pre.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", net)
	g := startGateway(t, gatewaySpec{proxy: proxy, source: "docker", network: net})

	hostNet, pub, loop := freePort(t), freePort(t), freePort(t)
	g.run("hostnet", "--network", "host", "-e", "VIRTUAL_HOST="+g.host("hostnet"),
		"-e", fmt.Sprintf("ECHO_PORTS=%d", hostNet), "-e", fmt.Sprintf("VIRTUAL_PORT=%d", hostNet))
	g.run("published", "-p", fmt.Sprintf("%d:80", pub), "-e", "VIRTUAL_HOST="+g.host("published"))
	g.run("loopback", "-p", fmt.Sprintf("127.0.0.1:%d:80", loop), "-e", "VIRTUAL_HOST="+g.host("loopback"))

	g.waitBody(g.host("hostnet"), "/", "name=hostnet")
	g.waitBody(g.host("published"), "/", "name=published")
	for host, port := range map[string]int{"hostnet": hostNet, "published": pub} {
		if got, want := g.servers(g.host(host)), []string{gw + ":" + strconv.Itoa(port)}; !slices.Equal(got, want) {
			t.Errorf("%s: servers %v, want %v (the gateway of %s)", host, got, want, net)
		}
	}
	g.waitFor("a loopback problem for the container published on 127.0.0.1", func() error {
		if p := g.problem("loopback"); !strings.Contains(p, fmt.Sprintf("127.0.0.1:%d", loop)) || !strings.Contains(p, "loopback") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})
	if got := g.servers(g.host("loopback")); len(got) > 0 {
		t.Errorf("loopback: servers %v, want none", got)
	}
	if code, body := g.get(g.host("loopback"), "/"); code == 200 {
		t.Errorf("loopback answered 200 %q through the gateway", body)
	}

	_, body := httpGet(g.adminURL+"/routes?format=json", "")
	var doc struct {
		HostAddress struct{ Address, Origin string } `json:"hostAddress"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/routes: %v\n%s", err, body)
	}
	if doc.HostAddress.Address != gw || doc.HostAddress.Origin != "gateway of network "+net {
		t.Errorf("/routes hostAddress %+v, want %s from the gateway of network %s", doc.HostAddress, gw, net)
	}
}
