package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/history"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Timing. Outcomes are polled for up to waitFor; "nothing happens" is asserted after quiet.
const (
	waitFor = 5 * time.Second
	poll    = 10 * time.Millisecond
	quiet   = 300 * time.Millisecond
)

// fakeSource forwards the updates a test feeds it, and returns the error a test sends it.
type fakeSource struct {
	name string
	feed chan discovery.Update
	fail chan error
}

func newFakeSource(name string) *fakeSource {
	return &fakeSource{name: name, feed: make(chan discovery.Update, 64), fail: make(chan error, 1)}
}

func (f *fakeSource) Name() string { return f.name }

func (f *fakeSource) List(context.Context) ([]discovery.Workload, error) { return nil, nil }

func (f *fakeSource) Watch(ctx context.Context, out chan<- discovery.Update) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-f.fail:
			return err
		case u := <-f.feed:
			select {
			case out <- u:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// full sends the source's whole set.
func (f *fakeSource) full(ws ...discovery.Workload) {
	f.feed <- discovery.Update{Source: f.name, Full: true, Workloads: ws}
}

// upsert sends changed or added workloads.
func (f *fakeSource) upsert(ws ...discovery.Workload) {
	f.feed <- discovery.Update{Source: f.name, Workloads: ws}
}

// remove sends removals.
func (f *fakeSource) remove(ids ...string) {
	f.feed <- discovery.Update{Source: f.name, Removed: ids}
}

// wl is a workload of source src on the "proxy" network at ip, exposing 80/tcp, with env
// settings given as "K=V".
func wl(src, name, ip string, env ...string) discovery.Workload {
	w := discovery.Workload{
		ID:       "id-" + name,
		Name:     name,
		Source:   src,
		Networks: []discovery.Network{{Name: "proxy", ID: "net-proxy", IP: ip}},
		Ports:    []discovery.Port{{Port: 80, Proto: "tcp"}},
	}
	if len(env) > 0 {
		w.Env = map[string]string{}
		for _, kv := range env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				panic("wl: no '=' in " + kv)
			}
			w.Env[k] = v
		}
	}
	return w
}

// renderTable renders one line per route: host, path and the server addresses, all sorted.
func renderTable(t routing.Table) ([]byte, error) {
	var b bytes.Buffer
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			fmt.Fprintf(&b, "%s%s", s.Host, r.Path)
			for _, srv := range r.Backend.Servers {
				fmt.Fprintf(&b, " %s", srv.Address)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// syncBuffer is a bytes.Buffer safe for the pipeline's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is one pipeline under test.
type harness struct {
	t       *testing.T
	sources []*fakeSource
	path    string
	checks  atomic.Int32
	reloads atomic.Int32 // calls of the reload closure, failed or not
	// reloadErr, when set, decides each reload call's error (n counts from 1).
	reloadErr func(n int32) error
	// checkErr, when set, decides each check's error from the staged bytes.
	checkErr func(staged []byte) error
	// renderErr, when set, decides each render call's error (n counts from 1).
	renderErr func(n int32) error
	renders   atomic.Int32
	// shared, when set, is a line every render adds (as an operator's shared snippet), which
	// RenderUnshared leaves out.
	shared   atomic.Value
	min, max time.Duration
	logs     *syncBuffer
	metrics  *admin.Metrics
	state    *admin.State
	cancel   context.CancelFunc
	done     chan error
}

func newHarness(t *testing.T, sourceNames ...string) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		path:    filepath.Join(t.TempDir(), "vhosts.conf"),
		min:     20 * time.Millisecond,
		max:     200 * time.Millisecond,
		logs:    &syncBuffer{},
		metrics: admin.NewMetrics(),
		state:   &admin.State{},
	}
	for _, n := range sourceNames {
		h.sources = append(h.sources, newFakeSource(n))
	}
	return h
}

