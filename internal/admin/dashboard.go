package admin

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/explain"
	"github.com/vhost-gen/vhost-gen/internal/history"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// The dashboard is /routes in a browser: one server-rendered page (no JavaScript, no external
// assets) that a person keeps open. It shows the problems first, then the sites (searched with
// ?q=, paged with ?page=) with their servers' live states, the last applies, the sources, the
// other gateways and the ACME certificates, and reloads itself every ?refresh= seconds.

const (
	// sitesPerPage and problemsShown bound the page, whatever the size of the table.
	sitesPerPage  = 200
	problemsShown = 100
	tcpShown      = 200
	// defaultRefresh is the page's reload interval in seconds unless ?refresh= says otherwise;
	// maxRefresh bounds it.
	defaultRefresh = 5
	maxRefresh     = 3600
	// liveTimeout bounds the read of the proxy's server states at each render: a page that
	// reloads every few seconds must not hang on a busy runtime API.
	liveTimeout = time.Second
	// listShown is how many names of each list an apply's details show.
	listShown = 20
)

//go:embed dashboard.html
var dashboardFS embed.FS

var dashboardPage = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{
	"n": thousands,
}).ParseFS(dashboardFS, "dashboard.html"))

// dashParams are the dashboard's query parameters.
type dashParams struct {
	// Q narrows the sites, TCP services and problems to those whose host, workload or server
	// address contains it, ignoring case.
	Q string
	// Down keeps only the sites with a server that is not UP (needs the proxy's live states).
	Down bool
	// Page is the page of matching sites, from 1.
	Page int
	// Refresh is the reload interval in seconds, 0 for none.
	Refresh int
}

// parseDashParams reads ?q=, ?down=, ?page= and ?refresh= (seconds, a duration like "30s", or
// "off"/"0"); a value it cannot read falls back to the default.
func parseDashParams(v url.Values) dashParams {
	p := dashParams{Q: strings.TrimSpace(v.Get("q")), Page: 1, Refresh: defaultRefresh}
	switch v.Get("down") {
	case "1", "true", "on", "yes":
		p.Down = true
	}
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 1 {
		p.Page = n
	}
	if r := strings.ToLower(strings.TrimSpace(v.Get("refresh"))); r != "" {
		switch r {
		case "off", "no", "none", "false", "0":
			p.Refresh = 0
		default:
			if n, err := strconv.Atoi(r); err == nil && n > 0 {
				p.Refresh = min(n, maxRefresh)
			} else if d, err := time.ParseDuration(r); err == nil && d >= time.Second {
				p.Refresh = min(int(d/time.Second), maxRefresh)
			}
		}
	}
	return p
}

