// Package publish writes one engine's workloads into the etcd registry (internal/registry), each
// key attached to one lease that the publisher keeps alive: a dead publisher's keys go with its
// lease, and nothing stale needs a janitor. It writes only what changed: one container event is
// at most one write (a put or a delete, in one transaction), and a reconcile after a (re)start or
// a reconnect puts what is missing or different and deletes what no longer exists, without
// touching the keys that are right.
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/registry"
)

// Options configure a Publisher.
type Options struct {
	Client  *clientv3.Client
	Layout  registry.Layout
	ID      string        // the publisher's ID: one writer per ID
	TTL     time.Duration // the lease's time to live
	Timeout time.Duration // bounds each call to etcd
	Record  registry.PublisherRecord
	Log     *slog.Logger
	// OnWrite counts writes by operation: "put" and "delete" of workload keys, "txn" (each
	// transaction that carries them), "record" (the publisher's own record, once per lease).
	OnWrite func(op string)
	// Flat, when set, also writes the flat layout (for confd templates during a migration).
	Flat func(w discovery.Workload) map[string][]byte
	// FlatDir is the flat layout's directory; its keys with this publisher's lease are its own.
	FlatDir string
	// OnSync hears whether etcd holds the source's set (nil) or not, and why, at every reconcile
	// and failed write (for /healthz).
	OnSync func(err error)
}

// Publisher mirrors a source's workloads into etcd. One goroutine (Run) owns it.
type Publisher struct {
	o Options
	// desired is the source's current set, by workload ID.
	desired map[string]discovery.Workload
	// written is what etcd holds of ours: key → value, as of the last successful write or read.
	written map[string][]byte
	// owned are each workload's keys (its registry key and its flat keys).
	owned map[string][]string
	lease clientv3.LeaseID
	alive <-chan *clientv3.LeaseKeepAliveResponse
	// synced: written matches etcd, and the lease is alive; deltas can be written directly.
	synced bool
}

// New makes a Publisher.
func New(o Options) *Publisher {
	if o.OnWrite == nil {
		o.OnWrite = func(string) {}
	}
	if o.OnSync == nil {
		o.OnSync = func(error) {}
	}
	return &Publisher{o: o, desired: map[string]discovery.Workload{}, written: map[string][]byte{}, owned: map[string][]string{}}
}

const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	// maxOps stays under etcd's default --max-txn-ops (128).
	maxOps = 100
)

// Run publishes src's workloads until ctx ends. etcd being unreachable is retried with backoff;
// the source's updates meanwhile are kept and reconciled when etcd is back.
func (p *Publisher) Run(ctx context.Context, src discovery.Source) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan discovery.Update, 256)
	errc := make(chan error, 1)
	go func() { errc <- src.Watch(ctx, updates) }()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Duration(0)
	haveFull := false
	fail := func(what string, err error) {
		p.synced = false
		p.o.OnSync(fmt.Errorf("etcd %s: %w", what, err))
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		p.o.Log.Warn("etcd: "+what+" failed; retrying", "in", backoff, "err", err)
		retry.Reset(backoff)
	}
	reconcile := func() {
		if err := p.reconcile(ctx); err != nil {
			if ctx.Err() == nil {
				fail("reconcile", err)
			}
			return
		}
		if backoff > 0 {
			p.o.Log.Info("etcd: publishing again", "workloads", len(p.desired))
		}
		backoff = 0
		p.o.OnSync(nil)
	}
	for {
		select {
		case <-ctx.Done():
			// The lease is not revoked: a publisher restarted within the TTL takes it over and
			// rewrites nothing that is right; one that does not come back loses its keys with it.
			return nil
		case err := <-errc:
			return err
		case <-retry.C:
			if haveFull {
				reconcile()
			}
		case _, ok := <-p.alive:
			if !ok {
				p.alive, p.lease, p.synced = nil, 0, false
				p.o.Log.Warn("etcd: the lease was lost (etcd unreachable longer than the TTL?); publishing again under a new one")
				if haveFull {
					reconcile()
				}
			}
		case u := <-updates:
			changed := p.take(u)
			haveFull = haveFull || u.Full
			switch {
			case !haveFull:
			case !p.synced || u.Full:
				if backoff == 0 {
					reconcile()
				}
			default:
				if err := p.writeDelta(ctx, changed); err != nil && ctx.Err() == nil {
					fail("write", err)
				}
			}
		}
	}
}