// start runs the pipeline until the test ends.
func (h *harness) start() {
	h.t.Helper()
	srcs := make([]discovery.Source, len(h.sources))
	for i, s := range h.sources {
		srcs[i] = s
	}
	ap := &apply.Applier{
		Path: h.path,
		Check: func(_ context.Context, staged string) error {
			h.checks.Add(1)
			data, err := os.ReadFile(staged)
			if err != nil {
				return fmt.Errorf("staged file missing: %w", err)
			}
			if h.checkErr != nil {
				return h.checkErr(data)
			}
			return nil
		},
		Reload: func(context.Context) error {
			n := h.reloads.Add(1)
			if h.reloadErr != nil {
				return h.reloadErr(n)
			}
			return nil
		},
	}
	p := &Pipeline{
		Sources: srcs,
		Build: func(ws []discovery.Workload) routing.Table {
			return routing.Build(ws, routing.Options{ProxyNetworks: []string{"proxy"}})
		},
		Render: func(tab routing.Table) ([]byte, error) {
			n := h.renders.Add(1)
			if h.renderErr != nil {
				if err := h.renderErr(n); err != nil {
					return nil, err
				}
			}
			out, err := renderTable(tab)
			if sh, _ := h.shared.Load().(string); sh != "" {
				out = append(out, "shared "+sh+"\n"...)
			}
			return out, err
		},
		RenderUnshared: renderTable,
		Applier:        ap,
		Min:            h.min,
		Max:            h.max,
		Log:            slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:        h.metrics,
		State:          h.state,
		History:        history.New(20),
	}
	h.state.SetHistory(p.History)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- p.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run after cancel: %v", err)
			}
		case <-time.After(waitFor):
			h.t.Errorf("Run did not return after cancel")
		}
	})
}

// eventually polls cond until it holds, failing the test after waitFor.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, h.logs.String())
		}
		time.Sleep(poll)
	}
}

// file returns the applied file's content, or "" with ok false when it does not exist.
func (h *harness) file() (string, bool) {
	b, err := os.ReadFile(h.path)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// waitFile waits until the applied file holds want.
func (h *harness) waitFile(want string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("file to hold %q", want), func() bool {
		got, ok := h.file()
		return ok && got == want
	})
}

func (h *harness) applies(result string) float64 {
	return testutil.ToFloat64(h.metrics.Applies.WithLabelValues(result))
}

// healthz returns the /healthz status and body for the pipeline's state.
func (h *harness) healthz() (int, string) {
	rec := httptest.NewRecorder()
	admin.Handler(h.state, h.metrics).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code, rec.Body.String()
}

// problems returns the problems of /routes, as JSON text.
func (h *harness) problems() string {
	rec := httptest.NewRecorder()
	admin.Handler(h.state, h.metrics).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/routes?format=json", nil))
	body := rec.Body.String()
	if i := strings.Index(body, `"problems"`); i >= 0 {
		return body[i:]
	}
	return ""
}

// countLines counts log lines containing s.
func countLines(logs, s string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func TestNothingAppliedUntilEverySourceReported(t *testing.T) {
	h := newHarness(t, "docker", "etcd")
	h.start()
	docker, etcd := h.sources[0], h.sources[1]

	docker.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	// An upsert is not a full set: etcd has still not reported.
	etcd.upsert(wl("etcd", "api", "10.0.0.3", "VIRTUAL_HOST=api.example.com"))
	time.Sleep(quiet)
	if got, ok := h.file(); ok {
		t.Fatalf("config written before every source reported its full set:\n%s", got)
	}
	if n := h.reloads.Load(); n != 0 {
		t.Fatalf("reloads before every source reported = %d, want 0", n)
	}
	if n := h.checks.Load(); n != 0 {
		t.Fatalf("checks before every source reported = %d, want 0", n)
	}
	if code, _ := h.healthz(); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before the first apply = %d, want 503", code)
	}

	etcd.full(wl("etcd", "api", "10.0.0.3", "VIRTUAL_HOST=api.example.com"))
	h.waitFile("api.example.com/ 10.0.0.3:80\nweb.example.com/ 10.0.0.2:80\n")
	h.eventually("one reload", func() bool { return h.reloads.Load() == 1 })
	if code, body := h.healthz(); code != http.StatusOK {
		t.Fatalf("healthz after the first apply = %d %q, want 200", code, body)
	}
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 1 {
		t.Fatalf("reloads = %d, want 1", n)
	}
}

