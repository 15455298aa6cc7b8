// Package routing turns a snapshot of workloads into the routing table: it parses and validates
// the VIRTUAL_* settings, picks one address per workload, groups workloads into sites, routes and
// backends, and records a problem for every workload that cannot be routed. It is pure.
package routing

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Table is what templates iterate over. Everything in it is sorted.
type Table struct {
	Sites []Site `json:"sites"`
	// TCP are the raw TCP services (VIRTUAL_TCP_PORT), by port.
	TCP      []TCPService `json:"tcp"`
	Problems []Problem    `json:"problems"`
	// ProxyNetworks are the networks the proxy was found on (nil: unknown).
	ProxyNetworks []string `json:"proxyNetworks"`
	// HostAddress is where published ports and host-network workloads were reached, and why.
	HostAddress HostAddress `json:"hostAddress,omitzero"`
	// Workloads are the raw workloads, for templates that need more than the table.
	Workloads []discovery.Workload `json:"-"`
	// ACME are the certificates the workloads ask the ACME client for.
	ACME []ACMERequest `json:"acme,omitempty"`
	// Excluded are the workloads left out of a route they asked for, and why, sorted by
	// workload; each also has a problem (but for the same address, which has none).
	Excluded []Exclusion `json:"excluded,omitempty"`
}

// Site is one host name.
type Site struct {
	Host   string  `json:"host"`
	Routes []Route `json:"routes"`
	// TLS is how the site is served over HTTPS; nil when the gateway serves HTTP only.
	TLS *SiteTLS `json:"tls,omitempty"`
	// Default: DEFAULT_HOST names this site, which answers the hosts no site claims (defaults.go).
	Default bool `json:"default,omitempty"`
	// ServerTokens is nginx's server_tokens for the site (SERVER_TOKENS on its workloads: the
	// first one's, by name, that sets it); empty: the gateway's.
	ServerTokens string `json:"serverTokens,omitempty"`
}

// Route is one path prefix of a site.
type Route struct {
	Path string `json:"path"`
	Dest string `json:"dest,omitempty"`
	// Root is a FastCGI backend's document root (VIRTUAL_ROOT).
	Root string `json:"root,omitempty"`
	// Internal: only the internal networks' clients may use the route (NETWORK_ACCESS=internal),
	// others get 403.
	Internal bool    `json:"internal,omitempty"`
	Backend  Backend `json:"backend"`
}

// TCPService is one port the proxy listens on and forwards as raw TCP.
type TCPService struct {
	Port int `json:"port"`
	// Service is the group of workloads that holds the port (discovery.Workload.Service).
	Service string  `json:"service"`
	Backend Backend `json:"backend"`
}

// Backend is the set of servers behind one route.
type Backend struct {
	// Name is unique in the table and safe as an nginx upstream or HAProxy backend name.
	Name    string   `json:"name"`
	Proto   string   `json:"proto"`
	Sticky  string   `json:"sticky,omitempty"`
	Servers []Server `json:"servers"`
	// Balance and Keepalive are nginx-proxy's loadbalance and keepalive labels, as the first
	// workload that set them wrote them (balance.go); zero when none did.
	Balance   Balance `json:"balance,omitzero"`
	Keepalive string  `json:"keepalive,omitempty"`
}

// Server is one workload's address in a backend.
type Server struct {
	// Name is unique in its backend, stable for a workload, and safe as an HAProxy server name.
	Name       string `json:"name"`
	Address    string `json:"address"` // ip:port
	IP         string `json:"ip"`
	Port       int    `json:"port"`
	Weight     int    `json:"weight"`
	Workload   string `json:"workload"`
	WorkloadID string `json:"workloadID"`
	// Via is the address rule that chose the address (a Via* value); ViaDetail what it found
	// ("network frontend", "port 80/tcp published on 0.0.0.0:8080, reached at the node's address").
	Via       string `json:"via,omitempty"`
	ViaDetail string `json:"viaDetail,omitempty"`
}

