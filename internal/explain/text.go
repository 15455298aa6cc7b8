package explain

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// WriteText writes the report for a person: what the address rules worked with, then one block
// per host (its site, who asked, the servers with their address rules and live states, who was
// left out and why, the path routes), then one per workload.
func (r Report) WriteText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "proxy networks: %s\n", orDash(strings.Join(r.ProxyNetworks, ", ")))
	if r.HostAddress.Address != "" {
		fmt.Fprintf(w, "host address: %s (%s)\n", r.HostAddress.Address, r.HostAddress.Origin)
	}
	switch {
	case r.Live == nil:
	case r.Live.Error != "":
		fmt.Fprintf(w, "live states: unavailable (%s): %s\n", r.Live.From, safe(r.Live.Error))
	default:
		fmt.Fprintf(w, "live states: %s\n", r.Live.From)
	}
	live := r.Live != nil && r.Live.Error == ""
	for _, h := range r.Hosts {
		fmt.Fprintln(w)
		writeHost(w, h, live)
	}
	for _, x := range r.Workloads {
		fmt.Fprintln(w)
		writeWorkload(w, x, live)
	}
	return w.Flush()
}

func writeHost(w io.Writer, h Host, live bool) {
	switch {
	case h.Site == "":
		fmt.Fprintf(w, "host %s: no site answers it (the proxy answers 503)\n", h.Host)
	case h.Match == MatchExact:
		fmt.Fprintf(w, "host %s: site %s (exact name)\n", h.Host, h.Site)
	default:
		fmt.Fprintf(w, "host %s: site %s (%s)\n", h.Host, h.Site, h.Match)
	}
	if len(h.Asked) == 0 {
		fmt.Fprintln(w, "  asked for by: no running workload")
	} else {
		var names []string
		serving := 0
		for _, a := range h.Asked {
			n := safe(a.Workload)
			if a.Host != h.Host {
				n += " (as " + a.Host + ")"
			}
			names = append(names, n)
			if a.Served {
				serving++
			}
		}
		fmt.Fprintf(w, "  asked for by: %s (%d serving, %d left out)\n", strings.Join(names, ", "), serving, len(h.Asked)-serving)
	}
	if h.Site != "" {
		fmt.Fprintln(w, "  servers:")
		n := 0
		for _, r := range h.Routes {
			for _, s := range r.Servers {
				fmt.Fprintf(w, "    %s\t%s\t%s\t%s\t%s%s\n", r.Path, safe(s.Workload), s.Address, via(s.Server), weight(s), liveCell(s, live))
				n++
			}
		}
		if n == 0 {
			fmt.Fprintln(w, "    none")
		}
	}
	if len(h.LeftOut) > 0 {
		fmt.Fprintln(w, "  left out:")
		for _, e := range h.LeftOut {
			where := e.Host + e.Path
			if where == "" {
				where = "every host"
			}
			fmt.Fprintf(w, "    %s\t%s\t%s: %s\n", safe(e.Workload), where, e.Why, safe(e.Reason))
		}
	}
	if len(h.Routes) > 0 {
		fmt.Fprintln(w, "  routes:")
		for _, r := range h.Routes {
			fmt.Fprintf(w, "    %s\t-> %s\n", r.Path, routeSummary(r))
		}
	}
	if h.TLS != nil {
		fmt.Fprintf(w, "  https: %s\n", tlsSummary(h.TLS))
	}
	for _, s := range h.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", safe(s))
	}
	for _, s := range h.Notes {
		fmt.Fprintf(w, "  note: %s\n", s)
	}
}

