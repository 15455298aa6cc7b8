// Package gateways makes convergence visible: each gateway records in etcd, under its own lease,
// what it applied (the registry revision it rendered, the hash of the bytes, when, and its last
// error), and `vhost-gen gateways` (and /routes) lists every live gateway with that record and
// says which agree, lag or differ.
package gateways

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/registry"
)

// Recorder keeps this gateway's record in etcd. Record never blocks the apply loop: the newest
// record is written by Run, and a record that could not be written is written when etcd is back.
type Recorder struct {
	Client  *clientv3.Client
	Layout  registry.Layout
	ID      string
	TTL     time.Duration
	Timeout time.Duration
	Base    registry.GatewayRecord // hostname and version
	Log     *slog.Logger

	mu      sync.Mutex
	latest  registry.GatewayRecord
	pending bool
	wake    chan struct{}
}

// Record notes an apply: applied is the config in force after it (nil: the apply failed and
// the previous config stays in force), err its error.
func (r *Recorder) Record(revision int64, applied []byte, err error, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.latest
	if rec.Hostname == "" {
		rec.Hostname, rec.Version = r.Base.Hostname, r.Base.Version
	}
	rec.Revision, rec.AppliedAt, rec.Error = revision, at.UTC().Truncate(time.Millisecond), ""
	if applied != nil {
		sum := sha256.Sum256(applied)
		rec.SHA256 = hex.EncodeToString(sum[:])
	}
	if err != nil {
		rec.Error = err.Error()
	}
	r.latest, r.pending = rec, true
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Recorder) init() {
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
}

// Run writes the newest record under a lease kept alive, until ctx ends; on a clean stop the
// lease is revoked, so the gateway leaves the list at once.
func (r *Recorder) Run(ctx context.Context) {
	r.mu.Lock()
	r.init()
	r.mu.Unlock()
	var lease clientv3.LeaseID
	var alive <-chan *clientv3.LeaseKeepAliveResponse
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			if lease != 0 {
				cctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
				r.Client.Revoke(cctx, lease)
				cancel()
			}
			return
		case <-r.wake:
		case <-retry.C:
		case _, ok := <-alive:
			if ok {
				continue
			}
			lease, alive = 0, nil
			r.mu.Lock()
			r.pending = true // the record went with the lease
			r.mu.Unlock()
		}
		r.mu.Lock()
		rec, pending := r.latest, r.pending
		r.mu.Unlock()
		if !pending {
			continue
		}
		err := r.put(ctx, &lease, &alive, rec)
		if err != nil {
			if ctx.Err() == nil {
				backoff = min(max(2*backoff, 500*time.Millisecond), 15*time.Second)
				r.Log.Debug("etcd: gateway record not written; retrying", "in", backoff, "err", err)
				retry.Reset(backoff)
			}
			continue
		}
		backoff = 0
		r.mu.Lock()
		if r.latest == rec {
			r.pending = false
		}
		r.mu.Unlock()
	}
}

func (r *Recorder) put(ctx context.Context, lease *clientv3.LeaseID, alive *<-chan *clientv3.LeaseKeepAliveResponse, rec registry.GatewayRecord) error {
	cctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if *lease == 0 {
		g, err := r.Client.Grant(cctx, int64((r.TTL+time.Second-1)/time.Second))
		if err != nil {
			return fmt.Errorf("grant a lease: %w", err)
		}
		ka, err := r.Client.KeepAlive(ctx, g.ID)
		if err != nil {
			return fmt.Errorf("keep the lease alive: %w", err)
		}
		*lease, *alive = g.ID, ka
	}
	b, _ := json.Marshal(rec) // strings, numbers and a time: cannot fail
	_, err := r.Client.Put(cctx, r.Layout.Gateway(r.ID), string(b), clientv3.WithLease(*lease))
	return err
}

// Entry is one gateway in the list, with its state relative to the others.
type Entry struct {
	ID string `json:"id"`
	registry.GatewayRecord
	// State: "agrees" (applied the same bytes as the newest gateway), "lags" (an older revision
	// and other bytes), "differs" (as new, other bytes: other flags or networks), "error" (its
	// last apply failed), "unreadable" (a record this version cannot read).
	State string `json:"state"`
}

// List reads every live gateway's record.
func List(ctx context.Context, cli *clientv3.Client, l registry.Layout) ([]Entry, int64, error) {
	resp, err := cli.Get(ctx, l.Gateways(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", l.Gateways(), err)
	}
	var out []Entry
	for _, kv := range resp.Kvs {
		e := Entry{ID: strings.TrimPrefix(string(kv.Key), l.Gateways())}
		if len(kv.Value) > registry.MaxValue || json.Unmarshal(kv.Value, &e.GatewayRecord) != nil || registry.CheckID(e.ID) != nil {
			e = Entry{ID: fmt.Sprintf("%q", e.ID), State: "unreadable"}
		}
		out = append(out, e)
	}
	return Compare(out), resp.Header.Revision, nil
}

// Compare sets each entry's State against the newest gateway (highest revision, then latest
// apply), and sorts by ID. Equal bytes agree whatever their revisions: a gateway that started
// later read a later revision of the same state.
func Compare(es []Entry) []Entry {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.ID, b.ID) })
	var newest *Entry
	for i := range es {
		e := &es[i]
		if e.State == "unreadable" || e.SHA256 == "" {
			continue
		}
		if newest == nil || e.Revision > newest.Revision || e.Revision == newest.Revision && e.AppliedAt.After(newest.AppliedAt) {
			newest = e
		}
	}
	for i := range es {
		e := &es[i]
		switch {
		case e.State == "unreadable":
		case e.Error != "":
			e.State = "error"
		case newest != nil && e.SHA256 == newest.SHA256:
			e.State = "agrees"
		case newest != nil && e.Revision < newest.Revision:
			e.State = "lags"
		default:
			e.State = "differs"
		}
	}
	return es
}
