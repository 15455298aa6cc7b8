package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/explain"
	"github.com/vhost-gen/vhost-gen/internal/history"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

const hostile = "<script>alert(1)</script>"

// testSite is site number i: one route, two servers (workloads Web-NNNN-a and Web-NNNN-b).
func testSite(i int) routing.Site {
	host := fmt.Sprintf("site%04d.example.com", i)
	var servers []routing.Server
	for j, suffix := range []string{"a", "b"} {
		servers = append(servers, routing.Server{
			Name: "srv-" + suffix, Address: fmt.Sprintf("10.%d.%d.%d:80", i/256, i%256, j+2), Port: 80, Weight: 1,
			Workload: fmt.Sprintf("Web-%04d-%s", i, suffix), WorkloadID: fmt.Sprintf("id-%d-%s", i, suffix),
			Via: routing.ViaSharedNetwork, ViaDetail: "network proxy",
		})
	}
	return routing.Site{Host: host, Routes: []routing.Route{{Path: "/", Backend: routing.Backend{Name: host, Proto: "http", Servers: servers}}}}
}

// testTable is n sites, and a problem for every tenth.
func testTable(n int) routing.Table {
	t := routing.Table{ProxyNetworks: []string{"proxy"}}
	for i := range n {
		t.Sites = append(t.Sites, testSite(i))
		if i%10 == 0 {
			t.Problems = append(t.Problems, routing.Problem{Source: "docker", Workload: fmt.Sprintf("bad-%04d", i),
				Setting: "VIRTUAL_PORT", Origin: "label", Value: "eighty", Reason: "must be a port number"})
		}
	}
	return t
}

// states is every server of the table UP, but those named in down, DOWN.
func states(t routing.Table, down ...string) explain.States {
	out := explain.States{}
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			for _, sv := range r.Backend.Servers {
				st := explain.ServerState{Status: "UP", Check: "L4OK", Since: 60}
				for _, d := range down {
					if sv.Workload == d {
						st = explain.ServerState{Status: "DOWN", Check: "L4CON", CheckDetail: "Connection refused", Since: 12}
					}
				}
				out[explain.Key(r.Backend.Name, sv.Name)] = st
			}
		}
	}
	return out
}