func TestEmptyFullSetCounts(t *testing.T) {
	// A source that reports an empty set has reported: the (empty) config is applied.
	h := newHarness(t, "docker")
	h.start()
	h.sources[0].full()
	h.waitFile("")
	h.eventually("one reload", func() bool { return h.reloads.Load() == 1 })
}

func TestBurstIsOneReload(t *testing.T) {
	h := newHarness(t, "docker")
	// Min long enough that 10ms between changes always restarts it; Max out of the way.
	h.min, h.max = 150*time.Millisecond, 10*time.Second
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })

	// 20 changes, 10ms apart: the burst lasts longer than Min, so only a timer that restarts on
	// every change gives one reload.
	for i := range 20 {
		src.upsert(wl("docker", "web", fmt.Sprintf("10.0.1.%d", i+1), "VIRTUAL_HOST=web.example.com"))
		time.Sleep(10 * time.Millisecond)
	}
	h.waitFile("web.example.com/ 10.0.1.20:80\n")
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 2 {
		t.Fatalf("reloads = %d, want 2 (the first set, then one for the whole burst)", n)
	}
	if got := h.applies("applied"); got != 2 {
		t.Fatalf(`applies_total{result="applied"} = %v, want 2`, got)
	}
	if got := testutil.ToFloat64(h.metrics.Reloads); got != 2 {
		t.Fatalf("reloads_total = %v, want 2", got)
	}
}

func TestMaxBoundsAnEndlessBurst(t *testing.T) {
	h := newHarness(t, "docker")
	h.min, h.max = 100*time.Millisecond, 300*time.Millisecond
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })
	renders := h.renders.Load()

	// Changes every 10ms never leave Min of quiet: only Max can make the pipeline render again.
	deadline := time.Now().Add(waitFor)
	for i := 0; h.renders.Load() == renders; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no render while changes kept coming: Max did not bound the burst")
		}
		src.upsert(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com", fmt.Sprintf("N=%d", i)))
		time.Sleep(poll)
	}
}

func TestChangesDuringAnApplyAreCoalesced(t *testing.T) {
	h := newHarness(t, "docker")
	h.min, h.max = 100*time.Millisecond, 10*time.Second
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h.reloadErr = func(n int32) error {
		if n == 2 {
			entered <- struct{}{}
			<-release
		}
		return nil
	}
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })

	src.upsert(wl("docker", "web", "10.0.0.3", "VIRTUAL_HOST=web.example.com"))
	<-entered // the second apply is reloading now
	for i := range 5 {
		src.upsert(wl("docker", "web", fmt.Sprintf("10.0.2.%d", i+1), "VIRTUAL_HOST=web.example.com"))
	}
	close(release)
	h.waitFile("web.example.com/ 10.0.2.5:80\n")
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 3 {
		t.Fatalf("reloads = %d, want 3 (the changes during the second apply in one more)", n)
	}
}