// link is the dashboard's URL, relative to the page (so that it works behind a path prefix), with
// these parameters and the given page; the defaults are left out.
func (p dashParams) link(page int) string {
	v := url.Values{}
	if p.Q != "" {
		v.Set("q", p.Q)
	}
	if p.Down {
		v.Set("down", "1")
	}
	if p.Refresh != defaultRefresh {
		v.Set("refresh", refreshValue(p.Refresh))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if len(v) == 0 {
		return "?"
	}
	return "?" + v.Encode()
}

func refreshValue(n int) string {
	if n == 0 {
		return "off"
	}
	return strconv.Itoa(n)
}

// matcher tells which sites, services and problems a search keeps.
type matcher struct {
	q    string // lower case; "" keeps everything
	down bool
	live *explain.Live
}

func (m matcher) has(s string) bool { return strings.Contains(strings.ToLower(s), m.q) }

// server: the server's workload or address has the search.
func (m matcher) server(sv *routing.Server) bool {
	return m.has(sv.Workload) || strings.Contains(sv.Address, m.q)
}

// site: the host or one of its servers has the search, and, with down, one of its servers is
// not UP.
func (m matcher) site(s *routing.Site) bool {
	if m.q != "" && !m.has(s.Host) && !anyServer(s, m.server) {
		return false
	}
	return !m.down || (m.live != nil && siteNotUp(s, m.live.States) > 0)
}

func anyServer(s *routing.Site, f func(*routing.Server) bool) bool {
	for i := range s.Routes {
		ss := s.Routes[i].Backend.Servers
		for j := range ss {
			if f(&ss[j]) {
				return true
			}
		}
	}
	return false
}

// tcp: the service, its port or one of its servers has the search, and, with down, one of its
// servers is not UP.
func (m matcher) tcp(t *routing.TCPService) bool {
	ss := t.Backend.Servers
	if m.q != "" && !m.has(t.Service) && !strings.Contains(strconv.Itoa(t.Port), m.q) &&
		!slices.ContainsFunc(ss, func(sv routing.Server) bool { return m.server(&sv) }) {
		return false
	}
	return !m.down || (m.live != nil && slices.ContainsFunc(ss, func(sv routing.Server) bool {
		return notUp(m.live.States, t.Backend.Name, sv.Name)
	}))
}

func (m matcher) problem(p *routing.Problem) bool {
	return m.q == "" || m.has(p.Workload) || m.has(p.Host) || m.has(p.Value)
}

// filterSites returns the sites the matcher keeps (the table's own slice when it keeps all).
func (m matcher) filterSites(sites []routing.Site) []routing.Site {
	if m.q == "" && !m.down {
		return sites
	}
	var out []routing.Site
	for i := range sites {
		if m.site(&sites[i]) {
			out = append(out, sites[i])
		}
	}
	return out
}

// stateClass sorts HAProxy's server statuses into what the page colours: up, down, maint, warn
// (draining, not load balanced, a check in transition), none ("no check").
func stateClass(status string) string {
	switch {
	case status == "UP":
		return "up"
	case strings.HasPrefix(status, "UP "):
		return "warn" // UP, going down: a check failed
	case strings.HasPrefix(status, "DOWN"):
		return "down"
	case strings.HasPrefix(status, "MAINT"):
		return "maint"
	case status == "no check":
		return "none"
	}
	return "warn"
}

// notUp: the proxy has the server, and it is not UP (DOWN, MAINT, DRAIN, NOLB, a failing check).
func notUp(states explain.States, backend, server string) bool {
	st, ok := states[explain.Key(backend, server)]
	if !ok {
		return false
	}
	c := stateClass(st.Status)
	return c != "up" && c != "none"
}

func siteNotUp(s *routing.Site, states explain.States) int {
	n := 0
	for _, r := range s.Routes {
		for _, sv := range r.Backend.Servers {
			if notUp(states, r.Backend.Name, sv.Name) {
				n++
			}
		}
	}
	return n
}

// The view model: everything the template shows, already formatted.

type dashboard struct {
	Params   dashParams
	Rendered string
	// RefreshChoices are links to the other reload intervals.
	RefreshChoices []choice
	// RefreshParam keeps ?refresh= in the search form ("" for the default); ClearURL is the page
	// without the search.
	RefreshParam string
	ClearURL     string
	// NoLive says why there are no server states; PerPage and DefaultRefresh are documented in
	// the footer.
	NoLive         string
	PerPage        int
	DefaultRefresh int

	Generation    uint64
	LastApply     string
	LastApplyAgo  string
	LastError     string
	ProxyNetworks string
	HostAddress   routing.HostAddress
	Degraded      []string

	Problems        []problemView
	ProblemsTotal   int
	ProblemsMatched int

	Sites        []siteView
	SitesTotal   int
	SitesMatched int
	ServersTotal int
	Page, Pages  int
	First, Last  int // 1-based positions of the sites shown among the matching
	PrevURL      string
	NextURL      string
	FirstURL     string
	LastURL      string
	DownURL      string // the same search, only the sites with a server not UP

	TCP        []tcpView
	TCPTotal   int
	TCPMatched int

	Live     liveView
	Applies  []applyView
	Sources  []sourceView
	Gateways *anyTable
	ACME     *anyTable
	JSON     jsonLinks
}

type choice struct {
	Label, URL string
	Current    bool
}

// liveView says where the servers' states came from, or why there are none.
type liveView struct {
	// Available: the proxy gives states (HAProxy with its runtime API); From says where from.
	Available bool
	From      string
	Error     string
	// NotUp counts the servers of the whole table that are not UP, by class.
	Down, Maint, Warn int
}

type problemView struct {
	Workload    string
	WorkloadURL string
	Source      string
	Host        string
	Message     string
	Warning     bool
}

type siteView struct {
	Host    string
	HostURL string
	TLS     string
	TLSBad  string
	NotUp   int
	Rows    int // table rows: one per server, at least one per route
	Routes  []routeView
}

type routeView struct {
	Path    string
	Dest    string
	Backend string
	Proto   string
	Sticky  string
	Rows    int
	Servers []serverView // at least one (an empty one for a route without servers)
}

type serverView struct {
	Name        string
	Address     string
	Workload    string
	WorkloadURL string
	Via         string
	ViaDetail   string
	Weight      int
	// Status is the proxy's ("UP", "DOWN", "MAINT"…), Class how the page colours it, Check the
	// last health check; all empty without live states.
	Status string
	Class  string
	Check  string
	Since  string
}

type tcpView struct {
	Port    int
	Service string
	Backend string
	Servers []serverView
}

type applyView struct {
	At, Ago     string
	Result      string
	Failed      bool
	How         string
	Duration    string
	Generation  uint64
	Summary     string
	Lists       []namedList
	Error       string
	Quarantined []string
}

type namedList struct {
	Label string
	Names []string
	More  int
}

type sourceView struct {
	Name       string
	Connected  bool
	Error      string
	LastEvent  string
	EventAt    string
	LastResync string
	ResyncAt   string
	Updates    uint64
}

// anyTable is a list of JSON objects (the gateways, the ACME certificates) as a table.
type anyTable struct {
	Error   string
	Columns []string
	Rows    [][]anyCell
}

type anyCell struct {
	Text string
	Bad  bool
}

type jsonLinks struct {
	All, Search, Live, Down string
}

// newDashboard builds the page from the doc /routes answers as JSON, the parameters and the
// live server states (nil: the proxy gives none).
func newDashboard(d routesDoc, p dashParams, live *explain.Live, now time.Time) *dashboard {
	v := &dashboard{Params: p, Rendered: now.Format("15:04:05 MST"), Generation: d.Generation,
		LastError: d.LastError, ProxyNetworks: strings.Join(d.ProxyNetworks, ", "), HostAddress: d.HostAddress,
		Degraded: d.Degraded, NoLive: noLive, PerPage: sitesPerPage, DefaultRefresh: defaultRefresh,
		ClearURL: dashParams{Refresh: p.Refresh}.link(1)}
	if p.Refresh != defaultRefresh {
		v.RefreshParam = refreshValue(p.Refresh)
	}
	if d.LastApply != nil {
		v.LastApply, v.LastApplyAgo = stamp(*d.LastApply), ago(now, *d.LastApply)
	}
	for _, n := range []int{5, 30, 60, 0} {
		q := p
		q.Refresh = n
		label := refreshValue(n)
		if n != 0 {
			label += "s"
		}
		v.RefreshChoices = append(v.RefreshChoices, choice{Label: label, URL: q.link(p.Page), Current: n == p.Refresh})
	}
	var states explain.States
	if live != nil {
		v.Live = liveView{Available: true, From: live.From, Error: live.Error}
		states = live.States
		for _, s := range d.Sites {
			for _, r := range s.Routes {
				for _, sv := range r.Backend.Servers {
					if st, ok := states[explain.Key(r.Backend.Name, sv.Name)]; ok {
						switch stateClass(st.Status) {
						case "down":
							v.Live.Down++
						case "maint":
							v.Live.Maint++
						case "warn":
							v.Live.Warn++
						}
					}
				}
			}
		}
	}
	m := matcher{q: strings.ToLower(p.Q), down: p.Down, live: live}
	if live != nil && live.Error != "" {
		m.live = nil // no states: ?down= keeps nothing rather than everything
	}

	// Problems first: errors, then warnings, each in the table's order.
	v.ProblemsTotal = len(d.Problems)
	var kept []routing.Problem
	for i := range d.Problems {
		if m.problem(&d.Problems[i]) {
			kept = append(kept, d.Problems[i])
		}
	}
	slices.SortStableFunc(kept, func(a, b routing.Problem) int {
		switch {
		case a.Warning == b.Warning:
			return 0
		case b.Warning:
			return -1
		}
		return 1
	})
	v.ProblemsMatched = len(kept)
	for _, pr := range kept[:min(len(kept), problemsShown)] {
		pv := problemView{Workload: pr.Workload, Source: pr.Source, Host: pr.Host, Message: pr.String(), Warning: pr.Warning}
		if pr.Workload != "" {
			pv.WorkloadURL = "?" + url.Values{"workload": {pr.Workload}}.Encode()
		}
		v.Problems = append(v.Problems, pv)
	}

	// Sites: the matching ones, a page of them.
	v.SitesTotal = len(d.Sites)
	for _, s := range d.Sites {
		for _, r := range s.Routes {
			v.ServersTotal += len(r.Backend.Servers)
		}
	}
	sites := m.filterSites(d.Sites)
	v.SitesMatched = len(sites)
	v.Pages = max(1, (len(sites)+sitesPerPage-1)/sitesPerPage)
	v.Page = min(p.Page, v.Pages)
	from := (v.Page - 1) * sitesPerPage
	to := min(from+sitesPerPage, len(sites))
	if to > from {
		v.First, v.Last = from+1, to
	}
	if v.Page > 1 {
		v.PrevURL, v.FirstURL = p.link(v.Page-1), p.link(1)
	}
	if v.Page < v.Pages {
		v.NextURL, v.LastURL = p.link(v.Page+1), p.link(v.Pages)
	}
	down := p
	down.Down = true
	v.DownURL = down.link(1)
	v.Sites = make([]siteView, 0, to-from)
	for i := from; i < to; i++ {
		v.Sites = append(v.Sites, newSiteView(&sites[i], states))
	}

	v.TCPTotal = len(d.TCP)
	for i := range d.TCP {
		t := &d.TCP[i]
		if !m.tcp(t) {
			continue
		}
		v.TCPMatched++
		if len(v.TCP) < tcpShown {
			tv := tcpView{Port: t.Port, Service: t.Service, Backend: t.Backend.Name}
			for _, sv := range t.Backend.Servers {
				tv.Servers = append(tv.Servers, newServerView(t.Backend.Name, sv, states))
			}
			v.TCP = append(v.TCP, tv)
		}
	}

	for _, e := range d.Applies {
		v.Applies = append(v.Applies, newApplyView(e, now))
	}
	for _, s := range d.Sources {
		sv := sourceView{Name: s.Name, Connected: s.Connected, Error: s.Error, Updates: s.Updates}
		if s.LastEvent != nil {
			sv.LastEvent, sv.EventAt = ago(now, *s.LastEvent), stamp(*s.LastEvent)
		}
		if s.LastResync != nil {
			sv.LastResync, sv.ResyncAt = ago(now, *s.LastResync), stamp(*s.LastResync)
		}
		v.Sources = append(v.Sources, sv)
	}
	if d.Gateways != nil {
		v.Gateways = newAnyTable(d.Gateways, []string{"id", "hostname", "state", "version", "revision", "appliedAt", "sha256", "error"})
	}
	if d.ACME != nil {
		if t := newAnyTable(d.ACME, []string{"name", "names", "notAfter", "renewAt", "serial", "lastError", "lastErrorAt", "nextTry", "orders"}); t.Error != "" || len(t.Rows) > 0 {
			v.ACME = t
		}
	}

	js := func(extra url.Values) string {
		extra.Set("format", "json")
		if p.Q != "" {
			extra.Set("q", p.Q)
		}
		return "?" + extra.Encode()
	}
	v.JSON = jsonLinks{All: "?format=json", Search: js(url.Values{}), Live: js(url.Values{"live": {"1"}}),
		Down: js(url.Values{"live": {"1"}, "down": {"1"}})}
	return v
}

func newSiteView(s *routing.Site, states explain.States) siteView {
	v := siteView{Host: s.Host, HostURL: "?" + url.Values{"host": {s.Host}}.Encode()}
	if t := s.TLS; t != nil {
		v.TLS = "TLS " + t.Method + ", certificate: " + t.CertSource
		v.TLSBad = t.Problem
	}
	for _, r := range s.Routes {
		rv := routeView{Path: r.Path, Dest: r.Dest, Backend: r.Backend.Name, Proto: r.Backend.Proto, Sticky: r.Backend.Sticky}
		for _, sv := range r.Backend.Servers {
			x := newServerView(r.Backend.Name, sv, states)
			if x.Class != "" && x.Class != "up" && x.Class != "none" {
				v.NotUp++
			}
			rv.Servers = append(rv.Servers, x)
		}
		if len(rv.Servers) == 0 {
			rv.Servers = []serverView{{}}
		}
		rv.Rows = len(rv.Servers)
		v.Rows += rv.Rows
		v.Routes = append(v.Routes, rv)
	}
	if v.Rows == 0 {
		v.Rows = 1
	}
	return v
}

func newServerView(backend string, sv routing.Server, states explain.States) serverView {
	x := serverView{Name: sv.Name, Address: sv.Address, Workload: sv.Workload, Via: sv.Via, ViaDetail: sv.ViaDetail, Weight: sv.Weight}
	if sv.Workload != "" {
		x.WorkloadURL = "?" + url.Values{"workload": {sv.Workload}}.Encode()
	}
	if states == nil {
		return x
	}
	st, ok := states[explain.Key(backend, sv.Name)]
	if !ok {
		x.Status, x.Class = "not in the proxy yet", "none"
		return x
	}
	x.Status, x.Class = st.Status, stateClass(st.Status)
	x.Check = strings.TrimSpace(st.Check + " " + st.CheckDetail)
	if st.Since >= 0 {
		x.Since = (time.Duration(st.Since) * time.Second).String()
	}
	return x
}

func newApplyView(e history.Entry, now time.Time) applyView {
	v := applyView{At: stamp(e.At), Ago: ago(now, e.At), Result: e.Result, How: e.How(), Generation: e.Generation,
		Summary: e.Change.String(), Error: e.Error, Quarantined: e.Quarantined}
	v.Failed = v.How == "" && e.Result != ""
	v.Duration = duration(e.Duration)
	for _, l := range []struct {
		label string
		names []string
	}{
		{"sites added", e.Change.SitesAdded}, {"sites removed", e.Change.SitesRemoved},
		{"servers added", e.Change.ServersAdded}, {"servers removed", e.Change.ServersRemoved},
	} {
		if len(l.names) > 0 {
			v.Lists = append(v.Lists, namedList{Label: l.label, Names: l.names[:min(len(l.names), listShown)], More: max(0, len(l.names)-listShown)})
		}
	}
	return v
}

// newAnyTable lays out a value that marshals to a list of JSON objects (or one object; an object
// with only "error" is the error): the preferred columns first, then the others sorted.
func newAnyTable(val any, prefer []string) *anyTable {
	t := &anyTable{}
	raw, err := json.Marshal(val)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	var rows []map[string]any
	if json.Unmarshal(raw, &rows) != nil {
		var one map[string]any
		if err := json.Unmarshal(raw, &one); err != nil {
			t.Error = "not a list: " + string(raw)
			return t
		}
		if e, ok := one["error"].(string); ok && len(one) == 1 {
			t.Error = e
			return t
		}
		rows = []map[string]any{one}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		for k := range r {
			seen[k] = true
		}
	}
	for _, c := range prefer {
		if seen[c] {
			t.Columns = append(t.Columns, c)
			delete(seen, c)
		}
	}
	var rest []string
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	t.Columns = append(t.Columns, rest...)
	for _, r := range rows {
		cells := make([]anyCell, len(t.Columns))
		for i, c := range t.Columns {
			cells[i] = anyCell{Text: cellText(c, r[c])}
			switch c {
			case "state":
				cells[i].Bad = cells[i].Text != "" && cells[i].Text != "agrees"
			case "error", "lastError":
				cells[i].Bad = cells[i].Text != ""
			}
		}
		t.Rows = append(t.Rows, cells)
	}
	return t
}

func cellText(col string, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if col == "sha256" && len(x) > 12 {
			return x[:12] + "…"
		}
		if at, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return stamp(at)
		}
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = cellText(col, e)
		}
		return strings.Join(parts, ", ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func stamp(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") }

