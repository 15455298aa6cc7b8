// Package docker reads workloads from one Docker Engine: a full list at (re)connect and on a slow
// timer, and in between one inspect per container changed by events (see events.go).
package docker

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// OnState, if set, hears whether the engine answers: true once resynced, false and why
	// when a connection fails.
	OnState func(connected bool, err error)
}

// inspectConcurrency bounds the inspects in flight at once, at a resync and for a batch of events.
// One at a time, 10,000 containers took 14 s at 1 ms a request (integration/enginesim's
// BenchmarkStartup10k); 16 in flight take under 2 s (8: about 3 s), mostly JSON decoding. 16
// requests at once are little load for an engine, which answers each on its own goroutine, under
// that one container's lock.
const inspectConcurrency = 16

// defaultQueueCap bounds the events read off the stream and not yet handled (about 150 bytes
// each). Past it, the queue is dropped and the source resyncs: a full list costs less than the
// backlog, and no event is lost unnoticed.
const defaultQueueCap = 100_000

// Source is the Docker Engine source.
type Source struct {
	cli *client.Client
	opt Options
	// queueCap is the event queue's bound: defaultQueueCap, lower in tests.
	queueCap int
	// received counts the events read off the engine's stream, over all sessions. An inspect sent
	// when it was n reflects every event up to the n-th: a later event needs its own.
	received atomic.Uint64

	mu sync.Mutex
	// cache remembers, per running container, the list entry it was last inspected at, so that a
	// resync inspects only containers that are new or changed.
	cache map[string]cached
	// stopping are containers sent their stop signal: out of rotation until they die, or start
	// again, so that requests go to the others while they finish what they are serving.
	stopping map[string]bool
}

// listed is what List keeps of a container's list entry.
type listed struct {
	ID          string
	fingerprint uint64
}

// digest is what the cache keeps of a fingerprint: 8 bytes rather than about 80, at 10,000
// containers. Two states with one digest (a chance of 2⁻⁶⁴) would only delay the change to
// the next event.
func digest(fingerprint string) uint64 { return maphash.String(digestSeed, fingerprint) }

var digestSeed = maphash.MakeSeed()

type cached struct {
	fingerprint uint64 // digest
	workload    discovery.Workload
	ok          bool
	// stopSignal is the container's stop signal, as a number ("15"), as kill events carry it.
	stopSignal string
	// seen is Source.received when the inspect was sent: events up to it need no other inspect.
	seen uint64
}

// New returns a source reading from cli.
func New(cli *client.Client, opt Options) *Source {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Resync <= 0 {
		opt.Resync = 5 * time.Minute
	}
	return &Source{cli: cli, opt: opt, queueCap: defaultQueueCap, cache: map[string]cached{}, stopping: map[string]bool{}}
}

// Name implements discovery.Source.
func (s *Source) Name() string { return SourceName }

