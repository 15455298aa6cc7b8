package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// WithPprof adds the profiles and leaves every other path to the admin handler.
func TestWithPprof(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inner " + r.URL.Path)) })
	h := WithPprof(inner)
	for path, want := range map[string]int{"/debug/pprof/": 200, "/debug/pprof/cmdline": 200, "/healthz": 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
		if path == "/healthz" && rec.Body.String() != "inner /healthz" {
			t.Errorf("GET /healthz went to %q, not the admin handler", rec.Body.String())
		}
	}
	// Without it, the admin handler has no profiles.
	rec := httptest.NewRecorder()
	Handler(&State{}, NewMetrics()).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if rec.Code == 200 {
		t.Errorf("the admin handler serves /debug/pprof/ without WithPprof")
	}
}
