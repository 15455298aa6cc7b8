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

// The kinds of host name, in the order nginx tries them.
const (
	exactHost    = iota
	leadingStar  // "*.example.com"
	trailingStar // "example.*"
	regexHost    // "~^api\d+\.example\.com$", in the order of the sites
)

func hostKind(h string) int {
	switch {
	case routing.IsRegexHost(h):
		return regexHost
	case strings.HasPrefix(h, "*."):
		return leadingStar
	case strings.HasSuffix(h, ".*"):
		return trailingStar
	}
	return exactHost
}

// haproxyHostOrder orders sites the way nginx picks a server name, because HAProxy takes the
// first matching use_backend: exact names, then "*.x" longest first, then "x.*" longest first.
func haproxyHostOrder(sites []routing.Site) []routing.Site {
	out := slices.Clone(sites)
	slices.SortStableFunc(out, func(a, b routing.Site) int {
		ka, kb := hostKind(a.Host), hostKind(b.Host)
		if ka != kb || ka == exactHost || ka == regexHost {
			return cmp.Compare(ka, kb)
		}
		return cmp.Compare(len(b.Host), len(a.Host))
	})
	return out
}

// hostMatch is the HAProxy match for a host name against the request's lower-cased host.
func hostMatch(host string) string {
	switch hostKind(host) {
	case leadingStar:
		return "-m end " + host[1:]
	case trailingStar:
		return "-m beg " + host[:len(host)-1]
	case regexHost:
		return "-m reg -i " + haproxyRegex(host)
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
