// Package access holds who may reach a route: the internal networks of NETWORK_ACCESS=internal
// (nginx-proxy's network_internal.conf, or the operator's) and the basic-auth files of
// nginx-proxy's htpasswd directory.
package access

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// DefaultInternalNetworks are nginx-proxy's network_internal.conf (loopback and the RFC 1918
// networks), with IPv6's loopback and unique local addresses, which it leaves out.
var DefaultInternalNetworks = []string{"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "::1/128", "fc00::/7"}

// maxNetworkFile bounds the file: a list of networks, not a blocklist of the Internet.
const maxNetworkFile = 64 << 10

// ReadInternalNetworks reads a file in nginx-proxy's network_internal.conf format: "allow
// NETWORK;" lines (an address or a CIDR network), a final "deny all;", comments and blank lines.
// Anything else is an error naming the file and the line: the file is included into nginx by
// nginx-proxy, but vhost-gen writes the networks itself, into either proxy's config.
func ReadInternalNetworks(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxNetworkFile {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", path, len(data), maxNetworkFile)
	}
	nets, err := ParseInternalNetworks(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return nets, nil
}

// ParseInternalNetworks parses network_internal.conf's content (ReadInternalNetworks). The
// networks are in canonical form ("10.0.0.0/8"; an address is a /32 or /128), in the file's
// order, without duplicates.
func ParseInternalNetworks(data []byte) ([]string, error) {
	var nets []string
	seen := map[string]bool{}
	denied := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(strings.ReplaceAll(line, ";", " ; "))
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || f[2] != ";" || (f[0] != "allow" && f[0] != "deny") {
			return nil, fmt.Errorf("line %d: %q: want \"allow NETWORK;\" or \"deny all;\"", n, strings.TrimSpace(line))
		}
		if denied {
			return nil, fmt.Errorf("line %d: nothing may follow \"deny all;\"", n)
		}
		if f[0] == "deny" {
			if f[1] != "all" {
				return nil, fmt.Errorf("line %d: only \"deny all;\" is understood (the networks not allowed are denied)", n)
			}
			denied = true
			continue
		}
		p, err := parseNetwork(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !seen[p] {
			seen[p] = true
			nets = append(nets, p)
		}
	}
	if len(nets) == 0 {
		return nil, fmt.Errorf("no \"allow NETWORK;\" line: every client would be refused")
	}
	return nets, nil
}

// parseNetwork reads an address or a CIDR network into its canonical CIDR form.
func parseNetwork(s string) (string, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("%q: not a network (10.0.0.0/8, fc00::/7)", s)
		}
		return p.Masked().String(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("%q: not an address or a network (10.0.0.0/8, fc00::/7)", s)
	}
	return netip.PrefixFrom(a, a.BitLen()).String(), nil
}