func view(t *testing.T, tab routing.Table, query string, live *explain.Live) *dashboard {
	t.Helper()
	s := &State{}
	s.SetTable(tab, 1)
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return newDashboard(s.doc(), parseDashParams(v), live, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
}

func hosts(v *dashboard) []string {
	var out []string
	for _, s := range v.Sites {
		out = append(out, s.Host)
	}
	return out
}

func TestDashboardSearch(t *testing.T) {
	tab := testTable(50)
	for _, tc := range []struct {
		q          string
		want       []string
		wantProbls int
	}{
		{"", nil, 5}, // everything (checked by count below)
		{"site0007.example.com", []string{"site0007.example.com"}, 0}, // by host
		{"SITE0007", []string{"site0007.example.com"}, 0},             // any case
		{"web-0012-b", []string{"site0012.example.com"}, 0},           // by workload, any case
		{"10.0.33.2:80", []string{"site0033.example.com"}, 0},         // by server address
		{"site004", []string{"site0040.example.com", "site0041.example.com", "site0042.example.com", "site0043.example.com",
			"site0044.example.com", "site0045.example.com", "site0046.example.com", "site0047.example.com",
			"site0048.example.com", "site0049.example.com"}, 0},
		{"bad-0020", []string{}, 1}, // a problem's workload
		{"nothing-like-it", []string{}, 0},
	} {
		v := view(t, tab, "q="+url.QueryEscape(tc.q), nil)
		if tc.q == "" {
			if v.SitesMatched != 50 || len(v.Sites) != 50 || v.ProblemsMatched != 5 || v.ServersTotal != 100 {
				t.Errorf("no search: %d matched, %d shown, %d problems, %d servers", v.SitesMatched, len(v.Sites), v.ProblemsMatched, v.ServersTotal)
			}
			continue
		}
		if got := hosts(v); strings.Join(got, " ") != strings.Join(tc.want, " ") || v.SitesMatched != len(tc.want) {
			t.Errorf("q=%q: sites %v (%d matched), want %v", tc.q, got, v.SitesMatched, tc.want)
		}
		if v.SitesTotal != 50 || v.ProblemsTotal != 5 {
			t.Errorf("q=%q: totals %d sites %d problems, want 50 and 5", tc.q, v.SitesTotal, v.ProblemsTotal)
		}
		if len(v.Problems) != tc.wantProbls {
			t.Errorf("q=%q: problems %+v, want %d", tc.q, v.Problems, tc.wantProbls)
		}
	}
}

func TestDashboardPaging(t *testing.T) {
	tab := testTable(450)
	v := view(t, tab, "q=site&refresh=30", nil)
	if v.SitesMatched != 450 || len(v.Sites) != sitesPerPage || v.Page != 1 || v.Pages != 3 || v.First != 1 || v.Last != 200 {
		t.Fatalf("page 1: matched %d shown %d page %d/%d %d-%d", v.SitesMatched, len(v.Sites), v.Page, v.Pages, v.First, v.Last)
	}
	if v.PrevURL != "" || v.NextURL != "?page=2&q=site&refresh=30" || v.LastURL != "?page=3&q=site&refresh=30" {
		t.Errorf("page 1 links: prev %q next %q last %q", v.PrevURL, v.NextURL, v.LastURL)
	}
	v = view(t, tab, "q=site&page=3", nil)
	if len(v.Sites) != 50 || v.Sites[0].Host != "site0400.example.com" || v.First != 401 || v.Last != 450 || v.NextURL != "" || v.PrevURL != "?page=2&q=site" {
		t.Errorf("page 3: %d sites from %s, %d-%d, next %q prev %q", len(v.Sites), v.Sites[0].Host, v.First, v.Last, v.NextURL, v.PrevURL)
	}
	// Past the end: the last page; nonsense: the first.
	if v = view(t, tab, "page=99", nil); v.Page != 3 || len(v.Sites) != 50 {
		t.Errorf("page=99: page %d with %d sites", v.Page, len(v.Sites))
	}
	if v = view(t, tab, "page=-4", nil); v.Page != 1 {
		t.Errorf("page=-4: page %d", v.Page)
	}
	// Problems are capped too, with their count.
	big := routing.Table{}
	for i := range 3 * problemsShown {
		big.Problems = append(big.Problems, routing.Problem{Workload: fmt.Sprintf("w%d", i), Reason: "r"})
	}
	if v = view(t, big, "", nil); len(v.Problems) != problemsShown || v.ProblemsMatched != 3*problemsShown {
		t.Errorf("problems: %d shown of %d", len(v.Problems), v.ProblemsMatched)
	}
	body := render(t, v)
	if !strings.Contains(body, fmt.Sprintf("showing the first %d of %d: refine the search", problemsShown, 3*problemsShown)) {
		t.Errorf("no cap note for the problems")
	}
}

func TestDashboardRefreshParam(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
	}{{"", 5}, {"refresh=off", 0}, {"refresh=0", 0}, {"refresh=30", 30}, {"refresh=1m", 60}, {"refresh=nonsense", 5}, {"refresh=-3", 5}, {"refresh=999999", maxRefresh}} {
		v, _ := url.ParseQuery(tc.query)
		if got := parseDashParams(v).Refresh; got != tc.want {
			t.Errorf("%q: refresh %d, want %d", tc.query, got, tc.want)
		}
	}
	tab := testTable(3)
	if body := render(t, view(t, tab, "", nil)); !strings.Contains(body, `<meta http-equiv="refresh" content="5">`) {
		t.Errorf("default: no 5 s refresh")
	}
	body := render(t, view(t, tab, "refresh=off&q=site0001", nil))
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("refresh=off still reloads")
	}
	// The search form keeps the interval; the interval links keep the search.
	if !strings.Contains(body, `<input type="hidden" name="refresh" value="off">`) || !strings.Contains(body, `href="?q=site0001&amp;refresh=30"`) {
		t.Errorf("refresh=off: the form or the links lose a parameter:\n%s", body)
	}
}