// take applies an update to the desired set and returns the IDs it touched.
func (p *Publisher) take(u discovery.Update) []string {
	var ids []string
	if u.Full {
		for id := range p.desired {
			ids = append(ids, id)
		}
		clear(p.desired)
	}
	for _, w := range u.Workloads {
		p.desired[w.ID] = w
		ids = append(ids, w.ID)
	}
	for _, id := range u.Removed {
		delete(p.desired, id)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// keys are the keys and values that a workload should have in etcd.
func (p *Publisher) keys(w discovery.Workload) (map[string][]byte, error) {
	if err := registry.CheckID(w.ID); err != nil {
		return nil, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	w.Env = routingEnv(w.Env)
	v, err := registry.EncodeWorkload(w)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	out := map[string][]byte{p.o.Layout.WorkloadKey(p.o.ID, w.ID): v}
	if p.o.Flat != nil {
		maps.Copy(out, p.o.Flat(w))
	}
	return out, nil
}

// writeDelta writes what changed for ids, in one transaction: for one container event, one put
// or one delete. Nothing is written when nothing changed.
func (p *Publisher) writeDelta(ctx context.Context, ids []string) error {
	want := map[string][]byte{}
	var stale []string
	for _, id := range ids {
		stale = append(stale, p.owned[id]...)
		if w, ok := p.desired[id]; ok {
			kv, err := p.keys(w)
			if err != nil {
				p.o.Log.Warn("not published", "err", err)
				continue
			}
			maps.Copy(want, kv)
		}
	}
	var ops []clientv3.Op
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if old, ok := p.written[k]; !ok || !bytes.Equal(old, want[k]) {
			ops = append(ops, clientv3.OpPut(k, string(want[k]), clientv3.WithLease(p.lease)))
		}
	}
	for _, k := range slices.Compact(slices.Sorted(slices.Values(stale))) {
		if _, keep := want[k]; !keep {
			if _, ok := p.written[k]; ok {
				ops = append(ops, clientv3.OpDelete(k))
			}
		}
	}
	if err := p.commit(ctx, ops); err != nil {
		return err
	}
	p.record(ids, want)
	return nil
}

// record notes what etcd now holds for ids.
func (p *Publisher) record(ids []string, want map[string][]byte) {
	for _, id := range ids {
		for _, k := range p.owned[id] {
			if _, keep := want[k]; !keep {
				delete(p.written, k)
			}
		}
		delete(p.owned, id)
		if w, ok := p.desired[id]; ok {
			kv, err := p.keys(w)
			if err != nil {
				continue
			}
			ks := slices.Sorted(maps.Keys(kv))
			p.owned[id] = ks
			for _, k := range ks {
				p.written[k] = kv[k]
			}
		}
	}
}

// commit writes ops in transactions of at most maxOps.
func (p *Publisher) commit(ctx context.Context, ops []clientv3.Op) error {
	for len(ops) > 0 {
		n := min(len(ops), maxOps)
		cctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
		_, err := p.o.Client.Txn(cctx).Then(ops[:n]...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("write %d keys: %w", n, err)
		}
		p.o.OnWrite("txn")
		for _, op := range ops[:n] {
			if op.IsPut() {
				p.o.OnWrite("put")
			} else {
				p.o.OnWrite("delete")
			}
		}
		ops = ops[n:]
	}
	return nil
}

// reconcile makes etcd hold exactly the desired set under a live lease: it keeps (or finds again,
// after a restart) the lease, reads this publisher's keys once, and writes only the differences.
// A key that is right but attached to another lease (an expired one's leftovers cannot exist, but
// a previous run's can) is written again under this one.
func (p *Publisher) reconcile(ctx context.Context) error {
	if err := p.ensureLease(ctx); err != nil {
		return err
	}
	want := map[string][]byte{}
	for _, w := range p.desired {
		kv, err := p.keys(w)
		if err != nil {
			p.o.Log.Warn("not published", "err", err)
			continue
		}
		maps.Copy(want, kv)
	}
	have, err := p.read(ctx)
	if err != nil {
		return err
	}
	var ops []clientv3.Op
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if kv, ok := have[k]; !ok || !bytes.Equal(kv.Value, want[k]) || clientv3.LeaseID(kv.Lease) != p.lease {
			ops = append(ops, clientv3.OpPut(k, string(want[k]), clientv3.WithLease(p.lease)))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	if err := p.commit(ctx, ops); err != nil {
		return err
	}
	clear(p.written)
	clear(p.owned)
	ids := slices.Sorted(maps.Keys(p.desired))
	p.record(ids, want)
	p.synced = true
	p.o.Log.Info("etcd: reconciled", "workloads", len(p.desired), "writes", len(ops))
	return nil
}

// read returns this publisher's keys: everything under its workloads prefix, and the flat
// layout's keys attached to its lease (other publishers may share the flat directory).
func (p *Publisher) read(ctx context.Context) (map[string]*kvInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	ops := []clientv3.Op{clientv3.OpGet(p.o.Layout.PublisherWorkloads(p.o.ID), clientv3.WithPrefix())}
	if p.o.FlatDir != "" {
		ops = append(ops, clientv3.OpGet(p.o.FlatDir+"/", clientv3.WithPrefix()))
	}
	resp, err := p.o.Client.Txn(cctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.o.Layout.PublisherWorkloads(p.o.ID), err)
	}
	have := map[string]*kvInfo{}
	for i, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			if i == 1 && clientv3.LeaseID(kv.Lease) != p.lease {
				continue
			}
			have[string(kv.Key)] = &kvInfo{Value: kv.Value, Lease: kv.Lease}
		}
	}
	return have, nil
}

