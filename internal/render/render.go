// Package render turns the routing table into the proxy's config through a template: the shipped
// one for the proxy, or a user's file, with sprig's functions and a few of vhost-gen's own.
package render

import (
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/snippets"
	"github.com/vhost-gen/vhost-gen/templates"
)

// Data is what a template sees.
type Data struct {
	Sites         []routing.Site
	TCP           []routing.TCPService
	Problems      []routing.Problem
	ProxyNetworks []string
	Workloads     []discovery.Workload
	Options
	// run is the render's own state (perSite's store of per-site parts), set by Render.
	run *renderRun
}

// Options are the operator's settings a template uses.
type Options struct {
	// Listen is where the proxy listens for HTTP ("80", "127.0.0.1:8080").
	Listen string
	// Runtime is the path of HAProxy's runtime API socket.
	Runtime string
	// Stats is where HAProxy's stats page listens; empty: no stats page.
	Stats string
	// TrustDownstreamProxy keeps the X-Forwarded-* headers a client sends (and appends to its
	// X-Forwarded-For), for a proxy that only a trusted proxy reaches; off, they are replaced.
	TrustDownstreamProxy bool
	// HTTPS is where the proxy listens for HTTPS ("443", "127.0.0.1:8443"); empty: HTTP only
	// (then no site has TLS decisions either).
	HTTPS string
	// ACMEResponder is the loopback address of vhost-gen's HTTP-01 responder ("127.0.0.1:8402"),
	// which every port-80 server forwards /.well-known/acme-challenge/ to; empty: no ACME.
	ACMEResponder string
	// CrtList is the path of HAProxy's crt-list file (written by vhost-gen beside the config).
	CrtList string
	// DefaultCert is the "default" certificate of the certificates directory, if any: nginx's
	// fallback server shows it to unknown names (else it refuses the handshake).
	DefaultCert *routing.SiteCert
	// DefaultRoot is what "/" answers on a site without a route for it (DEFAULT_ROOT; the zero
	// value is 404).
	DefaultRoot routing.DefaultRoot
	// ServerTokensOff hides nginx's version (SERVER_TOKENS=off: server_tokens off; HAProxy's
	// stats page hides its version).
	ServerTokensOff bool
	// InternalNetworks are the networks whose clients NETWORK_ACCESS=internal lets in, in
	// canonical CIDR form; empty: access.DefaultInternalNetworks.
	InternalNetworks []string
	// Snippets are the operator's snippet files (nginx-proxy's vhost.d, or HAProxy's); nil: none.
	Snippets *snippets.Set
	// Htpasswd is nginx-proxy's htpasswd directory: basic authentication per host and path; nil:
	// none.
	Htpasswd *snippets.Set
	// ConfD are the other files nginx loads in the http context with this one (conf.d/*.conf):
	// their hashes are written in the config, so that a change of one is checked and reloaded.
	ConfD *snippets.Set
	// AccessLog is nginx-proxy's access-log settings (nginx only); the zero value leaves
	// nginx's own log.
	AccessLog AccessLog
	// ErrorPages is nginx-proxy's error pages directory: its 50x.html answers what no site
	// does; nil: vhost-gen's plain 503.
	ErrorPages *snippets.Set
	// EnableIPv6 listens on IPv6 too (ENABLE_IPV6): beside each listen on every IPv4 address,
	// the same port on every IPv6 one.
	EnableIPv6 bool
	// EnableHTTP2 offers HTTP/2 on the HTTPS port (ENABLE_HTTP2; ALPN h2): what gRPC clients
	// over TLS need. HAProxy takes HTTP/2 in clear text (prior knowledge) on its HTTP port
	// whatever this says: it detects the HTTP/2 preface on every HTTP bind.
	EnableHTTP2 bool
	// ExternalHTTPPort and ExternalHTTPSPort are the ports clients reach when a port mapping
	// stands in front of the proxy (EXTERNAL_HTTP_PORT, EXTERNAL_HTTPS_PORT); both 0: the ports
	// the proxy listens on. Backends see them in X-Forwarded-Port.
	ExternalHTTPPort, ExternalHTTPSPort int
	// ProxyProtocol: every connection to the HTTP and HTTPS ports starts with a PROXY protocol
	// header from a load balancer, whose address is the client's (ENABLE_PROXY_PROTOCOL).
	ProxyProtocol bool
	// Resolvers are the DNS servers nginx asks (RESOLVERS: nginx's resolver directive, validated
	// by ParseResolvers); empty: none.
	Resolvers string
}

