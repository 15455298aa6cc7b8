package render

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// bindAddr turns a listen setting into HAProxy's bind syntax: a bare port listens everywhere.
func bindAddr(listen string) string {
	if !strings.Contains(listen, ":") {
		return ":" + listen
	}
	return listen
}

// bindPort is port on the host part of the HTTP listen setting: TCP services listen where HTTP
// does. HAProxy reads the address as everything before the last ':', so an IPv6 address may come
// with or without brackets ("[::1]:80", "::1:80").
func bindPort(listen string, port int) string {
	addr := bindAddr(listen)
	host := addr[:strings.LastIndexByte(addr, ':')]
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// haproxyHostOrder orders sites the way nginx picks a server name, because HAProxy takes the
// first matching use_backend: exact names, then "*.x" longest first, then "x.*" longest first.
func haproxyHostOrder(sites []routing.Site) []routing.Site {
	kind := func(h string) int {
		switch {
		case strings.HasPrefix(h, "*."):
			return 1
		case strings.HasSuffix(h, ".*"):
			return 2
		}
		return 0
	}
	out := slices.Clone(sites)
	slices.SortStableFunc(out, func(a, b routing.Site) int {
		ka, kb := kind(a.Host), kind(b.Host)
		if ka != kb || ka == 0 {
			return cmp.Compare(ka, kb)
		}
		return cmp.Compare(len(b.Host), len(a.Host))
	})
	return out
}

// hostMatch is the HAProxy match for a host name against the request's lower-cased host.
func hostMatch(host string) string {
	switch {
	case strings.HasPrefix(host, "*."):
		return "-m end " + host[1:]
	case strings.HasSuffix(host, ".*"):
		return "-m beg " + host[:len(host)-1]
	}
	return "-m str " + host
}

// longestPathFirst orders a site's routes so that the longest matching prefix wins in HAProxy's
// first-match rules, as it does in nginx.
func longestPathFirst(routes []routing.Route) []routing.Route {
	out := slices.Clone(routes)
	slices.SortStableFunc(out, func(a, b routing.Route) int { return cmp.Compare(len(b.Path), len(a.Path)) })
	return out
}