// Options are the operator's choices that shape the table.
type Options struct {
	// TLS, when set, serves sites over HTTPS too.
	TLS  *TLSOptions
	Mode AddressMode
	// ProxyNetworks, when set, are the proxy's networks.
	ProxyNetworks []string
	// ProxyContainer, when set (and ProxyNetworks is not), names the proxy's container by name or
	// ID; its networks are read from the snapshot.
	ProxyContainer string
	// ProxyLabel, when set (and the two above are not), finds the proxy's containers by a label,
	// "KEY" or "KEY=VALUE"; their networks, together, are the proxy's.
	ProxyLabel string
	// IncludeUnhealthy routes workloads whose healthcheck is starting or unhealthy.
	IncludeUnhealthy bool
	// TCP says the proxy serves VIRTUAL_TCP_PORT (HAProxy); otherwise asking for it is a problem.
	TCP bool
	// ReservedPorts are ports the proxy already listens on, with what for ("--listen"): no TCP
	// service may take them.
	ReservedPorts map[int]string
	// ProxyNetworkMode is the network mode of the proxy's container ("host", "bridge", a network
	// name), when the caller knows it; else it is read from the ProxyContainer workload. Off the
	// host network the proxy's loopback is its own, so a server on loopback is a problem. Empty
	// (unknown, perhaps no container at all): loopback is routed.
	ProxyNetworkMode string
	// HostAddress is the engine host's address the sources gave workloads (NodeAddress), shown
	// in the table; routing does not use it.
	HostAddress HostAddress
	// DefaultHost is DEFAULT_HOST (ParseDefaultHost): its site answers the hosts no site claims.
	DefaultHost string
	// UnsupportedProtos are the VIRTUAL_PROTO values the proxy cannot speak to a backend, with
	// why: asking for one is a problem.
	UnsupportedProtos map[string]string
	// PreferIPv6 routes to a workload's IPv6 address on a dual-stack network
	// (PREFER_IPV6_NETWORK); otherwise IPv4, and IPv6 only on an IPv6-only network.
	PreferIPv6 bool
}

// HostAddress is the engine host's address for published ports and host networking, and where
// it came from ("--host-address", "DOCKER_HOST", "gateway of network NAME", "default").
type HostAddress struct {
	Address string `json:"address"`
	Origin  string `json:"origin"`
}

// Build makes the table for a set of workloads. The same set gives the same table, whatever its
// order. The table's Workloads are the slice given when it is in the table's order (by source,
// name and ID): the caller must not change it afterwards.
func Build(workloads []discovery.Workload, opt Options) Table {
	return build(workloads, opt, ParseSettings)
}

// build is Build with the function that reads a workload's settings (ParseSettings, or a
// Cache's).
func build(workloads []discovery.Workload, opt Options, parse parseFunc) Table {
	ws := sortedWorkloads(workloads)
	opt = withMode(opt)
	env := resolveProxy(ws, opt)
	t := placeAll(ws, opt, env, parse, nil)
	finish(&t, opt)
	return t
}

// sortedWorkloads is the workloads in the table's order: themselves when in order already (an
// inventory's snapshot; at 10,000 workloads a copy is 2.5 MB per change), else a sorted copy.
func sortedWorkloads(workloads []discovery.Workload) []discovery.Workload {
	sorted := true
	for i := 1; i < len(workloads) && sorted; i++ { // by pointer: a Workload is 250 bytes
		sorted = discovery.Compare(&workloads[i-1], &workloads[i]) <= 0
	}
	if sorted {
		return workloads
	}
	ws := slices.Clone(workloads)
	slices.SortFunc(ws, func(a, b discovery.Workload) int { return discovery.Compare(&a, &b) })
	return ws
}

func withMode(opt Options) Options {
	if opt.Mode == "" {
		opt.Mode = ModeAuto
	}
	return opt
}

// proxyEnv is what the table needs to know of the proxy itself: its networks (and why they are
// unknown) and its network mode.
type proxyEnv struct {
	nets    []string
	problem *Problem
	mode    string
}

func resolveProxy(ws []discovery.Workload, opt Options) proxyEnv {
	nets, problem := proxyNetworks(ws, opt)
	return proxyEnv{nets: nets, problem: problem, mode: proxyNetworkMode(ws, opt)}
}