func TestNoChangeNoReload(t *testing.T) {
	h := newHarness(t, "docker")
	h.start()
	src := h.sources[0]
	web := wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com")
	src.full(web)
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })
	renders := h.renders.Load()

	// The same workload again, as an upsert and as a full set: the inventory does not change, so
	// nothing is rendered at all.
	src.upsert(web)
	src.full(web)
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 1 {
		t.Fatalf("reloads after a no-op update = %d, want 1", n)
	}
	if n := h.renders.Load(); n != renders {
		t.Fatalf("renders after a no-op update = %d, want %d", n, renders)
	}
	if got := h.applies("unchanged"); got != 0 {
		t.Fatalf(`applies_total{result="unchanged"} after a no-op update = %v, want 0`, got)
	}

	// A workload that asks for no routing changes the inventory but not the bytes.
	src.upsert(wl("docker", "db", "10.0.0.9"))
	h.eventually(`applies_total{result="unchanged"} to reach 1`, func() bool { return h.applies("unchanged") == 1 })
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 1 {
		t.Fatalf("reloads after a change that renders the same bytes = %d, want 1", n)
	}
	if n := h.checks.Load(); n != 1 {
		t.Fatalf("checks after a change that renders the same bytes = %d, want 1", n)
	}
	if got := h.applies("applied"); got != 1 {
		t.Fatalf(`applies_total{result="applied"} = %v, want 1`, got)
	}
	if code, _ := h.healthz(); code != http.StatusOK {
		t.Fatalf("healthz after an unchanged apply = %d, want 200", code)
	}
}

func TestFailedReloadIsRetried(t *testing.T) {
	h := newHarness(t, "docker")
	h.reloadErr = func(n int32) error {
		if n == 1 {
			return errors.New("nginx: [emerg] boom")
		}
		return nil
	}
	h.start()
	h.sources[0].full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))

	h.eventually(`applies_total{result="reload_failed"} to reach 1`, func() bool { return h.applies("reload_failed") == 1 })
	// A state that has never applied and whose last apply failed says why.
	code, body := h.healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nginx: [emerg] boom") {
		t.Fatalf("healthz after a failed reload = %d %q, want 503 with the reload's error", code, body)
	}

	// No further change is sent: the pipeline retries by itself.
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("the retried reload", func() bool { return h.reloads.Load() == 2 })
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
	if got := h.applies("applied"); got != 1 {
		t.Fatalf(`applies_total{result="applied"} = %v, want 1`, got)
	}
	if got := testutil.ToFloat64(h.metrics.Reloads); got != 1 {
		t.Fatalf("reloads_total (successful reloads) = %v, want 1", got)
	}
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 2 {
		t.Fatalf("reload calls = %d, want 2", n)
	}
	if !strings.Contains(h.logs.String(), "retrying") {
		t.Fatalf("the failure was not logged:\n%s", h.logs.String())
	}
}

func TestFailedReloadRestoresAndRetries(t *testing.T) {
	h := newHarness(t, "docker")
	var failing atomic.Bool
	h.reloadErr = func(int32) error {
		if failing.Load() {
			return errors.New("reload refused")
		}
		return nil
	}
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })

	failing.Store(true)
	src.upsert(wl("docker", "web", "10.0.0.3", "VIRTUAL_HOST=web.example.com"))
	h.eventually(`applies_total{result="reload_failed"} to reach 1`, func() bool { return h.applies("reload_failed") >= 1 })
	// While reloads fail, the previous config is back in place, and healthz says so.
	if got, _ := h.file(); got != "web.example.com/ 10.0.0.2:80\n" {
		t.Fatalf("file after a failed reload = %q, want the previous config", got)
	}
	code, body := h.healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "reload refused") {
		t.Fatalf("healthz after a failed reload = %d %q, want 503 with the error", code, body)
	}

	// The proxy recovers; the retry applies the new config although nothing changed since.
	failing.Store(false)
	h.waitFile("web.example.com/ 10.0.0.3:80\n")
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
	if got := h.applies("applied"); got != 2 {
		t.Fatalf(`applies_total{result="applied"} = %v, want 2`, got)
	}
}

