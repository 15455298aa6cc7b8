package main

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/discovery/docker"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// defaultHostAddress is where published ports answer outside a container: DOCKER_HOST's host for
// a TCP engine, otherwise this machine.
func defaultHostAddress(daemonHost string) string {
	return chooseHostAddress("", daemonHost, nil).Address
}

// dockerHostAddress is DOCKER_HOST's host for a TCP engine, else "".
func dockerHostAddress(daemonHost string) string {
	if u, err := url.Parse(daemonHost); err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		return u.Hostname()
	}
	return ""
}

// chooseHostAddress: --host-address wins; then DOCKER_HOST's host; then, in a container off the
// host network (self), its gateway, since 127.0.0.1 there is the container itself; else 127.0.0.1.
func chooseHostAddress(flag, daemonHost string, self *docker.Self) routing.HostAddress {
	switch h := dockerHostAddress(daemonHost); {
	case flag != "":
		return routing.HostAddress{Address: flag, Origin: "--host-address"}
	case h != "":
		return routing.HostAddress{Address: h, Origin: "DOCKER_HOST"}
	case self != nil && self.Gateway != "":
		return routing.HostAddress{Address: self.Gateway, Origin: "gateway of network " + self.GatewayNetwork}
	}
	return routing.HostAddress{Address: "127.0.0.1", Origin: "default"}
}

// hostAddress chooses the engine host's address once at start. In a container it reads its own
// container once: for the gateway, and, when that container is the proxy's (self-detected or
// --supervise), for routing's rule that the proxy cannot reach the host's loopback.
func (a *app) hostAddress() routing.HostAddress {
	id := docker.SelfContainerID()
	// Only the docker source uses it: Swarm tasks are reached at their nodes' addresses.
	needGateway := a.cfg.HostAddress == "" && dockerHostAddress(a.cli.DaemonHost()) == "" &&
		slices.Contains(a.cfg.Sources.values, "docker")
	proxyIsSelf := a.self != "" || a.cfg.Supervise
	var self *docker.Self
	if id != "" && (needGateway || proxyIsSelf) {
		self = a.inspectSelf(id)
	}
	if self != nil && proxyIsSelf {
		a.routing.ProxyNetworkMode = self.NetworkMode
	}
	h := chooseHostAddress(a.cfg.HostAddress, a.cli.DaemonHost(), self)
	if self != nil && needGateway && self.Gateway == "" && self.NetworkMode != "host" {
		a.log.Warn("in a container, but none of its non-internal networks has a gateway: published ports and host-network containers "+
			"are addressed at "+h.Address+", which is this container (set --host-address)", "container", id[:12], "network_mode", self.NetworkMode)
	}
	level := slog.LevelDebug
	if self != nil && h.Address == self.Gateway {
		level = slog.LevelInfo // new in a container: say where host-network backends will be reached
	}
	a.log.Log(context.Background(), level, "host address for published ports and host networking", "address", h.Address, "origin", h.Origin)
	return h
}

// inspectSelf reads this container's network mode and gateway; nil, logged, if the engine cannot
// say (the host address then falls back).
func (a *app) inspectSelf(id string) *docker.Self {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := docker.InspectSelf(ctx, a.cli, id)
	if err != nil {
		a.log.Warn("cannot read this container's networks: the host address falls back", "err", err)
		return nil
	}
	return &s
}