func TestDashboardProblemsFirst(t *testing.T) {
	tab := testTable(3)
	tab.Problems = []routing.Problem{
		{Workload: "a-warned", Reason: "served anyway", Warning: true},
		{Workload: "b-broken", Setting: "VIRTUAL_HOST", Value: "x..y", Reason: "not a host name"},
	}
	v := view(t, tab, "", nil)
	if len(v.Problems) != 2 || v.Problems[0].Workload != "b-broken" || v.Problems[1].Workload != "a-warned" {
		t.Fatalf("problems %+v: want the error before the warning", v.Problems)
	}
	body := render(t, v)
	p, s := strings.Index(body, `id="problems"`), strings.Index(body, `id="sites"`)
	if p < 0 || s < 0 || p > s {
		t.Errorf("problems at %d, sites at %d: want the problems first", p, s)
	}
	for _, want := range []string{`<a href="?workload=b-broken">b-broken</a>`, `container b-broken: VIRTUAL_HOST &#34;x..y&#34;: not a host name`, "Problems (2)"} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
}

func TestDashboardLive(t *testing.T) {
	tab := testTable(20)
	live := &explain.Live{From: "HAProxy runtime API /x/admin.sock", States: states(tab, "Web-0003-b")}
	v := view(t, tab, "", live)
	if !v.Live.Available || v.Live.Down != 1 {
		t.Fatalf("live %+v, want 1 DOWN", v.Live)
	}
	sv := v.Sites[3].Routes[0].Servers[1]
	if sv.Status != "DOWN" || sv.Class != "down" || sv.Check != "L4CON Connection refused" || sv.Since != "12s" || v.Sites[3].NotUp != 1 {
		t.Errorf("down server %+v (site not up %d)", sv, v.Sites[3].NotUp)
	}
	if up := v.Sites[0].Routes[0].Servers[0]; up.Status != "UP" || up.Class != "up" {
		t.Errorf("up server %+v", up)
	}
	body := render(t, v)
	for _, want := range []string{`<span class="st down">DOWN</span> <span class="small">L4CON Connection refused</span>`,
		"server states: live from HAProxy runtime API /x/admin.sock", `>1 DOWN</a>`, `1 DOWN · `} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	// ?down=1: only the site with the server DOWN.
	if v := view(t, tab, "down=1", live); strings.Join(hosts(v), " ") != "site0003.example.com" {
		t.Errorf("down=1: %v", hosts(v))
	}
	// A server the proxy does not have yet, and a state that could not be read.
	delete(live.States, explain.Key("site0000.example.com", "srv-a"))
	if sv := view(t, tab, "", live).Sites[0].Routes[0].Servers[0]; sv.Status != "not in the proxy yet" {
		t.Errorf("missing server: %+v", sv)
	}
	v = view(t, tab, "down=1", &explain.Live{From: "HAProxy runtime API /x", Error: "dial unix /x: connection refused"})
	if body := render(t, v); !strings.Contains(body, "could not be read from HAProxy runtime API /x: dial unix /x: connection refused") || len(v.Sites) != 0 {
		t.Errorf("unreadable states: %d sites, page lacks the error", len(v.Sites))
	}
	// nginx: none, and the page says so.
	v = view(t, tab, "", nil)
	if body := render(t, v); !strings.Contains(body, "server states: none — the proxy does not report") || strings.Contains(body, "<th>state</th>") {
		t.Errorf("nginx: the page does not say there are no states")
	}
}