func writeWorkload(w io.Writer, x Workload, live bool) {
	if x.Workload == "" {
		fmt.Fprintf(w, "workload %s: not found\n", safe(x.Query))
		for _, s := range x.Notes {
			fmt.Fprintf(w, "  note: %s\n", s)
		}
		return
	}
	facts := []string{x.Source, "id " + short(x.WorkloadID)}
	if x.Service != "" {
		facts = append(facts, "service "+safe(x.Service))
	}
	if x.Health != "" {
		facts = append(facts, "health "+x.Health)
	}
	fmt.Fprintf(w, "workload %s: %s\n", safe(x.Workload), strings.Join(facts, ", "))
	if len(x.Settings) > 0 {
		fmt.Fprintln(w, "  settings:")
		for _, s := range x.Settings {
			fmt.Fprintf(w, "    %s\t%s\t(%s)\n", s.Name, quoteIfNeeded(s.Value), s.Origin)
		}
	}
	if p := x.Parsed; p != nil {
		port := "the single exposed port, else 80"
		if p.Port != 0 {
			port = strconv.Itoa(p.Port)
		}
		parts := []string{"hosts " + orDash(strings.Join(p.Hosts, ", ")), "path " + orDash(p.Path), "port " + port,
			"proto " + orDash(p.Proto), "weight " + strconv.Itoa(p.Weight)}
		if p.Dest != "" {
			parts = append(parts, "dest "+p.Dest)
		}
		if p.Network != "" {
			parts = append(parts, "network "+p.Network)
		}
		if p.Sticky != "" {
			parts = append(parts, "sticky "+p.Sticky)
		}
		if p.TCPPort != 0 {
			parts = append(parts, "tcp port "+strconv.Itoa(p.TCPPort))
		}
		fmt.Fprintf(w, "  parsed: %s\n", strings.Join(parts, "; "))
	}
	fmt.Fprintf(w, "  attached: %s\n", attached(x))
	fmt.Fprintln(w, "  serves:")
	for _, s := range x.Serves {
		where := s.Host + s.Path
		if s.TCPPort != 0 {
			where = "tcp :" + strconv.Itoa(s.TCPPort)
		}
		fmt.Fprintf(w, "    %s\t%s\t%s\t%s%s\n", where, s.Server.Address, via(s.Server.Server), weight(s.Server), liveCell(s.Server, live))
	}
	if len(x.Serves) == 0 {
		fmt.Fprintln(w, "    nothing")
	}
	if len(x.LeftOut) > 0 {
		fmt.Fprintln(w, "  left out:")
		for _, e := range x.LeftOut {
			where := e.Host + e.Path
			switch {
			case e.Port != 0:
				where = "tcp :" + strconv.Itoa(e.Port)
			case where == "":
				where = "every host"
			}
			fmt.Fprintf(w, "    %s\t%s: %s\n", where, e.Why, safe(e.Reason))
		}
	}
	if len(x.Problems) > 0 {
		fmt.Fprintln(w, "  problems:")
		for _, p := range x.Problems {
			p.Workload = ""
			fmt.Fprintf(w, "    %s\n", safe(p.String()))
		}
	}
	for _, s := range x.Notes {
		fmt.Fprintf(w, "  note: %s\n", s)
	}
}

func via(s routing.Server) string {
	if s.Via == "" {
		return "via ?"
	}
	if s.ViaDetail == "" {
		return "via " + s.Via
	}
	return "via " + s.Via + ": " + s.ViaDetail
}

func weight(s Server) string {
	if s.Drained {
		return "weight 0: drained"
	}
	return "weight " + strconv.Itoa(s.Weight)
}

func liveCell(s Server, live bool) string {
	if !live {
		return ""
	}
	if s.Live == nil {
		return "\tnot in the proxy (the config with it not applied yet?)"
	}
	out := s.Live.Status
	if s.Live.Since >= 0 {
		out += " for " + (time.Duration(s.Live.Since) * time.Second).String()
	}
	if s.Live.Check != "" {
		out += ", check " + s.Live.Check
		if s.Live.CheckDetail != "" {
			out += " (" + safe(s.Live.CheckDetail) + ")"
		}
	}
	return "\t" + out
}

func routeSummary(r Route) string {
	parts := []string{"backend " + r.Backend, r.Proto}
	if r.Dest != "" {
		parts = append(parts, "to "+r.Dest)
	}
	if r.Sticky != "" {
		parts = append(parts, "sticky "+r.Sticky)
	}
	if r.Root != "" {
		parts = append(parts, "root "+r.Root)
	}
	if r.Internal {
		parts = append(parts, "internal clients only")
	}
	n := len(r.Servers)
	switch n {
	case 1:
		parts = append(parts, "1 server")
	default:
		parts = append(parts, strconv.Itoa(n)+" servers")
	}
	return strings.Join(parts, ", ")
}

func tlsSummary(t *routing.SiteTLS) string {
	if t.Cert == nil {
		return t.Method + ", no certificate"
	}
	return fmt.Sprintf("%s, cert %s (%s, until %s)", t.Method, t.Cert.Name, t.CertSource, t.Cert.NotAfter.Format("2006-01-02"))
}

func attached(x Workload) string {
	var parts []string
	if x.NetworkMode != "" {
		parts = append(parts, "network mode "+x.NetworkMode)
	}
	var nets []string
	for _, n := range x.Networks {
		nets = append(nets, strings.TrimSpace(n.Name+" "+n.IP))
	}
	parts = append(parts, "networks "+orDash(strings.Join(nets, ", ")))
	var ports []string
	for _, p := range x.Ports {
		ports = append(ports, portString(p))
	}
	parts = append(parts, "ports "+orDash(strings.Join(ports, ", ")))
	if x.Address != "" {
		parts = append(parts, "address from the source "+x.Address)
	}
	return strings.Join(parts, "; ")
}

func portString(p discovery.Port) string {
	s := fmt.Sprintf("%d/%s", p.Port, p.Proto)
	if p.HostPort != 0 {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		s += fmt.Sprintf(" published on %s:%d", ip, p.HostPort)
	}
	return s
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// safe keeps a value on its line: a control character would let a hostile value forge lines or
// columns.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// quoteIfNeeded quotes a setting's value when it is empty or holds spaces or control characters.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' }) {
		return strconv.Quote(s)
	}
	return s
}
