package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultHostAddress(t *testing.T) {
	tests := map[string]string{
		"unix:///var/run/docker.sock":       "127.0.0.1",
		"unix:///run/user/1000/docker.sock": "127.0.0.1",
		"tcp://10.1.2.3:2376":               "10.1.2.3",
		"tcp://docker.example.com:2375":     "docker.example.com",
		"tcp://[fd00::1]:2376":              "fd00::1",
		"http://10.1.2.4:2375":              "10.1.2.4",
		"https://10.1.2.5:2376":             "10.1.2.5",
		"npipe:////./pipe/docker_engine":    "127.0.0.1",
		"":                                  "127.0.0.1",
		"tcp://:2375":                       "127.0.0.1", // no host: this machine
		"::not a url":                       "127.0.0.1",
	}
	for host, want := range tests {
		if got := defaultHostAddress(host); got != want {
			t.Errorf("defaultHostAddress(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for _, ok := range []string{"80", "8080", "127.0.0.1:80", "0.0.0.0:8080", "[::]:80", "[::1]:8080", "[fd00::1]:80"} {
		if err := checkListen(ok); err != nil {
			t.Errorf("checkListen(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "80; evil", "80 default_server", "80;", "80\n", "localhost:80", "$port", "{80}", `"80"`, "80 reuseport"} {
		err := checkListen(bad)
		if err == nil {
			t.Errorf("checkListen(%q) accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "--listen") {
			t.Errorf("checkListen(%q) = %v, want an error naming --listen", bad, err)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&Config{LogLevel: "warn", LogFormat: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "shown" || rec["k"] != "v" {
		t.Errorf("json log %q (%v)", buf.String(), err)
	}
	buf.Reset()
	log, err = newLogger(&Config{LogLevel: "DEBUG", LogFormat: "text"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text log %q", buf.String())
	}
	if !log.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("debug not enabled")
	}
	for _, c := range []*Config{{LogLevel: "loud", LogFormat: "text"}, {LogLevel: "info", LogFormat: "xml"}, {LogLevel: "info"}} {
		if _, err := newLogger(c, &buf); err == nil {
			t.Errorf("newLogger(%+v) accepted", *c)
		}
	}
}

func TestApplier(t *testing.T) {
	tests := []struct {
		name              string
		cfg               Config
		wantCheck, reload bool
		err               string
	}{
		{"nginx defaults", Config{Proxy: "nginx", ReloadSignal: "HUP"}, true, true, ""},
		{"none and none", Config{Proxy: "nginx", CheckCmd: "none", ReloadCmd: "none", ReloadSignal: "HUP"}, false, false, ""},
		{"custom", Config{Proxy: "nginx", CheckCmd: "true {{.File}}", ReloadCmd: "true", ReloadSignal: "HUP"}, true, true, ""},
		{"pidfile", Config{Proxy: "nginx", CheckCmd: "none", ReloadPidfile: "/run/nginx.pid", ReloadSignal: "HUP"}, false, true, ""},
		{"container", Config{Proxy: "nginx", ReloadContainer: "proxy", ReloadSignal: "USR1"}, true, true, ""},
		{"container label", Config{Proxy: "nginx", ReloadContainerLabel: "role=proxy", ReloadSignal: "HUP"}, true, true, ""},
		{"haproxy defaults", Config{Proxy: "haproxy", HAProxySocket: "/run/haproxy/admin.sock", HAProxyRuntimeAPI: true}, true, true, ""},
		{"no proxy, no defaults", Config{Proxy: "other"}, false, false, ""},
		{"two reloads", Config{Proxy: "nginx", ReloadContainer: "p", ReloadContainerLabel: "k=v", ReloadSignal: "HUP"}, false, false, "choose one"},
		{"bad signal", Config{Proxy: "nginx", ReloadSignal: "NOPE"}, false, false, "--reload-signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Out = "/tmp/vhost-gen-test.conf"
			ap, err := (&app{cfg: &cfg}).applier()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ap.Path != cfg.Out {
				t.Errorf("Path = %q", ap.Path)
			}
			if (ap.Hot != nil) != (cfg.Proxy == "haproxy") {
				t.Errorf("runtime API set %v, want it for haproxy only", ap.Hot != nil)
			}
			if (ap.Check != nil) != tt.wantCheck || (ap.Reload != nil) != tt.reload {
				t.Errorf("check set %v (want %v), reload set %v (want %v)", ap.Check != nil, tt.wantCheck, ap.Reload != nil, tt.reload)
			}
		})
	}
}

// fakeEngine serves the Docker source's captured fixtures (list and inspects) as an engine would.
func fakeEngine(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "discovery", "docker", "testdata")
	list, err := os.ReadFile(filepath.Join(dir, "list.json"))
	if err != nil {
		t.Fatal(err)
	}
	inspect := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Id string }
		if json.Unmarshal(b, &head) == nil && head.Id != "" {
			inspect[head.Id] = b
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		p := strings.TrimPrefix(r.URL.Path, "/v1.41")
		if p == "/containers/json" {
			w.Write(list)
			return
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(p, "/containers/"), "/json"); ok {
			if b, ok := inspect[id]; ok {
				w.Write(b)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"not found"}`))
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}

func runAgainst(t *testing.T, engine string, args ...string) (int, string, string) {
	t.Helper()
	silenceStderr(t)
	cleanEnv(t)
	noEngine(t)
	t.Setenv("DOCKER_HOST", engine)
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return code, o.String(), e.String()
}

// render and routes read the source once, against an engine serving the captured containers.
func TestRunRenderAndRoutesAgainstFakeEngine(t *testing.T) {
	engine := fakeEngine(t)

	// Outside the proxy's container vhost-gen needs the proxy's networks to reach vgt-plain and
	// vgt-multinet (only vgt-published and vgt-hostnet are reachable by the host's address).
	common := []string{"--log-level", "error", "--proxy-networks", "bridge"}
	code, out, errOut := runAgainst(t, engine, append([]string{"routes"}, common...)...)
	if code != 0 {
		t.Fatalf("routes: exit %d, stderr %q", code, errOut)
	}
	for _, host := range []string{"a.test", "pub.test", "multi.test"} {
		if !strings.Contains(out, host) {
			t.Errorf("routes output lacks %s:\n%s", host, out)
		}
	}
	for _, host := range []string{"paused.test", "created.test", "exited.test", "sick.test", "starting.test"} {
		if strings.Contains(out, host) {
			t.Errorf("routes lists %s, which cannot serve:\n%s", host, out)
		}
	}

	code, out, errOut = runAgainst(t, engine, append([]string{"routes", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("routes --json: exit %d, stderr %q", code, errOut)
	}
	var table struct {
		Sites []struct {
			Host string `json:"host"`
		} `json:"sites"`
		Problems []json.RawMessage `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &table); err != nil || len(table.Sites) == 0 {
		t.Fatalf("routes --json output does not decode to sites (%v):\n%s", err, out)
	}

	code, out, errOut = runAgainst(t, engine, append([]string{"render"}, common...)...)
	if code != 0 || !strings.Contains(out, "server_name a.test;") || !strings.Contains(out, "172.17.0.4:80") ||
		!strings.Contains(out, "172.17.0.5:80") || !strings.Contains(out, "127.0.0.1:18083") {
		t.Errorf("render to stdout: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}

	dst := filepath.Join(t.TempDir(), "vhost-gen.conf")
	code, fileOut, errOut := runAgainst(t, engine, append([]string{"render", "--out", dst}, common...)...)
	if code != 0 || fileOut != "" {
		t.Fatalf("render --out: exit %d, stdout %q, stderr %q", code, fileOut, errOut)
	}
	b, err := os.ReadFile(dst)
	if err != nil || string(b) != out {
		t.Errorf("render --out wrote %d bytes (%v), different from render to stdout", len(b), err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("rendered file mode: %v %v", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*staged*")); len(left) != 0 {
		t.Errorf("staged files left behind: %v", left)
	}
}

// silenceStderr sends the process's own stderr to a file for the test: render and routes print
// the problems there (not to the writer run was given).
func silenceStderr(t *testing.T) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = f
	t.Cleanup(func() { os.Stderr = old; f.Close() })
}

func TestCheckHostAddress(t *testing.T) {
	for _, ok := range []string{"", "10.0.0.1", "::1", "docker-host.example.com"} {
		if err := checkHostAddress(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"1.2.3.4; include x", "*.example.com", "a b", "host{"} {
		if err := checkHostAddress(bad); err == nil || !strings.Contains(err.Error(), "--host-address") {
			t.Errorf("%q: want an error naming --host-address, got %v", bad, err)
		}
	}
}

func TestDuplicateSourceIsOne(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseConfig("routes", []string{"--source", "docker", "--source", "docker"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.sources) != 1 {
		t.Fatalf("want one docker source, got %d", len(a.sources))
	}
}

func TestUnknownProxyWithTemplate(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parseConfig("render", []string{"--proxy", "traefik", "--template", "/dev/null"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(cfg, &stderr); err == nil || !strings.Contains(err.Error(), "--proxy") {
		t.Fatalf("want an error naming --proxy, got %v", err)
	}
}

// The ports clients reach: either flag set, the other is its listen port; redirects to HTTPS name
// the external one.
func TestExternalPorts(t *testing.T) {
	cleanEnv(t)
	for _, tc := range []struct {
		args                  []string
		http, https, redirect int
	}{
		{args: nil, http: 0, https: 0, redirect: 8443},
		{args: []string{"--external-https-port", "10443"}, http: 8080, https: 10443, redirect: 10443},
		{args: []string{"--external-http-port", "80"}, http: 80, https: 8443, redirect: 8443},
		{args: []string{"--external-http-port", "80", "--external-https-port", "443"}, http: 80, https: 443, redirect: 443},
	} {
		var stderr bytes.Buffer
		args := append([]string{"--listen", "127.0.0.1:8080", "--listen-https", "8443", "--certs-dir", t.TempDir(), "--acme=false"}, tc.args...)
		cfg, err := parseConfig("render", args, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		a, err := newApp(cfg, &stderr)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if o := a.renderOpts; o.ExternalHTTPPort != tc.http || o.ExternalHTTPSPort != tc.https || a.routing.TLS.HTTPSPort != tc.redirect {
			t.Errorf("%q: external ports %d, %d, redirects to %d; want %d, %d, %d", tc.args,
				o.ExternalHTTPPort, o.ExternalHTTPSPort, a.routing.TLS.HTTPSPort, tc.http, tc.https, tc.redirect)
		}
	}
}
