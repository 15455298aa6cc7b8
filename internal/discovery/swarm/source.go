package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Options configure the source.
type Options struct {
	// Poll is how often services and tasks are read when nothing announces a change.
	Poll time.Duration
	Log  *slog.Logger
	// LabelFilter, "KEY" or "KEY=VALUE", limits vhost-gen to the services with that label.
	LabelFilter string
	// OnEvent, if set, is called for every engine event handled (for metrics).
	OnEvent func(action string)
	// OnState, if set, hears whether the engine answers: true once resynced, false and why
	// when a connection fails.
	OnState func(connected bool, err error)
}

// burst is when polls follow an event: a scaled or updated service's new tasks take a moment to
// run, so a few quick polls catch them without polling fast all the time.
var burst = []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
	700 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second, 3 * time.Second, 4 * time.Second}

// eventGap is the least time between the start of a poll and the next poll an event asks for: a
// storm of events (a service scaled or updated task by task: create, start, kill, die each) costs
// a poll per eventGap, not one per event. An event after a quiet spell still polls at once.
const eventGap = 100 * time.Millisecond

// Source is the Swarm source.
type Source struct {
	cli *client.Client
	opt Options

	mu sync.Mutex
	// nodes maps node IDs to addresses; read again when a node event says it changed or a task
	// runs on a node it does not know.
	nodes      map[string]string
	nodesStale bool

	// listMu serializes List: the cache is the last List's answers.
	listMu      sync.Mutex
	cache       *cache
	rawFailures int // polls in a row whose raw reads failed where the client's calls did not
	// checked is set once CheckManager passed: the client has negotiated its API version, which
	// raw reads use (a one-shot List reads through the client's calls alone).
	checked atomic.Bool
}

// New returns a source reading from cli, which must talk to a manager.
func New(cli *client.Client, opt Options) *Source {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Poll <= 0 {
		opt.Poll = 3 * time.Second
	}
	return &Source{cli: cli, opt: opt, nodesStale: true, cache: newCache()}
}

// Name implements discovery.Source.
func (s *Source) Name() string { return SourceName }

// ErrNotManager says vhost-gen was pointed at an engine that cannot tell it about the Swarm.
var ErrNotManager = errors.New("not a Swarm manager")

// CheckManager fails clearly when the engine is not a Swarm manager: a worker cannot list services
// or tasks, and an engine outside a Swarm has none. A node that is starting, reconnecting to its
// Swarm or locked is not ErrNotManager: that passes (a manager goes through "pending" and "error"
// when its engine restarts or loses the cluster), so Watch waits for it.
func (s *Source) CheckManager(ctx context.Context) error {
	info, err := s.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("engine info: %w", err)
	}
	switch state := info.Swarm.LocalNodeState; {
	case state == swarm.LocalNodeStateInactive || state == "":
		return fmt.Errorf("%w: this engine is not part of a Swarm (state %q); --source swarm reads services and tasks from a manager: set DOCKER_HOST to a manager, or use --source docker", ErrNotManager, state)
	case state == swarm.LocalNodeStateLocked:
		return errors.New("this engine's Swarm is locked: unlock it (docker swarm unlock) and vhost-gen carries on")
	case state != swarm.LocalNodeStateActive:
		reason := "starting, or reconnecting to the Swarm"
		if info.Swarm.Error != "" {
			reason = info.Swarm.Error
		}
		return fmt.Errorf("this engine's Swarm node is not ready (state %q: %s)", state, reason)
	case !info.Swarm.ControlAvailable:
		return fmt.Errorf("%w: this engine is a Swarm worker (node %s), and only a manager's API lists services and tasks: run vhost-gen on a manager node (constraint node.role==manager) or set DOCKER_HOST to a manager", ErrNotManager, info.Swarm.NodeID)
	}
	s.checked.Store(true)
	return nil
}

