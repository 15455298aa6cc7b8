package registry

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

var layout = Layout{Prefix: "/vhost-gen"}

func sample() discovery.Workload {
	return discovery.Workload{
		ID: "0ff6cb6c1eb8", Name: "shop-1", Source: "docker",
		Labels:      map[string]string{"VIRTUAL_HOST": "shop.example.com", "com.example.team": "a"},
		Env:         map[string]string{"VIRTUAL_PORT": "8080"},
		Networks:    []discovery.Network{{Name: "edge", ID: "n1", IP: "10.0.1.5"}},
		Ports:       []discovery.Port{{Port: 8080, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 49156}},
		NetworkMode: "edge", NodeAddress: "192.0.2.10", Health: discovery.HealthHealthy,
		Service: "shop", Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	}
}

func TestRoundTrip(t *testing.T) {
	w := sample()
	v, err := EncodeWorkload(w)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeWorkload(w)
	if !bytes.Equal(v, again) {
		t.Fatal("the same workload encodes to different bytes")
	}
	got := DecodeWorkload(layout, layout.WorkloadKey("host-a", w.ID), v)
	want := w
	want.Source, want.Publisher = "etcd", "host-a"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	key := layout.WorkloadKey("host-a", "0ff6cb6c1eb8")
	enc := func(change func(w *discovery.Workload)) []byte {
		w := sample()
		change(&w)
		b, _ := json.Marshal(Record{V: Version, Workload: w})
		return b
	}
	tests := []struct {
		name, key string
		value     []byte
		want      string
	}{
		{"not JSON", key, []byte("10.0.0.5:80"), "not a published workload"},
		{"other version", key, []byte(`{"v":2,"workload":{"id":"0ff6cb6c1eb8"}}`), "record version 2"},
		{"huge", key, bytes.Repeat([]byte("x"), MaxValue+1), "more than the"},
		{"ID not the key's", key, enc(func(w *discovery.Workload) { w.ID = "other" }), "is not the key's"},
		{"key outside the layout", "/vhost-gen/v1/workloads/host-a", enc(func(*discovery.Workload) {}), "not a workload key"},
		{"key with a slash in the ID", key + "/x", enc(func(*discovery.Workload) {}), "not a workload key"},
		{"bad network name", key, enc(func(w *discovery.Workload) { w.Networks[0].Name = "edge;" }), "network"},
		{"bad IP", key, enc(func(w *discovery.Workload) { w.Networks[0].IP = "10.0.1.5; include x" }), "not an IP address"},
		{"port out of range", key, enc(func(w *discovery.Workload) { w.Ports[0].Port = 70000 }), "out of range"},
		{"host port out of range", key, enc(func(w *discovery.Workload) { w.Ports[0].HostPort = -1 }), "out of range"},
		{"bad node address", key, enc(func(w *discovery.Workload) { w.NodeAddress = "a b" }), "node address"},
		{"bad health", key, enc(func(w *discovery.Workload) { w.Health = "great" }), "health"},
		{"control characters in the name", key, enc(func(w *discovery.Workload) { w.Name = "a\nproblem: forged" }), "control characters"},
		{"bad address", key, enc(func(w *discovery.Workload) { w.Address = "1.2.3.4:99999" }), "address"},
		{"too many labels", key, enc(func(w *discovery.Workload) {
			for i := range maxMapEntries + 1 {
				w.Labels["l"+strconv.Itoa(i)] = "v"
			}
		}), "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := DecodeWorkload(layout, tt.key, tt.value)
			if w.Problem == "" || !strings.Contains(w.Problem, tt.want) || !strings.Contains(w.Problem, "etcd key") {
				t.Fatalf("problem %q, want one naming the key and saying %q", w.Problem, tt.want)
			}
			if w.Source != "etcd" || !strings.HasPrefix(w.ID, "etcd:") {
				t.Errorf("a bad value's workload: source %q ID %q", w.Source, w.ID)
			}
			// Routing turns it into a problem on that key alone.
			tab := routing.Build([]discovery.Workload{w}, routing.Options{})
			if len(tab.Sites) != 0 || len(tab.Problems) != 1 {
				t.Errorf("routed a bad value: %+v", tab)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	for _, bad := range []string{"", "vhost-gen", "/", "//", "/a b"} {
		if _, err := NewLayout(bad); err == nil {
			t.Errorf("NewLayout(%q) accepted", bad)
		}
	}
	l, err := NewLayout("/vg/")
	if err != nil || l.Prefix != "/vg" {
		t.Fatalf("NewLayout(/vg/) = %+v, %v", l, err)
	}
	if pub, id, ok := l.ParseWorkloadKey(l.WorkloadKey("p", "w1")); !ok || pub != "p" || id != "w1" {
		t.Errorf("ParseWorkloadKey round trip: %q %q %v", pub, id, ok)
	}
	for _, id := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("x", 129), "é"} {
		if CheckID(id) == nil {
			t.Errorf("CheckID(%q) accepted", id)
		}
	}
	if got := SafeID("my host/é"); CheckID(got) != nil {
		t.Errorf("SafeID gave %q, which CheckID refuses", got)
	}
}

// FuzzDecodeWorkload: whatever a key's value holds, decoding never panics, and a workload that
// decodes without a problem survives routing without putting anything unsafe into the table.
func FuzzDecodeWorkload(f *testing.F) {
	good, _ := EncodeWorkload(sample())
	f.Add("0ff6cb6c1eb8", good)
	f.Add("x", []byte(`{"v":1,"workload":{"id":"x","labels":{"VIRTUAL_HOST":"a.b"},"networks":[{"name":"n","ip":"10.0.0.1"}]}}`))
	f.Add("x", []byte(`{"v":1,"workload":{"id":"x","address":"10.0.0.1:80","labels":{"VIRTUAL_HOST":"a.b;"}}}`))
	f.Fuzz(func(t *testing.T, id string, value []byte) {
		w := DecodeWorkload(layout, layout.WorkloadKey("p", id), value)
		if w.Problem != "" {
			return
		}
		tab := routing.Build([]discovery.Workload{w}, routing.Options{ProxyNetworks: []string{"n", "edge"}, TCP: true})
		for _, s := range tab.Sites {
			for _, r := range s.Routes {
				host := s.Host
				if routing.IsRegexHost(host) {
					// A regular expression has its own rules (routing.ParseHost): it must parse to itself.
					if h, err := routing.ParseHost(host); err != nil || h != host {
						t.Fatalf("site host %q does not parse to itself: %q, %v", host, h, err)
					}
					host = ""
				}
				for _, sv := range r.Backend.Servers {
					if strings.ContainsAny(host+r.Path+sv.Address, " ;{}'\"$\n\r\t") {
						t.Fatalf("unsafe text in the table: %q %q %q", s.Host, r.Path, sv.Address)
					}
				}
			}
		}
	})
}
