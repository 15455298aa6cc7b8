package routing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// hostList is n distinct host names, comma-separated.
func hostList(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("h%d.example.com", i)
	}
	return strings.Join(names, ",")
}

// neighbours are ordinary workloads beside the hostile one: their sites must be in every table.
func neighbours() []discovery.Workload {
	ws := make([]discovery.Workload, 0, 5)
	for i := range 5 {
		ws = append(ws, wl(fmt.Sprintf("ok-%d", i), fmt.Sprintf("10.0.0.%d", 10+i), fmt.Sprintf("VIRTUAL_HOST=ok%d.example.com", i)))
	}
	return ws
}

func manyNetworks(n int) []discovery.Network {
	nets := []discovery.Network{{Name: "proxy", ID: "net-proxy", IP: "10.0.0.2"}}
	for i := range n - 1 {
		nets = append(nets, discovery.Network{Name: fmt.Sprintf("n%04d", i), ID: fmt.Sprintf("id%d", i), IP: fmt.Sprintf("10.8.%d.%d", i/200, i%200+2)})
	}
	return nets
}

func allTCPPorts() []discovery.Port {
	ps := make([]discovery.Port, 0, 65535)
	for p := 1; p <= 65535; p++ {
		ps = append(ps, discovery.Port{Port: p, Proto: "tcp"})
	}
	return ps
}

// TestBounds: a workload over a bound is excluded with one problem that names it, the setting and
// where it came from, quotes no more than the start of the value, and leaves every other site in
// the table; a workload at a bound is routed.
func TestBounds(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	// exactly MaxSettingBytes: MaxHosts names of 60 characters and blank padding (trimmed)
	var names []string
	for i := range MaxHosts {
		names = append(names, fmt.Sprintf("%s%04d.example", strings.Repeat("x", 48), i))
	}
	atSize := strings.Join(names, ",")
	atSize += strings.Repeat(" ", MaxSettingBytes-len(atSize))
	tests := []struct {
		name  string
		edit  func(w *discovery.Workload)
		want  string // the problem's String(); "" when the workload is routed
		sites int    // the hostile workload's sites when routed
	}{
		{"1 MiB VIRTUAL_HOST label", func(w *discovery.Workload) { w.Labels[SettingHost] = huge },
			`container web-1: VIRTUAL_HOST "` + huge[:maxShown] + `…" (label): a value of 1048576 bytes, at most 65536`, 0},
		{"10,000 hosts", func(w *discovery.Workload) { w.Labels[SettingHost] = hostList(10000) },
			`container web-1: VIRTUAL_HOST "` + hostList(10000)[:maxShown] + `…" (label): 10000 host names, at most 1000 on one workload (use a wildcard, or spread them over several)`, 0},
		{"10,000 hosts in env", func(w *discovery.Workload) {
			delete(w.Labels, SettingHost)
			w.Env = map[string]string{SettingHost: hostList(10000)}
		},
			`(env): 10000 host names, at most 1000`, 0},
		{"10,000 hosts on a Swarm service", func(w *discovery.Workload) {
			w.Source = "swarm"
			w.ServiceLabels = map[string]string{SettingHost: hostList(10000)}
		}, `swarm web-1: VIRTUAL_HOST "h0.example.com,`, 0},
		{"1,001 hosts", func(w *discovery.Workload) { w.Labels[SettingHost] = hostList(1001) }, `: 1001 host names, at most 1000`, 0},
		{"1,000 hosts: routed", func(w *discovery.Workload) { w.Labels[SettingHost] = hostList(1000) }, "", 1000},
		{"1,000 hosts and blank entries: routed", func(w *discovery.Workload) { w.Labels[SettingHost] = hostList(1000) + ", , ,," }, "", 1000},
		{"exactly 64 KiB: routed", func(w *discovery.Workload) { w.Labels[SettingHost] = atSize }, "", 1000},
		{"64 KiB and one byte", func(w *discovery.Workload) { w.Labels[SettingHost] = atSize + " " }, `: a value of 65537 bytes, at most 65536`, 0},
		{"1 MiB of commas", func(w *discovery.Workload) { w.Labels[SettingHost] = "a.com" + strings.Repeat(",", 1<<20) }, `: a value of 1048581 bytes, at most 65536`, 0},
		{"1 MiB VIRTUAL_PATH", func(w *discovery.Workload) { w.Labels[SettingPath] = "/" + huge },
			`container web-1: VIRTUAL_PATH "/` + huge[:maxShown-1] + `…" (label): a value of 1048577 bytes, at most 65536`, 0},
		{"1 MiB HSTS in env", func(w *discovery.Workload) { w.Env = map[string]string{SettingHSTS: huge} }, `container web-1: HSTS "aaa`, 0},
		{"2,000 ACME hosts", func(w *discovery.Workload) { w.Labels[SettingACMEHost] = hostList(2000) }, `container web-1: ACME_HOST "h0.`, 0},
		{"1 MiB LETSENCRYPT_HOST", func(w *discovery.Workload) { w.Labels[SettingLEHost] = huge }, `: a value of 1048576 bytes`, 0},
		{"1 MiB VIRTUAL_TCP_PORT, no host", func(w *discovery.Workload) { delete(w.Labels, SettingHost); w.Labels[SettingTCPPort] = huge }, `container web-1: VIRTUAL_TCP_PORT "aaa`, 0},
		{"multi-byte value cut at a rune", func(w *discovery.Workload) { w.Labels[SettingHost] = "a" + strings.Repeat("é", 40000) },
			`container web-1: VIRTUAL_HOST "a` + strings.Repeat("é", 31) + `…" (label): a value of 80001 bytes`, 0},
		{"1,000 networks", func(w *discovery.Workload) { w.Networks = manyNetworks(1000) },
			`container web-1: attached to 1000 networks, at most 256 on one routed workload`, 0},
		{"256 networks: routed", func(w *discovery.Workload) { w.Networks = manyNetworks(256) }, "", 1},
		{"every TCP port exposed, no VIRTUAL_PORT", func(w *discovery.Workload) { w.Ports = allTCPPorts() },
			`container web-1: 65535 TCP ports exposed and VIRTUAL_PORT not set: at most 4096 are searched for the default port; set VIRTUAL_PORT`, 0},
		{"every TCP port exposed, VIRTUAL_PORT set: routed", func(w *discovery.Workload) { w.Ports = allTCPPorts(); w.Labels[SettingPort] = "8080" }, "", 1},
		{"4,096 TCP ports with 80: routed", func(w *discovery.Workload) { w.Ports = allTCPPorts()[:MaxDefaultPortSearch] }, "", 1},
		{"a 1 MiB label routing does not read: routed", func(w *discovery.Workload) {
			w.Labels["com.example.blob"] = huge
			w.Env = map[string]string{"BLOB": huge}
		}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := wl("web-1", "10.0.0.2", "VIRTUAL_HOST=web.example.com")
			tt.edit(&w)
			tab := Build(append(neighbours(), w), proxyOpts)
			for i := range 5 {
				site(t, tab, fmt.Sprintf("ok%d.example.com", i)) // the others are untouched
			}
			for _, n := range neighbours() {
				if ps := problemsOf(tab, n.Name); len(ps) != 0 {
					t.Errorf("neighbour %s has problems: %v", n.Name, ps)
				}
			}
			ps := problemsOf(tab, "web-1")
			sites := len(tab.Sites) - 5
			if tt.want == "" {
				if len(ps) != 0 || sites != tt.sites {
					t.Fatalf("want routed to %d sites, got %d sites and problems %v", tt.sites, sites, ps)
				}
				return
			}
			if len(ps) != 1 || sites != 0 || len(tab.TCP) != 0 {
				t.Fatalf("want one problem and no route, got %d sites, TCP %v and problems %v", sites, tab.TCP, ps)
			}
			s := ps[0].String()
			if !strings.Contains(s, tt.want) {
				t.Errorf("problem\n%s\ndoes not contain\n%s", s, tt.want)
			}
			if len(s) > 400 {
				t.Errorf("problem of %d bytes: the value must be cut", len(s))
			}
		})
	}
}

