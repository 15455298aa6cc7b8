package docker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Network IDs of the engine the fixtures were captured from.
const (
	bridgeID   = "1b9607d59a2287067b3d5c50b7e86800c836feb37119bd511b35ce1133e0c98d"
	hostNetID  = "cb5afc8034bb8b05ae11a5cf9e5dc3e54be8d3739fb8041cf1e23815150e9776"
	vgtFrontID = "61dc64d11ef6a68e9ce400b4e57064ea6ce325dc2b1d6aac27889f1d69c0a4ed"
)

// fixtureNames are the inspect fixtures in testdata, one per container state captured.
var fixtureNames = []string{"plain", "published", "hostnet", "multinet", "unhealthy", "starting", "paused", "created", "exited"}

func loadInspect(t testing.TB, name string) *container.InspectResponse {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c container.InspectResponse
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("decode %s.json: %v", name, err)
	}
	return &c
}

func loadList(t testing.TB) []container.Summary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "list.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l []container.Summary
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("decode list.json: %v", err)
	}
	return l
}

var helperLabels = map[string]string{"vhost-gen.helper": "1", "vhost-gen.testfix": "1"}

func withLabels(extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range helperLabels {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestFromInspectFixtures(t *testing.T) {
	const node = "192.0.2.7"
	tests := []struct {
		fixture string
		want    discovery.Workload
	}{
		{"plain", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:39.228603348Z"),
			ID: "e79f2e545edc8b36a0ee12f1ce092e00707317a6db9a32fab4f99dac48220b44", Name: "vgt-plain", Source: "docker",
			Labels:      withLabels(map[string]string{"VIRTUAL_PATH": "/api"}),
			Env:         map[string]string{"VIRTUAL_HOST": "a.test", "VIRTUAL_PORT": "80", "ODD": "x=y"},
			Networks:    []discovery.Network{{Name: "bridge", ID: bridgeID, IP: "172.17.0.4"}},
			Ports:       []discovery.Port{{Port: 80, Proto: "tcp"}},
			NetworkMode: "default", NodeAddress: node,
		}},
		{"published", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:39.506354911Z"),
			ID: "d1c08d93685258096b294f66675c38f6e9ddca37655492b851380624040d9a2c", Name: "vgt-published", Source: "docker",
			Labels:   withLabels(nil),
			Env:      map[string]string{"VIRTUAL_HOST": "pub.test", "ECHO_PORTS": "80,8080"},
			Networks: []discovery.Network{{Name: "bridge", ID: bridgeID, IP: "172.17.0.5"}},
			// 80 and 8080 are bound (8080 twice: IPv4 and IPv6), so their unbound entries go;
			// 9090/udp is only exposed and stays.
			Ports: []discovery.Port{
				{Port: 80, Proto: "tcp", HostIP: "127.0.0.1", HostPort: 18081},
				{Port: 8080, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 18082},
				{Port: 8080, Proto: "tcp", HostIP: "::", HostPort: 18082},
				{Port: 9090, Proto: "udp"},
			},
			NetworkMode: "default", NodeAddress: node,
		}},
		{"hostnet", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:39.879581882Z"),
			ID: "d1ed70c6eaa3b78d3b9bb271d41ad4ef6a84c6d0c92531bff8f90ff1236d1998", Name: "vgt-hostnet", Source: "docker",
			Labels:      withLabels(nil),
			Env:         map[string]string{"ECHO_PORTS": "18083", "VIRTUAL_HOST": "host.test", "VIRTUAL_PORT": "18083"},
			Networks:    []discovery.Network{{Name: "host", ID: hostNetID, IP: ""}},
			NetworkMode: "host", NodeAddress: node,
		}},
		{"multinet", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:40.101747283Z"),
			ID: "e0a7f4535971e23120873f7c9b3e48baea02977326c4f57f2809c900edaff86b", Name: "vgt-multinet", Source: "docker",
			Labels: withLabels(nil),
			Env:    map[string]string{"VIRTUAL_HOST": "multi.test"},
			Networks: []discovery.Network{
				{Name: "bridge", ID: bridgeID, IP: "172.17.0.6"},
				{Name: "vgt-front", ID: vgtFrontID, IP: "172.18.0.2"},
			},
			Ports:       []discovery.Port{{Port: 80, Proto: "tcp"}},
			NetworkMode: "vgt-front", NodeAddress: node,
		}},
		{"unhealthy", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:40.559260273Z"),
			ID: "7b75b3df321db2abaaec46c28a318ec1a231e889ce30c5c767242fca1abeff6d", Name: "vgt-unhealthy", Source: "docker",
			Labels:      withLabels(nil),
			Env:         map[string]string{"VIRTUAL_HOST": "sick.test"},
			Networks:    []discovery.Network{{Name: "bridge", ID: bridgeID, IP: "172.17.0.7"}},
			NetworkMode: "default", NodeAddress: node, Health: "unhealthy",
		}},
		{"starting", discovery.Workload{
			Service: "vhost-gen-echo:dev", Created: mustTime("2026-11-25T09:35:40.851664393Z"),
			ID: "0ff0ffbf180f0ddfe717f999de48cd93847ea0cafe26c632e58bfca3350840ba", Name: "vgt-starting", Source: "docker",
			Labels:      withLabels(nil),
			Env:         map[string]string{"VIRTUAL_HOST": "starting.test"},
			Networks:    []discovery.Network{{Name: "bridge", ID: bridgeID, IP: "172.17.0.8"}},
			NetworkMode: "default", NodeAddress: node, Health: "starting",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			w, ok := FromInspect(loadInspect(t, tt.fixture), node)
			if !ok {
				t.Fatal("ok = false for a running container")
			}
			if !reflect.DeepEqual(w, tt.want) {
				t.Errorf("FromInspect(%s):\n got %+v\nwant %+v", tt.fixture, w, tt.want)
			}
			if !w.Equal(&tt.want) {
				t.Errorf("Equal reports a difference")
			}
		})
	}
}

