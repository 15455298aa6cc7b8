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

// anyPort is the port of a listen setting that listens on every IPv4 address (a bare port,
// ":port", "0.0.0.0:port", "*:port"), "" otherwise: ENABLE_IPV6 adds IPv6's every address to
// those only, never to a listen on one address.
func anyPort(listen string) string {
	if !strings.Contains(listen, ":") {
		return listen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || (host != "" && host != "0.0.0.0" && host != "*") {
		return ""
	}
	return port
}

// nginxListenV6 is the IPv6 listen beside a listen setting with ENABLE_IPV6 ("[::]:80"), "" when
// there is none.
func nginxListenV6(enabled bool, listen string) string {
	if p := anyPort(listen); enabled && p != "" {
		return "[::]:" + p
	}
	return ""
}

// haproxyBindV6 is the IPv6 bind beside a listen setting with ENABLE_IPV6, on port (0: the
// setting's own), "" when there is none.
func haproxyBindV6(enabled bool, listen string, port int) string {
	p := anyPort(listen)
	if !enabled || p == "" {
		return ""
	}
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return "ipv6@:" + p + " v6only"
}