func (e proxyEnv) equal(o proxyEnv) bool {
	return slices.Equal(e.nets, o.nets) && (e.nets == nil) == (o.nets == nil) && e.mode == o.mode &&
		(e.problem == nil) == (o.problem == nil) && (e.problem == nil || *e.problem == *o.problem)
}

// placeAll places the workloads (sorted) and makes the table's sites, TCP services, exclusions
// and problems, all but DEFAULT_HOST's (finish). acme, when not nil, are the certificate requests
// to take as the table's rather than gather from these workloads (a Cache's partial build).
func placeAll(ws []discovery.Workload, opt Options, env proxyEnv, parse parseFunc, acme *[]ACMERequest) Table {
	t := Table{Workloads: ws, Problems: []Problem{}, Sites: []Site{}, TCP: []TCPService{}}
	if env.problem != nil {
		t.Problems = append(t.Problems, *env.problem)
	}
	t.ProxyNetworks, t.HostAddress = env.nets, opt.HostAddress
	opt.ProxyNetworkMode = env.mode
	b := &builder{routes: map[routeKey]*Route{}, tcp: map[int][]tcpClaim{}, siteTLS: map[string]TLSSettings{},
		tokens: map[string]string{}, workloads: make(map[[2]string]*discovery.Workload, len(ws)), parse: parse}
	for i := range ws {
		b.workloads[[2]string{ws[i].ID, ws[i].Name}] = &ws[i]
		t.Problems = append(t.Problems, place(&ws[i], opt, env.nets, b)...)
	}
	t.Sites = b.assemble()
	var tcpProblems []Problem
	t.TCP, tcpProblems = b.assembleTCP()
	t.Problems = append(t.Problems, tcpProblems...)
	slices.SortFunc(b.excluded, compareExclusions)
	t.Excluded = b.excluded
	if opt.TLS != nil {
		t.Problems = append(t.Problems, b.decideTLS(&t, opt.TLS, acme)...)
	}
	return t
}

// finish marks DEFAULT_HOST's site and sorts the problems.
func finish(t *Table, opt Options) {
	t.Problems = append(t.Problems, markDefault(t.Sites, opt.DefaultHost)...)
	slices.SortFunc(t.Problems, compareProblems)
}

// builder collects what place finds, workload by workload.
type builder struct {
	routes map[routeKey]*Route
	tcp    map[int][]tcpClaim
	// siteTLS are each host's HTTPS settings: the first workload's (by name), as nginx-proxy.
	siteTLS map[string]TLSSettings
	// tokens are each host's SERVER_TOKENS: the first workload's (by name) that sets it.
	tokens map[string]string
	acme   []acmeClaim
	// excluded are the workloads left out of routes they asked for; workloads are the
	// workloads by ID and name (a server names its workload by both; two sources may share an ID).
	excluded  []Exclusion
	workloads map[[2]string]*discovery.Workload
	// tuning is who set each route's loadbalance and keepalive (balance.go).
	tuning map[routeKey]tuningClaim
	parse  parseFunc
}

// parseFunc reads a workload's settings: ParseSettings' signature.
type parseFunc func(*discovery.Workload) (Settings, []Problem, bool)

// decideTLS sets each site's HTTPS decisions and the table's certificate requests; the problems
// it returns are warnings (a certificate missing, expired, not covering its host): the sites are
// still served.
func (b *builder) decideTLS(t *Table, o *TLSOptions, acme *[]ACMERequest) []Problem {
	var problems []Problem
	if o.ACME && acme != nil {
		t.ACME = *acme
	} else if o.ACME {
		reqs, _ := acmeRequests(b.acme, o)
		// A static certificate for the host wins: no order for it.
		t.ACME = slices.DeleteFunc(reqs, func(r ACMERequest) bool {
			return o.Certs != nil && slices.IndexFunc(r.Names, func(h string) bool {
				c := o.Certs.Select(h, "", false)
				return c.Via != "exact" || c.Cert.Source != "file"
			}) < 0
		})
	}
	_, acmeNames := acmeRequests(acmeClaimsFor(t.ACME), o)
	for i := range t.Sites {
		s := &t.Sites[i]
		s.TLS = siteTLS(s.Host, b.siteTLS[s.Host], acmeNames, o)
		if s.TLS.Problem != "" {
			problems = append(problems, Problem{Host: s.Host, Reason: s.TLS.Problem, Warning: true})
		}
	}
	return problems
}

