package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// IPv6: nginx-proxy's ENABLE_IPV6 (--enable-ipv6) and PREFER_IPV6_NETWORK
// (--prefer-ipv6-network), and raw addresses as VIRTUAL_HOST, on both proxies, with dockerd's
// real dual-stack networks.

// rawHostCases are the Host headers of requests to the raw-address sites (VIRTUAL_HOST=192.0.2.10,
// [fd00::1], and FD00:0:0::A, which is [fd00::a]) and who must answer them.
var rawHostCases = []hostCase{
	{"192.0.2.10", "raw4", "a raw IPv4 host"},
	{"192.0.2.10:8080", "raw4", "a raw IPv4 host with a port"},
	{"[fd00::1]", "raw6", "a raw IPv6 host, in brackets as a Host header has it"},
	{"[fd00::1]:8080", "raw6", "a raw IPv6 host with a port: the brackets kept, the port dropped"},
	{"[FD00::1]:8080", "raw6", "a raw IPv6 host in upper case"},
	{"[fd00::a]", "raw6b", "VIRTUAL_HOST=FD00:0:0::A (no brackets, not canonical) is [fd00::a]"},
	{"[fd00::a]:80", "raw6b", "the normalised IPv6 host with a port"},
	{"192.0.2.11", "503", "another IPv4 address"},
	{"[fd00::2]", "503", "another IPv6 address"},
	{"[fd00::1:8080]", "503", "a port inside the brackets is part of the address: fd00::1:8080 is another one"},
	{"[fd00::3]", "503", "VIRTUAL_HOST=[fd00::3]:8080 is refused (a port belongs in VIRTUAL_PORT)"},
}

// TestIPv6: the proxies and dockerd with IPv6. A backend on a dual-stack network is reached at its
// IPv4 address by default and at its IPv6 one with PREFER_IPV6_NETWORK (flag or variable): /routes
// and the config show that address, and the backend answers through the proxy; a backend on an
// IPv6-only network is reached on IPv6 either way (when dockerd can make such a network: 20.10
// gives every network an IPv4 subnet too, and then that backend is one more dual-stack check). A
// server added later goes in through HAProxy's runtime API, without a reload, IPv6 or not. With
// ENABLE_IPV6 a listen on a bare port gets its IPv6 twin, which answers on [::1]; without it, or
// on a listen on one address (127.0.0.1:PORT), nothing answers on [::1]. Raw IPv4 and IPv6
// addresses as VIRTUAL_HOST answer requests whose Host is that address, with or without a port.
// This machine's IPv6 is checked first: a kernel or dockerd without it fails the test, saying why.
func TestIPv6(t *testing.T) {
	requireHostIPv6(t)
	forEachProxy(t, ipv6Gateways)
}

// ipv6Gateway is one way of running vhost-gen for TestIPv6.
type ipv6Gateway struct {
	name   string
	vars   []string
	flags  []string
	bare   bool // --listen a bare port (every address), else the harness's 127.0.0.1:PORT
	prefer bool // PREFER_IPV6_NETWORK in effect
	twin   bool // an IPv6 listen expected
	e      *env
}