// ago is how long before now t was, to the second ("3s ago", "2m5s ago", "in 4s" for a clock
// that runs ahead).
func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	if d == 0 {
		return "just now"
	}
	if d >= 48*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	}
	return d.String() + " ago"
}

func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// thousands writes n with thousands separators: 5,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readLive reads the proxy's server states with a short timeout; nil when the proxy gives none
// (nginx).
func (s *State) readLive(ctx context.Context) *explain.Live {
	s.mu.RLock()
	from, read := s.statesFrom, s.serverStates
	s.mu.RUnlock()
	if read == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	return explain.ReadLive(ctx, from, read)
}

// serveDashboard serves /routes as the HTML page; d is what /routes?format=json answers.
func (s *State) serveDashboard(w http.ResponseWriter, r *http.Request, d routesDoc) {
	p := parseDashParams(r.URL.Query())
	v := newDashboard(d, p, s.readLive(r.Context()), time.Now())
	var buf bytes.Buffer
	if err := dashboardPage.Execute(&buf, v); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page runs no script and loads nothing: say so, so that a name that escaped escaping
	// still could not run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.Write(buf.Bytes())
}

// liveDoc is the servers' live states in /routes?format=json&live=1.
type liveDoc struct {
	// From is where they were read ("HAProxy runtime API /run/haproxy/admin.sock"); Error why
	// they could not be; None why there are none (nginx does not report them).
	From  string `json:"from,omitempty"`
	Error string `json:"error,omitempty"`
	None  string `json:"none,omitempty"`
	// States are by "<backend>/<server>": sites[].routes[].backend.name and its servers[].name.
	States explain.States `json:"states"`
}