type kvInfo struct {
	Value []byte
	Lease int64
}

// ensureLease keeps the lease alive, or takes over the previous run's lease if it still lives
// (so that its keys, when right, need no write), or grants a new one; and puts the publisher's
// record under it.
func (p *Publisher) ensureLease(ctx context.Context) error {
	if p.lease != 0 && p.alive != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	key := p.o.Layout.Publisher(p.o.ID)
	lease := clientv3.LeaseID(0)
	if resp, err := p.o.Client.Get(cctx, key); err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	} else if len(resp.Kvs) == 1 && resp.Kvs[0].Lease != 0 {
		ttl, err := p.o.Client.TimeToLive(cctx, clientv3.LeaseID(resp.Kvs[0].Lease))
		if err == nil && ttl.TTL > 0 {
			lease = clientv3.LeaseID(resp.Kvs[0].Lease)
			p.o.Log.Info("etcd: taking over the previous run's lease", "lease", fmt.Sprintf("%x", lease), "ttl", ttl.TTL)
		}
	}
	if lease == 0 {
		g, err := p.o.Client.Grant(cctx, int64((p.o.TTL+time.Second-1)/time.Second))
		if err != nil {
			return fmt.Errorf("grant a lease: %w", err)
		}
		lease = g.ID
	}
	// The keep-alive lives as long as Run, not this call.
	alive, err := p.o.Client.KeepAlive(ctx, lease)
	if err != nil {
		return fmt.Errorf("keep the lease alive: %w", err)
	}
	rec, _ := json.Marshal(p.o.Record) // strings and a time: cannot fail
	if _, err := p.o.Client.Put(cctx, key, string(rec), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	p.o.OnWrite("record")
	p.lease, p.alive = lease, alive
	return nil
}

// envPrefixes are the environment variables that travel: the routing settings, nginx-proxy's and
// the certificate settings. The rest of a container's environment (database passwords, tokens)
// never leaves the engine's host.
var envPrefixes = []string{"VIRTUAL_", "LETSENCRYPT_", "ACME_", "CERT_NAME", "HTTPS_METHOD", "HSTS", "SSL_POLICY",
	"NETWORK_ACCESS", "PREFER_IPV6_NETWORK"}

func routingEnv(env map[string]string) map[string]string {
	var out map[string]string
	for k, v := range env {
		if slices.ContainsFunc(envPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
