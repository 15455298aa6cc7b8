package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// explainDoc is what `routes --host/--workload --json` and /routes?host=&workload= answer.
type explainDoc struct {
	Live *struct {
		From  string `json:"from"`
		Error string `json:"error"`
	} `json:"live"`
	Hosts []struct {
		Host   string `json:"host"`
		Site   string `json:"site"`
		Match  string `json:"match"`
		Routes []struct {
			Path    string          `json:"path"`
			Servers []explainServer `json:"servers"`
		} `json:"routes"`
		LeftOut []explainLeftOut `json:"leftOut"`
	} `json:"hosts"`
	Workloads []struct {
		Workload string `json:"workload"`
		Serves   []struct {
			Host   string        `json:"host"`
			Server explainServer `json:"server"`
		} `json:"serves"`
		LeftOut  []explainLeftOut `json:"leftOut"`
		Settings []struct {
			Name, Value, Origin string
		} `json:"settings"`
	} `json:"workloads"`
}

type explainServer struct {
	Workload  string `json:"workload"`
	Address   string `json:"address"`
	Via       string `json:"via"`
	ViaDetail string `json:"viaDetail"`
	Live      *struct {
		Status      string `json:"status"`
		Check       string `json:"check"`
		CheckDetail string `json:"checkDetail"`
	} `json:"live"`
}

type explainLeftOut struct {
	Workload string `json:"workload"`
	Host     string `json:"host"`
	Why      string `json:"why"`
	Reason   string `json:"reason"`
	Holder   string `json:"holder"`
}

// servers is every server of the host's first explanation, by workload.
func (d explainDoc) servers() map[string]explainServer {
	out := map[string]explainServer{}
	for _, h := range d.Hosts {
		for _, r := range h.Routes {
			for _, s := range r.Servers {
				out[s.Workload] = s
			}
		}
	}
	return out
}

func (d explainDoc) leftOut() map[string]explainLeftOut {
	out := map[string]explainLeftOut{}
	for _, h := range d.Hosts {
		for _, e := range h.LeftOut {
			out[e.Workload] = e
		}
	}
	return out
}

func decodeExplain(t *testing.T, what, body string) explainDoc {
	t.Helper()
	var d explainDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, body)
	}
	return d
}

// TestRoutesExplain: `vhost-gen routes --host` and /routes?host= explain a host against the real
// engine: each server with the address rule that chose it (a shared network, VIRTUAL_NETWORK,
// host networking, a published port on a network the proxy does not share), each workload left
// out with its reason (unhealthy, a bad label, a conflicting VIRTUAL_PROTO), the paths; --workload
// and ?workload= the other way; with HAProxy, each server's live state from the runtime API, a
// server whose port does not answer DOWN.
func TestRoutesExplain(t *testing.T) {
	t.Run("nginx", func(t *testing.T) {
		t.Parallel()
		explainRules(t)
	})
	t.Run("haproxy", func(t *testing.T) {
		t.Parallel()
		explainLive(t)
	})
}

