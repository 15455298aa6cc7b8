package docker

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/inventory"
)

// BenchmarkEventPath measures vhost-gen's side of one container event, from the inspect reply's
// bytes to the inventory: decode (as the client does), convert, apply. The inventory already holds
// 300 containers, and the event changes nothing (the common restart case), as well as one that does.
func BenchmarkEventPath(b *testing.B) {
	raw, err := os.ReadFile("testdata/multinet.json")
	if err != nil {
		b.Fatal(err)
	}
	inv := inventory.New()
	var seed []discovery.Workload
	for i := range 300 {
		seed = append(seed, discovery.Workload{ID: string(rune('a'+i%26)) + string(rune('a'+i/26)), Name: "c", Source: SourceName})
	}
	inv.Apply(discovery.Update{Source: SourceName, Full: true, Workloads: seed})
	var decoded container.InspectResponse
	if err := json.Unmarshal(raw, &decoded); err != nil {
		b.Fatal(err)
	}
	// "decode" includes the client's JSON decoding of the reply; "convert" is vhost-gen's own part.
	for _, bc := range []struct {
		name           string
		decode, change bool
	}{{"decode+convert/unchanged", true, false}, {"decode+convert/changed", true, true},
		{"convert/unchanged", false, false}, {"convert/changed", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := decoded
				if bc.decode {
					c = container.InspectResponse{}
					if err := json.Unmarshal(raw, &c); err != nil {
						b.Fatal(err)
					}
				}
				w, ok := FromInspect(&c, "127.0.0.1")
				if !ok {
					b.Fatal("fixture not running")
				}
				if bc.change {
					i++
					w.Health = []string{"healthy", "unhealthy"}[i%2]
				}
				inv.Apply(discovery.Update{Source: SourceName, Workloads: []discovery.Workload{w}})
			}
		})
	}
}
