package swarm

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"maps"
	"net/url"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// key identifies a list answer, or one element of it, by its bytes: two hashes of independent
// seeds, so that two different answers do not pass for one.
type key [2]uint64

type hasher struct{ a, b maphash.Seed }

func (h hasher) sum(b []byte) key { return key{maphash.Bytes(h.a, b), maphash.Bytes(h.b, b)} }

// cachedTask is one element of the task list as last converted. Its workload stands as long as the
// element's bytes, its service's bytes and its node's address are the same.
type cachedTask struct {
	serviceID, nodeID string
	svc               key    // the service element it was converted with
	node              string // its node's address then
	w                 discovery.Workload
	ok                bool // w is routed (the task runs)
	converted         bool
	task              *swarm.Task // decoded this poll, until converted
	start, end        int         // where it is in the task list's answer (taskBody)
}

// svcRef is a listed service: the fields FromTask reads, and its element's key.
type svcRef struct {
	svc *swarm.Service
	key key
}

// cache is what the last poll read, so that the next decodes and converts only what changed: at
// 10,000 tasks, decoding the task list is nearly all of a poll's cost. A poll whose answers are
// byte for byte the last ones, on the same nodes, is the last set as it was.
type cache struct {
	h        hasher
	valid    bool
	nodes    map[string]string // the node addresses out was converted with
	nodeIDs  []string          // the nodes the listed tasks run on
	services map[key]*swarm.Service
	byID     map[string]svcRef
	tasks    map[key]*cachedTask
	order    []*cachedTask // the task list's elements, in its order
	out      []discovery.Workload
	// svcBody and taskBody are the last answers read (the tasks' offsets are into taskBody).
	svcBody, taskBody []byte
	scratch           []byte
	spans             [][2]int
}

func newCache() *cache {
	return &cache{h: hasher{maphash.MakeSeed(), maphash.MakeSeed()}, scratch: make([]byte, 64<<10)}
}

// reset forgets what was taken in: the next poll decodes every element of the last answers.
func (c *cache) reset() {
	c.valid, c.nodes, c.nodeIDs, c.services, c.byID, c.tasks, c.order, c.out = false, nil, nil, nil, nil, nil, nil, nil
}

// listRaw is List on the engine's raw answers, through the cache; errNoRaw when they cannot be read
// raw (the caller then lists through the client's calls).
func (s *Source) listRaw(ctx context.Context, c *cache) ([]discovery.Workload, error) {
	q := url.Values{}
	if s.opt.LabelFilter != "" {
		q.Set("filters", mustFilters(filters.NewArgs(filters.Arg("label", s.opt.LabelFilter))))
	}
	svcBody, svcSame, err := rawGet(ctx, s.cli, "/services", q, c.svcBody, c.scratch)
	if err != nil {
		return nil, s.explain("list services", err)
	}
	q = url.Values{"filters": {mustFilters(filters.NewArgs(filters.Arg("desired-state", "running")))}}
	taskBody, taskSame, err := rawGet(ctx, s.cli, "/tasks", q, c.taskBody, c.scratch)
	if err != nil {
		return nil, s.explain("list tasks", err)
	}
	if !svcSame {
		c.svcBody = svcBody
	}
	if !taskSame {
		c.taskBody = taskBody
	}
	newServices, newTasks := !c.valid || !svcSame, !c.valid || !taskSame
	if newServices {
		err = c.readServices()
	}
	entries := c.order
	if newTasks && err == nil {
		entries, err = c.readTasks()
	}
	var nodes map[string]string
	if err == nil {
		nodes, err = s.nodeAddresses(ctx, c.nodeIDs)
	}
	if err != nil {
		c.reset() // what was read is only half taken in
		return nil, err
	}
	if !newServices && !newTasks && maps.Equal(nodes, c.nodes) {
		return c.out, nil // nothing changed: no element decoded, nothing converted
	}
	if err := c.convert(entries, nodes); err != nil {
		c.reset()
		return nil, err
	}
	c.nodes, c.valid = nodes, true
	return c.out, nil
}

