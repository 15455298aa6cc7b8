package enginesim

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Add adds a running container without any event, as if it ran before anyone subscribed: the
// initial state of a scale test.
func (s *Sim) Add(spec ContainerSpec) (id string, err error) {
	err = s.mutate(func(w *world) ([]event, error) {
		c, err := w.newContainer(spec)
		if err != nil {
			return nil, err
		}
		w.start(c)
		id = c.id
		return nil, nil
	})
	return id, err
}

// AddContainers adds n running containers, spec(0) to spec(n-1), without events, and returns
// their IDs. DefaultContainer is a spec.
func (s *Sim) AddContainers(n int, spec func(i int) ContainerSpec) ([]string, error) {
	ids := make([]string, 0, n)
	for i := range n {
		id, err := s.Add(spec(i))
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Start creates and starts a container, as docker run does: events create, network connect (one
// per network), start.
func (s *Sim) Start(spec ContainerSpec) (id string, err error) {
	err = s.mutate(func(w *world) ([]event, error) {
		c, err := w.newContainer(spec)
		if err != nil {
			return nil, err
		}
		id = c.id
		return append([]event{c.event("create")}, w.start(c)...), nil
	})
	return id, err
}

// StartExisting starts a stopped container again (docker start): network connect, start.
func (s *Sim) StartExisting(ref string) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.existingContainer(ref)
		if err != nil {
			return nil, err
		}
		if c.running() {
			return nil, nil // the engine does nothing either
		}
		return w.start(c), nil
	})
}

// Stop stops a running container as docker stop does: kill (its stop signal), die (exit code 0),
// network disconnect (one per network), stop. The container stays, exited, until Remove.
func (s *Sim) Stop(ref string) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.runningContainer(ref)
		if err != nil {
			return nil, err
		}
		evs := []event{c.event("kill", "signal", strconv.Itoa(c.stopSignalNumber()))}
		evs = append(evs, w.exit(c, 0)...)
		return append(evs, c.event("stop")), nil
	})
}

// Die ends a running container's process on its own (a crash, exit code 1 say): die, network
// disconnect. No kill, no stop.
func (s *Sim) Die(ref string, exitCode int) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.runningContainer(ref)
		if err != nil {
			return nil, err
		}
		return w.exit(c, exitCode), nil
	})
}

// Kill sends a signal ("HUP", "KILL", "15"; "" is KILL) as docker kill does: a kill event with the
// signal's number. KILL ends the container (die with 137); TERM, INT, QUIT and the container's stop signal
// end it too, as a well-behaved process exits on them (die with 0); other signals only signal.
func (s *Sim) Kill(ref, signal string) error {
	return s.mutate(func(w *world) ([]event, error) { return w.kill(ref, signal) })
}

func (w *world) kill(ref, signal string) ([]event, error) {
	c, err := w.runningContainer(ref)
	if err != nil {
		return nil, err
	}
	if signal == "" {
		signal = "KILL" // the engine's default
	}
	n := signalNumber(signal)
	if n == 0 {
		return nil, fmt.Errorf("invalid signal: %s", signal)
	}
	evs := []event{c.event("kill", "signal", strconv.Itoa(n))}
	switch {
	case n == 9:
		evs = append(evs, w.exit(c, 137)...)
	case n == 15 || n == 2 || n == 3 || n == c.stopSignalNumber():
		evs = append(evs, w.exit(c, 0)...)
	}
	return evs, nil
}

// Remove removes a container (docker rm -f): a running one is killed first (kill 9, die,
// disconnect), then destroy.
func (s *Sim) Remove(ref string) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.existingContainer(ref)
		if err != nil {
			return nil, err
		}
		var evs []event
		if c.running() {
			evs = append(evs, c.event("kill", "signal", "9"))
			evs = append(evs, w.exit(c, 137)...)
		}
		return append(evs, w.remove(c)...), nil
	})
}

// Restart restarts a container as docker restart does: a running one is stopped (kill, die,
// disconnect, stop), then connect, start, restart.
func (s *Sim) Restart(ref string) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.existingContainer(ref)
		if err != nil {
			return nil, err
		}
		var evs []event
		if c.running() {
			evs = append(evs, c.event("kill", "signal", strconv.Itoa(c.stopSignalNumber())))
			evs = append(evs, w.exit(c, 0)...)
			evs = append(evs, c.event("stop"))
		}
		c.restarts++
		evs = append(evs, w.start(c)...)
		return append(evs, c.event("restart")), nil
	})
}

