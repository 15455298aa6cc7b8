package discovery

import (
	"maps"
	"reflect"
	"slices"
	"testing"
)

func TestSetting(t *testing.T) {
	tests := []struct {
		name          string
		w             Workload
		key           string
		wantValue     string
		wantFrom      Origin
		wantOK        bool
		wantOtherKeys map[string]string // other settings that must still resolve independently
	}{
		{
			name:   "nowhere",
			w:      Workload{},
			key:    "VIRTUAL_HOST",
			wantOK: false,
		},
		{
			name:   "absent from all three maps",
			w:      Workload{ServiceLabels: map[string]string{"A": "1"}, Labels: map[string]string{"B": "2"}, Env: map[string]string{"C": "3"}},
			key:    "VIRTUAL_HOST",
			wantOK: false,
		},
		{
			name:      "env only",
			w:         Workload{Env: map[string]string{"VIRTUAL_HOST": "env.example"}},
			key:       "VIRTUAL_HOST",
			wantValue: "env.example", wantFrom: FromEnv, wantOK: true,
		},
		{
			name:      "label only",
			w:         Workload{Labels: map[string]string{"VIRTUAL_HOST": "label.example"}},
			key:       "VIRTUAL_HOST",
			wantValue: "label.example", wantFrom: FromLabel, wantOK: true,
		},
		{
			name:      "service label only",
			w:         Workload{ServiceLabels: map[string]string{"VIRTUAL_HOST": "svc.example"}},
			key:       "VIRTUAL_HOST",
			wantValue: "svc.example", wantFrom: FromServiceLabel, wantOK: true,
		},
		{
			name: "label wins over env",
			w: Workload{
				Labels: map[string]string{"VIRTUAL_HOST": "label.example"},
				Env:    map[string]string{"VIRTUAL_HOST": "env.example"},
			},
			key:       "VIRTUAL_HOST",
			wantValue: "label.example", wantFrom: FromLabel, wantOK: true,
		},
		{
			name: "service label wins over label",
			w: Workload{
				ServiceLabels: map[string]string{"VIRTUAL_HOST": "svc.example"},
				Labels:        map[string]string{"VIRTUAL_HOST": "label.example"},
			},
			key:       "VIRTUAL_HOST",
			wantValue: "svc.example", wantFrom: FromServiceLabel, wantOK: true,
		},
		{
			name: "service label wins over env",
			w: Workload{
				ServiceLabels: map[string]string{"VIRTUAL_HOST": "svc.example"},
				Env:           map[string]string{"VIRTUAL_HOST": "env.example"},
			},
			key:       "VIRTUAL_HOST",
			wantValue: "svc.example", wantFrom: FromServiceLabel, wantOK: true,
		},
		{
			name: "service label wins over both",
			w: Workload{
				ServiceLabels: map[string]string{"VIRTUAL_PORT": "8081"},
				Labels:        map[string]string{"VIRTUAL_PORT": "8082"},
				Env:           map[string]string{"VIRTUAL_PORT": "8083"},
			},
			key:       "VIRTUAL_PORT",
			wantValue: "8081", wantFrom: FromServiceLabel, wantOK: true,
		},
		{
			name: "each setting resolves on its own",
			w: Workload{
				ServiceLabels: map[string]string{"VIRTUAL_WEIGHT": "0"},
				Labels:        map[string]string{"VIRTUAL_HOST": "label.example"},
				Env:           map[string]string{"VIRTUAL_HOST": "env.example", "VIRTUAL_PORT": "3000", "VIRTUAL_WEIGHT": "5"},
			},
			key:       "VIRTUAL_PORT",
			wantValue: "3000", wantFrom: FromEnv, wantOK: true,
			wantOtherKeys: map[string]string{"VIRTUAL_HOST": "label.example", "VIRTUAL_WEIGHT": "0"},
		},
		{
			name: "an empty label is set and wins over env",
			w: Workload{
				Labels: map[string]string{"VIRTUAL_HOST": ""},
				Env:    map[string]string{"VIRTUAL_HOST": "env.example"},
			},
			key:       "VIRTUAL_HOST",
			wantValue: "", wantFrom: FromLabel, wantOK: true,
		},
		{
			name:      "an empty env value is set",
			w:         Workload{Env: map[string]string{"VIRTUAL_HOST": ""}},
			key:       "VIRTUAL_HOST",
			wantValue: "", wantFrom: FromEnv, wantOK: true,
		},
		{
			name:   "names are case sensitive",
			w:      Workload{Labels: map[string]string{"virtual_host": "x"}},
			key:    "VIRTUAL_HOST",
			wantOK: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, from, ok := tt.w.Setting(tt.key)
			if v != tt.wantValue || from != tt.wantFrom || ok != tt.wantOK {
				t.Errorf("Setting(%q) = %q, %q, %v; want %q, %q, %v", tt.key, v, from, ok, tt.wantValue, tt.wantFrom, tt.wantOK)
			}
			if !ok && from != "" {
				t.Errorf("Setting(%q) not found but origin %q", tt.key, from)
			}
			for k, want := range tt.wantOtherKeys {
				if got, _, ok := tt.w.Setting(k); !ok || got != want {
					t.Errorf("Setting(%q) = %q, %v; want %q, true", k, got, ok, want)
				}
			}
		})
	}
}