func explainRules(t *testing.T) {
	e := newProxyEnv(t, "nginx", nil, "--proxy-networks", "bridge")
	back := e.network("back")
	shop := e.host("shop")
	pub, hostNet := freePort(t), freePort(t)
	e.run("web", "-e", "VIRTUAL_HOST="+shop)
	e.run("api", "--network", back, "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PATH=/api", "-e", "VIRTUAL_NETWORK="+back)
	e.run("pub", "--network", back, "-p", fmt.Sprintf("127.0.0.1:%d:80", pub), "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PATH=/pub")
	e.run("hostnet", "--network", "host", "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PATH=/hostnet",
		"-e", fmt.Sprintf("ECHO_PORTS=%d", hostNet), "-e", fmt.Sprintf("VIRTUAL_PORT=%d", hostNet))
	e.run("sick", "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PATH=/sick",
		"--health-cmd", "/echo unhealthy", "--health-interval", "500ms", "--health-retries", "1")
	e.run("badport", "--label", "VIRTUAL_HOST="+shop, "--label", "VIRTUAL_PORT=eighty")
	e.run("web-tls", "-e", "VIRTUAL_HOST="+shop, "-e", "VIRTUAL_PROTO=https")

	// Every rule's address answers through the proxy.
	for path, name := range map[string]string{"/": "web", "/api": "api", "/pub": "pub", "/hostnet": "hostnet"} {
		e.waitBody(shop, path, "name="+name)
	}
	e.waitFor("the unhealthy container's problem", func() error {
		if p := e.problem("sick"); !strings.Contains(p, "health is unhealthy") {
			return fmt.Errorf("problem %q", p)
		}
		return nil
	})

	wantVia := map[string]struct{ via, detail string }{
		"web":     {"shared network", "network bridge"},
		"api":     {"VIRTUAL_NETWORK", "network " + back},
		"hostnet": {"host network", "the node's address "},
		"pub":     {"published port", fmt.Sprintf("port 80/tcp published on 127.0.0.1:%d", pub)},
	}
	wantLeftOut := map[string]struct{ why, reason string }{
		"sick":    {"health", "health is unhealthy"},
		"badport": {"problem", `VIRTUAL_PORT "eighty" (label): must be a port number`},
		"web-tls": {"conflict", "VIRTUAL_PROTO https differs from the other servers' http"},
	}
	check := func(what string, d explainDoc) {
		t.Helper()
		if len(d.Hosts) != 1 || d.Hosts[0].Site != shop || d.Hosts[0].Match != "exact" {
			t.Fatalf("%s: hosts %+v", what, d.Hosts)
		}
		servers := d.servers()
		if len(servers) != len(wantVia) {
			t.Errorf("%s: servers %+v, want %d", what, servers, len(wantVia))
		}
		for name, want := range wantVia {
			s := servers[e.name(name)]
			if s.Via != want.via || !strings.HasPrefix(s.ViaDetail, want.detail) {
				t.Errorf("%s: %s at %q via %q (%q), want via %q (%q...)", what, name, s.Address, s.Via, s.ViaDetail, want.via, want.detail)
			}
		}
		if s := servers[e.name("pub")]; !strings.HasSuffix(s.Address, ":"+strconv.Itoa(pub)) {
			t.Errorf("%s: pub at %s, want the published port %d", what, s.Address, pub)
		}
		if s := servers[e.name("hostnet")]; !strings.HasSuffix(s.Address, ":"+strconv.Itoa(hostNet)) {
			t.Errorf("%s: hostnet at %s, want port %d", what, s.Address, hostNet)
		}
		left := d.leftOut()
		if len(left) != len(wantLeftOut) {
			t.Errorf("%s: left out %+v, want %d", what, left, len(wantLeftOut))
		}
		for name, want := range wantLeftOut {
			if l := left[e.name(name)]; l.Why != want.why || !strings.Contains(l.Reason, want.reason) {
				t.Errorf("%s: %s left out as %q (%q), want %q (%q)", what, name, l.Why, l.Reason, want.why, want.reason)
			}
		}
		if h := left[e.name("web-tls")].Holder; h != e.name("web") {
			t.Errorf("%s: the conflict's holder %q, want %s", what, h, e.name("web"))
		}
		if d.Live != nil {
			t.Errorf("%s: live states with nginx: %+v", what, d.Live)
		}
	}

	// The one-shot command, as JSON and as text.
	common := []string{"routes", "--label-filter", labelKey + "=" + e.label, "--proxy-networks", "bridge", "--log-level", "error"}
	out, stderr, err := vhostGenCmd(t, append(common, "--host", shop, "--json")...)
	if err != nil {
		t.Fatalf("routes --host --json: %v\n%s", err, stderr)
	}
	check("routes --host --json", decodeExplain(t, "routes --host --json", out))

	text, stderr, err := vhostGenCmd(t, append(common, "--host", shop)...)
	if err != nil {
		t.Fatalf("routes --host: %v\n%s", err, stderr)
	}
	t.Logf("routes --host %s:\n%s", shop, text)
	q := regexp.QuoteMeta
	lines := []string{
		q("host " + shop + ": site " + shop + " (exact name)"),
		q("servers:"),
		`/\s+` + q(e.name("web")) + `\s+\S+:80\s+` + q("via shared network: network bridge"),
		`/api\s+` + q(e.name("api")) + `\s+\S+\s+` + q("via VIRTUAL_NETWORK: network "+back),
		`/hostnet\s+` + q(e.name("hostnet")) + `\s+\S+:` + strconv.Itoa(hostNet) + `\s+` + q("via host network: the node's address"),
		`/pub\s+` + q(e.name("pub")) + `\s+\S+:` + strconv.Itoa(pub) + `\s+` + q("via published port: port 80/tcp published on 127.0.0.1:"+strconv.Itoa(pub)),
		q("left out:"),
		q(e.name("badport")) + `\s+` + q(shop+"/") + `\s+` + q(`problem: VIRTUAL_PORT "eighty" (label)`),
		q(e.name("sick")) + `\s+` + q(shop+"/sick") + `\s+` + q("health: health is unhealthy"),
		q(e.name("web-tls")) + `\s+` + q(shop+"/") + `\s+` + q("conflict: VIRTUAL_PROTO https differs"),
		q("routes:"),
		`/\s+-> ` + q("backend "+shop+", http, 1 server"),
	}
	at := 0
	for _, l := range lines {
		loc := regexp.MustCompile(l).FindStringIndex(text[at:])
		if loc == nil {
			t.Fatalf("routes --host: no line matching %q after offset %d:\n%s", l, at, text)
		}
		at += loc[1]
	}

	// The admin server, from the table watch applied.
	_, body := httpGet("http://"+e.admin+"/routes?format=json&host="+url.QueryEscape(shop), "")
	check("/routes?host=", decodeExplain(t, "/routes?host=", body))
	if _, body := httpGet("http://"+e.admin+"/routes?format=text&host="+url.QueryEscape(shop), ""); !strings.Contains(body, "via VIRTUAL_NETWORK: network "+back) {
		t.Errorf("/routes?host=&format=text:\n%s", body)
	}

	// The other direction: a workload, by the CLI and the admin server.
	out, stderr, err = vhostGenCmd(t, append(common, "--workload", e.name("web-tls")+","+e.name("api"), "--json")...)
	if err != nil {
		t.Fatalf("routes --workload: %v\n%s", err, stderr)
	}
	_, body = httpGet("http://"+e.admin+"/routes?format=json&workload="+url.QueryEscape(e.name("web-tls"))+"&workload="+url.QueryEscape(e.name("api")), "")
	for what, raw := range map[string]string{"routes --workload": out, "/routes?workload=": body} {
		d := decodeExplain(t, what, raw)
		if len(d.Workloads) != 2 || d.Workloads[0].Workload != e.name("web-tls") || d.Workloads[1].Workload != e.name("api") {
			t.Fatalf("%s: workloads %+v", what, d.Workloads)
		}
		tls, api := d.Workloads[0], d.Workloads[1]
		if len(tls.Serves) != 0 || len(tls.LeftOut) != 1 || tls.LeftOut[0].Why != "conflict" || tls.LeftOut[0].Host != shop || tls.LeftOut[0].Holder != e.name("web") {
			t.Errorf("%s: web-tls serves %+v, left out %+v", what, tls.Serves, tls.LeftOut)
		}
		if len(api.Serves) != 1 || api.Serves[0].Host != shop || api.Serves[0].Server.Via != "VIRTUAL_NETWORK" || len(api.LeftOut) != 0 {
			t.Errorf("%s: api serves %+v, left out %+v", what, api.Serves, api.LeftOut)
		}
		settings := map[string]string{}
		for _, s := range api.Settings {
			settings[s.Name] = s.Value + " (" + s.Origin + ")"
		}
		if settings["VIRTUAL_NETWORK"] != back+" (env)" || settings["VIRTUAL_PATH"] != "/api (env)" {
			t.Errorf("%s: api settings %v", what, settings)
		}
	}
	text, _, _ = vhostGenCmd(t, append(common, "--workload", e.name("badport"))...)
	if !strings.Contains(text, "workload "+e.name("badport")+": docker") || !regexp.MustCompile(`VIRTUAL_PORT\s+eighty\s+\(label\)`).MatchString(text) ||
		!strings.Contains(text, "problem: VIRTUAL_PORT \"eighty\" (label): must be a port number") {
		t.Errorf("routes --workload badport:\n%s", text)
	}
}

