package render

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

var resolverOption = regexp.MustCompile(`^(valid=[0-9]{1,6}[smh]?|ipv6=(on|off)|ipv4=(on|off))$`)

// ParseResolvers validates nginx-proxy's RESOLVERS for nginx's resolver directive: addresses
// (IPv4, [IPv6], each with an optional port) and nginx's valid=, ipv4= and ipv6= options,
// separated by spaces. Names are refused: nginx would need a resolver to find its resolver.
func ParseResolvers(v string) (string, error) {
	fields := strings.Fields(v)
	n := 0
	for _, f := range fields {
		if resolverOption.MatchString(f) {
			continue
		}
		// No zones (fe80::1%eth0): nginx takes none, and a zone may hold any character.
		if ap, err := netip.ParseAddrPort(f); err == nil && ap.Addr().Zone() == "" {
			n++
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil && !a.Is6() {
			n++
			continue
		}
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			if a, err := netip.ParseAddr(f[1 : len(f)-1]); err == nil && a.Is6() && a.Zone() == "" {
				n++
				continue
			}
		}
		return "", fmt.Errorf("%q: want an IP address ([IPv6]), with an optional port, or valid=TIME, ipv4=on|off, ipv6=on|off", f)
	}
	if len(fields) > 0 && n == 0 {
		return "", fmt.Errorf("no address")
	}
	return strings.Join(fields, " "), nil
}
