package admin_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

const script = "<script>alert(1)</script>"

// get serves one request and returns the status, the Content-Type and the body.
func get(t *testing.T, h http.Handler, method, target, accept string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, rec.Header().Get("Content-Type"), string(body)
}

// wl is a docker workload on the "proxy" network at ip, exposing 80/tcp, with env settings.
func wl(name, ip string, env map[string]string) discovery.Workload {
	return discovery.Workload{
		ID:       "id-" + name,
		Name:     name,
		Source:   "docker",
		Env:      env,
		Networks: []discovery.Network{{Name: "proxy", ID: "net-proxy", IP: ip}},
		Ports:    []discovery.Port{{Port: 80, Proto: "tcp"}},
	}
}

// table is two sites and one problem whose value is a script tag.
func table() routing.Table {
	return routing.Build([]discovery.Workload{
		wl("web", "10.0.0.2", map[string]string{"VIRTUAL_HOST": "web.example.com"}),
		wl("api", "10.0.0.3", map[string]string{"VIRTUAL_HOST": "api.example.com", "VIRTUAL_PATH": "/v1"}),
		wl("evil", "10.0.0.4", map[string]string{"VIRTUAL_HOST": script}),
	}, routing.Options{ProxyNetworks: []string{"proxy", "edge"}})
}

func TestHealthz(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())

	code, _, body := get(t, h, http.MethodGet, "/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for the first config") {
		t.Fatalf("before any apply: %d %q, want 503 with a message", code, body)
	}

	s.SetApply(nil, time.Now())
	if code, _, body := get(t, h, http.MethodGet, "/healthz", ""); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("after a successful apply: %d %q, want 200 ok", code, body)
	}

	s.SetApply(errors.New("reload failed: nginx: [emerg] unknown directive"), time.Now())
	code, _, body = get(t, h, http.MethodGet, "/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nginx: [emerg] unknown directive") {
		t.Fatalf("after a failed apply: %d %q, want 503 with the error", code, body)
	}

	s.SetApply(nil, time.Now())
	if code, _, body := get(t, h, http.MethodGet, "/healthz", ""); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("after recovering: %d %q, want 200 ok", code, body)
	}
}

func TestHealthzFailureBeforeFirstApply(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())
	s.SetApply(errors.New("template: boom"), time.Now())
	code, _, body := get(t, h, http.MethodGet, "/healthz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "template: boom") {
		t.Fatalf("failed first apply: %d %q, want 503 with the error", code, body)
	}
}

func TestOnlyGET(t *testing.T) {
	h := admin.Handler(&admin.State{}, admin.NewMetrics())
	for _, path := range []string{"/healthz", "/routes", "/metrics"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			req := httptest.NewRequest(method, path, strings.NewReader("x"))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, rec.Code)
			}
			if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") {
				t.Errorf("%s %s: Allow = %q, want GET in it", method, path, allow)
			}
		}
	}
	if code, _, _ := get(t, h, http.MethodGet, "/nope", ""); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}
}

// routesJSON decodes /routes as JSON into a generic map, so that the test sees nulls.
func routesJSON(t *testing.T, h http.Handler, target, accept string) map[string]any {
	t.Helper()
	code, ctype, body := get(t, h, http.MethodGet, target, accept)
	if code != http.StatusOK {
		t.Fatalf("GET %s (Accept %q) = %d %q", target, accept, code, body)
	}
	if !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("GET %s (Accept %q): Content-Type %q, want JSON", target, accept, ctype)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, body)
	}
	return doc
}

func TestRoutesJSONEmpty(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())
	for _, tc := range []struct{ target, accept string }{
		{"/routes", ""},
		{"/routes?format=json", ""},
		{"/routes?format=json", "text/html"},
		{"/routes", "application/json"},
	} {
		doc := routesJSON(t, h, tc.target, tc.accept)
		for _, key := range []string{"sites", "problems"} {
			v, ok := doc[key]
			if !ok {
				t.Fatalf("%s: no %q key: %v", tc.target, key, doc)
			}
			if arr, isArr := v.([]any); !isArr || len(arr) != 0 {
				t.Fatalf("%s: %q = %#v, want an empty array (not null)", tc.target, key, v)
			}
		}
		if g, ok := doc["generation"]; !ok || g != float64(0) {
			t.Fatalf("%s: generation = %#v, want 0", tc.target, g)
		}
		// Unknown proxy networks are null, and the key is there.
		if v, ok := doc["proxyNetworks"]; !ok || v != nil {
			t.Fatalf("%s: proxyNetworks = %#v (present %v), want null", tc.target, v, ok)
		}
	}

	// An empty table from Build has the arrays too.
	s.SetTable(routing.Build(nil, routing.Options{}), 1)
	doc := routesJSON(t, h, "/routes", "")
	for _, key := range []string{"sites", "problems"} {
		if arr, ok := doc[key].([]any); !ok || len(arr) != 0 {
			t.Fatalf("%q = %#v, want an empty array", key, doc[key])
		}
	}
}

