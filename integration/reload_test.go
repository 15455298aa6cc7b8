package integration

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// TestReloadContainerAndProxyLabel: the proxy runs in a container (an echo container stands in
// for it and counts the SIGHUPs it gets). vhost-gen finds the proxy's networks by its label and
// reloads it through the Docker API, by name and then by label.
func TestReloadContainerAndProxyLabel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	edge := e.network("edge")
	e.run("proxy", "--network", edge, "--label", "role=edge")
	hups := func() int {
		_, body := httpGet("http://"+e.ip("proxy", edge)+":80/", "")
		n, err := strconv.Atoi(field(body, "hups"))
		if err != nil {
			t.Fatalf("stand-in proxy: %q", body)
		}
		return n
	}
	for i, reload := range [][]string{
		{"--reload-container", e.name("proxy")},
		{"--reload-container-label", "role=edge"},
	} {
		e.stopVhostGen()
		before := hups()
		e.startVhostGen(append([]string{"--reload-pidfile", "", "--proxy-label", "role=edge"}, reload...)...)
		web := fmt.Sprintf("web%d", i)
		e.run(web, "--network", edge, "-e", "VIRTUAL_HOST="+e.host(web))
		e.waitFor(web+" routed on the proxy's network", func() error {
			if got, want := e.servers(e.host(web)), []string{e.ip(web, edge) + ":80"}; !slices.Equal(got, want) {
				return fmt.Errorf("servers %v, want %v", got, want)
			}
			return nil
		})
		e.waitFor("the reload signal to reach the proxy container", func() error {
			if n := hups(); n < before+1 {
				return fmt.Errorf("%d SIGHUPs, want more than %d", n, before)
			}
			return nil
		})
	}
}