func TestOriginWords(t *testing.T) {
	// The origins are the words messages show a user.
	for o, want := range map[Origin]string{FromServiceLabel: "service label", FromLabel: "label", FromEnv: "env"} {
		if string(o) != want {
			t.Errorf("origin %q, want %q", o, want)
		}
	}
}

func TestNetwork(t *testing.T) {
	w := Workload{Networks: []Network{
		{Name: "backend", ID: "n1", IP: "10.0.1.5"},
		{Name: "frontend", ID: "n2", IP: "10.0.2.5"},
		{Name: "ingress", ID: "n3", IP: "10.0.0.9"},
	}}
	tests := []struct {
		w      Workload
		name   string
		want   Network
		wantOK bool
	}{
		{w: w, name: "backend", want: Network{Name: "backend", ID: "n1", IP: "10.0.1.5"}, wantOK: true},
		{w: w, name: "frontend", want: Network{Name: "frontend", ID: "n2", IP: "10.0.2.5"}, wantOK: true},
		{w: w, name: "ingress", want: Network{Name: "ingress", ID: "n3", IP: "10.0.0.9"}, wantOK: true},
		{w: w, name: "missing"},
		{w: w, name: ""},
		{w: w, name: "n1"},       // looked up by name, not ID
		{w: w, name: "Backend"},  // case sensitive
		{w: w, name: "backend "}, // exact
		{w: Workload{}, name: "backend"},
		{
			w:    Workload{Networks: []Network{{Name: "", ID: "x", IP: "10.9.9.9"}}},
			name: "", want: Network{Name: "", ID: "x", IP: "10.9.9.9"}, wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.w.Network(tt.name)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Network(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// full returns a workload with every field set, so that changing any one field is seen.
func full() Workload {
	return Workload{
		ID:            "0123456789ab",
		Name:          "web-1",
		Source:        "docker",
		ServiceLabels: map[string]string{"VIRTUAL_HOST": "svc.example"},
		Labels:        map[string]string{"VIRTUAL_HOST": "label.example", "com.example.team": "a"},
		Env:           map[string]string{"VIRTUAL_PORT": "8080", "PATH": "/usr/bin"},
		Networks: []Network{
			{Name: "backend", ID: "n1", IP: "10.0.1.5"},
			{Name: "frontend", ID: "n2", IP: "10.0.2.5"},
		},
		Ports: []Port{
			{Port: 80, Proto: "tcp"},
			{Port: 8080, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 32768},
		},
		NetworkMode: "bridge",
		NodeAddress: "192.0.2.10",
		Health:      HealthHealthy,
	}
}

// deepCopy copies w so that the copy shares no map or slice with it.
func deepCopy(w Workload) Workload {
	c := w
	c.ServiceLabels = maps.Clone(w.ServiceLabels)
	c.Labels = maps.Clone(w.Labels)
	c.Env = maps.Clone(w.Env)
	c.Networks = slices.Clone(w.Networks)
	c.Ports = slices.Clone(w.Ports)
	return c
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name   string
		change func(w *Workload)
		equal  bool
	}{
		{name: "deep copy", change: func(*Workload) {}, equal: true},
		{name: "map insertion order", equal: true, change: func(w *Workload) {
			l := map[string]string{}
			keys := slices.Sorted(maps.Keys(w.Labels))
			slices.Reverse(keys)
			for _, k := range keys {
				l[k] = w.Labels[k]
			}
			w.Labels = l
		}},

		{name: "ID", change: func(w *Workload) { w.ID = "ba9876543210" }},
		{name: "Name", change: func(w *Workload) { w.Name = "web-2" }},
		{name: "Source", change: func(w *Workload) { w.Source = "swarm" }},

		{name: "service label value", change: func(w *Workload) { w.ServiceLabels["VIRTUAL_HOST"] = "other.example" }},
		{name: "service label added", change: func(w *Workload) { w.ServiceLabels["VIRTUAL_WEIGHT"] = "0" }},
		{name: "service label removed", change: func(w *Workload) { delete(w.ServiceLabels, "VIRTUAL_HOST") }},
		{name: "service labels nil", change: func(w *Workload) { w.ServiceLabels = nil }},
		{name: "service label moved to labels", change: func(w *Workload) {
			w.Labels["VIRTUAL_WEIGHT"] = "1"
			w.ServiceLabels = map[string]string{"VIRTUAL_HOST": "svc.example", "X": "y"}
		}},

		{name: "label value", change: func(w *Workload) { w.Labels["VIRTUAL_HOST"] = "other.example" }},
		{name: "label added", change: func(w *Workload) { w.Labels["VIRTUAL_PORT"] = "81" }},
		{name: "label removed", change: func(w *Workload) { delete(w.Labels, "com.example.team") }},
		{name: "label key renamed", change: func(w *Workload) {
			delete(w.Labels, "com.example.team")
			w.Labels["com.example.Team"] = "a"
		}},
		{name: "label value empty", change: func(w *Workload) { w.Labels["com.example.team"] = "" }},
		{name: "labels nil", change: func(w *Workload) { w.Labels = nil }},

		{name: "env value", change: func(w *Workload) { w.Env["VIRTUAL_PORT"] = "8081" }},
		{name: "env added", change: func(w *Workload) { w.Env["VIRTUAL_PROTO"] = "https" }},
		{name: "env removed", change: func(w *Workload) { delete(w.Env, "PATH") }},
		{name: "env nil", change: func(w *Workload) { w.Env = nil }},

		{name: "network IP", change: func(w *Workload) { w.Networks[0].IP = "10.0.1.6" }},
		{name: "network ID", change: func(w *Workload) { w.Networks[1].ID = "n9" }},
		{name: "network name", change: func(w *Workload) { w.Networks[1].Name = "front" }},
		{name: "network added", change: func(w *Workload) { w.Networks = append(w.Networks, Network{Name: "z", ID: "n3", IP: "10.0.3.5"}) }},
		{name: "network removed", change: func(w *Workload) { w.Networks = w.Networks[:1] }},
		{name: "networks nil", change: func(w *Workload) { w.Networks = nil }},
		{name: "networks swapped", change: func(w *Workload) { w.Networks[0], w.Networks[1] = w.Networks[1], w.Networks[0] }},

		{name: "port number", change: func(w *Workload) { w.Ports[0].Port = 81 }},
		{name: "port proto", change: func(w *Workload) { w.Ports[0].Proto = "udp" }},
		{name: "port host IP", change: func(w *Workload) { w.Ports[1].HostIP = "127.0.0.1" }},
		{name: "port host port", change: func(w *Workload) { w.Ports[1].HostPort = 32769 }},
		{name: "port unpublished", change: func(w *Workload) { w.Ports[1].HostIP, w.Ports[1].HostPort = "", 0 }},
		{name: "port added", change: func(w *Workload) { w.Ports = append(w.Ports, Port{Port: 443, Proto: "tcp"}) }},
		{name: "port removed", change: func(w *Workload) { w.Ports = w.Ports[1:] }},
		{name: "ports nil", change: func(w *Workload) { w.Ports = nil }},

		{name: "network mode", change: func(w *Workload) { w.NetworkMode = "host" }},
		{name: "network mode empty", change: func(w *Workload) { w.NetworkMode = "" }},
		{name: "node address", change: func(w *Workload) { w.NodeAddress = "192.0.2.11" }},
		{name: "node address empty", change: func(w *Workload) { w.NodeAddress = "" }},
		{name: "health unhealthy", change: func(w *Workload) { w.Health = HealthUnhealthy }},
		{name: "health starting", change: func(w *Workload) { w.Health = HealthStarting }},
		{name: "health none", change: func(w *Workload) { w.Health = HealthNone }},
		{name: "address", change: func(w *Workload) { w.Address = "10.0.0.5:49156" }},
		{name: "publisher", change: func(w *Workload) { w.Publisher = "host-b" }},
		{name: "problem", change: func(w *Workload) { w.Problem = "not host:port" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := full()
			b := deepCopy(a)
			tt.change(&b)
			if !tt.equal && reflect.DeepEqual(a, b) {
				t.Fatal("test case changes nothing")
			}
			if got := a.Equal(&b); got != tt.equal {
				t.Errorf("a.Equal(b) = %v, want %v\na = %+v\nb = %+v", got, tt.equal, a, b)
			}
			if got := b.Equal(&a); got != tt.equal {
				t.Errorf("b.Equal(a) = %v, want %v (Equal must be symmetric)", got, tt.equal)
			}
			// Equal does not change either side.
			if !reflect.DeepEqual(a, full()) {
				t.Errorf("Equal modified its receiver: %+v", a)
			}
		})
	}
}

func TestEqualNilAndEmpty(t *testing.T) {
	a := Workload{ID: "x"}
	b := Workload{ID: "x", ServiceLabels: map[string]string{}, Labels: map[string]string{}, Env: map[string]string{},
		Networks: []Network{}, Ports: []Port{}}
	if !a.Equal(&b) || !b.Equal(&a) {
		t.Error("a workload with nil maps and slices differs from one with empty ones")
	}
	var z1, z2 Workload
	if !z1.Equal(&z2) {
		t.Error("zero workloads differ")
	}
	if !a.Equal(&a) {
		t.Error("a workload differs from itself")
	}
}