func TestFromInspectNotServing(t *testing.T) {
	for _, name := range []string{"paused", "created", "exited"} {
		t.Run(name, func(t *testing.T) {
			c := loadInspect(t, name)
			if _, ok := FromInspect(c, "127.0.0.1"); ok {
				t.Errorf("ok = true for a %s container (State %+v)", name, *c.State)
			}
		})
	}
	// Restarting: take a running fixture and mark it restarting.
	c := loadInspect(t, "plain")
	c.State.Restarting = true
	if _, ok := FromInspect(c, ""); ok {
		t.Error("ok = true for a restarting container")
	}
}

func TestFromInspectNodeAddress(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "10.1.2.3", "fd00::1"} {
		w, ok := FromInspect(loadInspect(t, "published"), addr)
		if !ok || w.NodeAddress != addr {
			t.Errorf("NodeAddress = %q, ok %v; want %q", w.NodeAddress, ok, addr)
		}
	}
}

// Names are sorted whatever order the map is iterated in; decode many times to catch map order.
func TestFromInspectNetworksSorted(t *testing.T) {
	c := &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "x", Name: "/x", State: &container.State{Running: true}},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"zeta": {NetworkID: "z", IPAddress: "10.0.0.26"}, "alpha": {NetworkID: "a", IPAddress: "10.0.0.1"},
			"mid": {NetworkID: "m", IPAddress: "10.0.0.13"}, "Beta": {NetworkID: "B", IPAddress: "10.0.0.2"},
			"gone": nil,
		}},
	}
	want := []discovery.Network{
		{Name: "Beta", ID: "B", IP: "10.0.0.2"}, {Name: "alpha", ID: "a", IP: "10.0.0.1"},
		{Name: "mid", ID: "m", IP: "10.0.0.13"}, {Name: "zeta", ID: "z", IP: "10.0.0.26"},
	}
	for range 20 {
		w, ok := FromInspect(c, "")
		if !ok || !reflect.DeepEqual(w.Networks, want) {
			t.Fatalf("Networks = %+v (ok %v), want %+v", w.Networks, ok, want)
		}
	}
}

func TestFromInspectPortsSortedAndDeduplicated(t *testing.T) {
	c := &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "x", Name: "x", State: &container.State{Running: true}},
		Config: &container.Config{ExposedPorts: nat.PortSet{
			"8080/tcp": {}, "443/tcp": {}, "53/udp": {}, "53/tcp": {}, "80/tcp": {},
		}},
		NetworkSettings: withPorts(nat.PortMap{
			"443/tcp": {{HostIP: "0.0.0.0", HostPort: "8443"}, {HostIP: "::", HostPort: "8443"}},
			"53/udp":  {{HostIP: "127.0.0.1", HostPort: "5353"}},
			"80/tcp":  nil, // exposed, not published
			"9000/tcp": { // published without --expose: the engine lists it in Ports only
				{HostIP: "0.0.0.0", HostPort: "19000"},
			},
		}),
	}
	want := []discovery.Port{
		{Port: 53, Proto: "tcp"},
		{Port: 53, Proto: "udp", HostIP: "127.0.0.1", HostPort: 5353},
		{Port: 80, Proto: "tcp"},
		{Port: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443},
		{Port: 443, Proto: "tcp", HostIP: "::", HostPort: 8443},
		{Port: 8080, Proto: "tcp"},
		{Port: 9000, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 19000},
	}
	for range 20 {
		w, ok := FromInspect(c, "")
		if !ok || !reflect.DeepEqual(w.Ports, want) {
			t.Fatalf("Ports =\n %+v (ok %v)\nwant\n %+v", w.Ports, ok, want)
		}
	}
}