// ExternalPorts reports whether clients reach the proxy on other ports than it listens on.
func (o Options) ExternalPorts() bool { return o.ExternalHTTPPort != 0 || o.ExternalHTTPSPort != 0 }

// NginxPort is the nginx variable holding the port the client reached.
func (o Options) NginxPort() string {
	if o.ExternalPorts() {
		return "$vhost_gen_port"
	}
	return "$server_port"
}

// HAProxyPort is HAProxy's sample expression for the port the client reached.
func (o Options) HAProxyPort() string {
	if o.ExternalPorts() {
		return fmt.Sprintf("%%[ssl_fc,iif(%d,%d)]", o.ExternalHTTPSPort, o.ExternalHTTPPort)
	}
	return "%[dst_port]"
}

// NewData assembles a template's data from a table.
func NewData(t routing.Table, o Options) Data {
	return Data{Sites: t.Sites, TCP: t.TCP, Problems: t.Problems, ProxyNetworks: t.ProxyNetworks, Workloads: t.Workloads, Options: o}
}

// Renderer renders one parsed template.
type Renderer struct {
	name string
	tmpl *template.Template
	// maxOutput and timeout bound a render (bounds.go): MaxOutput and Timeout but in tests.
	maxOutput int
	timeout   time.Duration
	// parts keeps the per-site parts of the last render (sites.go); lastSize is its output's
	// size, the next one's first guess.
	parts    *siteStore
	lastSize atomic.Int64
}

// Shipped lists the proxies that have a shipped template.
func Shipped() []string {
	entries, _ := fs.ReadDir(templates.FS, ".")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Load parses the user's template file, or the shipped template for proxy when file is empty.
func Load(proxy, file string) (*Renderer, error) {
	if file != "" {
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", file, err)
		}
		return Parse(file, string(text))
	}
	matches, _ := fs.Glob(templates.FS, proxy+"/*.tmpl")
	if len(matches) != 1 {
		return nil, fmt.Errorf("no shipped template for proxy %q (shipped: %s)", proxy, strings.Join(Shipped(), ", "))
	}
	text, err := fs.ReadFile(templates.FS, matches[0])
	if err != nil {
		return nil, err
	}
	return Parse("templates/"+matches[0], string(text))
}

// Parse parses template text; name appears in error messages.
func Parse(name, text string) (*Renderer, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(sprig.TxtFuncMap()).Funcs(boundedFuncs()).Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	addTicks(t)
	return &Renderer{name: name, tmpl: t, maxOutput: MaxOutput, timeout: Timeout, parts: &siteStore{}}, nil
}

// Render executes the template. The output depends only on data, which is sorted, so the same
// state gives the same bytes (unless a user's template calls sprig's clock or random functions).
// The output, the time and what the functions make are bounded (bounds.go).
func (r *Renderer) Render(d Data) ([]byte, error) {
	return r.execute(d)
}

