// Package etcd is the etcd source: the workloads that publishers wrote into vhost-gen's registry
// (internal/registry), and the older flat layouts that confd setups already have. It reads every
// prefix at one revision, then watches each from the next; a watch that ends is resumed from the
// revision it had, and a compaction past it is a full re-read. Values are untrusted input: a
// malformed one is a workload with a problem naming its key.
package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/registry"
)

// Options configure the source.
type Options struct {
	Client *clientv3.Client
	// Layout is the registry's; Registry false reads only the flat layouts.
	Layout   registry.Layout
	Registry bool
	Flat     []FlatDir
	VHosts   string // the ambassador's vhosts root, "" for none
	Timeout  time.Duration
	Log      *slog.Logger
	// OnEvent counts watch events by action ("put", "delete", "compacted", "resumed").
	OnEvent func(action string)
	// OnState hears whether etcd answers, once per change.
	OnState func(connected bool, err error)
}

// Source reads workloads from etcd.
type Source struct {
	o Options
	// groups are the prefixes read and watched; each watch resumes from its own revision.
	groups []*group
	// sent is what the last update left the inventory with, by workload ID.
	sent map[string]discovery.Workload
	// byID indexes the registry's keys by the workload ID they carry: one workload published by
	// two publishers (two managers of a Swarm) is one workload; the first publisher by ID wins.
	byID  map[string]map[string]discovery.Workload // ID → key → decoded
	keyID map[string]string                        // key → the ID it carries
	rev   int64
	// connected is the last state told to OnState; Watch and probe both report.
	mu        sync.Mutex
	connected *bool
}

// group is one watched prefix: the registry, one flat directory, or the vhosts tree.
type group struct {
	prefix string
	rev    int64 // the revision this prefix is known up to
	kvs    map[string][]byte
	ids    []string // the workload IDs this group made last time (flat layouts)
	decode func(kvs map[string][]byte) []discovery.Workload
}

// New makes the source.
func New(o Options) *Source {
	if o.OnEvent == nil {
		o.OnEvent = func(string) {}
	}
	if o.OnState == nil {
		o.OnState = func(bool, error) {}
	}
	s := &Source{o: o}
	if o.Registry {
		s.groups = append(s.groups, &group{prefix: o.Layout.Workloads()})
	}
	for _, d := range o.Flat {
		s.groups = append(s.groups, &group{prefix: d.Dir + "/", decode: func(kvs map[string][]byte) []discovery.Workload { return DecodeFlatDir(d, kvs) }})
	}
	if o.VHosts != "" {
		root := o.VHosts
		s.groups = append(s.groups, &group{prefix: root + "/", decode: func(kvs map[string][]byte) []discovery.Workload { return DecodeVHosts(root, kvs) }})
	}
	return s
}

// Name is the source's name in updates, logs and metrics.
func (s *Source) Name() string { return "etcd" }

// List reads every prefix once.
func (s *Source) List(ctx context.Context) ([]discovery.Workload, error) {
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s.all(), nil
}

const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 15 * time.Second
	// probeEvery is how often the source asks etcd whether it answers: a watch on an etcd that
	// is gone waits silently, and /healthz must say that the gateway runs on its last table.
	probeEvery = 3 * time.Second
)

// Watch sends a Full update after every full read and deltas from the watches. While etcd does
// not answer it sends nothing, so the last table stays in force.
func (s *Source) Watch(ctx context.Context, out chan<- discovery.Update) error {
	go s.probe(ctx)
	backoff := time.Duration(0)
	loaded := false
	for ctx.Err() == nil {
		if !loaded {
			if err := s.load(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.state(false, err)
				backoff = min(max(2*backoff, minBackoff), maxBackoff)
				s.o.Log.Warn("etcd: read failed; keeping the last table; retrying", "in", backoff, "err", err)
				sleep(ctx, backoff)
				continue
			}
			s.state(true, nil)
			backoff, loaded = 0, true
			if !s.send(ctx, out, discovery.Update{Source: s.Name(), Full: true, Workloads: s.all(), Revision: s.rev}) {
				return nil
			}
		}
		compacted, err := s.watch(ctx, out)
		switch {
		case ctx.Err() != nil:
			return nil
		case compacted:
			s.o.OnEvent("compacted")
			s.o.Log.Warn("etcd: compacted past this gateway's revision; reading everything again", "revision", s.rev)
			loaded = false
		default:
			s.o.OnEvent("resumed")
			s.o.Log.Info("etcd: watch ended; resuming from its revision", "revision", s.rev, "err", err)
			sleep(ctx, minBackoff)
		}
	}
	return nil
}

