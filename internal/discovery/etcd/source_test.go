package etcd

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/registry"
)

var testLayout = registry.Layout{Prefix: "/vhost-gen"}

func put(key string, value []byte, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte(key), Value: value, ModRevision: rev}}
}

func del(key string, rev int64) *clientv3.Event {
	return &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key), ModRevision: rev}}
}

func published(t *testing.T, id, host, ip string) []byte {
	t.Helper()
	v, err := registry.EncodeWorkload(discovery.Workload{ID: id, Name: "c-" + id, Source: "docker",
		Labels: map[string]string{"VIRTUAL_HOST": host}, Networks: []discovery.Network{{Name: "edge", IP: ip}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newTestSource is a source whose state was loaded empty at revision 1, without a server.
func newTestSource(flat ...FlatDir) *Source {
	s := New(Options{Layout: testLayout, Registry: true, Flat: flat, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.byID, s.keyID, s.sent, s.rev = map[string]map[string]discovery.Workload{}, map[string]string{}, map[string]discovery.Workload{}, 1
	for _, g := range s.groups {
		g.rev, g.kvs = 1, map[string][]byte{}
	}
	return s
}

func ids(ws []discovery.Workload) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

// TestApplyRegistry: deltas carry only what changed; the same workload from two publishers is one
// workload, the first publisher's; a malformed value is a workload with a problem.
func TestApplyRegistry(t *testing.T) {
	s := newTestSource()
	g := s.groups[0]
	ka, kb := testLayout.WorkloadKey("a", "w1"), testLayout.WorkloadKey("b", "w1")

	u := s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{put(kb, published(t, "w1", "x.example", "10.0.0.2"), 2)}})
	if !slices.Equal(ids(u.Workloads), []string{"w1"}) || u.Workloads[0].Publisher != "b" || u.Revision != 2 {
		t.Fatalf("first put: %+v", u)
	}
	// Publisher a publishes the same workload: it wins (sorted first), an upsert of w1.
	u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{put(ka, published(t, "w1", "x.example", "10.0.0.2"), 3)}})
	if len(u.Workloads) != 1 || u.Workloads[0].Publisher != "a" || len(u.Removed) != 0 {
		t.Fatalf("second publisher: %+v", u)
	}
	// The same value again: nothing to send.
	if u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{put(ka, published(t, "w1", "x.example", "10.0.0.2"), 4)}}); len(u.Workloads)+len(u.Removed) != 0 {
		t.Fatalf("an unchanged put sent %+v", u)
	}
	// a goes: b's copy takes over; b goes: the workload is removed.
	if u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{del(ka, 5)}}); len(u.Workloads) != 1 || u.Workloads[0].Publisher != "b" {
		t.Fatalf("delete of a: %+v", u)
	}
	if u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{del(kb, 6)}}); !slices.Equal(u.Removed, []string{"w1"}) || len(u.Workloads) != 0 {
		t.Fatalf("delete of b: %+v", u)
	}
	// A malformed value: a workload with a problem naming the key.
	u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{put(testLayout.WorkloadKey("a", "w2"), []byte("junk"), 7)}})
	if len(u.Workloads) != 1 || u.Workloads[0].Problem == "" {
		t.Fatalf("junk value: %+v", u)
	}
	if len(s.all()) != 1 {
		t.Errorf("state %v, want the one problem workload", ids(s.all()))
	}
}

// TestApplyFlat: a change in a flat directory recomputes that directory: new entries are
// upserts, entries gone are removals, a changed mapping changes every entry.
func TestApplyFlat(t *testing.T) {
	s := newTestSource(FlatDir{Dir: "/app/servers"})
	g := s.groups[1]
	u := s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{
		put("/app/servers/_host", []byte("shop.example.com"), 2),
		put("/app/servers/web1", []byte("10.0.0.5:49156\n"), 2),
		put("/app/servers/web2", []byte("10.0.0.6:49156"), 2),
	}})
	if len(u.Workloads) != 2 || len(u.Removed) != 0 {
		t.Fatalf("first puts: %+v", u)
	}
	for _, w := range u.Workloads {
		if w.Problem != "" || w.Address == "" || w.Labels["VIRTUAL_HOST"] != "shop.example.com" {
			t.Errorf("flat workload %+v", w)
		}
	}
	u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{del("/app/servers/web2", 3)}})
	if len(u.Workloads) != 0 || len(u.Removed) != 1 {
		t.Fatalf("delete: %+v", u)
	}
	u = s.apply(g, clientv3.WatchResponse{Events: []*clientv3.Event{put("/app/servers/_host", []byte("new.example.com"), 4)}})
	if len(u.Workloads) != 1 || u.Workloads[0].Labels["VIRTUAL_HOST"] != "new.example.com" {
		t.Fatalf("mapping change: %+v", u)
	}
}
