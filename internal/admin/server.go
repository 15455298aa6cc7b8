// Package admin serves vhost-gen's admin HTTP endpoints: /healthz, /metrics and /routes (JSON
// and an HTML page).
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vhost-gen/vhost-gen/internal/explain"
	"github.com/vhost-gen/vhost-gen/internal/history"
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
	// statesFrom is where serverStates reads the proxy's live server states from, for
	// /routes?host= (nil: none).
	statesFrom   string
	serverStates func(ctx context.Context) (explain.States, error)
	// seen is each source's updates as the pipeline received them; history the last applies.
	seen    map[string]*sourceSeen
	history *history.Log
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
	Sources       []SourceStatus       `json:"sources"`
	// Applies are the last applies that changed the proxy or failed, newest first.
	Applies  []history.Entry `json:"applies"`
	ACME     any             `json:"acme,omitempty"`
	Gateways any             `json:"gateways,omitempty"`
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
	d.Sources = s.sourceStatuses()
	d.Applies = []history.Entry{}
	if s.history != nil {
		d.Applies = s.history.List()
	}
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

// SetServerStates sets how /routes?host= and ?workload= read the proxy's live server states:
// from says where from ("HAProxy runtime API /run/haproxy/admin.sock"); nil read: none (nginx).
func (s *State) SetServerStates(from string, read func(ctx context.Context) (explain.States, error)) {
	s.mu.Lock()
	s.statesFrom, s.serverStates = from, read
	s.mu.Unlock()
}

// explain serves /routes?host=NAME and /routes?workload=NAME (each comma separated or
// repeated): the explanation of those hosts and workloads from the last table, with the
// servers' live states when the proxy gives them. JSON; text with ?format=text, or for a
// browser that does not ask ?format=json.
func (s *State) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list := func(vs []string) []string {
		var out []string
		for _, v := range vs {
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
		}
		return out
	}
	s.mu.RLock()
	t, from, read := s.table, s.statesFrom, s.serverStates
	s.mu.RUnlock()
	var live *explain.Live
	if read != nil {
		live = explain.ReadLive(r.Context(), from, read)
	}
	rep := explain.Explain(t, explain.Query{Hosts: list(q["host"]), Workloads: list(q["workload"])}, live)
	format := q.Get("format")
	if format == "text" || (format != "json" && strings.Contains(r.Header.Get("Accept"), "text/html")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rep.WriteText(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep)
}

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
		if q := r.URL.Query(); q.Has("host") || q.Has("workload") {
			s.explain(w, r)
			return
		}
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
			enc.Encode(s.jsonDoc(r, d))
			return
		}
		s.serveDashboard(w, r, d)
	})
	return mux
}
