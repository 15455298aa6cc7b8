package routing

import (
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// FuzzHostBounds puts a fuzzed host list, repeated, in one of the host-list settings, beside a
// valid neighbour: countHosts agrees with ParseHosts' own split, a list over a bound is one short
// problem and no route, and the neighbour is routed whatever the list.
func FuzzHostBounds(f *testing.F) {
	for _, s := range hostSeeds {
		f.Add(s, uint16(1), uint8(0))
	}
	for _, u := range unicodeHosts {
		f.Add(u.host, uint16(3), uint8(1))
	}
	f.Add("h.example.com", uint16(1000), uint8(0))
	f.Add("h.example.com", uint16(1001), uint8(0))
	f.Add("a,", uint16(1001), uint8(0))
	f.Add(" , ", uint16(3000), uint8(2))
	f.Add(strings.Repeat("x", 200)+".com", uint16(400), uint8(0))
	f.Add("é", uint16(3000), uint8(0))
	f.Fuzz(func(t *testing.T, entry string, repeat uint16, where uint8) {
		// Up to 8 names, or just over MaxHosts: every bound, without building hundreds of sites
		// per input (make fuzz stays quick).
		n := int(repeat) % (MaxHosts + 100)
		if n > 8 && n <= MaxHosts {
			n = 8
		}
		value := strings.Repeat(entry+",", n)
		setting := []string{SettingHost, SettingACMEHost, SettingLEHost}[where%3]

		// countHosts counts what ParseHosts parses: every non-blank entry.
		want := 0
		for _, e := range strings.Split(value, ",") {
			if strings.TrimSpace(e) != "" {
				want++
			}
		}
		if got := countHosts(value); got != want {
			t.Fatalf("countHosts(%q) = %d, want %d", value, got, want)
		}

		w := discovery.Workload{ID: "fuzzid", Name: "fuzz", Source: "docker",
			Labels:   map[string]string{SettingHost: "fuzz.test", setting: value},
			Networks: []discovery.Network{{Name: "proxy", ID: "p", IP: "10.0.0.5"}},
			Ports:    []discovery.Port{{Port: 80, Proto: "tcp"}}}
		neighbour := wl("aaa-neighbour", "10.0.0.2", "VIRTUAL_HOST=neighbour.test")
		tab := Build([]discovery.Workload{w, neighbour}, proxyOpts)
		if got := addresses(route(t, tab, "neighbour.test", "/")); len(got) != 1 || got[0] != "10.0.0.2:80" {
			t.Errorf("neighbour routed to %v", got)
		}
		if ps := problemsOf(tab, "aaa-neighbour"); len(ps) != 0 {
			t.Errorf("neighbour has problems: %v", ps)
		}
		over := len(value) > MaxSettingBytes || (len(value) <= 4*MaxSettingBytes && want > MaxHosts)
		ps := problemsOf(tab, "fuzz")
		if over {
			if len(ps) != 1 || ps[0].Setting != setting || len(ps[0].String()) > 400 {
				t.Errorf("over a bound (%d bytes, %d names): problems %v, want one short problem on %s", len(value), want, ps, setting)
			}
			for _, s := range tab.Sites {
				if s.Host != "neighbour.test" {
					t.Errorf("site %q of a workload over a bound", s.Host)
				}
			}
		}
		for _, p := range ps {
			if r, ok := safeMessage(p.String()); !ok {
				t.Errorf("problem %q carries %U raw", p.String(), r)
			}
		}
	})
}

// FuzzHostUnicode: whatever the bytes, a host list either parses to plain ASCII names or is
// refused with a message that hides nothing (valid UTF-8, invisible runes escaped).
func FuzzHostUnicode(f *testing.F) {
	for _, u := range unicodeHosts {
		f.Add(u.host)
	}
	for _, s := range hostSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		hosts, err := ParseHosts(v)
		if err != nil {
			if r, ok := safeMessage(err.Error()); !ok {
				t.Errorf("ParseHosts(%q): message %q carries %U raw", v, err, r)
			}
			return
		}
		for _, h := range hosts {
			if IsRegexHost(h) {
				checkRegexHost(t, v, h)
				continue
			}
			checkSafe(t, "host", h)
		}
	})
}
