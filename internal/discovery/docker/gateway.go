package docker

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Self is what vhost-gen reads of its own container at start.
type Self struct {
	// NetworkMode is the container's network mode: "host", "default", "bridge", a network name,
	// "container:ID", "none".
	NetworkMode string
	// Gateway is the IPv4 gateway of GatewayNetwork, the container's first non-internal network
	// (by name) that has one: the host, as the container reaches it. Empty when there is none,
	// or on the host network, where 127.0.0.1 is the host.
	Gateway, GatewayNetwork string
}

// selfAPI is the part of the Docker client InspectSelf uses.
type selfAPI interface {
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	NetworkList(ctx context.Context, opts network.ListOptions) ([]network.Summary, error)
}

// InspectSelf reads the container once, and lists its networks only when one has a gateway: an
// internal network has one too, but it does not lead to the host.
func InspectSelf(ctx context.Context, cli selfAPI, id string) (Self, error) {
	c, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		return Self{}, fmt.Errorf("inspect this container %.12s: %w", id, err)
	}
	ids := gatewayNetworkIDs(c)
	internal := map[string]bool{}
	if len(ids) > 0 {
		args := filters.NewArgs()
		for _, nid := range ids {
			args.Add("id", nid)
		}
		list, err := cli.NetworkList(ctx, network.ListOptions{Filters: args})
		if err != nil {
			return Self{}, fmt.Errorf("list this container's networks: %w", err)
		}
		for _, n := range list {
			internal[n.ID] = n.Internal
		}
	}
	s := Self{NetworkMode: networkMode(c)}
	s.Gateway, s.GatewayNetwork = ChooseGateway(c, internal)
	return s, nil
}

// networkMode reads HostConfig.NetworkMode, which a partial inspect result may lack.
func networkMode(c container.InspectResponse) string {
	if c.ContainerJSONBase == nil || c.HostConfig == nil {
		return ""
	}
	return string(c.HostConfig.NetworkMode)
}

// ChooseGateway picks the IPv4 gateway of the container's first network, by name, that has one
// and is neither internal (by network ID) nor Swarm's ingress; "" on the host network.
func ChooseGateway(c container.InspectResponse, internal map[string]bool) (ip, name string) {
	for _, n := range gatewayCandidates(c) {
		if !internal[c.NetworkSettings.Networks[n].NetworkID] {
			return c.NetworkSettings.Networks[n].Gateway, n
		}
	}
	return "", ""
}

// gatewayCandidates are the names, sorted, of the networks with an IPv4 gateway, ingress aside.
func gatewayCandidates(c container.InspectResponse) []string {
	if container.NetworkMode(networkMode(c)).IsHost() || c.NetworkSettings == nil {
		return nil
	}
	var names []string
	for name, ep := range c.NetworkSettings.Networks {
		if name == "ingress" || ep == nil {
			continue
		}
		if ip := net.ParseIP(ep.Gateway); ip != nil && ip.To4() != nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// gatewayNetworkIDs are the IDs of the candidates' networks, sorted, for one network list.
func gatewayNetworkIDs(c container.InspectResponse) []string {
	var ids []string
	for _, n := range gatewayCandidates(c) {
		ids = append(ids, c.NetworkSettings.Networks[n].NetworkID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
