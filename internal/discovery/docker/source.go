// Package docker reads workloads from one Docker Engine: a full list at (re)connect and on a slow
// timer, and in between one inspect per container event.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"golang.org/x/sys/unix"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Options configure the source.
type Options struct {
	// NodeAddress is where this engine's published ports and host-network containers answer.
	NodeAddress string
	// Resync is the slow timer for a full re-read; events do the rest.
	Resync time.Duration
	Log    *slog.Logger
	// LabelFilter, "KEY" or "KEY=VALUE", limits vhost-gen to the containers with that label.
	LabelFilter string
	// OnEvent, if set, is called for every engine event handled (for metrics).
	OnEvent func(action string)
}

// Source is the Docker Engine source.
type Source struct {
	cli *client.Client
	opt Options

	mu sync.Mutex
	// cache remembers, per running container, the list entry it was last inspected at, so that a
	// resync inspects only containers that are new or changed.
	cache map[string]cached
	// stopping are containers sent their stop signal: out of rotation until they die, or start
	// again, so that requests go to the others while they finish what they are serving.
	stopping map[string]bool
}

type cached struct {
	fingerprint string
	workload    discovery.Workload
	ok          bool
	// stopSignal is the container's stop signal, as a number ("15"), as kill events carry it.
	stopSignal string
}

// New returns a source reading from cli.
func New(cli *client.Client, opt Options) *Source {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Resync <= 0 {
		opt.Resync = 5 * time.Minute
	}
	return &Source{cli: cli, opt: opt, cache: map[string]cached{}, stopping: map[string]bool{}}
}

// Name implements discovery.Source.
func (s *Source) Name() string { return SourceName }

// List lists running containers and inspects those not already cached at the same state.
func (s *Source) List(ctx context.Context) ([]discovery.Workload, error) {
	opts := container.ListOptions{}
	if s.opt.LabelFilter != "" {
		opts.Filters = filters.NewArgs(filters.Arg("label", s.opt.LabelFilter))
	}
	list, err := s.cli.ContainerList(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	s.mu.Lock()
	old, stopping := s.cache, maps.Clone(s.stopping)
	s.mu.Unlock()
	fresh := make(map[string]cached, len(list))
	var out []discovery.Workload
	for i := range list {
		fp := fingerprint(&list[i])
		c, hit := old[list[i].ID]
		if !hit || c.fingerprint != fp {
			var err error
			if c, err = s.inspect(ctx, list[i].ID); err != nil {
				if cerrdefs.IsNotFound(err) {
					continue // gone since the list
				}
				return nil, err
			}
			if !c.ok {
				c.fingerprint = fp
			}
		}
		fresh[list[i].ID] = c
		if c.ok && !stopping[list[i].ID] {
			out = append(out, c.workload)
		}
	}
	s.mu.Lock()
	s.cache = fresh
	for id := range s.stopping {
		if _, running := fresh[id]; !running {
			delete(s.stopping, id)
		}
	}
	s.mu.Unlock()
	return out, nil
}

// fingerprint covers what a list entry shows of a container's routing state (the rest: labels,
// env, exposed ports cannot change without a new container ID). workloadFingerprint computes the
// same from an inspected container, so entries cached from events stay valid at the next resync.
func fingerprint(c *container.Summary) string {
	var b strings.Builder
	b.WriteString(c.State) // running, paused, restarting
	b.WriteByte('|')
	b.WriteString(healthOf(c.Status))
	if c.NetworkSettings != nil {
		for _, n := range slices.Sorted(maps.Keys(c.NetworkSettings.Networks)) {
			if ep := c.NetworkSettings.Networks[n]; ep != nil {
				fmt.Fprintf(&b, "|%s=%s", n, ep.IPAddress)
			}
		}
	}
	ports := make([]string, 0, len(c.Ports))
	for _, p := range c.Ports {
		if p.PublicPort != 0 {
			ports = append(ports, binding(int(p.PrivatePort), p.Type, p.IP, int(p.PublicPort)))
		}
	}
	return writeSorted(&b, ports)
}

func workloadFingerprint(w *discovery.Workload) string {
	var b strings.Builder
	b.WriteString(container.StateRunning) // only running containers become workloads
	b.WriteByte('|')
	b.WriteString(w.Health)
	for _, n := range w.Networks {
		fmt.Fprintf(&b, "|%s=%s", n.Name, n.IP)
	}
	ports := make([]string, 0, len(w.Ports))
	for _, p := range w.Ports {
		if p.HostPort != 0 {
			ports = append(ports, binding(p.Port, p.Proto, p.HostIP, p.HostPort))
		}
	}
	return writeSorted(&b, ports)
}

// binding is one published port in a fingerprint; both fingerprints must spell it alike.
func binding(port int, proto, hostIP string, hostPort int) string {
	return fmt.Sprintf("%d/%s=%s:%d", port, proto, hostIP, hostPort)
}

// writeSorted ends a fingerprint with its bindings, in an order independent of the engine's.
func writeSorted(b *strings.Builder, items []string) string {
	slices.Sort(items)
	for _, it := range items {
		b.WriteString("|" + it)
	}
	return b.String()
}

// healthOf reads the health from a list entry's status, such as "Up 3 minutes (healthy)".
func healthOf(status string) string {
	switch {
	case strings.HasSuffix(status, "(healthy)"):
		return discovery.HealthHealthy
	case strings.HasSuffix(status, "(unhealthy)"):
		return discovery.HealthUnhealthy
	case strings.HasSuffix(status, "(health: starting)"):
		return discovery.HealthStarting
	}
	return discovery.HealthNone
}

// inspect reads one container into a cache entry; an entry that is ok has its fingerprint.
func (s *Source) inspect(ctx context.Context, id string) (cached, error) {
	c, err := s.cli.ContainerInspect(ctx, id)
	if err != nil {
		return cached{}, fmt.Errorf("inspect container %.12s: %w", id, err)
	}
	w, ok := FromInspect(&c, s.opt.NodeAddress)
	e := cached{workload: w, ok: ok, stopSignal: stopSignal(c.Config)}
	if ok {
		e.fingerprint = workloadFingerprint(&w)
	}
	return e, nil
}

// eventFilters ask the engine only for the events that can change routing.
func eventFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", "start"), filters.Arg("event", "die"), filters.Arg("event", "destroy"),
		filters.Arg("event", "pause"), filters.Arg("event", "unpause"), filters.Arg("event", "rename"),
		filters.Arg("event", "health_status"), filters.Arg("event", "kill"),
		filters.Arg("event", "connect"), filters.Arg("event", "disconnect"),
	)
}