func mustFilters(f filters.Args) string {
	s, err := filters.ToJSON(f)
	if err != nil {
		panic(err) // a filter of constant keys always encodes
	}
	return s
}

// readServices indexes the service list by ID, decoding only the services whose bytes changed.
func (c *cache) readServices() error {
	data := c.svcBody
	spans, ok := splitArray(data, c.spans[:0])
	if !ok {
		return badList("services", data)
	}
	c.spans = spans
	services := make(map[key]*swarm.Service, len(spans))
	byID := make(map[string]svcRef, len(spans))
	for _, sp := range spans {
		chunk := data[sp[0]:sp[1]]
		k := c.h.sum(chunk)
		svc := c.services[k]
		if svc == nil {
			var full swarm.Service
			if err := json.Unmarshal(chunk, &full); err != nil {
				return fmt.Errorf("list services: %w", err)
			}
			svc = trimService(&full)
		}
		services[k], byID[svc.ID] = svc, svcRef{svc, k}
	}
	c.services, c.byID = services, byID
	return nil
}

// trimService keeps what FromTask reads of a service, so that the cache holds no more.
func trimService(s *swarm.Service) *swarm.Service {
	out := &swarm.Service{ID: s.ID, Spec: swarm.ServiceSpec{Annotations: s.Spec.Annotations}}
	out.CreatedAt, out.Endpoint.Ports = s.CreatedAt, s.Endpoint.Ports
	return out
}

// badList is the error of an answer that is no JSON array: decoding it whole says why.
func badList(what string, data []byte) error {
	var v []json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("list %s: %w", what, err)
	}
	return fmt.Errorf("list %s: unreadable answer", what)
}

// readTasks splits the task list into its elements, decoding only those whose bytes are new; it
// returns them in the list's order and keeps them for the next poll (a task gone is forgotten).
func (c *cache) readTasks() ([]*cachedTask, error) {
	data := c.taskBody
	spans, ok := splitArray(data, c.spans[:0])
	if !ok {
		return nil, badList("tasks", data)
	}
	c.spans = spans
	tasks := make(map[key]*cachedTask, len(spans))
	order := make([]*cachedTask, 0, len(spans))
	var nodeIDs []string
	nodeSeen := map[string]bool{}
	for _, sp := range spans {
		k := c.h.sum(data[sp[0]:sp[1]])
		e := c.tasks[k]
		if e == nil {
			t := new(swarm.Task)
			if err := json.Unmarshal(data[sp[0]:sp[1]], t); err != nil {
				return nil, fmt.Errorf("list tasks: %w", err)
			}
			e = &cachedTask{serviceID: t.ServiceID, nodeID: t.NodeID, task: t}
		}
		e.start, e.end = sp[0], sp[1]
		tasks[k] = e
		order = append(order, e)
		if e.nodeID != "" && !nodeSeen[e.nodeID] {
			nodeSeen[e.nodeID] = true
			nodeIDs = append(nodeIDs, e.nodeID)
		}
	}
	c.tasks, c.order, c.nodeIDs = tasks, order, nodeIDs
	return order, nil
}

// convert builds the set from the task elements: a task converted with the same service element
// and node address is taken as it was; the others are decoded (if not yet) and converted.
func (c *cache) convert(entries []*cachedTask, nodes map[string]string) error {
	body := c.taskBody
	out := make([]discovery.Workload, 0, len(entries))
	for _, e := range entries {
		ref, listed := c.byID[e.serviceID]
		if listed && (!e.converted || e.svc != ref.key || e.node != nodes[e.nodeID]) {
			t := e.task
			if t == nil {
				t = new(swarm.Task)
				if err := json.Unmarshal(body[e.start:e.end], t); err != nil {
					return fmt.Errorf("list tasks: %w", err)
				}
			}
			e.w, e.ok = FromTask(t, ref.svc, nodes)
			e.svc, e.node, e.converted = ref.key, nodes[e.nodeID], true
		}
		e.task = nil // the cache keeps workloads, not decoded tasks
		if listed && e.ok {
			out = append(out, e.w)
		}
	}
	c.out = out
	return nil
}