// acmeClaimsFor turns kept requests back into claims, to index their hosts.
func acmeClaimsFor(reqs []ACMERequest) []acmeClaim {
	out := make([]acmeClaim, len(reqs))
	for i, r := range reqs {
		out[i] = acmeClaim{workload: r.Name, s: ACMESettings{Hosts: r.Names}}
	}
	return out
}

type routeKey struct{ host, path string }

// place adds one workload's server to the routes it asks for, or returns why it cannot.
func place(w *discovery.Workload, opt Options, proxyNets []string, b *builder) []Problem {
	if w.Problem != "" {
		s, _, _ := b.parse(w)
		problems := []Problem{newProblem(w, "", "", "", w.Problem)}
		b.exclude(w, &s, ExcludedProblem, problems)
		return problems
	}
	s, problems, routed := b.parse(w)
	if !routed {
		return problems
	}
	if hasErrors(problems) { // a warning (balance.go) leaves the workload routed
		b.exclude(w, &s, ExcludedProblem, problems)
		return problems
	}
	if p := protoProblem(w, &s, opt); p != nil {
		b.exclude(w, &s, ExcludedProblem, p)
		return p
	}
	if s.TCPPort != 0 {
		value, from, _ := w.Setting(SettingTCPPort)
		var p []Problem
		if !opt.TCP {
			p = []Problem{newProblem(w, SettingTCPPort, from, value, "TCP services need --proxy haproxy (nginx's template serves HTTP only)")}
		} else if what, ok := opt.ReservedPorts[s.TCPPort]; ok {
			p = []Problem{newProblem(w, SettingTCPPort, from, value, fmt.Sprintf("port %d is the proxy's %s port", s.TCPPort, what))}
		}
		if p != nil {
			b.exclude(w, &s, ExcludedProblem, p)
			return p
		}
	}
	if !opt.IncludeUnhealthy && (w.Health == discovery.HealthStarting || w.Health == discovery.HealthUnhealthy) {
		p := []Problem{newProblem(w, "", "", "", fmt.Sprintf("health is %s: left out until healthy (--include-unhealthy routes it anyway)", w.Health))}
		b.exclude(w, &s, ExcludedHealth, p)
		return p
	}
	if s.Multi == nil {
		problems = append(problems, b.placeRoutes(w, &s, opt, proxyNets)...)
	} else {
		p, ok := b.placeMulti(w, &s, opt, proxyNets)
		if !ok {
			return p
		}
		problems = append(problems, p...)
	}
	if len(s.TLS.ACME.Hosts) > 0 {
		if opt.TLS == nil || !opt.TLS.ACME {
			p := newProblem(w, SettingACMEHost, "", strings.Join(s.TLS.ACME.Hosts, ","), "no certificate will be ordered: this gateway has no ACME client (see --acme-ca-uri)")
			p.Warning = true
			problems = append(problems, p)
		} else {
			b.acme = append(b.acme, acmeClaim{workload: w.Name, s: s.TLS.ACME})
		}
	}
	return problems
}