// routesJSONDoc is /routes?format=json with ?q= (and ?down=) applied and ?live=1's states.
type routesJSONDoc struct {
	routesDoc
	Query string   `json:"q,omitempty"`
	Live  *liveDoc `json:"live,omitempty"`
}

// noLive is what the page and the JSON say when the proxy gives no server states.
const noLive = "the proxy does not report its servers' states (nginx, or HAProxy without --haproxy-socket)"

// jsonDoc is what /routes?format=json answers: d alone, unless ?q=, ?down= or ?live=1 ask for
// more: the search narrows sites, tcp and problems as on the page (all of them, no paging);
// ?live=1 reads the proxy's server states (?down=1 implies it).
func (s *State) jsonDoc(r *http.Request, d routesDoc) any {
	q := r.URL.Query()
	p := parseDashParams(q)
	wantLive := q.Get("live") == "1" || q.Get("live") == "true" || p.Down
	if p.Q == "" && !wantLive {
		return d
	}
	out := routesJSONDoc{routesDoc: d, Query: p.Q}
	var live *explain.Live
	if wantLive {
		live = s.readLive(r.Context())
		switch {
		case live == nil:
			out.Live = &liveDoc{None: noLive, States: explain.States{}}
		case live.Error != "":
			out.Live = &liveDoc{From: live.From, Error: live.Error, States: explain.States{}}
		default:
			out.Live = &liveDoc{From: live.From, States: live.States}
		}
	}
	m := matcher{q: strings.ToLower(p.Q), down: p.Down, live: live}
	if live != nil && live.Error != "" {
		m.live = nil
	}
	out.Sites = m.filterSites(d.Sites)
	if out.Sites == nil {
		out.Sites = []routing.Site{}
	}
	out.TCP = []routing.TCPService{}
	for i := range d.TCP {
		if m.tcp(&d.TCP[i]) {
			out.TCP = append(out.TCP, d.TCP[i])
		}
	}
	out.Problems = []routing.Problem{}
	for i := range d.Problems {
		if m.problem(&d.Problems[i]) {
			out.Problems = append(out.Problems, d.Problems[i])
		}
	}
	return out
}