// Several bounds at once are several problems, and a workload that asks for no routing is not
// checked at all.
func TestBoundsSeveralAndUnrouted(t *testing.T) {
	w := wl("web-1", "10.0.0.2", "VIRTUAL_HOST="+hostList(5000), "VIRTUAL_PATH=/"+strings.Repeat("p", 70000))
	w.Networks = manyNetworks(300)
	idle := wl("idle", "10.0.0.3", "com.example.blob="+strings.Repeat("b", 1<<20))
	idle.Networks, idle.Ports = manyNetworks(1000), allTCPPorts()
	tab := Build(append(neighbours(), w, idle), proxyOpts)
	ps := problemsOf(tab, "web-1")
	var got []string
	for _, p := range ps {
		got = append(got, p.Setting)
	}
	if want := []string{"", SettingHost, SettingPath}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("problems %v for settings %q, want %q", ps, got, want)
	}
	if ps := problemsOf(tab, "idle"); len(ps) != 0 {
		t.Errorf("a workload that asks for no routing has problems: %v", ps)
	}
	if len(tab.Sites) != 5 {
		t.Errorf("sites %v, want the 5 neighbours'", siteHosts(tab))
	}
}

func TestCountHosts(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"", 0}, {",", 0}, {" , ,\t,", 0}, {"a", 1}, {"a,b", 2}, {"a,,b,", 2}, {" a , b ", 2},
		{"a,a", 2},             // duplicates count: each is parsed
		{"a,\u00a0,\u3000", 1}, // Unicode blanks are blank, as ParseHosts trims them
		{"a;b", 1},
	} {
		if got := countHosts(tt.in); got != tt.want {
			t.Errorf("countHosts(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestShown(t *testing.T) {
	if got := shown("short"); got != "short" {
		t.Errorf("shown(short) = %q", got)
	}
	if got := shown(strings.Repeat("x", maxShown)); got != strings.Repeat("x", maxShown) {
		t.Errorf("a value of maxShown bytes is cut: %q", got)
	}
	// A rune across the cut is left out whole.
	v := strings.Repeat("x", maxShown-1) + "é" + "tail"
	if got := shown(v); got != strings.Repeat("x", maxShown-1)+"…" {
		t.Errorf("shown cut a rune: %q", got)
	}
}

// Every setting routing reads is bounded, the newest too: over the bound, the workload is left
// out; for the settings whose values only ever warn, it is routed with a warning.
func TestBoundsEverySetting(t *testing.T) {
	for _, name := range SettingNames {
		w := wl("web-1", "10.0.0.2", "VIRTUAL_HOST=web.example.com")
		w.Labels[name] = strings.Repeat("a", MaxSettingBytes+1)
		tab := Build([]discovery.Workload{w}, proxyOpts)
		ps := problemsOf(tab, "web-1")
		if len(ps) != 1 || ps[0].Setting != name || len(ps[0].Value) > maxShown+len("…") {
			t.Errorf("%s of %d bytes: problems %v", name, MaxSettingBytes+1, ps)
			continue
		}
		if routed := len(tab.Sites) == 1; routed != warnOnly[name] || ps[0].Warning != warnOnly[name] {
			t.Errorf("%s of %d bytes: routed %v, problem %v", name, MaxSettingBytes+1, routed, ps[0])
		}
	}
}
