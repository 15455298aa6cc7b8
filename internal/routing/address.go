package routing

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// AddressMode chooses which of the address rules apply (docs/architecture.md, the README).
type AddressMode string

// The address modes.
const (
	// ModeAuto applies every rule in order.
	ModeAuto AddressMode = "auto"
	// ModeNetwork routes only over networks shared with the proxy (or VIRTUAL_NETWORK).
	ModeNetwork AddressMode = "network"
	// ModeHostPort routes only to the node's address: host networking or published ports.
	ModeHostPort AddressMode = "host-port"
)

// ParseAddressMode validates the --address-mode flag.
func ParseAddressMode(v string) (AddressMode, error) {
	switch m := AddressMode(v); m {
	case ModeAuto, ModeNetwork, ModeHostPort:
		return m, nil
	}
	return "", fmt.Errorf("address mode %q: must be auto, network or host-port", v)
}

// ingress is Swarm's routing-mesh network: never a route to a task.
const ingress = "ingress"

// target is where one workload is reached, and by which address rule (a Via* value, and what
// it found).
type target struct {
	ip     string
	port   int
	via    string
	detail string
}

func (t target) String() string { return net.JoinHostPort(t.ip, strconv.Itoa(t.port)) }

// addressError is a reason no address was found, with the setting it concerns.
type addressError struct {
	setting string
	reason  string
}

// choosePort applies VIRTUAL_PORT's default: the single exposed port, else 80.
func choosePort(w *discovery.Workload, s *Settings) (int, *addressError) {
	if s.Port != 0 {
		return s.Port, nil
	}
	var tcp []int
	for _, p := range w.Ports {
		if p.Proto == "tcp" && !slices.Contains(tcp, p.Port) {
			tcp = append(tcp, p.Port)
		}
	}
	switch {
	case len(tcp) == 1:
		return tcp[0], nil
	case len(tcp) == 0 || slices.Contains(tcp, 80):
		return 80, nil
	}
	return 0, &addressError{SettingPort, fmt.Sprintf("not set, and several ports are exposed (%s) none of which is 80: set VIRTUAL_PORT", joinInts(tcp))}
}

// chooseAddress applies the address rules in order; the first that yields an address wins.
func chooseAddress(w *discovery.Workload, s *Settings, port int, opt Options, proxyNets []string) (target, *addressError) {
	mode := opt.Mode
	ipOf := func(n discovery.Network) string { return networkIP(n, opt.PreferIPv6) }
	if mode != ModeHostPort {
		// Rule 1: VIRTUAL_NETWORK names the network.
		if s.Network != "" {
			if s.Network == ingress {
				return target{}, &addressError{SettingNetwork, "the ingress network is Swarm's routing mesh and is never routed to"}
			}
			n, ok := w.Network(s.Network)
			if !ok {
				return target{}, &addressError{SettingNetwork, fmt.Sprintf("not attached to this network (attached: %s)", networkNames(w))}
			}
			if ipOf(n) == "" {
				return target{}, &addressError{SettingNetwork, "no address on this network"}
			}
			return target{ipOf(n), port, ViaNetworkSetting, "network " + n.Name}, nil
		}
		// Rule 2: the first network shared with the proxy, by name; never ingress.
		var shared *discovery.Network
		var all []string
		for i, n := range w.Networks {
			if n.Name != ingress && ipOf(n) != "" && slices.Contains(proxyNets, n.Name) {
				all = append(all, n.Name)
				if shared == nil || n.Name < shared.Name {
					shared = &w.Networks[i]
				}
			}
		}
		if shared != nil {
			detail := "network " + shared.Name
			if len(all) > 1 {
				slices.Sort(all)
				detail += " (the first by name of the proxy's networks it is on: " + strings.Join(all, ", ") + ")"
			}
			return target{ipOf(*shared), port, ViaSharedNetwork, detail}, nil
		}
		if mode == ModeNetwork {
			return target{}, &addressError{"", noSharedNetwork(w, proxyNets)}
		}
	}
	// Rule 3: host networking.
	if w.NetworkMode == "host" {
		if w.NodeAddress == "" {
			return target{}, &addressError{"", "host networking, but the node's address is unknown"}
		}
		return target{w.NodeAddress, port, ViaHostNetwork, "the node's address " + w.NodeAddress + " (network mode host)"}, nil
	}
	// Rule 4: a port published on the host.
	if t, ok := published(w, port); ok {
		return t, nil
	}
	reason := fmt.Sprintf("no address: port %d/tcp is not published on the host", port)
	if mode == ModeAuto {
		reason = noSharedNetwork(w, proxyNets) + fmt.Sprintf(", and port %d/tcp is not published on the host", port)
	}
	return target{}, &addressError{"", reason}
}

// published finds the host binding of a container port, IPv4 first. A binding to all addresses
// is reached on the node's address.
func published(w *discovery.Workload, port int) (target, bool) {
	var best target
	for _, p := range w.Ports {
		if p.Port != port || p.Proto != "tcp" || p.HostPort == 0 {
			continue
		}
		ip := p.HostIP
		detail := fmt.Sprintf("port %d/tcp published on %s", port, net.JoinHostPort(cmp.Or(p.HostIP, "0.0.0.0"), strconv.Itoa(p.HostPort)))
		if ip == "" || ip == "0.0.0.0" || ip == "::" {
			ip = w.NodeAddress
			detail += ", reached at the node's address"
		}
		if ip == "" {
			continue
		}
		t := target{ip, p.HostPort, ViaPublishedPort, detail}
		if !strings.Contains(ip, ":") {
			return t, true
		}
		if best.ip == "" {
			best = t
		}
	}
	return best, best.ip != ""
}

// loopbackProblem refuses a target on loopback when the proxy runs in a container off the host
// network: its 127.0.0.1 is its own, not the host's, so it would reach nothing or itself.
func loopbackProblem(t target, proxyMode string) *addressError {
	if proxyMode == "" || proxyMode == "host" || !isLoopback(t.ip) {
		return nil
	}
	return &addressError{"", fmt.Sprintf("address %s is loopback, and the proxy in its container (network mode %s) cannot reach the host's loopback: publish the port on all addresses or a host IP, share a network with the proxy, or set --host-address to the host's address", t, proxyMode)}
}

// isLoopback reports 127.0.0.0/8, ::1 (also IPv4-mapped) and the localhost names.
func isLoopback(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

func noSharedNetwork(w *discovery.Workload, proxyNets []string) string {
	if proxyNets == nil {
		return fmt.Sprintf("no address: the proxy's networks are unknown (run vhost-gen in the proxy's container, or set --proxy-networks or --proxy-container) and VIRTUAL_NETWORK is not set (attached: %s)", networkNames(w))
	}
	return fmt.Sprintf("no address: shares no network with the proxy (proxy: %s; attached: %s)", orNone(strings.Join(proxyNets, ", ")), networkNames(w))
}

func networkNames(w *discovery.Workload) string {
	names := make([]string, 0, len(w.Networks))
	for _, n := range w.Networks {
		names = append(names, n.Name)
	}
	return orNone(strings.Join(names, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// networkIP is a workload's address on a network: IPv4 on a dual-stack network unless preferV6
// (PREFER_IPV6_NETWORK), the IPv6 one on an IPv6-only network.
func networkIP(n discovery.Network, preferV6 bool) string {
	if n.IPv6 != "" && (preferV6 || n.IP == "") {
		return n.IPv6
	}
	return n.IP
}
