package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// SignalContainers returns a reload that sends sig to the proxy's container(s): the one named (or
// with that ID), or every running container with the label KEY=VALUE. It is the one place where
// vhost-gen writes to the Docker API, and only when the operator chose this reload.
func SignalContainers(cli *client.Client, name, label, sig string) func(context.Context) error {
	return func(ctx context.Context) error {
		targets := []string{name}
		if label != "" {
			list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
			if err != nil {
				return fmt.Errorf("find proxy containers with label %s: %w", label, err)
			}
			if len(list) == 0 {
				return fmt.Errorf("no running container has the label %s", label)
			}
			targets = targets[:0]
			for _, c := range list {
				targets = append(targets, c.ID)
			}
		}
		for _, t := range targets {
			if err := cli.ContainerKill(ctx, t, sig); err != nil {
				shown := t
				if label != "" && len(shown) > 12 {
					shown = shown[:12] // an ID from the label lookup
				}
				return fmt.Errorf("signal %s to container %s: %w", sig, shown, err)
			}
		}
		return nil
	}
}