func TestRoutesJSON(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())
	s.SetTable(table(), 7)
	s.SetApply(errors.New("reload failed: boom"), time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))

	doc := routesJSON(t, h, "/routes?format=json", "")
	if doc["generation"] != float64(7) {
		t.Fatalf("generation = %#v, want 7", doc["generation"])
	}
	if doc["lastError"] != "reload failed: boom" {
		t.Fatalf("lastError = %#v, want the apply's error", doc["lastError"])
	}
	if doc["lastApply"] != "2024-05-06T07:08:09Z" {
		t.Fatalf("lastApply = %#v", doc["lastApply"])
	}
	nets, ok := doc["proxyNetworks"].([]any)
	if !ok || len(nets) != 2 || nets[0] != "edge" || nets[1] != "proxy" {
		t.Fatalf("proxyNetworks = %#v, want [edge proxy]", doc["proxyNetworks"])
	}

	// The typed view: the same table back.
	_, _, body := get(t, h, http.MethodGet, "/routes", "")
	var typed struct {
		Generation uint64            `json:"generation"`
		Sites      []routing.Site    `json:"sites"`
		Problems   []routing.Problem `json:"problems"`
	}
	if err := json.Unmarshal([]byte(body), &typed); err != nil {
		t.Fatal(err)
	}
	if len(typed.Sites) != 2 || typed.Sites[0].Host != "api.example.com" || typed.Sites[1].Host != "web.example.com" {
		t.Fatalf("sites = %+v", typed.Sites)
	}
	if r := typed.Sites[0].Routes; len(r) != 1 || r[0].Path != "/v1" || len(r[0].Backend.Servers) != 1 || r[0].Backend.Servers[0].Address != "10.0.0.3:80" {
		t.Fatalf("api.example.com routes = %+v", r)
	}
	if len(typed.Problems) != 1 || typed.Problems[0].Workload != "evil" || typed.Problems[0].Value != script {
		t.Fatalf("problems = %+v", typed.Problems)
	}

	// After a successful apply, lastError is gone.
	s.SetApply(nil, time.Now())
	doc = routesJSON(t, h, "/routes", "")
	if v, ok := doc["lastError"]; ok && v != "" {
		t.Fatalf("lastError after success = %#v, want none", v)
	}
}

func TestRoutesHTML(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())
	tab := table()
	// Hand-made parts that Build would never produce, to prove escaping everywhere.
	tab.Problems = append(tab.Problems, routing.Problem{Reason: "reason " + script})
	tab.Sites = append(tab.Sites, routing.Site{Host: "x.example.com", Routes: []routing.Route{{
		Path: "/", Backend: routing.Backend{Name: "x", Proto: "http", Servers: []routing.Server{{
			Address: "10.0.0.9:80", IP: "10.0.0.9", Port: 80, Weight: 1, Workload: `<img src=x onerror="alert(2)">`,
		}}},
	}}})
	s.SetTable(tab, 3)
	s.SetApply(errors.New("check failed: "+script), time.Now())

	code, ctype, body := get(t, h, http.MethodGet, "/routes", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("Content-Type = %q, want text/html", ctype)
	}
	for _, want := range []string{
		"api.example.com", "web.example.com", "x.example.com", // hosts
		"10.0.0.2:80", "10.0.0.3:80", "10.0.0.9:80", // server addresses
		"/v1",
		"container evil: VIRTUAL_HOST", // the problem
		"generation 3",
		"edge, proxy",
		"Problems (2)",
		"last apply ",
		"last apply failed: check failed: &lt;script&gt;",
		"&lt;script&gt;alert(1)&lt;/script&gt;",
		"&lt;img src=x onerror=",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", "<img"} {
		if strings.Contains(body, bad) {
			t.Errorf("HTML contains raw %q: not escaped", bad)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", body)
	}
}

func TestRoutesHTMLEmpty(t *testing.T) {
	h := admin.Handler(&admin.State{}, admin.NewMetrics())
	code, _, body := get(t, h, http.MethodGet, "/routes", "text/html")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{"no sites", "Problems (0)", "generation 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML lacks %q:\n%s", want, body)
		}
	}
}

func TestMetrics(t *testing.T) {
	m := admin.NewMetrics()
	h := admin.Handler(&admin.State{}, m)
	m.Reloads.Inc()
	m.Reloads.Inc()
	m.DockerRequests.WithLabelValues("inspect").Inc()
	m.Applies.WithLabelValues("unchanged").Inc()
	m.Sites.Set(4)

	code, ctype, body := get(t, h, http.MethodGet, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("Content-Type = %q, want the Prometheus text format", ctype)
	}
	for _, want := range []string{
		"# TYPE vhostgen_reloads_total counter",
		"vhostgen_reloads_total 2",
		`vhostgen_docker_api_requests_total{op="inspect"} 1`,
		`vhostgen_applies_total{result="unchanged"} 1`,
		"vhostgen_sites 4",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", body)
	}
}
