// Package admin serves vhost-gen's admin HTTP endpoints: /healthz, /metrics and /routes (JSON
// and an HTML page).
package admin

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
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
	// sources holds the sources that do not answer, with why.
	sources  map[string]string
	gateways func(ctx context.Context) (any, error)
	acme     func() any
}

// SetTable records the table last built.
func (s *State) SetTable(t routing.Table, generation uint64) {
	s.mu.Lock()
	s.table, s.generation = t, generation
	s.mu.Unlock()
}

// SetSource records whether a source answers; a source that does not leaves the gateway
// serving its last table: /healthz says so (degraded, not down).
func (s *State) SetSource(name string, connected bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources == nil {
		s.sources = map[string]string{}
	}
	switch {
	case connected:
		delete(s.sources, name)
	case err != nil:
		s.sources[name] = err.Error()
	default:
		s.sources[name] = "unreachable"
	}
}

// SetGateways sets how /routes lists the gateways that share the registry (nil: none).
func (s *State) SetGateways(list func(ctx context.Context) (any, error)) {
	s.mu.Lock()
	s.gateways = list
	s.mu.Unlock()
}

// SetACME sets how /routes lists the ACME client's certificates (nil: no ACME client).
func (s *State) SetACME(status func() any) {
	s.mu.Lock()
	s.acme = status
	s.mu.Unlock()
}

// degraded lists the sources that do not answer, sorted.
func (s *State) degraded() []string {
	var out []string
	for name, why := range s.sources {
		out = append(out, "source "+name+" does not answer ("+why+"); serving the last table")
	}
	slices.Sort(out)
	return out
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
	HostAddress   routing.HostAddress  `json:"hostAddress"`
	Sites         []routing.Site       `json:"sites"`
	TCP           []routing.TCPService `json:"tcp"`
	Problems      []routing.Problem    `json:"problems"`
	Degraded      []string             `json:"degraded,omitempty"`
	ACME          any                  `json:"acme,omitempty"`
	Gateways      any                  `json:"gateways,omitempty"`
}

func (s *State) doc() routesDoc {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := routesDoc{Generation: s.generation, LastError: s.lastErr, ProxyNetworks: s.table.ProxyNetworks,
		HostAddress: s.table.HostAddress, Sites: s.table.Sites, TCP: s.table.TCP, Problems: s.table.Problems}
	if !s.lastAt.IsZero() {
		at := s.lastAt
		d.LastApply = &at
	}
	d.Degraded = s.degraded()
	if s.acme != nil {
		d.ACME = s.acme()
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
		applied, lastErr, degraded := s.applied, s.lastErr, s.degraded()
		s.mu.RUnlock()
		switch {
		case lastErr != "":
			http.Error(w, "last apply failed: "+lastErr, http.StatusServiceUnavailable)
		case !applied:
			http.Error(w, "waiting for the first config to be applied", http.StatusServiceUnavailable)
		case len(degraded) > 0:
			// Still serving: a load balancer must not take this gateway out; alerts read the body.
			w.Write([]byte("degraded: " + strings.Join(degraded, "; ") + "\n"))
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, r *http.Request) {
		d := s.doc()
		s.mu.RLock()
		list := s.gateways
		s.mu.RUnlock()
		if list != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			if gws, err := list(ctx); err != nil {
				d.Gateways = map[string]string{"error": err.Error()}
			} else {
				d.Gateways = gws
			}
			cancel()
		}
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
