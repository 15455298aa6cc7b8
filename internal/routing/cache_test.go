package routing

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// cacheChanges are the labels a step of TestCacheBuild sets (empty: removed), a bad value
// among them. The hosts are few, so that workloads share sites, fight over routes (proto, path,
// loadbalance) and over addresses; "/api" and "/api/" give two routes one backend name,
// and so do two regular expressions, "~^ab$" and "~(ab)".
var cacheChanges = map[string][]string{
	SettingHost: {"a.example.com", "b.example.com,c.example.com", "*.example.org", "bad host!", "d.example.com", "c.example.com",
		"c.example.com,d.example.com", "a.example.com,e.example.com", "~^ab$", "~(ab)"},
	SettingPath:             {"", "/api", "/api/", "nope"},
	SettingPort:             {"", "80", "8080", "99999"},
	SettingProto:            {"", "https", "fastcgi", "tcp?"},
	SettingWeight:           {"", "0", "5"},
	SettingNetworkAccess:    {"", "internal"},
	SettingLoadBalance:      {"", "least_conn;", "hash $nope"},
	SettingMultiports:       {"", "a.example.com: {/: {port: 80}}", "e.example.com: {/x: {port: 80}}", "{"},
	SettingTCPPort:          {"", "5432"},
	SettingHTTPSMethod:      {"", "redirect", "nohttp"},
	SettingServerTokens:     {"", "off"},
	SettingNetwork:          {"", "proxy", "other"},
	SettingACMEHost:         {"", "d.example.com"},
	SettingCertName:         {"", "shared"},
	"com.example.unrelated": {"", "x"},
}

// TestCacheBuild: over random sequences of changes (labels, good and bad; networks; health;
// workloads coming and going; the options, the proxy's container and its networks, HTTPS and
// ACME, DEFAULT_HOST), a Cache's Build returns the table Build does; it parses again only the
// workloads that changed, and most steps build only part of the table.
func TestCacheBuild(t *testing.T) {
	keys := slices.Sorted(maps.Keys(cacheChanges))
	partial, steps := 0, 0
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 2))
		var ws []discovery.Workload
		for i := range 30 {
			ws = append(ws, wl(fmt.Sprintf("w%02d", i), fmt.Sprintf("10.0.0.%d", i+2), "VIRTUAL_HOST="+[]string{"a.example.com", "b.example.com", "d.example.com"}[i%3]))
		}
		proxy := wl("proxy", "10.0.0.1", "com.example.proxy=1")
		ws = append(ws, proxy)
		opt := Options{ProxyNetworks: []string{"proxy"}, TCP: true}
		tlsOpts := []*TLSOptions{nil, {Certs: fakeCerts{"a.example.com": "file", "shared": "file"}, Method: MethodRedirect},
			{Certs: fakeCerts{"default": "file"}, Method: MethodRedirect, ACME: true, TrustDefaultCert: true}}
		var c Cache
		next := len(ws)
		for step := range 300 {
			changed := 1
			i := rng.IntN(len(ws))
			w := ws[i] // copied: the last Build's workloads keep their maps
			switch rng.IntN(9) {
			case 0, 1, 2, 3:
				k := keys[rng.IntN(len(keys))]
				v := cacheChanges[k][rng.IntN(len(cacheChanges[k]))]
				w.Labels = maps.Clone(w.Labels)
				if v == "" {
					delete(w.Labels, k)
				} else {
					w.Labels[k] = v
				}
				ws[i] = w
			case 4:
				// Few addresses: workloads come to share one.
				w.Networks = []discovery.Network{{Name: []string{"proxy", "other"}[rng.IntN(2)], ID: "n", IP: fmt.Sprintf("10.0.1.%d", rng.IntN(6)+2)}}
				w.Health = []string{"", discovery.HealthStarting, discovery.HealthHealthy}[rng.IntN(3)]
				ws[i] = w
			case 5:
				next++
				ws = append(ws, wl(fmt.Sprintf("w%02d", next), fmt.Sprintf("10.0.2.%d", next%250+2), "VIRTUAL_HOST=c.example.com"))
				if len(ws) > 3 {
					ws = slices.Delete(ws, i, i+1)
				}
				changed = 1
			case 6:
				w.Problem = []string{"", "a malformed value"}[rng.IntN(2)]
				ws[i] = w
			default:
				changed = 0
				switch rng.IntN(5) {
				case 0:
					opt.ProxyNetworks = [][]string{{"proxy"}, {"proxy", "other"}, nil}[rng.IntN(3)]
				case 1:
					opt.ProxyLabel = []string{"", "com.example.proxy", "com.example.none"}[rng.IntN(3)]
				case 2:
					opt.TLS = tlsOpts[rng.IntN(len(tlsOpts))]
				case 3:
					opt.DefaultHost = []string{"", "a.example.com", "c.example.com", "nowhere.example.com"}[rng.IntN(4)]
				default:
					opt.ProxyContainer = []string{"", "proxy"}[rng.IntN(2)]
				}
			}
			got, want := c.Build(slices.Clone(ws), opt), Build(ws, opt)
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("seed %d step %d: the cached build differs:\n%s", seed, step, lineDiff(string(wj), string(gj)))
			}
			if step > 0 && c.parsed > changed {
				t.Fatalf("seed %d step %d: %d workloads parsed, want at most %d", seed, step, c.parsed, changed)
			}
			steps++
			if c.placed < len(ws) {
				partial++
			}
		}
		if len(c.byID) != len(ws) {
			t.Errorf("seed %d: %d workloads' settings kept for %d workloads", seed, len(c.byID), len(ws))
		}
	}
	// Most steps change one workload of a few hosts; a third touch a TCP service, an ACME
	// request, the options or colliding names, and build whole.
	t.Logf("%d of %d builds partial", partial, steps)
	if partial < steps/3 {
		t.Errorf("%d of %d builds were partial, want at least a third", partial, steps)
	}
}

