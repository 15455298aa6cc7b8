package docker

import (
	"context"
	"fmt"
	"slices"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// ProxyNetworks reads the networks of the proxy's container (by name or ID), or of every running
// container with the label, "KEY" or "KEY=VALUE". Sources other than this one (Swarm) do not list
// the proxy's own container, so their proxy networks are read once, here. Swarm's ingress is left
// out: it is never routed to.
func ProxyNetworks(ctx context.Context, cli *client.Client, name, label string) ([]string, error) {
	var ids []string
	if name != "" {
		ids = []string{name}
	} else {
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
		if err != nil {
			return nil, fmt.Errorf("list containers with the proxy label %s: %w", label, err)
		}
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("no running container has the proxy label %s", label)
		}
	}
	nets := []string{}
	for _, id := range ids {
		c, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("inspect the proxy's container %.12s: %w", id, err)
		}
		if c.NetworkSettings == nil {
			continue
		}
		for n := range c.NetworkSettings.Networks {
			if n != "ingress" {
				nets = append(nets, n)
			}
		}
	}
	slices.Sort(nets)
	return slices.Compact(nets), nil
}
