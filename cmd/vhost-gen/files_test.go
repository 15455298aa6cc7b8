package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestRetireNginxProxyConfig: nginx-proxy's generated default.conf beside --out is moved aside
// (nginx would load both); any other default.conf is the operator's and stays.
func TestRetireNginxProxyConfig(t *testing.T) {
	for _, c := range []struct {
		content string
		moved   bool
	}{
		{"# nginx-proxy version : 1.6.4\nmap $http_x_forwarded_proto $proxy_x_forwarded_proto {\n", true},
		{"server { listen 8080; }\n", false},
	} {
		dir := t.TempDir()
		old := filepath.Join(dir, "default.conf")
		os.WriteFile(old, []byte(c.content), 0o644)
		a := &app{cfg: &Config{Proxy: "nginx", Out: filepath.Join(dir, "vhost-gen.conf")}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		a.retireNginxProxyConfig()
		_, errOld := os.Stat(old)
		_, errMoved := os.Stat(old + ".nginx-proxy")
		if moved := errOld != nil && errMoved == nil; moved != c.moved {
			t.Errorf("%q: moved %v, want %v", c.content[:20], moved, c.moved)
		}
	}
	// --out is default.conf itself (the dockergen image): it is vhost-gen's own file.
	dir := t.TempDir()
	out := filepath.Join(dir, "default.conf")
	os.WriteFile(out, []byte("# nginx-proxy version : 1.6.4\n"), 0o644)
	a := &app{cfg: &Config{Proxy: "nginx", Out: out}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.retireNginxProxyConfig()
	if _, err := os.Stat(out); err != nil {
		t.Errorf("--out itself was moved: %v", err)
	}
}
