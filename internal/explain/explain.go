// Package explain answers the two questions asked at 3 a.m.: "why does this host answer the way
// it does?" and "what does this workload get?". From a routing table (and, with HAProxy, the
// servers' live states) it tells, for a host, the site that answers it (by its exact name or a
// wildcard), every workload that asked for it, the servers with their addresses and the address
// rule that chose each, the workloads left out and why, and the path routes; for a workload, its
// settings as written and as parsed, what it serves, what it was left out of, and its problems.
// It is pure: the caller reads the table and the live states.
package explain

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// Query is what to explain: host names and workloads (by name, ID, ID prefix or service).
type Query struct {
	Hosts     []string
	Workloads []string
}

// Report is the explanation of a query.
type Report struct {
	// ProxyNetworks and HostAddress are what the address rules worked with.
	ProxyNetworks []string            `json:"proxyNetworks"`
	HostAddress   routing.HostAddress `json:"hostAddress,omitzero"`
	// Live says where the servers' live states came from, or why they could not be read; nil
	// when the proxy has none to give (nginx).
	Live      *Live      `json:"live,omitempty"`
	Hosts     []Host     `json:"hosts,omitempty"`
	Workloads []Workload `json:"workloads,omitempty"`
}

// The ways a name finds its site (Host.Match), in the order nginx (and the HAProxy template)
// tries them.
const (
	MatchExact    = "exact"
	MatchLeading  = "wildcard *.name"
	MatchTrailing = "wildcard name.*"
	MatchNone     = "none"
)