// placeRoutes adds a workload's server to the routes of s (its hosts, at its path), or returns why
// it cannot: the address, or a conflict with a route's settings.
func (b *builder) placeRoutes(w *discovery.Workload, s *Settings, opt Options, proxyNets []string) []Problem {
	var problems []Problem
	var tg target
	var aerr *addressError
	if w.Address != "" {
		tg, aerr = sourceAddress(w)
	} else {
		var port int
		if port, aerr = choosePort(w, s); aerr == nil {
			tg, aerr = chooseAddress(w, s, port, opt, proxyNets)
		}
	}
	if aerr == nil {
		aerr = loopbackProblem(tg, opt.ProxyNetworkMode)
	}
	if aerr != nil {
		var value string
		var from discovery.Origin
		if aerr.setting != "" {
			value, from, _ = w.Setting(aerr.setting)
		}
		p := []Problem{newProblem(w, aerr.setting, from, value, aerr.reason)}
		b.exclude(w, s, ExcludedAddress, p)
		return p
	}
	srv := Server{Address: tg.String(), IP: tg.ip, Port: tg.port, Weight: s.Weight, Workload: w.Name, WorkloadID: w.ID,
		Via: tg.via, ViaDetail: tg.detail}
	if s.TCPPort != 0 {
		b.tcp[s.TCPPort] = append(b.tcp[s.TCPPort], tcpClaim{w: w, server: srv})
	}
	for _, host := range s.Hosts {
		k := routeKey{host, s.Path}
		r := b.routes[k]
		if r == nil {
			r = &Route{Path: s.Path, Dest: s.Dest, Root: s.Root, Internal: s.Internal, Backend: Backend{Proto: s.Proto, Sticky: s.Sticky}}
			b.routes[k] = r
		} else if c, holder := b.conflict(k, r, s); c != "" {
			p := newProblem(w, "", "", "", fmt.Sprintf("left out of %s%s: %s", host, s.Path, c))
			problems = append(problems, p)
			b.excluded = append(b.excluded, Exclusion{Source: w.Source, Workload: w.Name, WorkloadID: w.ID, Host: host, Path: s.Path,
				Why: ExcludedConflict, Reason: c + " (" + holder + " came first)", Holder: holder})
			continue
		}
		r.Backend.Servers = append(r.Backend.Servers, srv)
		b.adoptTuning(k, r, s, w)
		if _, ok := b.siteTLS[host]; !ok {
			b.siteTLS[host] = s.TLS
		}
		if _, ok := b.tokens[host]; !ok && s.ServerTokens != "" {
			b.tokens[host] = s.ServerTokens
		}
	}
	return problems
}

// assemble sorts routes into sites, sorts their servers and names their backends.
func (b *builder) assemble() []Site {
	routes := b.routes
	keys := slices.SortedFunc(maps.Keys(routes), func(a, b routeKey) int {
		return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.path, b.path))
	})
	sites := []Site{}
	names := map[string]bool{}
	for _, k := range keys {
		r := routes[k]
		var dropped [][2]Server
		r.Backend.Servers, dropped = dedupServers(r.Backend.Servers)
		for _, d := range dropped {
			e := sameAddress(b.workloads[[2]string{d[0].WorkloadID, d[0].Workload}], d[0], d[1])
			e.Host, e.Path = k.host, k.path
			b.excluded = append(b.excluded, e)
		}
		nameServers(r.Backend.Servers)
		r.Backend.Name = backendName(k.host, k.path, names)
		if n := len(sites); n == 0 || sites[n-1].Host != k.host {
			sites = append(sites, Site{Host: k.host, ServerTokens: b.tokens[k.host]})
		}
		sites[len(sites)-1].Routes = append(sites[len(sites)-1].Routes, *r)
	}
	return sites
}

// conflict says why a workload's settings cannot join an existing route's backend, and which
// workload set the route's value it differs from.
func (b *builder) conflict(k routeKey, r *Route, s *Settings) (reason, holder string) {
	if c := conflict(r, s); c != "" {
		return c, r.Backend.Servers[0].Workload // the first placed set the route's settings
	}
	return b.tuningConflict(k, r, s)
}

// conflict says why a workload's settings cannot join an existing route's backend.
func conflict(r *Route, s *Settings) string {
	switch {
	case r.Backend.Proto != s.Proto:
		return fmt.Sprintf("VIRTUAL_PROTO %s differs from the other servers' %s", s.Proto, r.Backend.Proto)
	case r.Dest != s.Dest:
		return fmt.Sprintf("VIRTUAL_DEST %q differs from the other servers' %q", s.Dest, r.Dest)
	case r.Backend.Sticky != s.Sticky:
		return fmt.Sprintf("VIRTUAL_STICKY %q differs from the other servers' %q", s.Sticky, r.Backend.Sticky)
	case r.Root != s.Root:
		return fmt.Sprintf("VIRTUAL_ROOT %q differs from the other servers' %q", s.Root, r.Root)
	case r.Internal != s.Internal:
		return fmt.Sprintf("NETWORK_ACCESS %s differs from the other servers' %s", access(s.Internal), access(r.Internal))
	}
	return ""
}