// Watch implements discovery.Source. An unreachable engine is logged once per outage, retried
// with backoff, and sends nothing, so the last routing table stays in force.
func (s *Source) Watch(ctx context.Context, out chan<- discovery.Update) error {
	return discovery.Reconnect(ctx, s.opt.Log, "docker engine", func(ctx context.Context, up func()) (bool, error) {
		return s.session(ctx, out, up)
	}, nil)
}

// session subscribes to events, resyncs, and handles events until the stream fails.
func (s *Source) session(ctx context.Context, out chan<- discovery.Update, up func()) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that no change falls between the list and the stream.
	msgs, errs := s.cli.Events(ctx, events.ListOptions{Filters: eventFilters()})
	if err := s.resync(ctx, out); err != nil {
		return false, err
	}
	up()
	ticker := time.NewTicker(s.opt.Resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return true, err
		case <-ticker.C:
			if err := s.resync(ctx, out); err != nil {
				return true, err
			}
		case m := <-msgs:
			if err := s.handle(ctx, m, out); err != nil {
				return true, err
			}
		}
	}
}

func (s *Source) resync(ctx context.Context, out chan<- discovery.Update) error {
	ws, err := s.List(ctx)
	if err != nil {
		return err
	}
	return send(ctx, out, discovery.Update{Source: SourceName, Full: true, Workloads: ws})
}

// handle turns one event into at most one API call: an inspect of the container concerned.
func (s *Source) handle(ctx context.Context, m events.Message, out chan<- discovery.Update) error {
	id, action := m.Actor.ID, string(m.Action)
	if m.Type == events.NetworkEventType {
		id = m.Actor.Attributes["container"]
		// Only running containers matter, and all of them are cached: a container that is not
		// has yet to start, and its start event will inspect it.
		s.mu.Lock()
		_, known := s.cache[id]
		s.mu.Unlock()
		if !known {
			return nil
		}
	} else if !s.matches(m.Actor.Attributes) {
		return nil
	}
	if id == "" {
		return nil
	}
	if s.opt.OnEvent != nil {
		s.opt.OnEvent(action)
	}
	remove := discovery.Update{Source: SourceName, Removed: []string{id}}
	switch action {
	case "die", "destroy":
		s.forget(id)
		return send(ctx, out, remove) // a dead container needs no inspect to know it is gone
	case "kill":
		// The stop signal is the first sign of a stop: leave the rotation now, before the process
		// exits, at no API cost. Other signals (a HUP to reload the app) change nothing.
		if !s.stops(id, m.Actor.Attributes["signal"]) {
			return nil
		}
		s.mu.Lock()
		s.stopping[id] = true
		s.mu.Unlock()
		return send(ctx, out, remove)
	case "start", "unpause":
		s.mu.Lock()
		delete(s.stopping, id)
		s.mu.Unlock()
	}
	s.mu.Lock()
	stopping := s.stopping[id]
	s.mu.Unlock()
	if stopping {
		return nil // a health check or network change while it stops: it stays out
	}
	c, err := s.inspect(ctx, id)
	switch {
	case cerrdefs.IsNotFound(err):
		s.forget(id)
		return send(ctx, out, remove)
	case err != nil:
		return err
	}
	s.mu.Lock()
	s.cache[id] = c // not ok: no fingerprint, so the next resync looks again
	s.mu.Unlock()
	if !c.ok {
		return send(ctx, out, remove)
	}
	return send(ctx, out, discovery.Update{Source: SourceName, Workloads: []discovery.Workload{c.workload}})
}

// stops reports whether a kill event's signal stops the container: TERM, KILL, INT, QUIT, or the
// container's own stop signal.
func (s *Source) stops(id, signal string) bool {
	switch signal {
	case "15", "9", "2", "3":
		return true
	}
	s.mu.Lock()
	c, known := s.cache[id]
	s.mu.Unlock()
	return known && c.stopSignal != "" && c.stopSignal == signal
}

// stopSignal is a container's configured stop signal as a number, "" for the default (TERM).
func stopSignal(cfg *container.Config) string {
	if cfg == nil || cfg.StopSignal == "" {
		return ""
	}
	name := strings.ToUpper(cfg.StopSignal)
	if n, err := strconv.Atoi(name); err == nil {
		return strconv.Itoa(n)
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return strconv.Itoa(int(n))
	}
	return ""
}

// matches applies the label filter to a container event's attributes, which carry its labels.
func (s *Source) matches(attrs map[string]string) bool {
	if s.opt.LabelFilter == "" {
		return true
	}
	k, v, hasValue := strings.Cut(s.opt.LabelFilter, "=")
	got, ok := attrs[k]
	return ok && (!hasValue || got == v)
}

func (s *Source) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	delete(s.stopping, id)
	s.mu.Unlock()
}

func send(ctx context.Context, out chan<- discovery.Update, u discovery.Update) error {
	select {
	case out <- u:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