func ipv6Gateways(t *testing.T, proxy string) {
	// The gateways are started in this test, so they share its label: each routes the containers
	// made here once.
	pre := &env{t: t, label: testLabel(t)}
	t.Cleanup(func() { removeLabelled(labelKey + "=" + pre.label) })
	dual := ipv6Network(pre, "dual", true)
	only := ipv6Network(pre, "v6only", false)
	webHost, onlyHost := pre.host("web"), pre.host("only6")
	pre.run("web", "--network", dual, "-e", "VIRTUAL_HOST="+webHost)
	pre.run("only6", "--network", only, "-e", "VIRTUAL_HOST="+onlyHost)
	pre.run("raw4", "--network", dual, "-e", "VIRTUAL_HOST=192.0.2.10")
	pre.run("raw6", "--network", dual, "-e", "VIRTUAL_HOST=[fd00::1]")
	pre.run("raw6b", "--network", dual, "-e", "VIRTUAL_HOST=FD00:0:0::A")
	pre.run("raw6-port", "--network", dual, "-e", "VIRTUAL_HOST=[fd00::3]:8080")

	// dockerd gave the containers IPv6 addresses, and the host reaches them (the network's bridge
	// holds the subnet's gateway address).
	web := containerAddrs(pre, "web", dual)
	if web.v6 == "" {
		t.Fatalf("dockerd gave web no IPv6 address on the dual-stack network %s (IPv4 %q); this machine: %s", dual, web.v4, hostIPv6State())
	}
	if web.v4 == "" {
		t.Fatalf("dockerd gave web no IPv4 address on the dual-stack network %s", dual)
	}
	only6 := containerAddrs(pre, "only6", only)
	if only6.v6 == "" {
		t.Fatalf("dockerd gave only6 no IPv6 address on the network %s; this machine: %s", only, hostIPv6State())
	}
	if only6.v4 != "" {
		t.Logf("dockerd %s gave the network %s, made with an IPv6 subnet alone and com.docker.network.enable_ipv4=false, an IPv4 subnet too (only6 has %s): "+
			"it cannot make IPv6-only networks, so the IPv6-only case is not covered here; only6 is a second dual-stack backend",
			pre.docker("version", "--format", "{{.Server.Version}}"), only, only6.v4)
	}
	for _, c := range []struct {
		name string
		a    addrs
	}{{"web", web}, {"only6", only6}} {
		url := "http://" + net.JoinHostPort(c.a.v6, "80") + "/"
		pre.waitFor(fmt.Sprintf("this machine to reach %s at its IPv6 address (%s) directly; if it never does, the kernel or dockerd routes no IPv6 to containers (this machine: %s)", c.name, url, hostIPv6State()), func() error {
			if code, body := httpGet(url, ""); code != 200 || field(body, "name") != c.name {
				return fmt.Errorf("got %d %q", code, body)
			}
			return nil
		})
	}

	nets := dual + "," + only
	gateways := []*ipv6Gateway{
		// IPv4 by default; --enable-ipv6 on a listen on one address adds nothing.
		{name: "default", flags: []string{"--proxy-networks", nets, "--enable-ipv6"}},
		// nginx-proxy's ENABLE_IPV6 on a bare port, and --prefer-ipv6-network.
		{name: "ipv6", vars: []string{"ENABLE_IPV6=true"}, flags: []string{"--proxy-networks", nets, "--prefer-ipv6-network"}, bare: true, prefer: true, twin: true},
		// nginx-proxy's PREFER_IPV6_NETWORK, on a bare port without ENABLE_IPV6.
		{name: "no-listen-v6", vars: []string{"PREFER_IPV6_NETWORK=true"}, flags: []string{"--proxy-networks", nets}, bare: true, prefer: true},
	}
	for _, g := range gateways {
		flags := g.flags
		port := 0
		if g.bare {
			port = freeAnyPort(t)
			flags = append(slices.Clone(flags), "--listen", strconv.Itoa(port)) // later flags win
		}
		g.e = newProxyEnv(t, proxy, g.vars, flags...)
		if g.bare {
			g.e.port = port
		}
	}

	// want is where a gateway reaches a backend.
	want := func(g *ipv6Gateway, a addrs) string {
		if a.v6 != "" && (g.prefer || a.v4 == "") {
			return net.JoinHostPort(a.v6, "80")
		}
		return net.JoinHostPort(a.v4, "80")
	}
	for _, g := range gateways {
		e := g.e
		// The backends, at the address the settings choose, answer through the proxy.
		backends := map[string]string{webHost: want(g, web), onlyHost: want(g, only6)}
		e.waitFor(g.name+": the backends' addresses in /routes", func() error {
			for h, addr := range backends {
				if got := e.servers(h); !slices.Equal(got, []string{addr}) {
					return fmt.Errorf("%s: servers %v, want [%s]", h, got, addr)
				}
			}
			return nil
		})
		e.waitBody(webHost, "/", "name=web ")
		e.waitBody(onlyHost, "/", "name=only6 ")
		cfg := e.config()
		for h, addr := range backends {
			if !strings.Contains(cfg, " "+addr) {
				t.Errorf("%s: the config lacks %s's server address %s", g.name, h, addr)
			}
		}

		// Raw addresses as hosts, through 127.0.0.1 and, when it listens there, [::1].
		e.waitFor(g.name+": the raw-address sites to answer", func() error {
			if bad := rawHostMismatches(e, "127.0.0.1:"+strconv.Itoa(e.port)); len(bad) > 0 {
				return fmt.Errorf("\n%s", strings.Join(bad, "\n"))
			}
			return nil
		})
		for h, n := range map[string]string{"192.0.2.10": "raw4", "[fd00::1]": "raw6", "[fd00::a]": "raw6b"} {
			if got := e.servers(h); len(got) != 1 {
				t.Errorf("%s: /routes site %s has servers %v, want %s's one", g.name, h, got, n)
			}
		}
		for _, n := range []string{"raw4", "raw6", "raw6b"} {
			if ps := e.problemsOf(n); len(ps) != 0 {
				t.Errorf("%s: %s: problems %q, want none", g.name, n, ps)
			}
		}
		if ps := e.problemsOf("raw6-port"); len(ps) != 1 || !strings.HasPrefix(ps[0], "VIRTUAL_HOST: ") {
			t.Errorf("%s: raw6-port (VIRTUAL_HOST=[fd00::3]:8080): problems %q, want one on VIRTUAL_HOST", g.name, ps)
		}

		// The IPv6 listen.
		v6 := net.JoinHostPort("::1", strconv.Itoa(e.port))
		twin := map[string]string{"nginx": "listen [::]:" + strconv.Itoa(e.port), "haproxy": "bind ipv6@:" + strconv.Itoa(e.port) + " v6only"}[proxy]
		if g.twin {
			if !strings.Contains(cfg, twin) {
				t.Errorf("%s: the config lacks %q", g.name, twin)
			}
			e.waitFor(g.name+": "+v6+" to answer", func() error {
				if code, body := httpGet("http://"+v6+"/", webHost); code != 200 || field(body, "name") != "web" {
					return fmt.Errorf("got %d %q", code, body)
				}
				return nil
			})
			for _, bad := range rawHostMismatches(e, v6) {
				t.Errorf("%s: %s", g.name, bad)
			}
		} else {
			for _, s := range []string{"[::]", "ipv6@"} {
				if strings.Contains(cfg, s) {
					t.Errorf("%s: the config has an IPv6 listen (%q) on %s", g.name, s, map[bool]string{false: "a listen on 127.0.0.1", true: "a bare port without ENABLE_IPV6"}[g.bare])
				}
			}
			if c, err := net.DialTimeout("tcp6", v6, 2*time.Second); err == nil {
				c.Close()
				t.Errorf("%s: %s accepts connections, want none (no IPv6 listen)", g.name, v6)
			}
		}
		// IPv4 answers either way, on 127.0.0.1.
		if code, body := e.get(webHost, "/"); code != 200 || field(body, "name") != "web" {
			t.Errorf("%s: %s through 127.0.0.1:%d: got %d %q", g.name, webHost, e.port, code, body)
		}
	}

	// A second server, added while the gateways run: at its address of the settings' choice (for
	// HAProxy through the runtime API, without a reload), and both servers answer.
	reloads := map[*ipv6Gateway]int{}
	if proxy == "haproxy" {
		for _, g := range gateways {
			reloads[g] = g.e.masterReloads()
		}
	}
	pre.run("web2", "--network", dual, "-e", "VIRTUAL_HOST="+webHost)
	web2 := containerAddrs(pre, "web2", dual)
	if web2.v6 == "" || web2.v4 == "" {
		t.Fatalf("dockerd gave web2 addresses %+v on the dual-stack network %s, want both", web2, dual)
	}
	for _, g := range gateways {
		e := g.e
		wantServers := []string{want(g, web), want(g, web2)}
		slices.Sort(wantServers)
		e.waitFor(g.name+": web2 in /routes", func() error {
			got := e.servers(webHost)
			slices.Sort(got)
			if !slices.Equal(got, wantServers) {
				return fmt.Errorf("servers %v, want %v", got, wantServers)
			}
			return nil
		})
		e.waitFor(g.name+": web and web2 to answer", func() error {
			if seen := e.names(webHost, 10); seen["web"] == 0 || seen["web2"] == 0 || len(seen) != 2 {
				return fmt.Errorf("10 requests reached %v", seen)
			}
			return nil
		})
		if proxy == "haproxy" {
			if got := e.masterReloads(); got != reloads[g] {
				t.Errorf("%s: a server added (%s): HAProxy's master reloaded %d times, want 0 (the runtime API)", g.name, want(g, web2), got-reloads[g])
			}
		}
	}
}

