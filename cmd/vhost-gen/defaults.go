package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/render"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// defaultsConfig is nginx-proxy's gateway settings for what no route answers and what the proxy
// tells about itself: DEFAULT_HOST, DEFAULT_ROOT and SERVER_TOKENS. Each is validated as it is
// set, so that a bad value, from the environment or the command line, fails the start with an
// error naming the variable or the flag.
type defaultsConfig struct {
	Host         defaultHostFlag
	Root         defaultRootFlag
	ServerTokens serverTokensFlag
	// The access log, nginx-proxy's DISABLE_ACCESS_LOGS, LOG_FORMAT, LOG_FORMAT_ESCAPE, LOG_JSON.
	AccessLogOff, AccessLogJSON      bool
	AccessLogFormat, AccessLogEscape string
	// IPv6: nginx-proxy's ENABLE_IPV6 and PREFER_IPV6_NETWORK.
	EnableIPv6, PreferIPv6 bool
	// EnableHTTP2 is nginx-proxy's ENABLE_HTTP2 (its default is on; vhost-gen's is off).
	EnableHTTP2 bool
	// ExternalHTTPPort and ExternalHTTPSPort are the ports clients reach, when a port mapping
	// stands in front of the proxy (EXTERNAL_HTTP_PORT, EXTERNAL_HTTPS_PORT); empty: --listen's
	// and --listen-https's.
	ExternalHTTPPort, ExternalHTTPSPort portFlag
	// ProxyProtocol is ENABLE_PROXY_PROTOCOL: a load balancer in front speaks the PROXY protocol.
	ProxyProtocol bool
	// Resolvers is nginx-proxy's RESOLVERS, for the names nginx looks up itself (OCSP).
	Resolvers resolversFlag
}

// defaultsEnvAliases are nginx-proxy's names for these flags, which the gateway image reads.
var defaultsEnvAliases = map[string]string{
	"default-host":        routing.SettingDefaultHost,
	"default-root":        routing.SettingDefaultRoot,
	"server-tokens":       "SERVER_TOKENS",
	"disable-access-logs": "DISABLE_ACCESS_LOGS",
	"access-log-format":   "LOG_FORMAT",
	"access-log-escape":   "LOG_FORMAT_ESCAPE",
	"access-log-json":     "LOG_JSON",
	"enable-ipv6":         "ENABLE_IPV6",
	"prefer-ipv6-network": "PREFER_IPV6_NETWORK",
	"enable-http2":        "ENABLE_HTTP2",
	"external-http-port":  "EXTERNAL_HTTP_PORT",
	"external-https-port": "EXTERNAL_HTTPS_PORT",
	"proxy-protocol":      "ENABLE_PROXY_PROTOCOL",
	"resolvers":           "RESOLVERS",
}

func registerDefaultsFlags(fs *flag.FlagSet, c *defaultsConfig) {
	fs.Var(&c.Host, "default-host", "the `HOST` whose site answers the hosts no site claims, instead of 503 (an exact name; nginx-proxy's DEFAULT_HOST is read too)")
	fs.Var(&c.Root, "default-root", "what \"/\" answers on a site whose routes all have a VIRTUAL_PATH: a status `CODE` (200-599 but 3xx; 444 closes the connection), \"301|302|303|307|308 URL\" to redirect, or none (nginx-proxy's DEFAULT_ROOT is read too)")
	fs.BoolVar(&c.AccessLogOff, "disable-access-logs", false, "nginx: no access log (nginx-proxy's DISABLE_ACCESS_LOGS is read too); HAProxy logs errors only anyway")
	fs.StringVar(&c.AccessLogFormat, "access-log-format", "", "nginx: the access log's `FORMAT` (log_format's text, with nginx's variables) for vhost-gen's servers, into "+render.DefaultAccessLogPath+" (nginx-proxy's LOG_FORMAT is read too)")
	fs.StringVar(&c.AccessLogEscape, "access-log-escape", "", "nginx: how the access log escapes values: default, json or none (nginx-proxy's LOG_FORMAT_ESCAPE is read too)")
	fs.BoolVar(&c.AccessLogJSON, "access-log-json", false, "nginx: the access log in nginx-proxy's JSON format (its LOG_JSON is read too)")
	fs.BoolVar(&c.EnableIPv6, "enable-ipv6", false, "listen on IPv6 too: beside each listen on every IPv4 address (a bare port), the same port on every IPv6 address (nginx-proxy's ENABLE_IPV6 is read too)")
	fs.BoolVar(&c.PreferIPv6, "prefer-ipv6-network", false, "reach a workload on a dual-stack network at its IPv6 address rather than its IPv4 one (nginx-proxy's PREFER_IPV6_NETWORK is read too); an IPv6-only network is always reached on IPv6")
	fs.BoolVar(&c.EnableHTTP2, "enable-http2", false, "offer HTTP/2 on the HTTPS port (ALPN h2), as gRPC clients over TLS need (nginx-proxy's ENABLE_HTTP2 is read too; its default is on)")
	fs.Var(&c.ExternalHTTPPort, "external-http-port", "the `PORT` clients reach for HTTP when a port mapping stands in front of the proxy (default: --listen's); backends see it in X-Forwarded-Port (nginx-proxy's EXTERNAL_HTTP_PORT is read too)")
	fs.Var(&c.ExternalHTTPSPort, "external-https-port", "the `PORT` clients reach for HTTPS when a port mapping stands in front of the proxy (default: --listen-https's): redirects to HTTPS name it, backends see it in X-Forwarded-Port (nginx-proxy's EXTERNAL_HTTPS_PORT is read too)")
	fs.BoolVar(&c.ProxyProtocol, "proxy-protocol", false, "every connection to the HTTP and HTTPS ports starts with a PROXY protocol header (v1 or v2, from a load balancer in front), and the client is the address it names; a connection without one is refused, so only the load balancer may reach these ports (nginx-proxy's ENABLE_PROXY_PROTOCOL is read too)")
	fs.Var(&c.Resolvers, "resolvers", "nginx: the DNS servers nginx asks for the names it looks up itself, OCSP responders' (IP addresses, [IPv6], with optional ports, and valid=, ipv4=, ipv6=; nginx-proxy's RESOLVERS is read too)")
	fs.Var(&c.ServerTokens, "server-tokens", "on or off: off hides nginx's version in its Server header and error pages, and HAProxy's on its stats page (nginx-proxy's SERVER_TOKENS is read too)")
}