// List reads every running task of the services that pass the label filter: one service list,
// one task list for all of them, and the node list only when it may have changed. Only the
// services and tasks whose answer changed since the last List are decoded and converted; when
// nothing changed, the slice is the last one (workloads are immutable: do not modify it).
func (s *Source) List(ctx context.Context) ([]discovery.Workload, error) {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if s.checked.Load() && s.rawFailures < maxRawFailures {
		ws, err := s.listRaw(ctx, s.cache)
		if !errors.Is(err, errNoRaw) {
			if err == nil {
				s.rawFailures = 0
			}
			return ws, err
		}
	}
	s.cache.reset()
	ws, err := s.listDecoded(ctx)
	if err == nil && s.checked.Load() && s.rawFailures < maxRawFailures {
		// The client reads what a raw read could not: after a few such polls, the client alone.
		if s.rawFailures++; s.rawFailures == maxRawFailures {
			s.opt.Log.Info("reading services and tasks through the client's own calls: raw reads fail here (a TLS engine without DOCKER_CERT_PATH?)")
		}
	}
	return ws, err
}

// maxRawFailures is how many polls in a row may find raw reads failing where the client's calls
// succeed (before the version negotiation, say) before raw reads stop.
const maxRawFailures = 3

// listDecoded is List through the client's own calls, every task decoded and converted.
func (s *Source) listDecoded(ctx context.Context) ([]discovery.Workload, error) {
	sopts := swarm.ServiceListOptions{}
	if s.opt.LabelFilter != "" {
		sopts.Filters = filters.NewArgs(filters.Arg("label", s.opt.LabelFilter))
	}
	services, err := s.cli.ServiceList(ctx, sopts)
	if err != nil {
		return nil, s.explain("list services", err)
	}
	byID := make(map[string]*swarm.Service, len(services))
	for i := range services {
		byID[services[i].ID] = &services[i]
	}
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, s.explain("list tasks", err)
	}
	var nodeIDs []string
	for i := range tasks {
		nodeIDs = append(nodeIDs, tasks[i].NodeID)
	}
	nodes, err := s.nodeAddresses(ctx, nodeIDs)
	if err != nil {
		return nil, err
	}
	var out []discovery.Workload
	for i := range tasks {
		svc := byID[tasks[i].ServiceID]
		if svc == nil {
			continue // another service's task (the label filter), or one gone since the list
		}
		if w, ok := FromTask(&tasks[i], svc, nodes); ok {
			out = append(out, w)
		}
	}
	return out, nil
}

// nodeAddresses returns the cached node addresses, reading the node list first when it is stale
// or a task runs on a node it does not hold (nodeIDs are the tasks' nodes).
func (s *Source) nodeAddresses(ctx context.Context, nodeIDs []string) (map[string]string, error) {
	s.mu.Lock()
	stale, nodes := s.nodesStale, s.nodes
	s.mu.Unlock()
	for i := 0; !stale && i < len(nodeIDs); i++ {
		_, known := nodes[nodeIDs[i]]
		stale = !known && nodeIDs[i] != ""
	}
	if !stale {
		return nodes, nil
	}
	list, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, s.explain("list nodes", err)
	}
	nodes = make(map[string]string, len(list))
	for i := range list {
		nodes[list[i].ID] = nodeAddress(&list[i])
	}
	s.mu.Lock()
	s.nodes, s.nodesStale = nodes, false
	s.mu.Unlock()
	return nodes, nil
}