// explainLive: with HAProxy, a server whose port does not answer fails its check and is DOWN in
// the explanation (the CLI with --haproxy-socket, and the admin server), the other UP.
func explainLive(t *testing.T) {
	e := newProxyEnv(t, "haproxy", nil, "--proxy-networks", "bridge")
	h := e.host("live")
	e.run("up", "-e", "VIRTUAL_HOST="+h)
	e.run("down", "-e", "VIRTUAL_HOST="+h, "-e", "VIRTUAL_PORT=81") // the echo server listens on 80 only
	e.waitBody(h, "/", "name=up")
	socket := filepath.Join(e.dir, "admin.sock")

	states := func(d explainDoc) (up, down string) {
		s := d.servers()
		state := func(name string) string {
			if l := s[e.name(name)].Live; l != nil {
				return l.Status + " " + l.Check + " " + l.CheckDetail
			}
			return "none"
		}
		return state("up"), state("down")
	}
	cli := []string{"routes", "--label-filter", labelKey + "=" + e.label, "--proxy-networks", "bridge", "--log-level", "error",
		"--proxy", "haproxy", "--haproxy-socket", socket, "--host", h}
	e.waitFor("routes --host to show the server that does not answer DOWN", func() error {
		out, stderr, err := vhostGenCmd(t, append(cli, "--json")...)
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		d := decodeExplain(t, "routes --host --json", out)
		if d.Live == nil || d.Live.Error != "" || !strings.Contains(d.Live.From, socket) {
			return fmt.Errorf("live %+v", d.Live)
		}
		up, down := states(d)
		if !strings.HasPrefix(up, "UP ") || !strings.HasPrefix(down, "DOWN L4CON") {
			return fmt.Errorf("up %q, down %q", up, down)
		}
		return nil
	})
	text, _, _ := vhostGenCmd(t, cli...)
	t.Logf("routes --host %s:\n%s", h, text)
	if !regexp.MustCompile(regexp.QuoteMeta(e.name("down")) + `\s+\S+:81\s+via shared network: network bridge\s+weight 1\s+DOWN for \S+, check L4CON`).MatchString(text) {
		t.Errorf("routes --host: no DOWN line for the server that does not answer:\n%s", text)
	}

	// The admin server reads the same runtime API (wired with State.SetServerStates).
	e.waitFor("/routes?host= to show the server that does not answer DOWN", func() error {
		_, body := httpGet("http://"+e.admin+"/routes?format=json&host="+url.QueryEscape(h), "")
		d := decodeExplain(t, "/routes?host=", body)
		if d.Live == nil {
			return fmt.Errorf("no live states on /routes?host= (is State.SetServerStates wired in app.go?)")
		}
		up, down := states(d)
		if !strings.HasPrefix(up, "UP ") || !strings.HasPrefix(down, "DOWN L4CON") {
			return fmt.Errorf("up %q, down %q (live %+v)", up, down, d.Live)
		}
		return nil
	})
}
