// Package haproxy applies server-only changes to a running HAProxy through its runtime API, so that
// scaling a backend up or down needs no reload. It reads the rendered configs themselves (the one
// live and the new one), so it works with any template, and it falls back to a reload whenever the
// two differ in anything but their server lines.
package haproxy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// server is one "server" line of a backend or listen section.
type server struct {
	name   string
	ip     string
	port   int
	weight int
	// rest are the line's other keywords (check, inter 2s, ssl...), in order.
	rest string
}

// section is a backend or listen section and its servers, in file order.
type section struct {
	name    string
	servers []server
	// dynamicCookie: the section has "cookie ... dynamic", whose values HAProxy computes per
	// server address and must recompute after servers are added or moved.
	dynamicCookie bool
}

// parsed is a config split into its server lines and everything else (the skeleton).
type parsed struct {
	skeleton string
	sections []section
}

var sectionKeywords = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "resolvers": true, "userlist": true, "program": true, "http-errors": true,
	"ring": true, "cache": true, "mailers": true,
}

// parse splits a config. A server line it cannot read is an error: the caller then reloads.
func parse(cfg []byte) (parsed, error) {
	var p parsed
	var skel strings.Builder
	var cur *section
	for n, line := range strings.Split(string(cfg), "\n") {
		fields := strings.Fields(stripComment(line))
		if len(fields) > 0 && sectionKeywords[fields[0]] {
			cur = nil
			if (fields[0] == "backend" || fields[0] == "listen") && len(fields) > 1 {
				p.sections = append(p.sections, section{name: fields[1]})
				cur = &p.sections[len(p.sections)-1]
			}
		}
		if cur != nil && len(fields) > 0 && fields[0] == "server" {
			s, err := parseServer(fields)
			if err != nil {
				return parsed{}, fmt.Errorf("line %d: %w", n+1, err)
			}
			cur.servers = append(cur.servers, s)
			continue // the skeleton holds no server lines, so scaling does not change it
		}
		if cur != nil && len(fields) > 1 && fields[0] == "cookie" && contains(fields[2:], "dynamic") {
			cur.dynamicCookie = true
		}
		skel.WriteString(line)
		skel.WriteByte('\n')
	}
	p.skeleton = skel.String()
	return p, nil
}

// parseServer reads "server NAME IP:PORT [weight N] [keywords...]".
func parseServer(f []string) (server, error) {
	if len(f) < 3 {
		return server{}, fmt.Errorf("server line %q: want a name and an address", strings.Join(f, " "))
	}
	host, port, err := net.SplitHostPort(f[2])
	if err != nil || net.ParseIP(host) == nil {
		return server{}, fmt.Errorf("server %s: address %q is not IP:PORT", f[1], f[2])
	}
	s := server{name: f[1], ip: host, weight: 1}
	if s.port, err = strconv.Atoi(port); err != nil {
		return server{}, fmt.Errorf("server %s: address %q is not IP:PORT", f[1], f[2])
	}
	var rest []string
	for i := 3; i < len(f); i++ {
		if f[i] == "weight" && i+1 < len(f) {
			if s.weight, err = strconv.Atoi(f[i+1]); err != nil {
				return server{}, fmt.Errorf("server %s: weight %q", f[1], f[i+1])
			}
			i++
			continue
		}
		rest = append(rest, f[i])
	}
	s.rest = strings.Join(rest, " ")
	return s, nil
}

// stripComment drops an unquoted, unescaped "#..." (HAProxy's comment).
func stripComment(line string) string {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return line[:i]
		}
	}
	return line
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