// Host explains one host name.
type Host struct {
	Host string `json:"host"`
	// Site is the site that answers the name, by Match; "" when none does: the proxy answers 503.
	Site  string           `json:"site,omitempty"`
	Match string           `json:"match"`
	TLS   *routing.SiteTLS `json:"tls,omitempty"`
	// Asked are the workloads that asked for the name, or for the site that answers it.
	Asked []Request `json:"asked"`
	// Routes are the site's paths, each with its servers.
	Routes []Route `json:"routes"`
	// LeftOut are the workloads that asked and serve nothing of it, and why.
	LeftOut []routing.Exclusion `json:"leftOut"`
	// Warnings are what is wrong with a site or workload that is served all the same (a
	// certificate, ACME).
	Warnings []string `json:"warnings,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// Request is one workload asking for a host.
type Request struct {
	Workload   string `json:"workload"`
	WorkloadID string `json:"workloadID"`
	Source     string `json:"source,omitempty"`
	// Host is the name it asked for: the one explained, or the site that answers it.
	Host   string `json:"host"`
	Path   string `json:"path,omitempty"`
	Served bool   `json:"served"`
}

// Route is one path of a site and its servers.
type Route struct {
	Path    string `json:"path"`
	Dest    string `json:"dest,omitempty"`
	Backend string `json:"backend"`
	Proto   string `json:"proto"`
	Sticky  string `json:"sticky,omitempty"`
	// Root is FastCGI's document root; Internal: NETWORK_ACCESS=internal.
	Root     string   `json:"root,omitempty"`
	Internal bool     `json:"internal,omitempty"`
	Servers  []Server `json:"servers"`
}

// Server is a routing server with what the proxy says of it now.
type Server struct {
	routing.Server
	// Drained: weight 0 (VIRTUAL_WEIGHT=0), in the backend but given no new requests.
	Drained bool `json:"drained,omitempty"`
	// Live is the proxy's state of the server; nil when not known (no live states, or the proxy
	// does not have the server: the config with it is not applied yet).
	Live *ServerState `json:"live,omitempty"`
}

// Workload explains one workload.
type Workload struct {
	// Query is what was asked for; the rest is empty when no workload matches.
	Query       string              `json:"query"`
	Workload    string              `json:"workload,omitempty"`
	WorkloadID  string              `json:"workloadID,omitempty"`
	Source      string              `json:"source,omitempty"`
	Service     string              `json:"service,omitempty"`
	Health      string              `json:"health,omitempty"`
	NetworkMode string              `json:"networkMode,omitempty"`
	Networks    []discovery.Network `json:"networks,omitempty"`
	Ports       []discovery.Port    `json:"ports,omitempty"`
	// Address is the address its source gave, when it did.
	Address string `json:"address,omitempty"`
	// Settings are the routing settings as written, Parsed as read (nil: it asks for no routing).
	Settings []Setting `json:"settings"`
	Parsed   *Parsed   `json:"parsed,omitempty"`
	// Serves are the routes and TCP services it is a server of.
	Serves []Serving `json:"serves"`
	// LeftOut are the routes it asked for and does not serve, and why.
	LeftOut  []routing.Exclusion `json:"leftOut"`
	Problems []routing.Problem   `json:"problems"`
	Notes    []string            `json:"notes,omitempty"`
}

// Setting is one setting as written, and where.
type Setting struct {
	Name   string           `json:"name"`
	Value  string           `json:"value"`
	Origin discovery.Origin `json:"origin"`
}

// Parsed are a workload's routing settings as routing read them; a value that could not be read
// is zero (and a problem says why).
type Parsed struct {
	Hosts []string `json:"hosts,omitempty"`
	Path  string   `json:"path,omitempty"`
	// Port 0: not set, the single exposed TCP port, else 80.
	Port        int      `json:"port,omitempty"`
	Proto       string   `json:"proto,omitempty"`
	Dest        string   `json:"dest,omitempty"`
	Network     string   `json:"network,omitempty"`
	Weight      int      `json:"weight"`
	Sticky      string   `json:"sticky,omitempty"`
	TCPPort     int      `json:"tcpPort,omitempty"`
	CertName    string   `json:"certName,omitempty"`
	HTTPSMethod string   `json:"httpsMethod,omitempty"`
	ACMEHosts   []string `json:"acmeHosts,omitempty"`
}

// Serving is one route (or TCP service) a workload is a server of.
type Serving struct {
	Host    string `json:"host,omitempty"`
	Path    string `json:"path,omitempty"`
	TCPPort int    `json:"tcpPort,omitempty"`
	Backend string `json:"backend"`
	Server  Server `json:"server"`
}

// Explain explains the query's hosts and workloads from t; live, when not nil, gives the
// servers' states.
func Explain(t routing.Table, q Query, live *Live) Report {
	r := Report{ProxyNetworks: t.ProxyNetworks, HostAddress: t.HostAddress, Live: live}
	if r.ProxyNetworks == nil {
		r.ProxyNetworks = []string{}
	}
	for _, h := range q.Hosts {
		r.Hosts = append(r.Hosts, explainHost(t, h, live))
	}
	for _, w := range q.Workloads {
		r.Workloads = append(r.Workloads, explainWorkloads(t, w, live)...)
	}
	return r
}

// NormalizeHost is a Host header's name as the proxies match it: lower case, no trailing dot,
// no port.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[:i], ":") {
		if _, err := strconv.Atoi(h[i+1:]); err == nil {
			h = h[:i]
		}
	}
	return strings.TrimSuffix(h, ".")
}

// Answering finds the site that answers a name, as nginx picks a server name and the HAProxy
// template orders its rules: the exact name, else the longest "*.x" that matches, else the
// longest "x.*".
func Answering(sites []routing.Site, host string) (*routing.Site, string) {
	var lead, trail *routing.Site
	for i := range sites {
		s := &sites[i]
		switch {
		case s.Host == host:
			return s, MatchExact
		case strings.HasPrefix(s.Host, "*.") && strings.HasSuffix(host, s.Host[1:]) && len(host) > len(s.Host)-1:
			if lead == nil || len(s.Host) > len(lead.Host) {
				lead = s
			}
		case strings.HasSuffix(s.Host, ".*") && strings.HasPrefix(host, s.Host[:len(s.Host)-1]) && len(host) > len(s.Host)-1:
			if trail == nil || len(s.Host) > len(trail.Host) {
				trail = s
			}
		}
	}
	if lead != nil {
		return lead, MatchLeading
	}
	if trail != nil {
		return trail, MatchTrailing
	}
	return nil, MatchNone
}

// asked is what a workload asked for: its hosts (as parsed, else as written) and path.
func asked(w *discovery.Workload) (hosts []string, path string) {
	s, _, routed := routing.ParseSettings(w)
	if !routed {
		return nil, ""
	}
	if s.Hosts != nil {
		return s.Hosts, s.Path
	}
	v, _, _ := w.Setting(routing.SettingHost)
	for _, h := range strings.Split(v, ",") {
		if h = NormalizeHost(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts, s.Path
}

func explainHost(t routing.Table, query string, live *Live) Host {
	name := NormalizeHost(query)
	h := Host{Host: name, Asked: []Request{}, Routes: []Route{}, LeftOut: []routing.Exclusion{}}
	site, match := Answering(t.Sites, name)
	h.Match = match
	names := []string{name}
	if site != nil {
		h.Site, h.TLS = site.Host, site.TLS
		if site.Host != name {
			names = append(names, site.Host)
		}
		for _, r := range site.Routes {
			h.Routes = append(h.Routes, explainRoute(r, live))
		}
	}
	served := map[string]bool{} // workload ID, on the site
	for _, r := range h.Routes {
		for _, s := range r.Servers {
			served[s.WorkloadID] = true
		}
	}
	for i := range t.Workloads {
		w := &t.Workloads[i]
		hosts, path := asked(w)
		for _, n := range names {
			if !slices.Contains(hosts, n) {
				continue
			}
			req := Request{Workload: w.Name, WorkloadID: w.ID, Source: w.Source, Host: n, Path: path, Served: n == h.Site && served[w.ID]}
			h.Asked = append(h.Asked, req)
			if !req.Served {
				h.LeftOut = append(h.LeftOut, leftOut(t, w, n)...)
			}
		}
	}
	h.LeftOut = slices.CompactFunc(h.LeftOut, func(a, b routing.Exclusion) bool { return a == b })
	for _, p := range t.Problems {
		if !p.Warning {
			continue
		}
		if (p.Workload == "" && slices.Contains(names, p.Host)) ||
			(p.Workload != "" && slices.ContainsFunc(h.Asked, func(r Request) bool { return r.WorkloadID == p.WorkloadID })) {
			h.Warnings = append(h.Warnings, p.String())
		}
	}
	h.Warnings = slices.Compact(h.Warnings)
	h.Notes = hostNotes(h)
	return h
}

// leftOut is why w does not serve host: its exclusions for the host (or for every host, when
// its hosts could not be read), else its problems (a site the proxy's check refused is left out
// after routing, with a problem on each of its workloads).
func leftOut(t routing.Table, w *discovery.Workload, host string) []routing.Exclusion {
	var out []routing.Exclusion
	for _, e := range t.Excluded {
		if e.WorkloadID == w.ID && e.Workload == w.Name && e.Port == 0 && (e.Host == host || e.Host == "") {
			out = append(out, e)
		}
	}
	if len(out) > 0 {
		return out
	}
	e := routing.Exclusion{Source: w.Source, Workload: w.Name, WorkloadID: w.ID, Host: host, Why: routing.ExcludedProblem}
	var reasons []string
	for _, p := range t.Problems {
		if p.WorkloadID == w.ID && p.Workload == w.Name && !p.Warning {
			p.Workload = ""
			reasons = append(reasons, p.String())
		}
	}
	e.Reason = strings.Join(reasons, "; ")
	if e.Reason == "" {
		e.Reason = "not in the table, and routing recorded no reason"
	}
	return []routing.Exclusion{e}
}

func hostNotes(h Host) []string {
	var notes []string
	switch {
	case h.Site == "" && len(h.Asked) == 0:
		notes = append(notes, "no site answers this name and no running workload asks for it: the proxy answers 503 "+
			"(a stopped container is not listed: the sources read running workloads only)")
	case h.Site == "":
		notes = append(notes, "no site answers this name: every workload that asked for it is left out, so the proxy answers 503")
	case h.Match != MatchExact:
		notes = append(notes, fmt.Sprintf("no site has this exact name: site %s answers it (%s)", h.Site, h.Match))
	}
	if h.Site != "" && !slices.ContainsFunc(h.Routes, func(r Route) bool { return r.Path == "/" }) {
		notes = append(notes, "no route for /: paths outside the routes below get 404")
	}
	for _, r := range h.Routes {
		active := slices.ContainsFunc(r.Servers, func(s Server) bool { return !s.Drained })
		if !active {
			notes = append(notes, fmt.Sprintf("every server of %s is drained (weight 0): it gets no new requests", r.Path))
		}
	}
	return notes
}

func explainRoute(r routing.Route, live *Live) Route {
	out := Route{Path: r.Path, Dest: r.Dest, Backend: r.Backend.Name, Proto: r.Backend.Proto, Sticky: r.Backend.Sticky,
		Root: r.Root, Internal: r.Internal, Servers: []Server{}}
	for _, s := range r.Backend.Servers {
		out.Servers = append(out.Servers, explainServer(r.Backend.Name, s, live))
	}
	return out
}

func explainServer(backend string, s routing.Server, live *Live) Server {
	out := Server{Server: s, Drained: s.Weight == 0}
	if live != nil && live.States != nil {
		if st, ok := live.States[Key(backend, s.Name)]; ok {
			out.Live = &st
		}
	}
	return out
}

// explainWorkloads explains the workloads a query names: by name, ID or a unique ID prefix
// (at least 4 characters), else every workload of the service of that name.
func explainWorkloads(t routing.Table, query string, live *Live) []Workload {
	var match []*discovery.Workload
	for i := range t.Workloads {
		if w := &t.Workloads[i]; w.Name == query || w.ID == query {
			match = append(match, w)
		}
	}
	if len(match) == 0 && len(query) >= 4 {
		for i := range t.Workloads {
			if w := &t.Workloads[i]; strings.HasPrefix(w.ID, query) {
				match = append(match, w)
			}
		}
		if len(match) > 1 {
			match = nil // ambiguous
		}
	}
	if len(match) == 0 {
		for i := range t.Workloads {
			if w := &t.Workloads[i]; w.Service == query {
				match = append(match, w)
			}
		}
	}
	if len(match) == 0 {
		return []Workload{{Query: query, Settings: []Setting{}, Serves: []Serving{}, LeftOut: []routing.Exclusion{}, Problems: []routing.Problem{},
			Notes: []string{"no running workload has this name, ID or service (a stopped container is not listed: the sources read running workloads only)"}}}
	}
	out := make([]Workload, 0, len(match))
	for _, w := range match {
		out = append(out, explainWorkload(t, w, query, live))
	}
	return out
}

func explainWorkload(t routing.Table, w *discovery.Workload, query string, live *Live) Workload {
	x := Workload{Query: query, Workload: w.Name, WorkloadID: w.ID, Source: w.Source, Service: w.Service, Health: w.Health,
		NetworkMode: w.NetworkMode, Networks: w.Networks, Ports: w.Ports, Address: w.Address,
		Settings: []Setting{}, Serves: []Serving{}, LeftOut: []routing.Exclusion{}, Problems: []routing.Problem{}}
	for _, name := range routing.SettingNames {
		if v, from, ok := w.Setting(name); ok {
			x.Settings = append(x.Settings, Setting{name, v, from})
		}
	}
	if s, _, routed := routing.ParseSettings(w); routed {
		x.Parsed = &Parsed{Hosts: s.Hosts, Path: s.Path, Port: s.Port, Proto: s.Proto, Dest: s.Dest, Network: s.Network,
			Weight: s.Weight, Sticky: s.Sticky, TCPPort: s.TCPPort, CertName: s.TLS.CertName, HTTPSMethod: s.TLS.Method, ACMEHosts: s.TLS.ACME.Hosts}
	}
	mine := func(s routing.Server) bool { return s.WorkloadID == w.ID && s.Workload == w.Name }
	for _, site := range t.Sites {
		for _, r := range site.Routes {
			for _, s := range r.Backend.Servers {
				if mine(s) {
					x.Serves = append(x.Serves, Serving{Host: site.Host, Path: r.Path, Backend: r.Backend.Name, Server: explainServer(r.Backend.Name, s, live)})
				}
			}
		}
	}
	for _, ts := range t.TCP {
		for _, s := range ts.Backend.Servers {
			if mine(s) {
				x.Serves = append(x.Serves, Serving{TCPPort: ts.Port, Backend: ts.Backend.Name, Server: explainServer(ts.Backend.Name, s, live)})
			}
		}
	}
	for _, e := range t.Excluded {
		if e.WorkloadID == w.ID && e.Workload == w.Name {
			x.LeftOut = append(x.LeftOut, e)
		}
	}
	for _, p := range t.Problems {
		if p.WorkloadID == w.ID && p.Workload == w.Name {
			x.Problems = append(x.Problems, p)
		}
	}
	// Hosts asked for, neither served nor excluded by routing: left out after it (a site the
	// proxy's check refused).
	hosts, _ := asked(w)
	for _, h := range hosts {
		served := slices.ContainsFunc(x.Serves, func(s Serving) bool { return s.Host == h })
		excluded := slices.ContainsFunc(x.LeftOut, func(e routing.Exclusion) bool { return e.Host == h || (e.Host == "" && e.Port == 0) })
		if !served && !excluded {
			x.LeftOut = append(x.LeftOut, leftOut(t, w, h)...)
		}
	}
	slices.SortStableFunc(x.LeftOut, func(a, b routing.Exclusion) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Port, b.Port))
	})
	if x.Parsed == nil {
		x.Notes = append(x.Notes, "it asks for no routing: neither VIRTUAL_HOST nor VIRTUAL_TCP_PORT is set")
	}
	return x
}
