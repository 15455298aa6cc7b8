package integration

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/acme/etcdstore"
	"github.com/vhost-gen/vhost-gen/internal/acme/pebbletest"
)

// Three gateways, each with its own proxy (A and B nginx, C HAProxy), all reading the one Docker
// engine (the test's label) and sharing their ACME state in one real etcd (--acme-store etcd);
// one real pebble validates HTTP-01 on C's HTTP port only. C never orders: for each certificate
// the test lines the gateways up in the certificate's etcd lock (see lineUp) so that A or B
// holds it, and C answers the challenge from the token the orderer put in etcd.

// etcdGateway is one gateway of the test: a proxy and its vhost-gen with the etcd ACME store.
type etcdGateway struct {
	*acmeEnv
	id string // A, B, C
}

// signal sends sig to the gateway's vhost-gen (not its proxy).
func (g *etcdGateway) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.vg.Process.Signal(sig); err != nil {
		g.t.Fatalf("gateway %s: signal %v: %v", g.id, sig, err)
	}
}

// ordered is how many orders the gateway's log shows for the certificate name.
func (g *etcdGateway) ordered(name string) int { return countOrders(g.vgLog.String(), name) }

func countOrders(log, name string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="acme: ordering certificate"`) && strings.Contains(line, " cert="+name+" ") {
			n++
		}
	}
	return n
}

// acmeCluster is the shared part: etcd, pebble, and the product's own etcd store on a client of
// the test (for the gate lock and for reading what the gateways stored).
type acmeCluster struct {
	t     *testing.T
	etcd  *etcdServer
	ca    *pebbletest.CA
	cli   *clientv3.Client
	store *etcdstore.Store
}

// waiters are the keys of the mutex cert/<name> (one per session waiting for it or holding it),
// the holder first.
func (c *acmeCluster) waiters(name string) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, c.store.Prefix()+"locks/cert/"+name+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		c.t.Fatalf("etcd: %v", err)
	}
	out := make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = string(kv.Key)
	}
	return out
}

// lineUp makes the gateways wait for the lock of certificate name in the order given, so that
// order[0] is the one that orders it and the rest find its certificate when their turn comes:
// the test takes the lock itself (a gate, with the product's etcd store), stops every gateway's
// vhost-gen (SIGSTOP), runs trigger (what makes them want the certificate; nil when their timers
// will), then continues them one at a time, each once the one before holds a waiter key, and
// releases the gate. It returns each gateway's waiter key.
func (c *acmeCluster) lineUp(name string, trigger func(), order ...*etcdGateway) map[*etcdGateway]string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, release, err := c.store.Lock(ctx, "cert/"+name)
	if err != nil {
		c.t.Fatalf("the gate lock of %s: %v", name, err)
	}
	defer release()
	for _, g := range order {
		g.signal(syscall.SIGSTOP)
	}
	if trigger != nil {
		trigger()
	}
	keys := map[*etcdGateway]string{}
	known := c.waiters(name) // the gate's
	for _, g := range order {
		g.signal(syscall.SIGCONT)
		waitUntil(c.t, "gateway "+g.id+"'s waiter key for "+name, func() error {
			w := c.waiters(name)
			if len(w) <= len(known) {
				return fmt.Errorf("waiters %v", w)
			}
			if len(w) > len(known)+1 || strings.Join(w[:len(known)], " ") != strings.Join(known, " ") {
				c.t.Fatalf("waiters %v: not the queue %v plus gateway %s", w, known, g.id)
			}
			keys[g] = w[len(known)]
			known = w
			return nil
		})
	}
	return keys
}

var validateLine = regexp.MustCompile(`Attempting to validate w/ HTTP: http://([^/\s]+)/\.well-known/acme-challenge/`)

// validations are the host:port of every HTTP-01 request pebble made so far.
func (c *acmeCluster) validations() []string {
	var out []string
	for _, m := range validateLine.FindAllStringSubmatch(c.ca.Log(), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestACMEEtcdThreeGateways: three gateways on one etcd ACME store and one pebble.
//
//  1. One certificate, one order: A orders (it holds the lock), the challenge goes to C's HTTP
//     port and C answers it from etcd, and A, B and C serve the same serial over HTTPS.
//  2. A is SIGKILLed while it holds the lock of a second certificate, right after its order
//     reached pebble: its lock key stays until its lease expires; B then orders (no sooner than
//     the Manager's one-minute floor after A's order started), C answers again, and B and C
//     serve the certificate; A, restarted on its old state and queued behind B, neither orders
//     nor overwrites: it serves B's certificate.
func TestACMEEtcdThreeGateways(t *testing.T) {
	t.Parallel()
	testStart := time.Now()
	etcd := startEtcd(t)

	// The proxies, vhost-gen with ACME off first: pebble needs C's HTTP port, the gateways
	// pebble's directory URL.
	proxyOf := map[string]string{"A": "nginx", "B": "nginx", "C": "haproxy"}
	var gws []*etcdGateway
	for _, id := range []string{"A", "B", "C"} {
		te := newTLSEnv(t, proxyOf[id], "", "--acme=false")
		gws = append(gws, &etcdGateway{acmeEnv: &acmeEnv{tlsEnv: te, acmeDir: filepath.Join(t.TempDir(), "acme-mirror")}, id: id})
	}
	a, b, c := gws[0], gws[1], gws[2]
	// A stopped gateway ignores SIGTERM until continued: continue them before their cleanups.
	t.Cleanup(func() {
		for _, g := range gws {
			g.vg.Process.Signal(syscall.SIGCONT)
		}
	})
	// Every validation on C's port; no authorization reused, so that each order is validated.
	ca := pebbletest.New(t, pebbletest.Options{HTTPPort: c.port, Env: []string{"PEBBLE_AUTHZREUSE=0"},
		FreePort: func() (int, error) { return freePort(t), nil }})
	root, err := ca.Root()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(t.TempDir(), "pebble-root.pem")
	writeFile(t, rootFile, string(root))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(root)
	cli := etcd.goClient()
	store, err := etcdstore.New(cli, etcdstore.Options{CAURL: ca.DirURL})
	if err != nil {
		t.Fatal(err)
	}
	cl := &acmeCluster{t: t, etcd: etcd, ca: ca, cli: cli, store: store}
	for _, g := range gws {
		g.ca, g.rootFile, g.roots = ca, rootFile, roots
		g.restart("--acme=true", "--acme-ca-uri", ca.DirURL, "--acme-ca-bundle", ca.CABundle,
			"--acme-dir", g.acmeDir, "--acme-responder", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--acme-email", "ops@example.org",
			"--acme-store", "etcd", "--etcd-endpoints", etcd.endpoint)
	}
	t.Logf("three gateways on etcd %s, pebble validating on C's port %d: ready after %v", etcd.endpoint, c.port,
		time.Since(testStart).Round(time.Millisecond))

	// --- 1. one certificate, one order, answered by C, served by all --------------------------
	app := a.host("app")
	start := time.Now()
	keys := cl.lineUp(app, func() { a.run("app", "-e", "VIRTUAL_HOST="+app, "-e", "ACME_HOST="+app) }, a, b, c)
	waitUntil(t, "A to hold the lock of "+app, func() error {
		if w := cl.waiters(app); len(w) == 0 || w[0] != keys[a] {
			return fmt.Errorf("waiters %v, A's key %s", w, keys[a])
		}
		return nil
	})
	leaf := a.waitIssued(app, 60*time.Second)
	t.Logf("1: %s issued and served by A %v after the container started (A's order to certificate stored: %v)",
		app, time.Since(start).Round(time.Millisecond), a.orderTime())
	for _, g := range []*etcdGateway{b, c} {
		if got := g.waitIssued(app, 30*time.Second); serial(got) != serial(leaf) {
			t.Errorf("1: gateway %s serves %s with serial %s, A with %s", g.id, app, serial(got), serial(leaf))
		}
	}
	t.Logf("1: %s served by A, B and C with serial %s %v after the container started", app, serial(leaf),
		time.Since(start).Round(time.Millisecond))
	if n := ca.Orders(); n != 1 {
		t.Errorf("1: %d orders at pebble, want 1", n)
	}
	if got := ca.Issued(); len(got) != 1 || got[0] != serial(leaf) {
		t.Errorf("1: pebble issued %v, want only %s", got, serial(leaf))
	}
	if na, nb, nc := a.ordered(app), b.ordered(app), c.ordered(app); na != 1 || nb != 0 || nc != 0 {
		t.Errorf("1: orders in the gateways' logs: A %d, B %d, C %d; want A's only", na, nb, nc)
	}
	checkValidatedOn(t, "1", cl.validations(), c.port, 1)
	for _, g := range gws {
		if st, ok := g.acmeStatus(app); !ok || st.Serial != serial(leaf) || st.Orders != 1 || st.LastError != "" {
			t.Errorf("1: gateway %s's ACME status of %s: %+v (found %v), want serial %s and 1 order", g.id, app, st, ok, serial(leaf))
		}
		if out, err := g.curl(app); err != nil || !strings.Contains(out, "name=app") || !strings.HasSuffix(out, "code=200") {
			t.Errorf("1: gateway %s: curl --cacert pebble's root https://%s: %v\n%s", g.id, app, err, out)
		}
	}
	if w := cl.waiters(app); len(w) != 0 {
		t.Errorf("1: lock keys of %s left: %v", app, w)
	}

	// --- 2. the lock holder killed mid-order ------------------------------------------------
	app2 := a.host("app2")
	ordersBefore, issuedBefore := ca.Orders(), len(ca.Issued())
	keys = cl.lineUp(app2, func() { a.run("app2", "-e", "VIRTUAL_HOST="+app2, "-e", "ACME_HOST="+app2) }, a, b, c)
	// Kill A as soon as its order reaches pebble (its log says "ordering" before that).
	deadline := time.Now().Add(20 * time.Second)
	for ca.Orders() == ordersBefore {
		if time.Now().After(deadline) {
			t.Fatalf("2: no order for %s at pebble", app2)
		}
		time.Sleep(2 * time.Millisecond)
	}
	holder := cl.waiters(app2)
	a.signal(syscall.SIGKILL)
	<-a.vgDone
	killedAt := time.Now()
	killedLog := a.vgLog.String()
	if len(holder) == 0 || holder[0] != keys[a] {
		t.Fatalf("2: lock of %s held by %v, want A's key %s", app2, holder, keys[a])
	}
	// Mid-order: pebble issued nothing for it, etcd holds the order's record only.
	if n := len(ca.Issued()); n != issuedBefore {
		t.Errorf("2: pebble issued a certificate before A was killed (%d, was %d): not mid-order", n, issuedBefore)
	}
	stored, err := store.LoadCert(context.Background(), app2)
	if err != nil {
		t.Fatalf("2: %s in etcd after the kill: %v", app2, err)
	}
	if len(stored.Chain) != 0 || len(stored.Meta.Orders) != 1 || stored.Meta.Orders[0].Result != "started" {
		t.Fatalf("2: %s in etcd after the kill: chain %d bytes, orders %+v; want A's started order only",
			app2, len(stored.Chain), stored.Meta.Orders)
	}
	startedAt := stored.Meta.Orders[0].At
	if n := countOrders(killedLog, app2); n != 1 {
		t.Errorf("2: A's log shows %d orders for %s, want 1", n, app2)
	}
	t.Logf("2: A killed %v after its order for %s started (holding lock key %s)", killedAt.Sub(startedAt).Round(time.Millisecond),
		app2, keys[a])

	// A's key stays until its lease expires; then B and C pass the lock without ordering: no
	// order before a minute after the last one (the Manager's MinBackoff floor, acme's
	// defaultMinBackoff, not a flag), whatever its outcome.
	deadline = time.Now().Add(20 * time.Second)
	for {
		w := cl.waiters(app2)
		if len(w) == 0 || w[0] != keys[a] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("2: A's lock key still there %v after the kill: %v", time.Since(killedAt), w)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("2: A's lock key gone %v after the kill (its lease expired)", time.Since(killedAt).Round(time.Millisecond))

	// A comes back on its old state: it wants to redo its order too, at the same time.
	a.restart()
	due := startedAt.Add(time.Minute)
	if wait := time.Until(due) - 3*time.Second; wait > 0 {
		time.Sleep(wait)
	} else {
		t.Fatalf("2: the successor's order is due at %v, too soon to line the gateways up", due)
	}
	if n := ca.Orders(); n != ordersBefore+1 {
		t.Fatalf("2: %d orders at pebble before the successor's, want %d", n, ordersBefore+1)
	}
	// B first (it orders), then the restarted A, then C.
	keys = cl.lineUp(app2, nil, b, a, c)
	retryAt := time.Now()
	leaf2 := b.waitIssued(app2, 60*time.Second)
	t.Logf("2: %s issued and served by B %v after A's kill (%v after B's turn; B's order to certificate stored: %v)",
		app2, time.Since(killedAt).Round(time.Millisecond), time.Since(retryAt).Round(time.Millisecond), b.orderTime())
	for _, g := range []*etcdGateway{c, a} {
		if got := g.waitIssued(app2, 30*time.Second); serial(got) != serial(leaf2) {
			t.Errorf("2: gateway %s serves %s with serial %s, B with %s", g.id, app2, serial(got), serial(leaf2))
		}
	}
	if got := a.waitIssued(app, 10*time.Second); serial(got) != serial(leaf) {
		t.Errorf("2: the restarted A serves %s with serial %s, want %s", app, serial(got), serial(leaf))
	}
	waitUntil(t, "every gateway to pass the lock of "+app2, func() error {
		if w := cl.waiters(app2); len(w) != 0 {
			return fmt.Errorf("waiters %v", w)
		}
		return nil
	})
	if n := ca.Orders(); n != ordersBefore+2 {
		t.Errorf("2: %d orders at pebble, want %d (A's killed one and B's)", n, ordersBefore+2)
	}
	if got := ca.Issued(); len(got) != issuedBefore+1 || got[len(got)-1] != serial(leaf2) {
		t.Errorf("2: pebble issued %v, want %s last and nothing else for %s", got, serial(leaf2), app2)
	}
	if na, nb, nc := a.ordered(app2), b.ordered(app2), c.ordered(app2); na != 0 || nb != 1 || nc != 0 {
		t.Errorf("2: orders in the logs after the kill: restarted A %d, B %d, C %d; want B's only", na, nb, nc)
	}
	checkValidatedOn(t, "2", cl.validations(), c.port, 2)
	stored, err = store.LoadCert(context.Background(), app2)
	switch {
	case err != nil:
		t.Errorf("2: %s in etcd: %v", app2, err)
	case stored.Meta.Serial != serial(leaf2) || len(stored.Meta.Orders) != 2 ||
		stored.Meta.Orders[0].Result != "started" || stored.Meta.Orders[1].Result != "issued" || stored.Meta.Orders[1].Serial != serial(leaf2):
		t.Errorf("2: %s in etcd: serial %s, orders %+v; want %s after A's started order", app2, stored.Meta.Serial, stored.Meta.Orders, serial(leaf2))
	}
	for _, g := range []*etcdGateway{b, c, a} {
		if st, ok := g.acmeStatus(app2); !ok || st.Serial != serial(leaf2) || st.Orders != 2 {
			t.Errorf("2: gateway %s's ACME status of %s: %+v (found %v), want serial %s and 2 orders", g.id, app2, st, ok, serial(leaf2))
		}
		if out, err := g.curl(app2); err != nil || !strings.Contains(out, "name=app2") || !strings.HasSuffix(out, "code=200") {
			t.Errorf("2: gateway %s: curl --cacert pebble's root https://%s: %v\n%s", g.id, app2, err, out)
		}
	}
	for _, g := range gws {
		if n := g.checkFailed(); n != 0 {
			t.Errorf("gateway %s: %v applies failed the proxy's check", g.id, n)
		}
	}
	t.Logf("done in %v", time.Since(testStart).Round(time.Millisecond))
}

// checkValidatedOn checks that pebble sent every HTTP-01 request to 127.0.0.1's port (names
// resolve to 127.0.0.1), and at least atLeast of them.
func checkValidatedOn(t *testing.T, what string, hosts []string, port, atLeast int) {
	t.Helper()
	if len(hosts) < atLeast {
		t.Errorf("%s: %d HTTP-01 requests from pebble, want at least %d", what, len(hosts), atLeast)
	}
	for _, h := range hosts {
		if !strings.HasSuffix(h, ":"+strconv.Itoa(port)) {
			t.Errorf("%s: pebble validated on %s, want C's port %d only", what, h, port)
		}
	}
}