func TestDashboardAppliesAndSources(t *testing.T) {
	s := &State{}
	s.SetTable(testTable(2), 4)
	h := history.New(20)
	at := time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC)
	h.Add(history.Entry{At: at, Result: "applied", Duration: 35 * time.Millisecond, Generation: 2,
		Change: history.Change{SitesAdded: []string{"site0000.example.com", "site0001.example.com"}, ServersAdded: []string{"site0000.example.com/ 10.0.0.2:80 (Web-0000-a)"}}})
	h.Add(history.Entry{At: at.Add(time.Second), Result: "updated", Duration: 800 * time.Microsecond, Generation: 3,
		Change: history.Change{ServersRemoved: []string{"site0001.example.com/ 10.0.1.3:80 (Web-0001-b)"}}})
	h.Add(history.Entry{At: at.Add(2 * time.Second), Result: "check_failed", Duration: 2 * time.Second, Generation: 4,
		Error: "[ALERT] config : parsing [haproxy.cfg:12] : unknown keyword '" + hostile + "'", Quarantined: []string{"bad.example.com"}})
	s.SetHistory(h)
	s.SourceSeen("docker", true, at.Add(-time.Minute))
	s.SourceSeen("docker", false, at)
	s.SetSource("etcd", false, errors.New("context deadline exceeded"))
	v := newDashboard(s.doc(), parseDashParams(nil), nil, at.Add(5*time.Second))

	if len(v.Applies) != 3 {
		t.Fatalf("applies %+v", v.Applies)
	}
	failed, updated, applied := v.Applies[0], v.Applies[1], v.Applies[2]
	if applied.How != "reload" || applied.Failed || applied.Duration != "35ms" || applied.Ago != "5s ago" || applied.Summary != "sites +site0000.example.com +site0001.example.com; servers +1 -0" {
		t.Errorf("applied: %+v", applied)
	}
	if updated.How != "runtime API" || updated.Duration != "800µs" || len(updated.Lists) != 1 || updated.Lists[0].Label != "servers removed" {
		t.Errorf("updated: %+v", updated)
	}
	if !failed.Failed || failed.How != "" || !strings.Contains(failed.Error, "unknown keyword") || failed.Quarantined[0] != "bad.example.com" {
		t.Errorf("failed: %+v", failed)
	}
	if len(v.Sources) != 2 || v.Sources[0].Name != "docker" || !v.Sources[0].Connected || v.Sources[0].LastEvent != "5s ago" ||
		v.Sources[0].LastResync != "1m5s ago" || v.Sources[0].Updates != 2 {
		t.Errorf("docker source %+v", v.Sources[0])
	}
	if e := v.Sources[1]; e.Name != "etcd" || e.Connected || e.Error != "context deadline exceeded" || e.LastEvent != "" {
		t.Errorf("etcd source %+v", e)
	}
	body := render(t, v)
	for _, want := range []string{
		`<span class="st ok">applied</span></td><td data-label="how" class="nw">reload</td>`,
		`<span class="st ok">updated</span></td><td data-label="how" class="nw">runtime API</td>`,
		`<span class="st bad">check_failed</span>`,
		"unknown keyword &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;",
		"quarantined: bad.example.com",
		"<li>site0001.example.com/ 10.0.1.3:80 (Web-0001-b)</li>",
		`<strong>docker</strong></td><td data-label="state"><span class="st ok">connected</span>`,
		`<span class="st bad">not connected</span> <span class="bad small">context deadline exceeded</span>`,
		"last apply: check_failed 3s ago",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("raw <script> in the page")
	}
}

