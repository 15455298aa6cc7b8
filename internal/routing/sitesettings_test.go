package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseServerTokens(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "off", want: "off"},
		{in: " ON ", want: "on"},
		{in: "build", want: "build"},
		{in: "false", want: "off"},
		{in: "true", want: "on"},
		{in: "", err: "must be on, off or build"},
		{in: "nginx/9.9", err: "must be on, off or build"},
		{in: "off; include /etc/passwd", err: "must be on, off or build"},
	} {
		got, err := ParseServerTokens(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseServerTokens(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseServerTokens(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// A site's SERVER_TOKENS is the first workload's, by name, that sets it; a bad value and a
// container's EXTERNAL_*_PORT are warnings that leave the workload routed.
func TestBuildSiteSettings(t *testing.T) {
	ws := []discovery.Workload{
		wl("b-2", "10.0.0.3", "VIRTUAL_HOST=b.example", "SERVER_TOKENS=off"),
		wl("b-1", "10.0.0.2", "VIRTUAL_HOST=b.example", "VIRTUAL_PATH=/api/"),
		wl("b-3", "10.0.0.4", "VIRTUAL_HOST=b.example", "SERVER_TOKENS=build"),
		wl("c", "10.0.0.5", "VIRTUAL_HOST=c.example", "SERVER_TOKENS=loud"),
		wl("d", "10.0.0.6", "VIRTUAL_HOST=d.example", "EXTERNAL_HTTPS_PORT=8443", "EXTERNAL_HTTP_PORT=8080"),
	}
	tab := Build(ws, proxyOpts)
	if got := site(t, tab, "b.example").ServerTokens; got != "off" {
		t.Errorf("b.example: ServerTokens %q, want b-2's off (b-1 sets none, b-3 comes later)", got)
	}
	for _, h := range []string{"c.example", "d.example"} {
		if s := site(t, tab, h); s.ServerTokens != "" || len(s.Routes) != 1 || len(s.Routes[0].Backend.Servers) != 1 {
			t.Errorf("%s: %+v, want routed with the gateway's server_tokens", h, s)
		}
	}
	want := map[string]string{
		"c/SERVER_TOKENS":       "must be on, off or build; the site keeps the gateway's server_tokens",
		"d/EXTERNAL_HTTPS_PORT": "ignored: the ports clients use are the gateway's setting",
		"d/EXTERNAL_HTTP_PORT":  "ignored: the ports clients use are the gateway's setting",
	}
	for _, p := range tab.Problems {
		w, ok := want[p.Workload+"/"+p.Setting]
		if !ok || !p.Warning || !strings.Contains(p.Reason, w) {
			t.Errorf("unexpected problem %s", p)
			continue
		}
		delete(want, p.Workload+"/"+p.Setting)
	}
	for k := range want {
		t.Errorf("no warning for %s", k)
	}
}
