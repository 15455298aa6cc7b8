package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/render"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// validate checks the flags that nothing else checks; each error names its flag.
func validate(cfg *Config) (routing.AddressMode, error) {
	mode, err := routing.ParseAddressMode(cfg.AddressMode)
	if err != nil {
		return "", fmt.Errorf("--address-mode: %w", err)
	}
	if err := checkListen(cfg.Listen); err != nil {
		return "", err
	}
	for _, f := range [][2]string{{"--label-filter", cfg.LabelFilter}, {"--proxy-label", cfg.ProxyLabel}} {
		if k, _, _ := strings.Cut(f[1], "="); f[1] != "" && strings.TrimSpace(k) == "" {
			return "", fmt.Errorf("%s %q: must be KEY or KEY=VALUE", f[0], f[1])
		}
	}
	if !slices.Contains(render.Shipped(), cfg.Proxy) {
		return "", fmt.Errorf("--proxy %q: must be one of %s", cfg.Proxy, strings.Join(render.Shipped(), ", "))
	}
	if err := checkHostAddress(cfg.HostAddress); err != nil {
		return "", err
	}
	if err := checkHAProxy(cfg); err != nil {
		return "", err
	}
	for _, n := range cfg.ProxyNetworks.values {
		if _, err := routing.ParseNetwork(n); err != nil {
			return "", fmt.Errorf("--proxy-networks %q: %w", n, err)
		}
	}
	return mode, nil
}

func newLogger(cfg *Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: must be debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: must be text or json", cfg.LogFormat)
}

// checkListen keeps --listen to what can only be a port or an address with a port.
func checkListen(v string) error {
	if v == "" || strings.Trim(v, "0123456789abcdefABCDEF.:[]") != "" {
		return fmt.Errorf("--listen %q: must be PORT or ADDR:PORT", v)
	}
	return nil
}

// checkHAProxy validates the HAProxy flags; a bare --haproxy-stats port binds to localhost only.
func checkHAProxy(cfg *Config) error {
	if v := cfg.HAProxyStats; v != "" {
		if strings.Trim(v, "0123456789") == "" {
			cfg.HAProxyStats = "127.0.0.1:" + v
		}
		host, port, err := net.SplitHostPort(cfg.HAProxyStats)
		if n, perr := routing.ParsePort(port); err != nil || perr != nil || n == 0 || port != strings.TrimSpace(port) || (host != "" && net.ParseIP(host) == nil) {
			return fmt.Errorf("--haproxy-stats %q: must be PORT or IP:PORT", v)
		}
	}
	if s := cfg.HAProxySocket; s == "" || strings.ContainsAny(s, " \t\n\r\"'#$\\") {
		return fmt.Errorf("--haproxy-socket %q: must be a socket path without spaces, quotes, '$' or '#'", s)
	}
	return nil
}

// reservedPorts are the ports the proxy listens on already, which no TCP service may take.
func reservedPorts(cfg *Config) map[int]string {
	ports := map[int]string{}
	for _, f := range [][2]string{{"--listen", cfg.Listen}, {"--haproxy-stats", cfg.HAProxyStats}} {
		p := f[1]
		if i := strings.LastIndexByte(p, ':'); i >= 0 {
			p = p[i+1:]
		}
		if n, err := routing.ParsePort(p); err == nil {
			ports[n] = f[0]
		}
	}
	return ports
}

// checkHostAddress keeps --host-address to an IP address or a plain host name: it goes into the
// proxy's config as the address of published ports.
func checkHostAddress(v string) error {
	if v == "" || net.ParseIP(v) != nil {
		return nil
	}
	if _, err := routing.ParseHostName(v); err != nil || strings.Contains(v, "*") {
		return fmt.Errorf("--host-address %q: must be an IP address or a host name", v)
	}
	return nil
}