func TestFromInspectNilParts(t *testing.T) {
	running := func() *container.ContainerJSONBase {
		return &container.ContainerJSONBase{ID: "abc", Name: "/n", State: &container.State{Running: true}}
	}
	t.Run("nil base", func(t *testing.T) {
		if _, ok := FromInspect(&container.InspectResponse{}, ""); ok {
			t.Error("ok = true without ContainerJSONBase")
		}
	})
	t.Run("nil State", func(t *testing.T) {
		c := &container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: "abc"},
			Config: &container.Config{}, NetworkSettings: &container.NetworkSettings{}}
		if _, ok := FromInspect(c, ""); ok {
			t.Error("ok = true with nil State")
		}
	})
	t.Run("nil Config, HostConfig, NetworkSettings", func(t *testing.T) {
		w, ok := FromInspect(&container.InspectResponse{ContainerJSONBase: running()}, "h")
		want := discovery.Workload{ID: "abc", Name: "n", Source: "docker", NodeAddress: "h"}
		if !ok || !reflect.DeepEqual(w, want) {
			t.Errorf("got %+v (ok %v), want %+v", w, ok, want)
		}
	})
	t.Run("nil Health, empty env", func(t *testing.T) {
		c := &container.InspectResponse{ContainerJSONBase: running(), Config: &container.Config{Env: []string{"NOVALUE", "EMPTY="}}}
		w, ok := FromInspect(c, "")
		if !ok || w.Health != "" {
			t.Fatalf("Health = %q ok %v", w.Health, ok)
		}
		// An entry without '=' is skipped; "EMPTY=" is an empty value.
		if !reflect.DeepEqual(w.Env, map[string]string{"EMPTY": ""}) {
			t.Errorf("Env = %#v", w.Env)
		}
	})
	t.Run("nil endpoint and nil binding list", func(t *testing.T) {
		ns := withPorts(nat.PortMap{"80/tcp": nil})
		ns.Networks = map[string]*network.EndpointSettings{"bridge": nil}
		c := &container.InspectResponse{ContainerJSONBase: running(), NetworkSettings: ns}
		w, ok := FromInspect(c, "")
		if !ok || len(w.Networks) != 0 {
			t.Errorf("Networks = %+v ok %v", w.Networks, ok)
		}
		// A port key with no bindings and no ExposedPorts entry adds nothing.
		if len(w.Ports) != 0 {
			t.Errorf("Ports = %+v", w.Ports)
		}
	})
}

// The workload does not alias the inspect response's slices in a way that sorting could break:
// converting twice gives the same result.
func TestFromInspectDeterministic(t *testing.T) {
	c := loadInspect(t, "multinet")
	a, _ := FromInspect(c, "n")
	b, _ := FromInspect(c, "n")
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two conversions differ:\n%+v\n%+v", a, b)
	}
}

// withPorts sets the port bindings through the promoted field (its embedding struct is deprecated).
func withPorts(ports nat.PortMap) *container.NetworkSettings {
	ns := &container.NetworkSettings{}
	ns.Ports = ports
	return ns
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestServiceOf(t *testing.T) {
	tests := []struct {
		labels map[string]string
		image  string
		want   string
	}{
		{map[string]string{"com.docker.swarm.service.name": "shop", "com.docker.compose.service": "web"}, "img", "shop"},
		{map[string]string{"com.docker.compose.project": "p", "com.docker.compose.service": "db"}, "img", "p_db"},
		{nil, "mysql:8", "mysql:8"},
	}
	for _, tt := range tests {
		if got := serviceOf(tt.labels, tt.image); got != tt.want {
			t.Errorf("serviceOf(%v, %q) = %q, want %q", tt.labels, tt.image, got, tt.want)
		}
	}
}
