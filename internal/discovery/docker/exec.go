package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// maxExecOutput bounds what a command run in a container may answer (nginx -t's messages).
const maxExecOutput = 64 << 10

// ExecIn returns a runner of commands in the proxy's container, through the Docker API: the
// container named (or with that ID), or the first running container with the label KEY or
// KEY=VALUE, by name. A command that exits non-zero is an error with its output, as a local
// command's is. Like SignalContainers, it writes to the Docker API (exec), and only when the
// operator chose to check the config in the proxy's own container.
func ExecIn(cli *client.Client, name, label string) func(context.Context, []string) error {
	return func(ctx context.Context, argv []string) error {
		id, shown := name, name
		if label != "" {
			list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", label))})
			if err != nil {
				return fmt.Errorf("find the proxy's container with label %s: %w", label, err)
			}
			if len(list) == 0 {
				return fmt.Errorf("no running container has the label %s: nowhere to run %s", label, argv[0])
			}
			slices.SortFunc(list, func(a, b container.Summary) int { return strings.Compare(firstName(a.Names), firstName(b.Names)) })
			id, shown = list[0].ID, firstName(list[0].Names)
		}
		ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: argv, AttachStdout: true, AttachStderr: true})
		if err != nil {
			return fmt.Errorf("run %s in container %s: %w", argv[0], shown, err)
		}
		att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
		if err != nil {
			return fmt.Errorf("run %s in container %s: %w", argv[0], shown, err)
		}
		stop := context.AfterFunc(ctx, att.Close) // a hung command ends with the check's timeout
		defer stop()
		var out bytes.Buffer
		w := &limitWriter{w: &out, n: maxExecOutput}
		_, cerr := stdcopy.StdCopy(w, w, att.Reader)
		att.Close()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s in container %s: %w", argv[0], shown, err)
		}
		if cerr != nil {
			return fmt.Errorf("%s in container %s: reading its output: %w", argv[0], shown, cerr)
		}
		st, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return fmt.Errorf("%s in container %s: %w", argv[0], shown, err)
		}
		if st.ExitCode != 0 {
			return fmt.Errorf("%s in container %s: exit status %d: %s", argv[0], shown, st.ExitCode, strings.TrimSpace(out.String()))
		}
		return nil
	}
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// limitWriter keeps the first n bytes and drops the rest, never failing the copy.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