// Pause and Unpause freeze and thaw a running container: events pause, unpause.
func (s *Sim) Pause(ref string) error { return s.setState(ref, "running", "paused", "pause") }

// Unpause thaws a paused container.
func (s *Sim) Unpause(ref string) error { return s.setState(ref, "paused", "running", "unpause") }

func (s *Sim) setState(ref, from, to, action string) error {
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.runningContainer(ref)
		if err != nil {
			return nil, err
		}
		if c.state != from {
			return nil, fmt.Errorf("%w: container %s is %s", ErrConflict, ref, c.state)
		}
		c.state = to
		return []event{c.event(action)}, nil
	})
}

// SetHealth changes a running container's health ("starting", "healthy", "unhealthy"): the event
// "health_status: <health>", as the engine sends it when a probe changes the status. A container
// without a healthcheck gets one.
func (s *Sim) SetHealth(ref, health string) error {
	switch health {
	case "starting", "healthy", "unhealthy":
	default:
		return fmt.Errorf("health %q: must be starting, healthy or unhealthy", health)
	}
	return s.mutate(func(w *world) ([]event, error) {
		c, err := w.runningContainer(ref)
		if err != nil {
			return nil, err
		}
		c.health = health
		return []event{c.event("health_status: " + health)}, nil
	})
}

// UpdateLabels replaces a container's labels. A container's labels cannot change on a real
// engine, so this recreates it as Compose does: the old one is stopped and removed (kill, die,
// disconnect, stop, destroy) and a new one, with a new ID, the same name and everything else the
// same, is started (create, connect, start). It returns the new ID.
func (s *Sim) UpdateLabels(ref string, labels map[string]string) (newID string, err error) {
	err = s.mutate(func(w *world) ([]event, error) {
		old, err := w.existingContainer(ref)
		if err != nil {
			return nil, err
		}
		var evs []event
		if old.running() {
			evs = append(evs, old.event("kill", "signal", strconv.Itoa(old.stopSignalNumber())))
			evs = append(evs, w.exit(old, 0)...)
			evs = append(evs, old.event("stop"))
		}
		evs = append(evs, w.remove(old)...)
		spec := old.spec()
		spec.Labels = maps.Clone(labels)
		c, err := w.newContainer(spec)
		if err != nil {
			return evs, err
		}
		newID = c.id
		evs = append(evs, c.event("create"))
		return append(evs, w.start(c)...), nil
	})
	return newID, err
}

// spec is what recreating the container takes.
func (c *ctr) spec() ContainerSpec {
	sp := ContainerSpec{Name: c.name, Image: c.image, Labels: c.labels, Env: c.env, Ports: c.ports,
		Networks: c.networks, NetworkMode: c.networkMode, StopSignal: c.stopSignal}
	if c.health != "" {
		sp.Health = "starting"
	}
	return sp
}

func (c *ctr) stopSignalNumber() int {
	if n := signalNumber(c.stopSignal); n != 0 {
		return n
	}
	return 15
}

// Containers returns the IDs of the running (and paused) containers, oldest first.
func (s *Sim) Containers() []string {
	var cs []*ctr
	s.read(func(w *world) {
		for _, c := range w.containers {
			if c.running() {
				cs = append(cs, c)
			}
		}
	})
	slices.SortFunc(cs, func(a, b *ctr) int { return cmp.Compare(a.seq, b.seq) })
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.id
	}
	return ids
}

// EventStorm makes n real changes at rate per second (0: as fast as it can), each one event: it
// flips the health of the running containers in turn (oldest first), healthy to unhealthy and
// back, so that every event costs vhost-gen an inspect and a routing change. It returns how many
// it made; ctx ends it early. For storms of other kinds, loop over the other methods.
func (s *Sim) EventStorm(ctx context.Context, n int, rate float64) (int, error) {
	ids := s.Containers()
	if len(ids) == 0 {
		return 0, fmt.Errorf("%w: no running container to storm", ErrNotFound)
	}
	start := time.Now()
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if err := waitCtx(ctx, time.Until(due)); err != nil {
				return i, err
			}
		} else if ctx.Err() != nil {
			return i, ctx.Err()
		}
		id := ids[i%len(ids)]
		health := "unhealthy"
		s.read(func(w *world) {
			if c := w.containers[id]; c != nil && c.health == "unhealthy" {
				health = "healthy"
			}
		})
		if err := s.SetHealth(id, health); err != nil {
			return i, err
		}
	}
	return n, nil
}
