package docker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// inspected builds an inspect result: mode, then networks as "name=gateway" (gateway may be empty).
func inspected(mode string, nets ...string) container.InspectResponse {
	c := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)}},
		NetworkSettings:   &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
	}
	for _, n := range nets {
		name, gw, _ := strings.Cut(n, "=")
		c.NetworkSettings.Networks[name] = &network.EndpointSettings{NetworkID: "id-" + name, Gateway: gw}
	}
	return c
}

func TestChooseGateway(t *testing.T) {
	tests := []struct {
		name     string
		c        container.InspectResponse
		internal []string // names of internal networks
		wantIP   string
		wantNet  string
	}{
		{"one network", inspected("edge", "edge=172.18.0.1"), nil, "172.18.0.1", "edge"},
		{"first by name", inspected("zeta", "zeta=172.20.0.1", "alpha=172.19.0.1", "mid=172.21.0.1"), nil, "172.19.0.1", "alpha"},
		{"skips one without a gateway", inspected("alpha", "alpha=", "beta=172.19.0.1"), nil, "172.19.0.1", "beta"},
		{"skips internal", inspected("alpha", "alpha=172.20.0.1", "beta=172.19.0.1"), []string{"alpha"}, "172.19.0.1", "beta"},
		{"skips ingress", inspected("edge", "ingress=10.0.0.1", "zz=172.19.0.1"), nil, "172.19.0.1", "zz"},
		{"skips an IPv6 gateway", inspected("v6", "a=fd00::1", "b=172.19.0.1"), nil, "172.19.0.1", "b"},
		{"default bridge", inspected("default", "bridge=172.17.0.1"), nil, "172.17.0.1", "bridge"},
		{"only internal", inspected("back", "back=172.20.0.1"), []string{"back"}, "", ""},
		{"no gateway anywhere", inspected("a", "a=", "b="), nil, "", ""},
		{"host network", inspected("host", "host="), nil, "", ""},
		{"host network, gateway listed anyway", inspected("host", "x=172.19.0.1"), nil, "", ""},
		{"another container's namespace", inspected("container:abc"), nil, "", ""},
		{"none", inspected("none", "none="), nil, "", ""},
		{"no network settings", container.InspectResponse{}, nil, "", ""},
	}
	for _, tt := range tests {
		internal := map[string]bool{}
		for _, n := range tt.internal {
			internal["id-"+n] = true
		}
		ip, name := ChooseGateway(tt.c, internal)
		if ip != tt.wantIP || name != tt.wantNet {
			t.Errorf("%s: ChooseGateway = %q, %q; want %q, %q", tt.name, ip, name, tt.wantIP, tt.wantNet)
		}
	}
}

type fakeSelfAPI struct {
	c        container.InspectResponse
	nets     []network.Summary
	err      error
	listed   int
	filtered []string
}

func (f *fakeSelfAPI) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	return f.c, f.err
}

func (f *fakeSelfAPI) NetworkList(_ context.Context, o network.ListOptions) ([]network.Summary, error) {
	f.listed++
	f.filtered = o.Filters.Get("id")
	return f.nets, nil
}

func TestInspectSelf(t *testing.T) {
	f := &fakeSelfAPI{c: inspected("back", "back=172.20.0.1", "front=172.19.0.1", "none="),
		nets: []network.Summary{{ID: "id-back", Internal: true}, {ID: "id-front"}}}
	s, err := InspectSelf(context.Background(), f, "self")
	if err != nil || s != (Self{NetworkMode: "back", Gateway: "172.19.0.1", GatewayNetwork: "front"}) {
		t.Errorf("InspectSelf = %+v, %v", s, err)
	}
	if f.listed != 1 || len(f.filtered) != 2 {
		t.Errorf("network lists %d, filtered on %v; want one, on the two networks with a gateway", f.listed, f.filtered)
	}
	// On the host network there is nothing to list.
	f = &fakeSelfAPI{c: inspected("host")}
	if s, err := InspectSelf(context.Background(), f, "self"); err != nil || s != (Self{NetworkMode: "host"}) || f.listed != 0 {
		t.Errorf("host network: %+v, %v, %d lists", s, err, f.listed)
	}
	f = &fakeSelfAPI{err: errors.New("no such container")}
	if _, err := InspectSelf(context.Background(), f, "self"); err == nil || !strings.Contains(err.Error(), "inspect this container") {
		t.Errorf("err = %v", err)
	}
}