// List lists running containers and inspects those not already cached at the same state,
// inspectConcurrency at a time; workloads come in the order of their IDs.
func (s *Source) List(ctx context.Context) ([]discovery.Workload, error) {
	opts := container.ListOptions{}
	if s.opt.LabelFilter != "" {
		opts.Filters = filters.NewArgs(filters.Arg("label", s.opt.LabelFilter))
	}
	// What List needs of an entry, kept as the list is read (see eachListed).
	var list []listed
	keep := func(c *container.Summary) { list = append(list, listed{ID: c.ID, fingerprint: digest(fingerprint(c))}) }
	whole, err := s.cli.ContainerList(eachListed(ctx, keep), opts)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for i := range whole { // a client that is not NewClient's
		keep(&whole[i])
	}
	slices.SortFunc(list, func(a, b listed) int { return strings.Compare(a.ID, b.ID) })
	s.mu.Lock()
	var stale []int // new or changed since their cached inspect, by index in list
	var ids []string
	for i := range list {
		if c, hit := s.cache[list[i].ID]; !hit || c.fingerprint != list[i].fingerprint {
			stale, ids = append(stale, i), append(ids, list[i].ID)
		}
	}
	s.mu.Unlock()
	inspected, missing, err := s.inspectAll(ctx, ids)
	if err != nil {
		return nil, err
	}
	// The cache is changed in place: a resync that finds little changed allocates little (a
	// new cache was 3 MB at 10,000 containers).
	s.mu.Lock()
	defer s.mu.Unlock()
	running := len(list)
	for k, i := range stale {
		id := list[i].ID
		if missing[k] { // gone since the list
			delete(s.cache, id)
			running--
			continue
		}
		c := inspected[k]
		if !c.ok {
			c.fingerprint = list[i].fingerprint // as listed: inspected again once that changes
		}
		s.cache[id] = c
	}
	if len(s.cache) > running { // some are not listed: gone
		for id := range s.cache {
			if _, listed := slices.BinarySearchFunc(list, id, func(l listed, id string) int { return strings.Compare(l.ID, id) }); !listed {
				delete(s.cache, id)
			}
		}
	}
	for id := range s.stopping {
		if _, ok := s.cache[id]; !ok {
			delete(s.stopping, id)
		}
	}
	out := make([]discovery.Workload, 0, len(list))
	for i := range list {
		if c, ok := s.cache[list[i].ID]; ok && c.ok && !s.stopping[list[i].ID] {
			out = append(out, c.workload)
		}
	}
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
				fmt.Fprintf(&b, "|%s=%s,%s", n, ep.IPAddress, ep.GlobalIPv6Address)
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
		fmt.Fprintf(&b, "|%s=%s,%s", n.Name, n.IP, n.IPv6)
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
	seen := s.received.Load()
	c, err := s.cli.ContainerInspect(ctx, id)
	if err != nil {
		return cached{}, fmt.Errorf("inspect container %.12s: %w", id, err)
	}
	w, ok := FromInspect(&c, s.opt.NodeAddress)
	e := cached{workload: w, ok: ok, stopSignal: stopSignal(c.Config), seen: seen}
	if ok {
		e.fingerprint = digest(workloadFingerprint(&w))
	}
	return e, nil
}

// inspectAll inspects ids, at most inspectConcurrency at a time, and returns their entries in the
// order of ids; gone[i] says the container ids[i] no longer exists. Any other error ends it. Only
// the converted entries are kept, never the engine's replies.
func (s *Source) inspectAll(ctx context.Context, ids []string) (entries []cached, gone []bool, err error) {
	entries, gone = make([]cached, len(ids)), make([]bool, len(ids))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(inspectConcurrency, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || wctx.Err() != nil {
					return
				}
				c, err := s.inspect(wctx, ids[i])
				switch {
				case cerrdefs.IsNotFound(err):
					gone[i] = true
				case err != nil:
					once.Do(func() { first = err; cancel() })
					return
				default:
					entries[i] = c
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err() // ended early, with nothing else to say
	}
	if first != nil {
		return nil, nil, first
	}
	return entries, gone, nil
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
	}, nil, s.opt.OnState)
}

// session subscribes to events, resyncs, and handles events until the stream fails. A reader
// goroutine takes the events off the stream as they come, into a queue, so that the engine never
// finds vhost-gen slow to read (it drops events for a slow reader) while a resync or a batch of
// inspects runs; the session handles what has queued, a batch at a time.
func (s *Source) session(ctx context.Context, out chan<- discovery.Update, up func()) (connected bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that no change falls between the list and the stream.
	msgs, errs := s.cli.Events(ctx, events.ListOptions{Filters: eventFilters()})
	q := newQueue(s.queueCap)
	go s.read(ctx, msgs, errs, q)
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
		case <-ticker.C:
			if err := s.resync(ctx, out); err != nil {
				return true, err
			}
		case <-q.ready:
			batch, overflow, err := q.take()
			switch {
			case err != nil:
				return true, err // what is queued is moot: the next session resyncs
			case overflow:
				s.opt.Log.Warn("docker engine: too many events queued; dropped them, resyncing", "cap", q.cap)
				if err := s.resync(ctx, out); err != nil {
					return true, err
				}
			default:
				if err := s.process(ctx, batch, out); err != nil {
					return true, err
				}
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

// handle handles one event as a batch of its own.
func (s *Source) handle(ctx context.Context, m events.Message, out chan<- discovery.Update) error {
	e, ok := s.compact(m, s.received.Add(1))
	if !ok {
		return nil
	}
	return s.process(ctx, []event{e}, out)
}

// stops reports whether a kill event's signal stops the container: TERM, KILL, INT, QUIT, or the
// container's own stop signal.
func (s *Source) stops(id, signal string) bool {
	if standardStop(signal) {
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
