package routing

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// cacheChanges are the labels a step of TestSettingsCacheBuild sets (empty: removed), a bad value
// among them.
var cacheChanges = map[string][]string{
	SettingHost:             {"a.example.com", "b.example.com,c.example.com", "*.example.org", "bad host!"},
	SettingPath:             {"", "/api/", "nope"},
	SettingPort:             {"", "80", "8080", "99999"},
	SettingProto:            {"", "https", "fastcgi", "tcp?"},
	SettingWeight:           {"", "0", "5"},
	SettingNetworkAccess:    {"", "internal"},
	SettingLoadBalance:      {"", "least_conn;", "hash $nope"},
	SettingMultiports:       {"", "a.example.com: {/: {port: 80}}", "{"},
	SettingTCPPort:          {"", "5432"},
	SettingHTTPSMethod:      {"", "redirect", "nohttp"},
	SettingServerTokens:     {"", "off"},
	SettingNetwork:          {"", "proxy", "other"},
	"com.example.unrelated": {"", "x"},
}

// TestSettingsCacheBuild: over random sequences of changes (labels, good and bad; networks;
// health; workloads coming and going; the proxy's networks), a SettingsCache's Build returns the
// table Build does, and parses again only the workloads that changed.
func TestSettingsCacheBuild(t *testing.T) {
	keys := slices.Sorted(maps.Keys(cacheChanges))
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 2))
		var ws []discovery.Workload
		for i := range 20 {
			ws = append(ws, wl(fmt.Sprintf("w%02d", i), fmt.Sprintf("10.0.0.%d", i+2), "VIRTUAL_HOST="+[]string{"a.example.com", "b.example.com"}[i%2]))
		}
		opt := Options{ProxyNetworks: []string{"proxy"}, TCP: true}
		var c SettingsCache
		next := len(ws)
		for step := range 200 {
			changed := 1
			i := rng.IntN(len(ws))
			w := ws[i] // copied: the last Build's workloads keep their maps
			switch rng.IntN(6) {
			case 0, 1, 2:
				k := keys[rng.IntN(len(keys))]
				v := cacheChanges[k][rng.IntN(len(cacheChanges[k]))]
				w.Labels = maps.Clone(w.Labels)
				if v == "" {
					delete(w.Labels, k)
				} else {
					w.Labels[k] = v
				}
				ws[i] = w
			case 3:
				w.Networks = []discovery.Network{{Name: []string{"proxy", "other"}[rng.IntN(2)], ID: "n", IP: fmt.Sprintf("10.0.1.%d", rng.IntN(200)+2)}}
				w.Health = []string{"", discovery.HealthStarting, discovery.HealthHealthy}[rng.IntN(3)]
				ws[i] = w
			case 4:
				next++
				ws = append(ws, wl(fmt.Sprintf("w%02d", next), fmt.Sprintf("10.0.2.%d", next%250+2), "VIRTUAL_HOST=c.example.com"))
				if len(ws) > 3 {
					ws = slices.Delete(ws, i, i+1)
				}
			default:
				opt.ProxyNetworks = [][]string{{"proxy"}, {"proxy", "other"}}[rng.IntN(2)]
				changed = 0
			}
			got, want := c.Build(ws, opt), Build(ws, opt)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d step %d: the cached build differs:\n%+v\n%+v", seed, step, got, want)
			}
			if step > 0 && c.parsed > changed {
				t.Fatalf("seed %d step %d: %d workloads parsed, want at most %d", seed, step, c.parsed, changed)
			}
		}
		if len(c.byID) != len(ws) {
			t.Errorf("seed %d: %d workloads' settings kept for %d workloads", seed, len(c.byID), len(ws))
		}
	}
}
