package watch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vhost-gen/vhost-gen/internal/admin"
)

// TestApplyHistoryAndLogLine: a burst of 20 changes is one apply, one log line saying what
// changed, one history entry; the latency histogram has one observation per apply that changed
// the proxy; a failed apply is in the history with its error; the sources' updates are counted.
func TestApplyHistoryAndLogLine(t *testing.T) {
	h := newHarness(t, "docker")
	h.min, h.max = 100*time.Millisecond, 10*time.Second
	h.start()
	src := h.sources[0]
	src.full(wl("docker", "web", "10.0.0.2", "VIRTUAL_HOST=web.example.com"))
	h.waitFile("web.example.com/ 10.0.0.2:80\n")
	for i := range 20 {
		src.upsert(wl("docker", fmt.Sprintf("api%d", i), fmt.Sprintf("10.0.1.%d", i+1), "VIRTUAL_HOST=api.example.com"))
	}
	// The apply is counted before its log line is written: wait for both.
	h.eventually("the burst applied", func() bool {
		return h.applies("applied") == 2 && countLines(h.logs.String(), `msg="applied: `) >= 2
	})

	logs := h.logs.String()
	if n := countLines(logs, `msg="applied: `); n != 2 {
		t.Fatalf("%d apply log lines, want 2 (one per apply, not per event):\n%s", n, logs)
	}
	if !strings.Contains(logs, `msg="applied: sites +api.example.com; servers +20 -0" how=reload`) {
		t.Errorf("no log line saying the burst added api.example.com and 20 servers:\n%s", logs)
	}
	if n := testutil.CollectAndCount(h.metrics.EventToApply); n != 1 {
		t.Errorf("event_to_apply_seconds: %d series", n)
	}
	if got := histogramCount(t, h.metrics); got != 2 {
		t.Errorf("event_to_apply_seconds count = %d, want 2", got)
	}

	// A failed reload is in the history, with its error.
	h.reloadErr = func(int32) error { return fmt.Errorf("nginx: [emerg] boom") }
	src.remove("id-web")
	h.eventually("a failed apply", func() bool { return h.applies("reload_failed") >= 1 })
	doc := h.routesDoc()
	if len(doc.Applies) < 3 {
		t.Fatalf("applies: %+v, want 3 (two applied, one failed)", doc.Applies)
	}
	newest := doc.Applies[0]
	if newest.Result != "reload_failed" || !strings.Contains(newest.Error, "boom") || len(newest.Change.SitesRemoved) != 1 {
		t.Errorf("newest apply = %+v, want the failed reload removing web.example.com", newest)
	}
	if a := doc.Applies[1]; a.Result != "applied" || len(a.Change.ServersAdded) != 20 {
		t.Errorf("second newest = %+v, want the burst", a)
	}
	if len(doc.Sources) != 1 || doc.Sources[0].Name != "docker" || doc.Sources[0].Updates != 22 ||
		doc.Sources[0].LastResync == nil || doc.Sources[0].LastEvent == nil {
		t.Errorf("sources = %+v, want docker with 22 updates, a resync and an event", doc.Sources)
	}
}

type docSubset struct {
	Applies []struct {
		Result string `json:"result"`
		Error  string `json:"error"`
		Change struct {
			SitesRemoved []string `json:"sitesRemoved"`
			ServersAdded []string `json:"serversAdded"`
		} `json:"change"`
	} `json:"applies"`
	Sources []admin.SourceStatus `json:"sources"`
}

func (h *harness) routesDoc() docSubset {
	h.t.Helper()
	rec := httptest.NewRecorder()
	admin.Handler(h.state, h.metrics).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/routes?format=json", nil))
	var d docSubset
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		h.t.Fatalf("/routes: %v\n%s", err, rec.Body.String())
	}
	return d
}

func histogramCount(t *testing.T, m *admin.Metrics) uint64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vhostgen_event_to_apply_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