func TestRevertDuringRetryStopsRetrying(t *testing.T) {
	h := newHarness(t, "docker")
	var failing atomic.Bool
	h.reloadErr = func(int32) error {
		if failing.Load() {
			return errors.New("reload refused")
		}
		return nil
	}
	h.start()
	src := h.sources[0]
	a := wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com")
	src.full(a)
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })

	failing.Store(true) // for good: every further reload fails
	src.upsert(wl("docker", "web", "10.0.0.3", "VIRTUAL_HOST=web.example.com"))
	h.eventually(`applies_total{result="reload_failed"} to reach 1`, func() bool { return h.applies("reload_failed") >= 1 })

	// The change is undone: what is live is what is wanted, so the pipeline is healthy again
	// and stops retrying.
	src.upsert(a)
	h.eventually(`applies_total{result="unchanged"} to reach 1`, func() bool { return h.applies("unchanged") >= 1 })
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
	calls := h.reloads.Load()
	time.Sleep(1500 * time.Millisecond) // past the first retry's backoff
	if n := h.reloads.Load(); n != calls {
		t.Fatalf("reload calls went from %d to %d after the change was undone: still retrying", calls, n)
	}
	if got, _ := h.file(); got != "web.example.com/ 10.0.0.2:80\n" {
		t.Fatalf("file = %q, want the first config", got)
	}
}

// TestFailedCheckLeavesLiveConfig: a check that fails whatever sites are left out (a broken
// template or main config) leaves the live config untouched, is reported, and is retried.
func TestFailedCheckLeavesLiveConfig(t *testing.T) {
	h := newHarness(t, "docker")
	var broken atomic.Bool
	h.checkErr = func([]byte) error {
		if broken.Load() {
			return errors.New("nginx: [emerg] unexpected end of file")
		}
		return nil
	}
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })

	broken.Store(true)
	src.upsert(wl("docker", "api", "10.0.0.3", "VIRTUAL_HOST=api.example.com"))
	h.eventually(`applies_total{result="check_failed"} to reach 1`, func() bool { return h.applies("check_failed") >= 1 })
	if got, _ := h.file(); got != "web.example.com/ 10.0.0.2:80\n" {
		t.Fatalf("file after a failed check = %q, want the live config untouched", got)
	}
	if n := h.reloads.Load(); n != 1 {
		t.Fatalf("reloads after a failed check = %d, want 1", n)
	}
	code, body := h.healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "unexpected end of file") {
		t.Fatalf("healthz after a failed check = %d %q, want 503 with the check's output", code, body)
	}

	// The fix (here: the check passes again) is applied at the next retry or change.
	broken.Store(false)
	src.upsert(wl("docker", "api", "10.0.0.4", "VIRTUAL_HOST=api.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nweb.example.com/ 10.0.0.2:80\n")
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
}