// applyDefaults puts these settings in the routing and render options; newApp calls it once both
// are set.
func (a *app) applyDefaults() error {
	d := a.cfg.Defaults
	a.routing.DefaultHost = d.Host.host
	a.renderOpts.DefaultRoot = d.Root.root
	a.renderOpts.ServerTokensOff = d.ServerTokens.off
	a.renderOpts.EnableIPv6, a.routing.PreferIPv6 = d.EnableIPv6, d.PreferIPv6
	a.renderOpts.EnableHTTP2, a.renderOpts.ProxyProtocol = d.EnableHTTP2, d.ProxyProtocol
	a.renderOpts.Resolvers = d.Resolvers.value
	if err := a.applyExternalPorts(); err != nil {
		return err
	}
	l, err := render.NewAccessLog(d.AccessLogOff, d.AccessLogFormat, d.AccessLogEscape, d.AccessLogJSON, "")
	if err != nil {
		return fmt.Errorf("--access-log-*: %w", err)
	}
	a.renderOpts.AccessLog = l
	return nil
}

// applyExternalPorts sets the ports clients reach: when either flag is set, the other defaults to
// its listen port, so that the templates know both.
func (a *app) applyExternalPorts() error {
	d := a.cfg.Defaults
	if d.ExternalHTTPPort.port == 0 && d.ExternalHTTPSPort.port == 0 {
		return nil
	}
	ports := []struct {
		set                int
		listenFlag, listen string
		to                 *int
	}{
		{d.ExternalHTTPPort.port, "--listen", a.cfg.Listen, &a.renderOpts.ExternalHTTPPort},
		{d.ExternalHTTPSPort.port, "--listen-https", a.cfg.TLS.ListenHTTPS, &a.renderOpts.ExternalHTTPSPort},
	}
	for _, p := range ports {
		*p.to = p.set
		if p.set == 0 {
			n, err := listenPort(p.listen)
			if err != nil {
				return fmt.Errorf("%s %q: %w", p.listenFlag, p.listen, err)
			}
			*p.to = n
		}
	}
	return nil
}

// listenPort is the port of a listen flag's value (PORT or ADDR:PORT).
func listenPort(v string) (int, error) {
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return routing.ParsePort(v)
}

// portFlag is a port number flag, validated as it is set; 0: not set.
type portFlag struct{ port int }

func (f *portFlag) String() string {
	if f == nil || f.port == 0 {
		return ""
	}
	return strconv.Itoa(f.port)
}

func (f *portFlag) Set(v string) error {
	p, err := routing.ParsePort(strings.TrimSpace(v))
	if err != nil {
		return err
	}
	f.port = p
	return nil
}

// resolversFlag is --resolvers, validated (render.ParseResolvers).
type resolversFlag struct{ value string }

func (f *resolversFlag) String() string {
	if f == nil {
		return ""
	}
	return f.value
}

func (f *resolversFlag) Set(v string) (err error) {
	f.value, err = render.ParseResolvers(v)
	return err
}

// defaultHostFlag is --default-host, validated (routing.ParseDefaultHost).
type defaultHostFlag struct{ host string }

func (f *defaultHostFlag) String() string { return f.host }

func (f *defaultHostFlag) Set(v string) error {
	h, err := routing.ParseDefaultHost(v)
	if err != nil {
		return err
	}
	f.host = h
	return nil
}

// defaultRootFlag is --default-root, validated (routing.ParseDefaultRoot); empty is 404.
type defaultRootFlag struct {
	root routing.DefaultRoot
	set  bool
}

func (f *defaultRootFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.root.String()
}

func (f *defaultRootFlag) Set(v string) error {
	r, err := routing.ParseDefaultRoot(v)
	if err != nil {
		return err
	}
	f.root, f.set = r, strings.TrimSpace(v) != ""
	return nil
}

// serverTokensFlag is --server-tokens, on (the zero value, nginx's default) or off, as nginx
// writes it; true and false are read too.
type serverTokensFlag struct{ off bool }

func (f *serverTokensFlag) String() string {
	if f != nil && f.off {
		return "off"
	}
	return "on"
}

func (f *serverTokensFlag) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true":
		f.off = false
	case "off", "false":
		f.off = true
	default:
		return errors.New("must be on or off")
	}
	return nil
}
