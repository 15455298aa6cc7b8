package routing

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// ParseEndpoint validates an address a source gives directly ("10.0.0.5:49156", "[fd00::5]:80",
// "db.internal:5432"): an IP address or a host name, and a port. It returns the address as the
// config will carry it.
func ParseEndpoint(v string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil || len(v) > 300 {
		return "", fmt.Errorf("%q is not HOST:PORT", v)
	}
	p, err := ParsePort(port)
	if err != nil || port != strconv.Itoa(p) {
		return "", fmt.Errorf("%q: port %q must be a port number from 1 to 65535", v, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ipEndpoint(v, host, ip, p)
	}
	name, err := ParseHostName(host)
	if err != nil || strings.Contains(name, "*") {
		return "", fmt.Errorf("%q: %q is neither an IP address nor a host name", v, host)
	}
	if ip, err := netip.ParseAddr(name); err == nil { // "0.0.0.0." is a host name only in form
		return ipEndpoint(v, host, ip, p)
	}
	return net.JoinHostPort(name, strconv.Itoa(p)), nil
}

func ipEndpoint(v, host string, ip netip.Addr, port int) (string, error) {
	ip = ip.Unmap()
	if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
		return "", fmt.Errorf("%q: %q is not a server's address", v, host)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}

// sourceAddress is the target of a workload whose source gave its address.
func sourceAddress(w *discovery.Workload) (target, *addressError) {
	addr, err := ParseEndpoint(w.Address)
	if err != nil {
		return target{}, &addressError{"", "address from the source: " + err.Error()}
	}
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return target{host, n, ViaSource, "the address " + cmp.Or(w.Source, "the source") + " gave"}, nil
}