var funcs = template.FuncMap{
	"ident":                ident,
	"comment":              comment,
	"nginxNameHashSizes":   nginxNameHashSizes,
	"nginxStickyVars":      nginxStickyVars,
	"bindAddr":             bindAddr,
	"bindPort":             bindPort,
	"haproxyHostOrder":     haproxyHostOrder,
	"haproxyClientCASites": haproxyClientCASites,
	"hostMatch":            hostMatch,
	"longestPathFirst":     longestPathFirst,
	"regexQuote":           regexp.QuoteMeta,
	"sslPolicy":            sslPolicy,
	"nginxSSLProtocols":    nginxSSLProtocols,
	"nginxQuote":           nginxQuote,
	"haproxyQuote":         haproxyQuote,
	"wildcardHost":         wildcardHost,
	"haproxyMaps":          haproxyMaps,
	"haproxyCrtList":       crtListEntries,
	"defaultSite":          defaultSite,
	"nginxBalance":         nginxBalance,
	"nginxRoot":            nginxRoot,
	"haproxyBalance":       haproxyBalance,
	"haproxyReuse":         haproxyReuse,
	"haproxyRoot":          haproxyRoot,
	"haproxyRootRule":      haproxyRootRule,
	"internalNetworks":     internalNetworks,
	"nginxServerName":      nginxServerName,
	"siteKey":              siteKey,
	"basicAuth":            basicAuth,
	"haproxyUserlists":     haproxyUserlists,
	"nginxListenV6":        nginxListenV6,
	"haproxyBindV6":        haproxyBindV6,
	"perSite":              perSite,
}

// nginxNameHashSizes returns server_names_hash_bucket_size and server_names_hash_max_size large
// enough for these sites: nginx refuses a config whose longest server name does not fit one
// bucket ("could not build server_names_hash"), and its defaults (32 or 64 bytes) fit ~40-char
// names only.
func nginxNameHashSizes(sites []routing.Site) [2]int {
	longest := 0
	for _, s := range sites {
		longest = max(longest, len(s.Host))
	}
	// One bucket holds a pointer, the name and its length (aligned), and an end-of-bucket pointer.
	need := 8 + (longest+2+7)/8*8 + 8
	bucket := 128
	for bucket < need {
		bucket *= 2
	}
	maxSize := 512
	for maxSize < 2*len(sites) {
		maxSize *= 2
	}
	return [2]int{bucket, maxSize}
}

// nginxStickyVars names the nginx variable (without its '$') that each sticky cookie name of
// these sites hashes on: "vhost_gen_sticky_" and 8 hex digits of a hash of the cookie name. The
// request's cookie is all the variable depends on, so backends with the same cookie share one.
// The name has a fixed, short length whatever the host or the cookie: every variable must fit one
// bucket of nginx's variables hash (64 bytes by default), and one derived from a long host name
// made nginx refuse the config. Two cookie names whose hashes collide are told apart
// deterministically: in sorted order, the later one hashes again with a counter until its name is
// free.
func nginxStickyVars(sites []routing.Site) map[string]string {
	var cookies []string
	for _, s := range sites {
		for _, r := range s.Routes {
			if r.Backend.Sticky != "" {
				cookies = append(cookies, r.Backend.Sticky)
			}
			if c := r.Backend.Balance.Cookie; c != "" { // loadbalance "hash $cookie_NAME": the same variable
				cookies = append(cookies, c)
			}
		}
	}
	slices.Sort(cookies)
	cookies = slices.Compact(cookies)
	vars := make(map[string]string, len(cookies))
	taken := make(map[string]bool, len(cookies))
	for _, c := range cookies {
		name := stickyVar(c, 0)
		for i := 1; taken[name]; i++ {
			name = stickyVar(c, i)
		}
		taken[name] = true
		vars[c] = name
	}
	return vars
}

// stickyVar is the variable name for cookie at the given try (0 first).
func stickyVar(cookie string, try int) string {
	h := fnv.New32a()
	h.Write([]byte(cookie))
	if try > 0 {
		fmt.Fprintf(h, "\x00%d", try)
	}
	return fmt.Sprintf("vhost_gen_sticky_%08x", h.Sum32())
}

// ident turns a name into a unique identifier of [a-z0-9_]. It is as long as the name plus 9: too
// long for an nginx variable derived from a long host name (see nginxStickyVars).
func ident(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	mapped := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(name))
	return fmt.Sprintf("%s_%08x", mapped, h.Sum32())
}

// comment makes a string safe to put in a config comment: one line, printable ASCII, no
// characters any proxy treats specially.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || strings.ContainsRune(";{}$\\`'\"", r) {
			return '_'
		}
		return r
	}, s)
}