// TestQuarantine: a site whose config the check refuses is left out, with a problem carrying the
// proxy's message; the others are applied and later changes are not blocked; the site comes back
// once its part of the table changes and passes.
func TestQuarantine(t *testing.T) {
	h := newHarness(t, "docker")
	h.checkErr = func(staged []byte) error {
		if bytes.Contains(staged, []byte("bad.example.com/ 10.0.0.3")) {
			return errors.New("nginx: [emerg] host not found")
		}
		return nil
	}
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\n")

	src.upsert(wl("docker", "bad", "10.0.0.3", "VIRTUAL_HOST=bad.example.com"))
	src.upsert(wl("docker", "api", "10.0.0.4", "VIRTUAL_HOST=api.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nweb.example.com/ 10.0.0.2:80\n")
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
	// The file goes live a moment before the pipeline records the apply.
	h.eventually("vhostgen_quarantined_sites 1", func() bool { return testutil.ToFloat64(h.metrics.Quarantined) == 1 })
	problem := h.problems()
	if !strings.Contains(problem, "bad") || !strings.Contains(problem, "left out of bad.example.com") || !strings.Contains(problem, "host not found") {
		t.Errorf("problems = %s, want one on bad naming the site and the check's message", problem)
	}

	// A later change costs one check: the unchanged bad site stays out without new checks.
	before := h.checks.Load()
	src.upsert(wl("docker", "blog", "10.0.0.5", "VIRTUAL_HOST=blog.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nblog.example.com/ 10.0.0.5:80\nweb.example.com/ 10.0.0.2:80\n")
	if n := h.checks.Load() - before; n != 1 {
		t.Errorf("checks for a change beside a quarantined site = %d, want 1", n)
	}

	// Fixed (replaced by a workload the check accepts): the site is back.
	src.remove("id-bad")
	src.upsert(wl("docker", "bad2", "10.0.0.6", "VIRTUAL_HOST=bad.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nbad.example.com/ 10.0.0.6:80\nblog.example.com/ 10.0.0.5:80\nweb.example.com/ 10.0.0.2:80\n")
	h.eventually("no quarantine", func() bool { return testutil.ToFloat64(h.metrics.Quarantined) == 0 })
}

func TestRestartUnderRunningProxy(t *testing.T) {
	// The file already holds what would be rendered: taken as applied, no reload.
	h := newHarness(t, "docker")
	if err := os.WriteFile(h.path, []byte("web.example.com/ 10.0.0.2:80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.sources[0].full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.eventually(`applies_total{result="unchanged"} to reach 1`, func() bool { return h.applies("unchanged") == 1 })
	if code, body := h.healthz(); code != http.StatusOK {
		t.Fatalf("healthz = %d %q, want 200", code, body)
	}
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 0 {
		t.Fatalf("reloads = %d, want 0", n)
	}
}

func TestFailedRenderIsRetried(t *testing.T) {
	h := newHarness(t, "docker")
	h.renderErr = func(n int32) error {
		if n == 1 {
			return errors.New("template: boom")
		}
		return nil
	}
	h.start()
	h.sources[0].full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))

	h.eventually(`applies_total{result="render_failed"} to reach 1`, func() bool { return h.applies("render_failed") == 1 })
	code, body := h.healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "template: boom") {
		t.Fatalf("healthz after a failed render = %d %q, want 503 with the render's error", code, body)
	}
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("one reload", func() bool { return h.reloads.Load() == 1 })
	h.eventually("healthz 200", func() bool { code, _ := h.healthz(); return code == http.StatusOK })
	time.Sleep(quiet)
	if n := h.reloads.Load(); n != 1 {
		t.Fatalf("reloads = %d, want 1", n)
	}
	if n := h.renders.Load(); n != 2 {
		t.Fatalf("renders = %d, want 2 (the failure, then the retry)", n)
	}
}

func TestProblemsLoggedOncePerChange(t *testing.T) {
	h := newHarness(t, "docker")
	h.start()
	src := h.sources[0]
	bad := wl("docker", "bad", "10.0.0.9", "VIRTUAL_HOST=bad.example.com", "VIRTUAL_PORT=abc")
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"), bad)
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	h.eventually("one problem logged", func() bool { return countLines(h.logs.String(), "routing problem:") == 1 })
	if got := testutil.ToFloat64(h.metrics.Problems); got != 1 {
		t.Fatalf("problems gauge = %v, want 1", got)
	}

	// The same bad workload again, and another change that makes the pipeline build again with
	// the problem still there: no second warning.
	src.upsert(bad)
	src.upsert(wl("docker", "api", "10.0.0.3", "VIRTUAL_HOST=api.example.com"))
	h.waitFile("api.example.com/ 10.0.0.3:80\nweb.example.com/ 10.0.0.2:80\n")
	h.eventually("two reloads", func() bool { return h.reloads.Load() == 2 })
	time.Sleep(quiet)
	logs := h.logs.String()
	if n := countLines(logs, "routing problem:"); n != 1 {
		t.Fatalf("problem logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, `VIRTUAL_PORT \"abc\"`) && !strings.Contains(logs, `VIRTUAL_PORT "abc"`) {
		t.Fatalf("the problem's log line does not name the setting and value:\n%s", logs)
	}
	if n := countLines(logs, "routing problem resolved:"); n != 0 {
		t.Fatalf("problem resolved logged %d times before it was resolved:\n%s", n, logs)
	}

	// Removed: resolved, once.
	src.remove(bad.ID)
	h.eventually("the problem logged as resolved", func() bool {
		return countLines(h.logs.String(), "routing problem resolved:") == 1
	})
	src.upsert(wl("docker", "api", "10.0.0.4", "VIRTUAL_HOST=api.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nweb.example.com/ 10.0.0.2:80\n")
	time.Sleep(quiet)
	logs = h.logs.String()
	if n := countLines(logs, "routing problem:"); n != 1 {
		t.Fatalf("problem logged %d times, want once:\n%s", n, logs)
	}
	if n := countLines(logs, "routing problem resolved:"); n != 1 {
		t.Fatalf("problem resolved logged %d times, want once:\n%s", n, logs)
	}
	if got := testutil.ToFloat64(h.metrics.Problems); got != 0 {
		t.Fatalf("problems gauge = %v, want 0", got)
	}
}

func TestSourceErrorEndsRun(t *testing.T) {
	src := newFakeSource("docker")
	other := newFakeSource("etcd")
	p := &Pipeline{
		Sources: []discovery.Source{src, other},
		Build: func(ws []discovery.Workload) routing.Table {
			return routing.Build(ws, routing.Options{ProxyNetworks: []string{"proxy"}})
		},
		Render:  renderTable,
		Applier: &apply.Applier{Path: filepath.Join(t.TempDir(), "vhosts.conf")},
		Min:     20 * time.Millisecond,
		Max:     200 * time.Millisecond,
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: admin.NewMetrics(),
		State:   &admin.State{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the other source's Watch
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	src.full()
	want := errors.New("engine gone")
	src.fail <- want
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Fatalf("Run = %v, want %v", err, want)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return after a source failed")
	}
}

func TestCancelEndsRun(t *testing.T) {
	h := newHarness(t, "docker")
	h.start()
	h.sources[0].full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.eventually("the first reload", func() bool { return h.reloads.Load() == 1 })
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
		h.done <- nil // for the cleanup
	case <-time.After(waitFor):
		t.Fatal("Run did not return after cancel")
	}
}

// TestSharedCauseKeepsLiveConfig: when the config passes the check without what every site
// shares (an operator's default snippet) but not with it, no site is held: the live config stays,
// /healthz names the shared snippets, and the fix is applied.
func TestSharedCauseKeepsLiveConfig(t *testing.T) {
	h := newHarness(t, "docker")
	h.checkErr = func(staged []byte) error {
		if bytes.Contains(staged, []byte("shared broken")) {
			return errors.New("nginx: [emerg] unknown directive")
		}
		return nil
	}
	h.shared.Store("ok")
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\nshared ok\n")

	h.shared.Store("broken")
	src.upsert(wl("docker", "api", "10.0.0.4", "VIRTUAL_HOST=api.example.com"))
	h.eventually(`applies_total{result="check_failed"} to reach 1`, func() bool { return h.applies("check_failed") >= 1 })
	if got, _ := h.file(); got != "web.example.com/ 10.0.0.2:80\nshared ok\n" {
		t.Fatalf("file = %q, want the live config untouched", got)
	}
	code, body := h.healthz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "shared snippets") || !strings.Contains(body, "unknown directive") {
		t.Errorf("healthz = %d %q, want 503 naming the shared snippets and the check's message", code, body)
	}
	if n := testutil.ToFloat64(h.metrics.Quarantined); n != 0 {
		t.Errorf("quarantined %v, want none: no site is at fault", n)
	}

	h.shared.Store("fixed")
	src.upsert(wl("docker", "blog", "10.0.0.5", "VIRTUAL_HOST=blog.example.com"))
	h.waitFile("api.example.com/ 10.0.0.4:80\nblog.example.com/ 10.0.0.5:80\nweb.example.com/ 10.0.0.2:80\nshared fixed\n")
}