func access(internal bool) string {
	if internal {
		return "internal"
	}
	return "external"
}

// backendName is readable (the host, then the path) and unique: a short hash is added only when
// two routes would share a name.
func backendName(host, path string, taken map[string]bool) string {
	base := backendBase(host, path)
	name := base
	h := fnv.New32a()
	h.Write([]byte(host + "\x00" + path))
	// A path may itself look like a hashed name; keep going until the name is free.
	for i := 0; taken[name]; i++ {
		name = fmt.Sprintf("%s-%08x", base, h.Sum32()+uint32(i))
	}
	taken[name] = true
	return name
}

// backendBase is a route's backend name when no other route's takes it: the host, then the
// path, made safe.
func backendBase(host, path string) string {
	var b strings.Builder
	for _, c := range host + strings.TrimRight(path, "/") {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			b.WriteRune(c + 'a' - 'A')
		case c == '*':
			b.WriteString("_wildcard_")
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// proxyNetworks resolves the proxy's networks: given, or read from the proxy's container.
func proxyNetworks(ws []discovery.Workload, opt Options) ([]string, *Problem) {
	if len(opt.ProxyNetworks) > 0 {
		nets := slices.Clone(opt.ProxyNetworks)
		slices.Sort(nets)
		return slices.Compact(nets), nil
	}
	if opt.ProxyContainer == "" && opt.ProxyLabel != "" {
		return labelledProxyNetworks(ws, opt.ProxyLabel)
	}
	if opt.ProxyContainer == "" {
		return nil, nil
	}
	if w := findWorkload(ws, opt.ProxyContainer); w != nil {
		nets := []string{}
		for _, n := range w.Networks {
			if n.Name != ingress {
				nets = append(nets, n.Name)
			}
		}
		return nets, nil
	}
	return nil, &Problem{Reason: fmt.Sprintf("proxy container %q is not among the watched containers (not running, or left out by --label-filter): its networks are unknown, so only VIRTUAL_NETWORK, host networking and published ports can route", opt.ProxyContainer)}
}

// findWorkload finds a workload by name, ID or an ID prefix of at least 12 characters.
func findWorkload(ws []discovery.Workload, ref string) *discovery.Workload {
	for i := range ws {
		if w := &ws[i]; w.Name == ref || w.ID == ref || (len(ref) >= 12 && strings.HasPrefix(w.ID, ref)) {
			return w
		}
	}
	return nil
}

// proxyNetworkMode is the proxy container's network mode: as given, else the ProxyContainer
// workload's; "" when unknown.
func proxyNetworkMode(ws []discovery.Workload, opt Options) string {
	if opt.ProxyNetworkMode != "" || opt.ProxyContainer == "" {
		return opt.ProxyNetworkMode
	}
	if w := findWorkload(ws, opt.ProxyContainer); w != nil {
		return w.NetworkMode
	}
	return ""
}

// HasRoot reports whether the site routes "/"; templates answer 404 there otherwise, rather
// than fall through to the proxy's own static files.
func (s Site) HasRoot() bool {
	for _, r := range s.Routes {
		if r.Path == "/" {
			return true
		}
	}
	return false
}

// labelledProxyNetworks is the union of the networks of the containers with the proxy label.
func labelledProxyNetworks(ws []discovery.Workload, label string) ([]string, *Problem) {
	key, value, hasValue := strings.Cut(label, "=")
	found := false
	nets := []string{}
	for i := range ws {
		v, ok := ws[i].Labels[key]
		if !ok || (hasValue && v != value) {
			continue
		}
		found = true
		for _, n := range ws[i].Networks {
			if n.Name != ingress {
				nets = append(nets, n.Name)
			}
		}
	}
	if !found {
		return nil, &Problem{Reason: fmt.Sprintf("no watched container has the proxy label %s (not running, or left out by --label-filter): the proxy's networks are unknown, so only VIRTUAL_NETWORK, host networking and published ports can route", label)}
	}
	slices.Sort(nets)
	return slices.Compact(nets), nil
}
