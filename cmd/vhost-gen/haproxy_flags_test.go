package main

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

const defaultSocket = "/run/haproxy/admin.sock"

func TestCheckHAProxy(t *testing.T) {
	ok := []struct {
		stats, socket string
		wantStats     string
	}{
		{"", defaultSocket, ""},
		{"8404", defaultSocket, "127.0.0.1:8404"}, // a bare port: localhost only
		{"1", defaultSocket, "127.0.0.1:1"},
		{"65535", defaultSocket, "127.0.0.1:65535"},
		{"127.0.0.1:8404", defaultSocket, "127.0.0.1:8404"},
		{"0.0.0.0:8404", defaultSocket, "0.0.0.0:8404"},
		{":8404", defaultSocket, ":8404"}, // every address, asked for explicitly
		{"[::1]:8404", defaultSocket, "[::1]:8404"},
		{"[::]:8404", defaultSocket, "[::]:8404"},
		{"", "/tmp/vhost-gen/haproxy.sock", ""},
		{"", "relative.sock", ""},
	}
	for _, c := range ok {
		cfg := &Config{HAProxyStats: c.stats, HAProxySocket: c.socket}
		if err := checkHAProxy(cfg); err != nil {
			t.Errorf("checkHAProxy(stats %q, socket %q) = %v", c.stats, c.socket, err)
			continue
		}
		if cfg.HAProxyStats != c.wantStats || cfg.HAProxySocket != c.socket {
			t.Errorf("checkHAProxy(stats %q, socket %q): stats %q socket %q, want %q %q", c.stats, c.socket, cfg.HAProxyStats, cfg.HAProxySocket, c.wantStats, c.socket)
		}
	}
	bad := []struct {
		stats, socket string
		flag          string
	}{
		{"0", defaultSocket, "--haproxy-stats"},
		{"65536", defaultSocket, "--haproxy-stats"},
		{"1234567", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:0", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:65536", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:stats", defaultSocket, "--haproxy-stats"},
		{"localhost:8404", defaultSocket, "--haproxy-stats"},
		{"stats.example.com:8404", defaultSocket, "--haproxy-stats"},
		{"::1:8404", defaultSocket, "--haproxy-stats"},
		{"-8404", defaultSocket, "--haproxy-stats"},
		{"+8404", defaultSocket, "--haproxy-stats"},
		{"8404 ssl crt /etc/x.pem", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:8404 ssl", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:8404;x", defaultSocket, "--haproxy-stats"},
		{"127.0.0.1:8404\n    stats admin if TRUE", defaultSocket, "--haproxy-stats"},
		{"", "", "--haproxy-socket"},
		{"", "/run/my socket", "--haproxy-socket"},
		{"", "/run/a\tb", "--haproxy-socket"},
		{"", "/run/a.sock\n    stats socket ipv4@0.0.0.0:9999 level admin", "--haproxy-socket"},
		{"", `/run/"a".sock`, "--haproxy-socket"},
		{"", "/run/'a'.sock", "--haproxy-socket"},
		{"", "/run/a#b.sock", "--haproxy-socket"},
		{"", `/run/a\b.sock`, "--haproxy-socket"},
		{"", "/run/$HOME.sock", "--haproxy-socket"},
		{"127.0.0.1: 8404", "/run/a.sock", "--haproxy-stats"},
		{"127.0.0.1:8404\n", "/run/a.sock", "--haproxy-stats"},
	}
	for _, c := range bad {
		cfg := &Config{HAProxyStats: c.stats, HAProxySocket: c.socket}
		err := checkHAProxy(cfg)
		if err == nil {
			t.Errorf("checkHAProxy(stats %q, socket %q) accepted", c.stats, c.socket)
			continue
		}
		value := c.stats
		if c.flag == "--haproxy-socket" {
			value = c.socket
		}
		if msg := err.Error(); !strings.HasPrefix(msg, fmt.Sprintf("%s %q:", c.flag, value)) {
			t.Errorf("checkHAProxy(stats %q, socket %q) = %q, want the flag %s and the value as given", c.stats, c.socket, msg, c.flag)
		}
	}
}

func TestReservedPorts(t *testing.T) {
	for _, c := range []struct {
		listen, stats string
		want          map[int]string
	}{
		{"80", "", map[int]string{80: "--listen"}},
		{"8080", "8404", map[int]string{8080: "--listen", 8404: "--haproxy-stats"}}, // 8404 becomes 127.0.0.1:8404
		{"127.0.0.1:8080", "127.0.0.1:8404", map[int]string{8080: "--listen", 8404: "--haproxy-stats"}},
		{"[::1]:8080", "[::]:9000", map[int]string{8080: "--listen", 9000: "--haproxy-stats"}},
		{"0.0.0.0:443", ":8404", map[int]string{443: "--listen", 8404: "--haproxy-stats"}},
	} {
		cfg := &Config{Listen: c.listen, HAProxyStats: c.stats, HAProxySocket: defaultSocket}
		if err := checkListen(cfg.Listen); err != nil {
			t.Fatal(err)
		}
		if err := checkHAProxy(cfg); err != nil {
			t.Fatal(err)
		}
		if got := reservedPorts(cfg); !maps.Equal(got, c.want) {
			t.Errorf("reservedPorts(--listen %q --haproxy-stats %q) = %v, want %v", c.listen, c.stats, got, c.want)
		}
	}
}

// The flags reach routing and the templates: --proxy haproxy turns TCP services on, with the
// listen and stats ports reserved, and a bare stats port becomes 127.0.0.1:PORT for the template.
func TestNewAppHAProxyOptions(t *testing.T) {
	cleanEnv(t)
	noEngine(t)
	for _, c := range []struct {
		args      []string
		tcp       bool
		stats     string
		reserved  map[int]string
		errorFlag string
	}{
		{args: []string{"--proxy", "haproxy", "--listen", "8080", "--haproxy-stats", "8404"}, tcp: true, stats: "127.0.0.1:8404",
			reserved: map[int]string{8080: "--listen", 8404: "--haproxy-stats"}},
		{args: []string{"--proxy", "haproxy"}, tcp: true, reserved: map[int]string{80: "--listen"}},
		{args: []string{"--proxy", "nginx"}, tcp: false, reserved: map[int]string{80: "--listen"}},
		{args: []string{"--proxy", "haproxy", "--haproxy-stats", "99999"}, errorFlag: "--haproxy-stats"},
		{args: []string{"--proxy", "haproxy", "--haproxy-socket", "/run/a b"}, errorFlag: "--haproxy-socket"},
	} {
		cfg := parse(t, "render", c.args...)
		a, err := newApp(cfg, &strings.Builder{})
		if c.errorFlag != "" {
			if err == nil || !strings.Contains(err.Error(), c.errorFlag) {
				t.Errorf("%v: error %v, want one naming %s", c.args, err, c.errorFlag)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if a.routing.TCP != c.tcp || !maps.Equal(a.routing.ReservedPorts, c.reserved) {
			t.Errorf("%v: routing TCP %v reserved %v, want %v %v", c.args, a.routing.TCP, a.routing.ReservedPorts, c.tcp, c.reserved)
		}
		if a.renderOpts.Stats != c.stats || a.renderOpts.Runtime != cfg.HAProxySocket || a.renderOpts.Listen != cfg.Listen {
			t.Errorf("%v: render options %+v", c.args, a.renderOpts)
		}
	}
}