// explain turns the engine's "not a swarm manager" refusal into ErrNotManager, which Watch does
// not retry: pointing at a worker is a mistake to fix, not an outage to wait out. A manager that is
// starting or cannot reach its cluster refuses with "This node is not a swarm manager. Manager is
// being prepared or has trouble connecting to the cluster.": an outage, not ErrNotManager.
func (s *Source) explain(what string, err error) error {
	if msg := err.Error(); strings.Contains(msg, "not a swarm manager") && !strings.Contains(msg, "Manager is being prepared") {
		return fmt.Errorf("%s: %w: %w", what, ErrNotManager, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// confirm checks a listing's ErrNotManager against the engine's own view of its node: a manager
// between two runs of its Swarm node (state "error") also answers "not a swarm manager" for a
// while. It returns the error to give up on, or the transient state to wait out.
func (s *Source) confirm(ctx context.Context, err error) error {
	if !errors.Is(err, ErrNotManager) {
		return err
	}
	if cerr := s.CheckManager(ctx); cerr != nil {
		return cerr // ErrNotManager for good, or a state that passes
	}
	return err // the engine calls itself a manager, yet refuses to list: nothing to wait for
}

// eventFilters ask for what announces a change of tasks: services (created, updated, scaled,
// removed), nodes, and containers on this node starting, stopping or dying. Filters of different
// keys must all match, so a label filter would drop service events: task containers are told apart
// by their labels here instead (taskEvent).
func eventFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NodeEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", "create"), filters.Arg("event", "update"), filters.Arg("event", "remove"),
		filters.Arg("event", "start"), filters.Arg("event", "die"), filters.Arg("event", "kill"),
	)
}

// announces reports whether an event may change the tasks: any service or node event, and a
// container event for a task's container (its attributes carry its labels).
func announces(m events.Message) bool {
	if m.Type != events.ContainerEventType {
		return true
	}
	_, task := m.Actor.Attributes["com.docker.swarm.task.id"]
	return task
}

// Watch implements discovery.Source: a full set on every poll; the pipeline's inventory ignores
// polls that change nothing. An unreachable engine keeps the last set; a worker is an error.
func (s *Source) Watch(ctx context.Context, out chan<- discovery.Update) error {
	return discovery.Reconnect(ctx, s.opt.Log, "swarm manager", func(ctx context.Context, up func()) (bool, error) {
		return s.session(ctx, out, up)
	}, func(err error) bool { return errors.Is(err, ErrNotManager) }, s.opt.OnState)
}

func (s *Source) session(ctx context.Context, out chan<- discovery.Update, up func()) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.CheckManager(ctx); err != nil {
		return false, err
	}
	msgs, errs := s.cli.Events(ctx, events.ListOptions{Filters: eventFilters()})
	lastPoll := time.Now()
	if err := s.poll(ctx, out); err != nil {
		return false, s.confirm(ctx, err)
	}
	up()
	ticker := time.NewTicker(s.opt.Poll)
	defer ticker.Stop()
	var pending []time.Time // the polls an event asked for
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return true, err
		case m := <-msgs:
			if !announces(m) {
				continue
			}
			if s.opt.OnEvent != nil {
				s.opt.OnEvent(string(m.Type) + " " + string(m.Action))
			}
			if m.Type == events.NodeEventType {
				s.mu.Lock()
				s.nodesStale = true
				s.mu.Unlock()
			}
			// The burst starts again from this event: its first poll at once, or eventGap after
			// the last poll when that one has only just started.
			first := time.Now()
			if next := lastPoll.Add(eventGap); next.After(first) {
				first = next
			}
			pending = pending[:0]
			for _, d := range burst {
				pending = append(pending, first.Add(d))
			}
			timer.Reset(time.Until(first))
		case <-timer.C:
			for len(pending) > 0 && !pending[0].After(time.Now()) {
				pending = pending[1:]
			}
			if len(pending) > 0 {
				timer.Reset(time.Until(pending[0]))
			}
			lastPoll = time.Now()
			if err := s.poll(ctx, out); err != nil {
				return true, s.confirm(ctx, err)
			}
		case <-ticker.C:
			lastPoll = time.Now()
			if err := s.poll(ctx, out); err != nil {
				return true, s.confirm(ctx, err)
			}
		}
	}
}

func (s *Source) poll(ctx context.Context, out chan<- discovery.Update) error {
	ws, err := s.List(ctx)
	if err != nil {
		return err
	}
	select {
	case out <- discovery.Update{Source: SourceName, Full: true, Workloads: ws}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