// load reads every prefix in one transaction, so all of them are at one revision.
func (s *Source) load(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	ops := make([]clientv3.Op, len(s.groups))
	for i, g := range s.groups {
		ops[i] = clientv3.OpGet(g.prefix, clientv3.WithPrefix())
	}
	resp, err := s.o.Client.Txn(cctx).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("read %s: %w", s.prefixes(), err)
	}
	s.rev = resp.Header.Revision
	s.byID, s.keyID = map[string]map[string]discovery.Workload{}, map[string]string{}
	for i, g := range s.groups {
		g.rev, g.kvs, g.ids = s.rev, map[string][]byte{}, nil
		for _, kv := range resp.Responses[i].GetResponseRange().Kvs {
			g.kvs[string(kv.Key)] = kv.Value
		}
		if g.decode == nil {
			for k, v := range g.kvs {
				s.index(k, v)
			}
			g.kvs = nil // decoded into byID
		}
	}
	s.sent = map[string]discovery.Workload{}
	for _, w := range s.compute(nil, s.groups) {
		s.sent[w.ID] = w
	}
	return nil
}

func (s *Source) prefixes() string {
	ps := make([]string, len(s.groups))
	for i, g := range s.groups {
		ps[i] = g.prefix
	}
	return strings.Join(ps, ", ")
}

// index decodes one registry key into byID.
func (s *Source) index(key string, value []byte) string {
	w := registry.DecodeWorkload(s.o.Layout, key, value)
	if s.byID[w.ID] == nil {
		s.byID[w.ID] = map[string]discovery.Workload{}
	}
	s.byID[w.ID][key] = w
	s.keyID[key] = w.ID
	return w.ID
}

// unindex forgets a registry key; it returns the ID it carried.
func (s *Source) unindex(key string) string {
	id, ok := s.keyID[key]
	if !ok {
		return ""
	}
	delete(s.keyID, key)
	delete(s.byID[id], key)
	if len(s.byID[id]) == 0 {
		delete(s.byID, id)
	}
	return id
}

