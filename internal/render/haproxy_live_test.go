package render

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// The tests in this file render a table whose servers are httptest servers on 127.0.0.1, run the
// real HAProxy on the rendered config, and send it requests.

// liveBackend is one httptest server standing for a workload. It answers with who it is and what
// it received.
type liveBackend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func (b *liveBackend) port() int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }

func newLiveBackend(t *testing.T, name string, tls bool) *liveBackend {
	t.Helper()
	b := &liveBackend{name: name}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Served-By", name)
		w.Header().Set("X-Got-URI", r.RequestURI)
		w.Header().Set("X-Got-Host", r.Host)
		w.Header().Set("X-Got-XFF", strings.Join(r.Header.Values("X-Forwarded-For"), ", "))
		w.Header().Set("X-Got-XFP", strings.Join(r.Header.Values("X-Forwarded-Proto"), ", "))
		w.Header().Set("X-Got-XFH", strings.Join(r.Header.Values("X-Forwarded-Host"), ", "))
		w.Header().Set("X-Got-XFSsl", strings.Join(r.Header.Values("X-Forwarded-Ssl"), ", "))
		w.Header().Set("X-Got-XFPort", strings.Join(r.Header.Values("X-Forwarded-Port"), ", "))
		if r.URL.Query().Get("sts") != "" { // a backend that sends HSTS of its own
			w.Header().Set("Strict-Transport-Security", "backend")
		}
		if r.TLS != nil {
			w.Header().Set("X-Got-SNI", r.TLS.ServerName)
		}
		io.WriteString(w, name)
	})
	if tls {
		b.srv = httptest.NewTLSServer(h)
	} else {
		b.srv = httptest.NewServer(h)
	}
	t.Cleanup(b.srv.Close)
	return b
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a child's output while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startHAProxy writes cfg, has haproxy check it, and runs it in the foreground until the test
// ends; it returns once HAProxy accepts connections at ready, with HAProxy's output so far and to
// come.
func startHAProxy(t *testing.T, cfg []byte, ready string) *lockedBuffer {
	t.Helper()
	requireBinary(t, "haproxy")
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := apply.Run(context.Background(), []string{"haproxy", "-dW", "-c", "-f", file}); err != nil {
		t.Fatalf("haproxy -c rejects the rendered config: %v\n%s", err, cfg)
	}
	var out lockedBuffer
	cmd := exec.Command("haproxy", "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("haproxy's output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("haproxy exited at start: %v\n%s", err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", ready, 100*time.Millisecond); err == nil {
			c.Close()
			return &out
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not accept connections at %s after 10s:\n%s", ready, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveResponse is what a test needs from one answer.
type liveResponse struct {
	status int
	header http.Header
	body   string
}

func (r liveResponse) servedBy() string { return r.header.Get("X-Served-By") }

func liveGet(t *testing.T, client *http.Client, addr, host, path string, header ...string) liveResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return liveResponse{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// tcpEcho is a TCP server that echoes one line per connection.
func tcpEcho(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, "echo: "+line)
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHAProxyLive(t *testing.T) {
	requireBinary(t, "haproxy")
	backends := map[string]*liveBackend{}
	port := func(name string) int {
		if backends[name] == nil {
			backends[name] = newLiveBackend(t, name, name == "secure")
		}
		return backends[name].port()
	}
	const lo = "127.0.0.1"
	listenPort, statsPort, tcpPort := freePort(t), freePort(t), freePort(t)
	listen := lo + ":" + strconv.Itoa(listenPort)
	stats := lo + ":" + strconv.Itoa(statsPort)
	ws := []discovery.Workload{
		// Host order: exact, then "*.x" longest first, then "x.*" longest first.
		ctr("exact", lo, host("shop.example.com"), port("exact")),
		ctr("star-shop", lo, host("*.shop.example.com"), port("star-shop")),
		ctr("star-example", lo, host("*.example.com"), port("star-example")),
		ctr("www-example-tld", lo, host("www.example.*"), port("www-example-tld")),
		ctr("www-tld", lo, host("www.*"), port("www-tld")),
		// Paths: longest prefix first; DEST rewrites.
		ctr("app-root", lo, host("app.example.com"), port("app-root")),
		ctr("app-api", lo, with(host("app.example.com"), "VIRTUAL_PATH", "/api/", "VIRTUAL_DEST", "/"), port("app-api")),
		ctr("app-api-v2", lo, with(host("app.example.com"), "VIRTUAL_PATH", "/api/v2/"), port("app-api-v2")),
		ctr("app-legacy", lo, with(host("app.example.com"), "VIRTUAL_PATH", "/old%20name/", "VIRTUAL_DEST", "/new%20name/"), port("app-legacy")),
		// No "/" route: 404 elsewhere, never the "*.example.com" site.
		ctr("docs", lo, with(host("docs.example.com"), "VIRTUAL_PATH", "/v2/"), port("docs")),
		// Sticky, weights, https.
		ctr("cart-1", lo, with(host("cart.example.com"), "VIRTUAL_STICKY", "SID"), port("cart-1")),
		ctr("cart-2", lo, with(host("cart.example.com"), "VIRTUAL_STICKY", "SID"), port("cart-2")),
		ctr("canary-live", lo, with(host("canary.example.com"), "VIRTUAL_WEIGHT", "1"), port("canary-live")),
		ctr("canary-drained", lo, with(host("canary.example.com"), "VIRTUAL_WEIGHT", "0"), port("canary-drained")),
		ctr("secure", lo, with(host("secure.example.com"), "VIRTUAL_PROTO", "https"), port("secure")),
		// A TCP service.
		replica(ctr("echo", lo, map[string]string{"VIRTUAL_TCP_PORT": strconv.Itoa(tcpPort)}, tcpEcho(t)), "echo", t0),
	}
	table := routing.Build(ws, routing.Options{ProxyNetworks: []string{"frontend"}, TCP: true,
		ReservedPorts: map[int]string{listenPort: "--listen", statsPort: "--haproxy-stats"}})
	if len(table.Problems) != 0 {
		t.Fatalf("problems: %v", table.Problems)
	}
	r, err := Load("haproxy", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := r.Render(NewData(table, Options{Listen: listen, Runtime: filepath.Join(t.TempDir(), "admin.sock"), Stats: stats}))
	if err != nil {
		t.Fatal(err)
	}
	startHAProxy(t, cfg, listen)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	t.Run("routing", func(t *testing.T) {
		for _, c := range []struct {
			host, path string
			status     int
			servedBy   string
			uri        string // what the backend receives; "": the path as sent
		}{
			{"shop.example.com", "/", 200, "exact", ""},
			{"SHOP.Example.COM:" + strconv.Itoa(listenPort), "/x", 200, "exact", ""},
			{"shop.example.com.", "/", 200, "exact", ""},        // a fully qualified name, as nginx takes it
			{"a.shop.example.com", "/", 200, "star-shop", ""},   // longer "*.x" first
			{"a.b.shop.example.com", "/", 200, "star-shop", ""}, // "*.x" spans labels, as in nginx
			{"shop2.example.com", "/", 200, "star-example", ""},
			{"www.example.com", "/", 200, "star-example", ""}, // "*.x" beats "x.*"
			{"www.example.org", "/", 200, "www-example-tld", ""},
			{"www.other.org", "/", 200, "www-tld", ""},
			{"app.example.com", "/", 200, "app-root", ""}, // exact beats "*.example.com"
			{"app.example.com", "/api", 200, "app-root", ""},
			{"app.example.com", "/api/users?q=1", 200, "app-api", "/users?q=1"},
			{"app.example.com", "/api/", 200, "app-api", "/"},
			{"app.example.com", "/api/v2/users", 200, "app-api-v2", ""},
			{"app.example.com", "/api/v2", 200, "app-api", "/v2"},
			{"app.example.com", "/old%20name/a%2Fb", 200, "app-legacy", "/new%20name/a%2Fb"},
			{"docs.example.com", "/v2/intro", 200, "docs", ""},
			{"docs.example.com", "/", 404, "", ""},
			{"docs.example.com", "/other", 404, "", ""},
			{"unknown.test", "/", 503, "", ""},
			{"example.com", "/", 503, "", ""}, // "*.example.com" does not match the bare domain
			{lo, "/", 503, "", ""},
		} {
			got := liveGet(t, client, listen, c.host, c.path)
			if got.status != c.status || got.servedBy() != c.servedBy {
				t.Errorf("%s%s: %d from %q, want %d from %q (body %q)", c.host, c.path, got.status, got.servedBy(), c.status, c.servedBy, got.body)
				continue
			}
			want := c.uri
			if want == "" {
				want = c.path
			}
			if c.servedBy != "" && got.header.Get("X-Got-URI") != want {
				t.Errorf("%s%s: the backend got %q, want %q", c.host, c.path, got.header.Get("X-Got-URI"), want)
			}
		}
	})

	t.Run("forwarded headers", func(t *testing.T) {
		got := liveGet(t, client, listen, "shop.example.com", "/", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.test")
		for h, want := range map[string]string{
			"X-Got-XFF":  "127.0.0.1",
			"X-Got-XFP":  "http", // the client's own value is replaced
			"X-Got-XFH":  "shop.example.com",
			"X-Got-Host": "shop.example.com",
		} {
			if v := got.header.Get(h); v != want {
				t.Errorf("%s = %q, want %q", strings.TrimPrefix(h, "X-Got-"), v, want)
			}
		}
	})

	t.Run("https backend gets the host as SNI", func(t *testing.T) {
		got := liveGet(t, client, listen, "secure.example.com", "/")
		if got.status != 200 || got.servedBy() != "secure" || got.header.Get("X-Got-SNI") != "secure.example.com" {
			t.Errorf("got %d from %q with SNI %q", got.status, got.servedBy(), got.header.Get("X-Got-SNI"))
		}
	})

	t.Run("sticky", func(t *testing.T) {
		cookies := map[string]string{} // server → its cookie value
		for range 6 {
			got := liveGet(t, client, listen, "cart.example.com", "/")
			var value string
			for _, c := range (&http.Response{Header: got.header}).Cookies() {
				if c.Name == "SID" {
					value = c.Value
				}
			}
			if got.status != 200 || value == "" {
				t.Fatalf("got %d from %q, cookie %q; want 200 with a SID cookie", got.status, got.servedBy(), value)
			}
			if prev, ok := cookies[got.servedBy()]; ok && prev != value {
				t.Errorf("%s set SID=%s, then SID=%s: a server's cookie must be stable", got.servedBy(), prev, value)
			}
			cookies[got.servedBy()] = value
		}
		if len(cookies) != 2 || cookies["cart-1"] == cookies["cart-2"] {
			t.Fatalf("cookies by server %v: want one distinct value for each of cart-1 and cart-2", cookies)
		}
		for server, value := range cookies {
			for range 6 {
				got := liveGet(t, client, listen, "cart.example.com", "/", "Cookie", "SID="+value)
				if got.servedBy() != server {
					t.Fatalf("with SID=%s (%s's), served by %q", value, server, got.servedBy())
				}
			}
		}
	})

	t.Run("weight 0 gets nothing", func(t *testing.T) {
		before := backends["canary-drained"].hits.Load()
		for range 20 {
			if got := liveGet(t, client, listen, "canary.example.com", "/"); got.servedBy() != "canary-live" {
				t.Fatalf("served by %q (%d), want canary-live", got.servedBy(), got.status)
			}
		}
		if n := backends["canary-drained"].hits.Load() - before; n != 0 {
			t.Errorf("the weight-0 server got %d requests", n)
		}
	})

	t.Run("stats page on its address only", func(t *testing.T) {
		got := liveGet(t, client, stats, "anything", "/")
		if got.status != 200 || !strings.Contains(got.body, "Statistics Report") {
			t.Errorf("stats address %s: %d %.200q", stats, got.status, got.body)
		}
		if got := liveGet(t, client, listen, "anything", "/"); got.status != 503 || strings.Contains(got.body, "Statistics Report") {
			t.Errorf("HTTP address: %d %.200q; want the 503 for unknown hosts", got.status, got.body)
		}
		// Bound to 127.0.0.1, not to every address (Linux routes all of 127/8 to lo).
		if c, err := net.DialTimeout("tcp", "127.0.0.2:"+strconv.Itoa(statsPort), time.Second); err == nil {
			c.Close()
			t.Errorf("the stats page answers on 127.0.0.2 too")
		}
	})

	t.Run("tcp service", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(lo, strconv.Itoa(tcpPort)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "hello\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "echo: hello\n" {
			t.Errorf("read %q, %v; want the echo", line, err)
		}
	})
}

// TestHAProxyNoStatsByDefault: without Options.Stats there is no stats page.
func TestHAProxyNoStatsByDefault(t *testing.T) {
	r, err := Load("haproxy", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(NewData(routing.Build(scenarioNamed("two-hosts").workloads, opts), Options{Listen: "80", Runtime: "/run/haproxy/admin.sock"}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "stats enable") || strings.Contains(string(out), "stats uri") {
		t.Errorf("a stats page without Options.Stats:\n%s", out)
	}
}

// TestHAProxyDeadServers: two of a host's three servers die (their listeners close) after HAProxy
// has started with them up, as containers that died while still in this worker's list. Every
// request is retried until it reaches the live one, and each dead server leaves the rotation at
// its first failed connect on live traffic ("Health analyze"), long before three failed health
// checks could take it out.
func TestHAProxyDeadServers(t *testing.T) {
	requireBinary(t, "haproxy")
	const lo = "127.0.0.1"
	live, dead1, dead2 := newLiveBackend(t, "live", false), newLiveBackend(t, "dead-1", false), newLiveBackend(t, "dead-2", false)
	listen := lo + ":" + strconv.Itoa(freePort(t))
	ws := []discovery.Workload{
		ctr("dead-1", lo, host("shop.example.com"), dead1.port()),
		ctr("live", lo, host("shop.example.com"), live.port()),
		ctr("dead-2", lo, host("shop.example.com"), dead2.port()),
	}
	r, err := Load("haproxy", "")
	if err != nil {
		t.Fatal(err)
	}
	rt := &haproxy.Runtime{Socket: filepath.Join(t.TempDir(), "admin.sock")}
	cfg, err := r.Render(NewData(routing.Build(ws, routing.Options{ProxyNetworks: []string{"frontend"}}),
		Options{Listen: listen, Runtime: rt.Socket}))
	if err != nil {
		t.Fatal(err)
	}
	out := startHAProxy(t, cfg, listen)
	// Up means checked up: a server that fails its very first check is down at once.
	waitChecked(t, rt, "shop.example.com", 3)
	dead1.srv.Close()
	dead2.srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := range 6 {
		if r := liveGet(t, client, listen, "shop.example.com", "/"); r.status != 200 || r.servedBy() != "live" {
			t.Fatalf("request %d: %d from %q, want 200 from the live server", i, r.status, r.servedBy())
		}
	}
	for _, dead := range []string{"dead-1", "dead-2"} {
		want := regexp.MustCompile(`Server \S+/` + dead + ` is DOWN, reason: Health analyze`)
		ok := false
		for end := time.Now().Add(5 * time.Second); !ok && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			ok = want.MatchString(out.String())
		}
		if !ok {
			t.Errorf("%s was not taken out by its failed connect on live traffic; haproxy said:\n%s", dead, out.String())
		}
	}
}

// waitChecked waits until n servers of backend have passed a health check, from the runtime API's
// "show stat" (its check_status column).
func waitChecked(t *testing.T, rt *haproxy.Runtime, backend string, n int) {
	t.Helper()
	var stat string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var err error
		if stat, err = rt.Do(context.Background(), "show stat"); err != nil {
			continue
		}
		lines := strings.Split(strings.TrimPrefix(stat, "# "), "\n")
		col := slices.Index(strings.Split(lines[0], ","), "check_status")
		ok := 0
		for _, l := range lines[1:] {
			if f := strings.Split(l, ","); col >= 0 && len(f) > col && f[0] == backend && f[col] == "L4OK" {
				ok++
			}
		}
		if ok == n {
			return
		}
	}
	t.Fatalf("%d servers of %s did not pass a health check in 10s:\n%s", n, backend, stat)
}