func TestDashboardGatewaysAndACME(t *testing.T) {
	type gw struct {
		ID        string    `json:"id"`
		Hostname  string    `json:"hostname"`
		State     string    `json:"state"`
		SHA256    string    `json:"sha256"`
		AppliedAt time.Time `json:"appliedAt"`
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := routesDoc{Gateways: []gw{{"gw1", "edge-1", "agrees", strings.Repeat("ab", 32), at}, {"gw2", "edge-2", "lags", "00", at}},
		ACME: []map[string]any{{"name": "shop", "names": []string{"shop.example.com", "www.shop.example.com"}, "lastError": "rate limited"}}}
	v := newDashboard(d, parseDashParams(nil), nil, at)
	g := v.Gateways
	if g == nil || g.Error != "" || strings.Join(g.Columns, ",") != "id,hostname,state,appliedAt,sha256" || len(g.Rows) != 2 {
		t.Fatalf("gateways %+v", g)
	}
	if r := g.Rows[1]; r[2].Text != "lags" || !r[2].Bad || g.Rows[0][2].Bad || g.Rows[0][4].Text != "abababababab…" || r[3].Text != "2025-01-02 03:04:05 UTC" {
		t.Errorf("gateway rows %+v", g.Rows)
	}
	if a := v.ACME; a == nil || a.Rows[0][1].Text != "shop.example.com, www.shop.example.com" || !a.Rows[0][2].Bad {
		t.Errorf("acme %+v", v.ACME)
	}
	body := render(t, v)
	if !strings.Contains(body, `id="gateways"`) || !strings.Contains(body, `id="acme"`) || !strings.Contains(body, `<td data-label="state" class="bad">lags</td>`) {
		t.Errorf("the page lacks the gateways or ACME")
	}
	// The error server.go puts in when etcd does not answer; no ACME client, or no certificate: no section.
	v = newDashboard(routesDoc{Gateways: map[string]string{"error": "etcd: context deadline exceeded"}, ACME: []map[string]any{}}, parseDashParams(nil), nil, at)
	if v.Gateways == nil || v.Gateways.Error != "etcd: context deadline exceeded" || v.ACME != nil {
		t.Errorf("gateways %+v acme %+v", v.Gateways, v.ACME)
	}
	if body := render(t, newDashboard(routesDoc{}, parseDashParams(nil), nil, at)); strings.Contains(body, `id="gateways"`) || strings.Contains(body, `id="acme"`) {
		t.Errorf("sections without etcd or ACME")
	}
}

// TestDashboardEscaping: hostile names and a hostile search come out as text, everywhere.
func TestDashboardEscaping(t *testing.T) {
	s := &State{}
	tab := testTable(2)
	tab.Sites[0].Routes[0].Backend.Servers[0].Workload = hostile
	tab.Sites[0].Routes[0].Backend.Servers[0].ViaDetail = `network "><img src=x onerror=alert(3)>`
	tab.Problems = append(tab.Problems, routing.Problem{Workload: hostile, Setting: "VIRTUAL_HOST", Value: hostile, Reason: "bad"})
	s.SetTable(tab, 1)
	s.SourceSeen(hostile, true, time.Now())
	s.SetServerStates("HAProxy "+hostile, func(context.Context) (explain.States, error) {
		return explain.States{explain.Key("site0000.example.com", "srv-a"): {Status: "DOWN", Check: "L7STS", CheckDetail: hostile, Since: 1}}, nil
	})
	h := Handler(s, NewMetrics())
	for _, target := range []string{"/routes", "/routes?q=" + url.QueryEscape(hostile), "/routes?q=%22%3E%3Cscript%3Ealert(4)%3C%2Fscript%3E"} {
		code, ctype, body := serve(h, target, "text/html")
		if code != 200 || !strings.HasPrefix(ctype, "text/html") {
			t.Fatalf("%s: %d %s", target, code, ctype)
		}
		if regexp.MustCompile(`(?i)<script|<img`).MatchString(body) {
			t.Errorf("%s: a raw tag in the page", target)
		}
		if target == "/routes" {
			for _, want := range []string{
				"&lt;script&gt;alert(1)&lt;/script&gt;", // the workload, the problem, the source, the check
				`href="?workload=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"`,
				"&lt;img src=x onerror=alert(3)&gt;",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("%s lacks %q", target, want)
				}
			}
		}
	}
	_, _, body := serve(h, "/routes?q="+url.QueryEscape(`"><script>`), "text/html")
	if !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;"`) {
		t.Errorf("the search box does not hold the escaped search")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withAccept(httptest.NewRequest("GET", "/routes", nil), "text/html"))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func withAccept(r *http.Request, accept string) *http.Request {
	r.Header.Set("Accept", accept)
	return r
}

func serve(h http.Handler, target, accept string) (int, string, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, withAccept(httptest.NewRequest("GET", target, nil), accept))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header().Get("Content-Type"), string(b)
}

