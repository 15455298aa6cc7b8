package main

import (
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

func TestChooseHostAddress(t *testing.T) {
	bridged := &docker.Self{NetworkMode: "edge", Gateway: "172.18.0.1", GatewayNetwork: "edge"}
	noGateway := &docker.Self{NetworkMode: "back"}
	hostNet := &docker.Self{NetworkMode: "host"}
	tests := []struct {
		name       string
		flag, host string
		self       *docker.Self
		want       routing.HostAddress
	}{
		{"flag wins over everything", "10.0.0.5", "tcp://10.1.2.3:2376", bridged, routing.HostAddress{Address: "10.0.0.5", Origin: "--host-address"}},
		{"flag 127.0.0.1 in a container", "127.0.0.1", "unix:///var/run/docker.sock", bridged, routing.HostAddress{Address: "127.0.0.1", Origin: "--host-address"}},
		{"DOCKER_HOST wins over the gateway", "", "tcp://10.1.2.3:2376", bridged, routing.HostAddress{Address: "10.1.2.3", Origin: "DOCKER_HOST"}},
		{"gateway in a container", "", "unix:///var/run/docker.sock", bridged, routing.HostAddress{Address: "172.18.0.1", Origin: "gateway of network edge"}},
		{"container without a gateway", "", "unix:///var/run/docker.sock", noGateway, routing.HostAddress{Address: "127.0.0.1", Origin: "default"}},
		{"container on the host network", "", "unix:///var/run/docker.sock", hostNet, routing.HostAddress{Address: "127.0.0.1", Origin: "default"}},
		{"not in a container", "", "unix:///var/run/docker.sock", nil, routing.HostAddress{Address: "127.0.0.1", Origin: "default"}},
	}
	for _, tt := range tests {
		if got := chooseHostAddress(tt.flag, tt.host, tt.self); got != tt.want {
			t.Errorf("%s: chooseHostAddress = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