// compute returns the workloads for the given registry IDs (nil: all of them) and the given flat
// groups, sorted by ID.
func (s *Source) compute(ids []string, groups []*group) []discovery.Workload {
	var out []discovery.Workload
	if ids == nil {
		ids = slices.Collect(maps.Keys(s.byID))
	}
	for _, id := range ids {
		keys := s.byID[id]
		if len(keys) == 0 {
			continue
		}
		// The registry's keys sort by publisher: the first publisher's copy wins, on every gateway.
		out = append(out, keys[slices.Min(slices.Collect(maps.Keys(keys)))])
	}
	for _, g := range groups {
		if g.decode == nil {
			continue
		}
		ws := g.decode(g.kvs)
		g.ids = g.ids[:0]
		for _, w := range ws {
			g.ids = append(g.ids, w.ID)
		}
		out = append(out, ws...)
	}
	slices.SortFunc(out, func(a, b discovery.Workload) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (s *Source) all() []discovery.Workload {
	return slices.SortedFunc(maps.Values(s.sent), func(a, b discovery.Workload) int { return cmp.Compare(a.ID, b.ID) })
}

// watch follows every prefix until a watch ends; it reports a compaction past a group's revision.
func (s *Source) watch(ctx context.Context, out chan<- discovery.Update) (compacted bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	type batch struct {
		g    *group
		resp clientv3.WatchResponse
		ok   bool
	}
	merged := make(chan batch)
	for _, g := range s.groups {
		wch := s.o.Client.Watch(wctx, g.prefix, clientv3.WithPrefix(), clientv3.WithRev(g.rev+1))
		go func() {
			for {
				resp, ok := <-wch
				select {
				case merged <- batch{g, resp, ok}:
				case <-wctx.Done():
					return
				}
				if !ok {
					return
				}
			}
		}()
	}
	for {
		var b batch
		select {
		case <-ctx.Done():
			return false, nil
		case b = <-merged:
		}
		if !b.ok {
			return false, errors.New("watch channel closed")
		}
		if b.resp.CompactRevision != 0 || errors.Is(b.resp.Err(), rpctypes.ErrCompacted) {
			return true, nil
		}
		if err := b.resp.Err(); err != nil {
			return false, err
		}
		if len(b.resp.Events) == 0 {
			continue // progress notifications
		}
		u := s.apply(b.g, b.resp)
		if len(u.Workloads) == 0 && len(u.Removed) == 0 {
			continue
		}
		if !s.send(ctx, out, u) {
			return false, nil
		}
	}
}

// apply takes one watch response into the state and returns the update it makes: only the
// workloads whose keys changed are recomputed.
func (s *Source) apply(g *group, resp clientv3.WatchResponse) discovery.Update {
	var ids []string
	for _, ev := range resp.Events {
		key := string(ev.Kv.Key)
		s.o.OnEvent(strings.ToLower(ev.Type.String()))
		g.rev = max(g.rev, ev.Kv.ModRevision)
		s.rev = max(s.rev, ev.Kv.ModRevision)
		if g.decode != nil {
			if ev.Type == clientv3.EventTypeDelete {
				delete(g.kvs, key)
			} else {
				g.kvs[key] = ev.Kv.Value
			}
			continue
		}
		if id := s.unindex(key); id != "" {
			ids = append(ids, id)
		}
		if ev.Type == clientv3.EventTypePut {
			ids = append(ids, s.index(key, ev.Kv.Value))
		}
	}
	var groups []*group
	before := map[string]bool{}
	if g.decode != nil {
		groups = []*group{g}
		for _, id := range g.ids {
			before[id] = true
		}
	} else {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for _, id := range ids {
			before[id] = true
		}
	}
	u := discovery.Update{Source: s.Name(), Revision: s.rev}
	if ids == nil {
		ids = []string{}
	}
	for _, w := range s.compute(ids, groups) {
		delete(before, w.ID)
		if old, ok := s.sent[w.ID]; ok && old.Equal(&w) {
			continue
		}
		s.sent[w.ID] = w
		u.Workloads = append(u.Workloads, w)
	}
	for _, id := range slices.Sorted(maps.Keys(before)) {
		if _, ok := s.sent[id]; ok {
			delete(s.sent, id)
			u.Removed = append(u.Removed, id)
		}
	}
	return u
}

func (s *Source) send(ctx context.Context, out chan<- discovery.Update, u discovery.Update) bool {
	select {
	case out <- u:
		return true
	case <-ctx.Done():
		return false
	}
}

// probe asks etcd, every few seconds, whether it answers, and tells OnState (and the log) when
// that changes.
func (s *Source) probe(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, min(s.o.Timeout, probeEvery))
		_, err := s.o.Client.Get(cctx, s.o.Layout.Prefix, clientv3.WithCountOnly())
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.state(err == nil, err)
	}
}

// state reports a change of connectivity once.
func (s *Source) state(connected bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connected != nil && *s.connected == connected {
		return
	}
	if s.connected != nil {
		if connected {
			s.o.Log.Info("etcd answers again")
		} else {
			s.o.Log.Warn("etcd does not answer; serving the last table", "err", err)
		}
	}
	s.connected = &connected
	s.o.OnState(connected, err)
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