// TestRoutesJSONSearchAndLive: ?q= narrows the JSON as the page; ?live=1 adds the states; neither
// leaves the JSON as it was.
func TestRoutesJSONSearchAndLive(t *testing.T) {
	s := &State{}
	tab := testTable(30)
	s.SetTable(tab, 1)
	h := Handler(s, NewMetrics())
	decode := func(target string) map[string]json.RawMessage {
		t.Helper()
		code, ctype, body := serve(h, target, "")
		if code != 200 || !strings.HasPrefix(ctype, "application/json") {
			t.Fatalf("%s: %d %s", target, code, ctype)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		return m
	}
	count := func(raw json.RawMessage) int {
		var l []any
		json.Unmarshal(raw, &l)
		return len(l)
	}
	m := decode("/routes?format=json")
	if _, ok := m["live"]; ok || count(m["sites"]) != 30 || count(m["problems"]) != 3 {
		t.Errorf("plain JSON: live present %v, %d sites, %d problems", ok, count(m["sites"]), count(m["problems"]))
	}
	m = decode("/routes?format=json&q=WEB-0012")
	if count(m["sites"]) != 1 || count(m["problems"]) != 0 || string(m["q"]) != `"WEB-0012"` || count(m["applies"]) != 0 || m["sources"] == nil {
		t.Errorf("q: %d sites, %d problems, q %s", count(m["sites"]), count(m["problems"]), m["q"])
	}
	// nginx: live=1 says there are none.
	m = decode("/routes?format=json&live=1")
	var live liveDoc
	json.Unmarshal(m["live"], &live)
	if live.None == "" || len(live.States) != 0 || count(m["sites"]) != 30 {
		t.Errorf("live=1 without states: %s", m["live"])
	}
	s.SetServerStates("HAProxy runtime API /x", func(context.Context) (explain.States, error) { return states(tab, "Web-0007-a"), nil })
	m = decode("/routes?format=json&live=1")
	live = liveDoc{}
	json.Unmarshal(m["live"], &live)
	if live.From != "HAProxy runtime API /x" || len(live.States) != 60 || live.States["site0007.example.com/srv-a"].Status != "DOWN" {
		t.Errorf("live=1: %s", m["live"])
	}
	if m = decode("/routes?format=json&down=1"); count(m["sites"]) != 1 {
		t.Errorf("down=1: %d sites", count(m["sites"]))
	}
}

func render(t testing.TB, v *dashboard) string {
	t.Helper()
	var b strings.Builder
	if err := dashboardPage.Execute(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// benchState is 5,000 sites (10,000 servers), 500 problems, 20 applies, two sources and live
// states with one server DOWN.
func benchState(b *testing.B) http.Handler {
	tab := testTable(5000)
	s := &State{}
	s.SetTable(tab, 42)
	hist := history.New(20)
	for i := range 25 {
		hist.Add(history.Entry{At: time.Now(), Result: "updated", Duration: time.Millisecond, Generation: uint64(i),
			Change: history.Change{ServersAdded: []string{fmt.Sprintf("site%04d.example.com/ 10.0.0.9:80 (w)", i)}}})
	}
	s.SetHistory(hist)
	s.SourceSeen("docker", true, time.Now())
	s.SourceSeen("swarm", false, time.Now())
	st := states(tab, "Web-4321-a")
	s.SetServerStates("HAProxy runtime API /x", func(context.Context) (explain.States, error) { return st, nil })
	h := Handler(s, NewMetrics())
	if code, _, body := serve(h, "/routes", "text/html"); code != 200 || !strings.Contains(body, "site0199.example.com") || strings.Contains(body, "site0200.example.com") {
		b.Fatalf("page 1: %d", code)
	}
	return h
}

func benchPage(b *testing.B, target string) {
	h := benchState(b)
	req := withAccept(httptest.NewRequest("GET", target, nil), "text/html")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
}

// BenchmarkDashboard5000: the first page (200 sites) of a 5,000-site table, with live states.
func BenchmarkDashboard5000(b *testing.B) { benchPage(b, "/routes") }

// BenchmarkDashboard5000Search: a search through the 5,000 sites' hosts, workloads and addresses.
func BenchmarkDashboard5000Search(b *testing.B) { benchPage(b, "/routes?q=web-432") }

// BenchmarkDashboard5000Down: the sites with a server not UP, out of 5,000.
func BenchmarkDashboard5000Down(b *testing.B) { benchPage(b, "/routes?down=1") }
