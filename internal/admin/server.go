// Package admin serves vhost-gen's admin HTTP endpoints: /healthz, /metrics and /routes (JSON
// and an HTML page).
package admin

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// State is what the pipeline last did, shared with the HTTP handlers.
type State struct {
	mu         sync.RWMutex
	table      routing.Table
	generation uint64
	applied    bool
	lastErr    string
	lastAt     time.Time
}

// SetTable records the table last built.
func (s *State) SetTable(t routing.Table, generation uint64) {
	s.mu.Lock()
	s.table, s.generation = t, generation
	s.mu.Unlock()
}

// SetApply records the outcome of the last apply.
func (s *State) SetApply(err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastAt = at
	if err != nil {
		s.lastErr = err.Error()
		return
	}
	s.applied, s.lastErr = true, ""
}

type routesDoc struct {
	Generation    uint64               `json:"generation"`
	LastApply     *time.Time           `json:"lastApply,omitempty"`
	LastError     string               `json:"lastError,omitempty"`
	ProxyNetworks []string             `json:"proxyNetworks"`
	Sites         []routing.Site       `json:"sites"`
	TCP           []routing.TCPService `json:"tcp"`
	Problems      []routing.Problem    `json:"problems"`
}

func (s *State) doc() routesDoc {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := routesDoc{Generation: s.generation, LastError: s.lastErr, ProxyNetworks: s.table.ProxyNetworks,
		Sites: s.table.Sites, TCP: s.table.TCP, Problems: s.table.Problems}
	if !s.lastAt.IsZero() {
		at := s.lastAt
		d.LastApply = &at
	}
	if d.Sites == nil {
		d.Sites = []routing.Site{}
	}
	if d.Problems == nil {
		d.Problems = []routing.Problem{}
	}
	if d.TCP == nil {
		d.TCP = []routing.TCPService{}
	}
	return d
}

//go:embed routes.html
var pages embed.FS

var routesPage = template.Must(template.ParseFS(pages, "routes.html"))

// Handler serves the admin endpoints.
func Handler(s *State, m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		applied, lastErr := s.applied, s.lastErr
		s.mu.RUnlock()
		switch {
		case lastErr != "":
			http.Error(w, "last apply failed: "+lastErr, http.StatusServiceUnavailable)
		case !applied:
			http.Error(w, "waiting for the first config to be applied", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		d := s.doc()
		if r.URL.Query().Get("format") == "json" || !strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(d)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		routesPage.Execute(w, d)
	})
	return mux
}