// rawHostMismatches sends rawHostCases to the proxy at addr and lists the wrong answers. The
// backend must get the Host header as the client sent it.
func rawHostMismatches(e *env, addr string) []string {
	var bad []string
	for _, c := range rawHostCases {
		code, body := httpGet("http://"+addr+"/", c.host)
		got := answeredBy(code, body)
		switch {
		case got != c.want:
			bad = append(bad, fmt.Sprintf("Host %s through %s: answered by %s (%d %q), want %s (%s)", c.host, addr, got, code, strings.TrimSpace(body), c.want, c.why))
		case code == 200 && field(body, "host") != c.host:
			bad = append(bad, fmt.Sprintf("Host %s through %s: the backend got Host %q", c.host, addr, field(body, "host")))
		}
	}
	return bad
}

// addrs are a container's addresses on one network.
type addrs struct{ v4, v6 string }

func containerAddrs(e *env, container, network string) addrs {
	e.t.Helper()
	out := e.docker("inspect", "-f", fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}`, network), e.name(container))
	v4, v6, _ := strings.Cut(out, " ")
	return addrs{strings.TrimSpace(v4), strings.TrimSpace(v6)}
}

// ipv6Network creates a network with IPv6, labelled for e, and returns its name. dual: a /24 of
// 198.18.0.0/15 (for benchmarks: nothing here uses it) and a /64 of fd7c:5e1f::/32; else a /64
// alone, and IPv4 disabled (dockerd 27 and later; 20.10 adds an IPv4 subnet of its own). A subnet
// another network holds is passed over for another.
func ipv6Network(e *env, name string, dual bool) string {
	e.t.Helper()
	var last string
	for range 20 {
		n := rand.IntN(512)
		args := []string{"network", "create", "--label", labelKey + "=" + e.label, "--ipv6"}
		if dual {
			args = append(args, "--subnet", fmt.Sprintf("198.%d.%d.0/24", 18+n/256, n%256), "--subnet", fmt.Sprintf("fd7c:5e1f:0:%x::/64", n))
		} else {
			args = append(args, "--subnet", fmt.Sprintf("fd7c:5e1f:1:%x::/64", n), "-o", "com.docker.network.enable_ipv4=false")
		}
		args = append(args, e.name(name))
		var out bytes.Buffer
		cmd := exec.Command("docker", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			return e.name(name)
		}
		last = fmt.Sprintf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		if !strings.Contains(out.String(), "overlap") {
			break
		}
	}
	e.t.Fatalf("dockerd cannot create an IPv6 network: %s\nthis machine: %s", last, hostIPv6State())
	return ""
}

// freeAnyPort returns a port free on every address, IPv4 and IPv6 (a listen on ":0" takes both
// here: net.ipv6.bindv6only is 0), that no other test of this run was given.
func freeAnyPort(t testing.TB) int { return freePortOn(t, ":0") }

// requireHostIPv6 fails the test, saying why, when this machine's kernel cannot do IPv6 on the
// loopback: the proxies' IPv6 listen is tested on [::1].
func requireHostIPv6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/net/if_inet6"); err != nil {
		t.Fatalf("the kernel has no IPv6 (%v: the ipv6 module is not loaded, or the kernel was booted with ipv6.disable=1), so ENABLE_IPV6 and PREFER_IPV6_NETWORK cannot be tested", err)
	}
	for _, k := range []string{"all", "lo"} {
		if v, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + k + "/disable_ipv6"); err == nil && strings.TrimSpace(string(v)) != "0" {
			t.Fatalf("IPv6 is disabled: net.ipv6.conf.%s.disable_ipv6 = %s (sysctl -w net.ipv6.conf.%s.disable_ipv6=0 enables it), so ENABLE_IPV6 and PREFER_IPV6_NETWORK cannot be tested; this machine: %s",
				k, strings.TrimSpace(string(v)), k, hostIPv6State())
		}
	}
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("cannot listen on [::1] (%v): the loopback has no IPv6 address, so the proxies' IPv6 listen cannot be tested; this machine: %s", err, hostIPv6State())
	}
	l.Close()
}

// hostIPv6State tells what this machine has of IPv6, for a failure's message.
func hostIPv6State() string {
	var parts []string
	if data, err := os.ReadFile("/proc/net/if_inet6"); err != nil {
		parts = append(parts, fmt.Sprintf("no /proc/net/if_inet6 (%v)", err))
	} else {
		var ifs []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if f := strings.Fields(line); len(f) == 6 {
				ifs = append(ifs, f[5]+"="+f[0])
			}
		}
		parts = append(parts, "IPv6 addresses: "+strings.Join(ifs, " "))
	}
	for _, k := range []string{"all", "default", "lo"} {
		v, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + k + "/disable_ipv6")
		if err != nil {
			parts = append(parts, fmt.Sprintf("net.ipv6.conf.%s.disable_ipv6: %v", k, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("net.ipv6.conf.%s.disable_ipv6=%s", k, strings.TrimSpace(string(v))))
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").Output(); err == nil {
		parts = append(parts, "dockerd "+strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, "; ")
}