// lineDiff is the lines of two texts that differ, for a failure message.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d: want %s\n         got  %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

// TestCachePartial: at 300 workloads on 100 sites, one workload's change places only its site's
// workloads; a TCP service's change, new options or Invalidate place them all.
func TestCachePartial(t *testing.T) {
	var ws []discovery.Workload
	for i := range 300 {
		ws = append(ws, wl(fmt.Sprintf("w%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+2), fmt.Sprintf("VIRTUAL_HOST=s%02d.example.com", i/3)))
	}
	ws = append(ws, wl("db", "10.0.9.9", "VIRTUAL_TCP_PORT=5432"))
	opt := Options{ProxyNetworks: []string{"proxy"}, TCP: true}
	var c Cache
	check := func(what string, wantPlaced int) {
		t.Helper()
		got := c.Build(slices.Clone(ws), opt)
		if want := Build(ws, opt); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: the cached build differs", what)
		}
		if c.placed != wantPlaced {
			t.Errorf("%s: %d workloads placed, want %d", what, c.placed, wantPlaced)
		}
	}
	check("first build", len(ws))
	check("nothing changed", 0)
	ws[40].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: "10.0.5.5"}}
	check("an address", 3)
	ws[41].Labels = map[string]string{"VIRTUAL_HOST": "s13.example.com,s14.example.com"}
	check("a workload joins a second site", 6)
	ws = slices.Delete(ws, 100, 101)
	check("a workload goes", 2)
	ws[len(ws)-1].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: "10.0.9.8"}}
	check("the TCP service's address", len(ws))
	opt.DefaultHost = "s01.example.com"
	check("DEFAULT_HOST", len(ws))
	ws[3].Health = discovery.HealthUnhealthy
	check("the default site's health", 3)
	c.Invalidate()
	check("invalidated", len(ws))
	for i := 99; i < 164; i++ { // every workload of 22 sites (65): more than a partial build takes
		ws[i].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: fmt.Sprintf("10.0.6.%d", i-90)}}
	}
	check("many changes at once", len(ws))
	c.WholeEvery = time.Nanosecond
	ws[5].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: "10.0.5.8"}}
	check("the last whole build is too old", len(ws))
	c.WholeEvery = 0
	// Two regular expressions share a backend name, so one has a hash: while they do, builds are
	// whole; when the first goes, the other's name loses its hash.
	ws = append(ws, wl("rx1", "10.0.8.1", "VIRTUAL_HOST=~(ab)"), wl("rx2", "10.0.8.2", "VIRTUAL_HOST=~^ab$"))
	check("names collide", len(ws))
	ws[0].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: "10.0.5.6"}}
	check("an address while names collide", len(ws))
	ws = ws[:len(ws)-2]
	ws = append(ws, wl("rx2", "10.0.8.2", "VIRTUAL_HOST=~^ab$"))
	check("the first of them goes", len(ws))
	ws[0].Networks = []discovery.Network{{Name: "proxy", ID: "n", IP: "10.0.5.7"}}
	check("an address, names apart again", 3)
}

// TestCacheOddKeys: workloads that share a key, an ID shared by two sources, an empty ID, and a
// change that removes the last exclusion: the cached build is still Build's.
func TestCacheOddKeys(t *testing.T) {
	opt := Options{ProxyNetworks: []string{"proxy"}}
	var c Cache
	check := func(what string, ws ...discovery.Workload) {
		t.Helper()
		if got, want := c.Build(slices.Clone(ws), opt), Build(ws, opt); !reflect.DeepEqual(got, want) {
			gj, _ := json.MarshalIndent(got, "", " ")
			wj, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s: the cached build differs:\n%s", what, lineDiff(string(wj), string(gj)))
		}
	}
	// The last exclusion goes: none, not an empty list.
	a, b := wl("a", "10.0.0.2", "VIRTUAL_HOST=a.example.com"), wl("b", "10.0.0.3", "VIRTUAL_HOST=b.example.com")
	a.Problem = "broken"
	check("a problem", a, b)
	a.Problem = ""
	check("fixed", a, b)

	// Twins (one key): one changes, one goes.
	c = Cache{}
	t1 := wl("t", "10.0.0.2", "VIRTUAL_HOST=a.example.com", "VIRTUAL_PORT=99999")
	t2 := wl("t", "10.0.0.3", "VIRTUAL_HOST=b.example.com")
	check("twins", t1, t2)
	check("twins again", t1, t2)
	t2.Labels = kv("VIRTUAL_HOST=c.example.com")
	check("a twin changes", t1, t2)
	check("one goes", t1)
	check("one alone", t1)

	// One ID in two sources; the docker one is left out of a shared address.
	c = Cache{}
	x, y := wl("x", "10.0.0.5", "VIRTUAL_HOST=h1.example.com"), wl("y", "10.0.0.5", "VIRTUAL_HOST=h1.example.com")
	k := wl("k", "10.0.0.9", "VIRTUAL_HOST=h2.example.com")
	k.Source, k.ID = "kube", y.ID
	check("two sources", x, y, k)
	x.Labels = kv("VIRTUAL_HOST=h1.example.com", "com.example.x=1")
	check("a change beside them", x, y, k)

	// An empty ID.
	c = Cache{}
	e := wl("e", "10.0.0.2", "VIRTUAL_HOST=a.example.com", "VIRTUAL_PORT=99999")
	e.ID = ""
	check("an empty ID", e, b)
	e.Labels = kv("VIRTUAL_HOST=a.example.com")
	check("an empty ID, fixed", e, b)
}
