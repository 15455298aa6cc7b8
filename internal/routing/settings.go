package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// The settings users write, named as nginx-proxy names them.
const (
	SettingHost    = "VIRTUAL_HOST"
	SettingPort    = "VIRTUAL_PORT"
	SettingProto   = "VIRTUAL_PROTO"
	SettingPath    = "VIRTUAL_PATH"
	SettingDest    = "VIRTUAL_DEST"
	SettingNetwork = "VIRTUAL_NETWORK"
	SettingWeight  = "VIRTUAL_WEIGHT"
	SettingSticky  = "VIRTUAL_STICKY"
	SettingTCPPort = "VIRTUAL_TCP_PORT"
)

// MaxWeight is the largest VIRTUAL_WEIGHT; HAProxy's limit, so both proxies accept every value.
const MaxWeight = 256

// Settings are one workload's validated routing settings.
type Settings struct {
	Hosts   []string
	Port    int // 0: not set, choose from the exposed ports
	Proto   string
	Path    string
	Dest    string
	Network string
	Weight  int
	Sticky  string
	TCPPort int // 0: no TCP service
	// Multi are the routes of VIRTUAL_HOST_MULTIPORTS (multiports.go), which replace Hosts,
	// Port, Proto, Path and Dest; nil without it.
	Multi []RouteSpec
	// Root is a FastCGI backend's document root (VIRTUAL_ROOT, proto.go); Internal: only
	// private and loopback clients may reach the routes (NETWORK_ACCESS=internal).
	Root     string
	Internal bool
	TLS      TLSSettings
	// Balance and Keepalive are nginx-proxy's loadbalance and keepalive labels (balance.go);
	// zero when not set.
	Balance   Balance
	Keepalive string
	// ServerTokens is the site's nginx server_tokens (SERVER_TOKENS, sitesettings.go); empty:
	// the gateway's.
	ServerTokens string
}

// ParseSettings reads and validates a workload's settings. routed is false when the workload does
// not ask for routing (neither VIRTUAL_HOST nor VIRTUAL_TCP_PORT). Every invalid value is one
// problem; those of the loadbalance and keepalive labels are warnings (the workload is routed
// without them).
func ParseSettings(w *discovery.Workload) (s Settings, problems []Problem, routed bool) {
	hosts, from, hasHost := w.Setting(SettingHost)
	_, _, hasTCP := w.Setting(SettingTCPPort)
	_, _, hasMulti := w.Setting(SettingMultiports)
	if !hasHost && !hasTCP && !hasMulti {
		return s, nil, false
	}
	if problems := checkBounds(w); len(problems) > 0 { // bounds.go: before any value is parsed
		return s, problems, true
	}
	bad := func(setting string, from discovery.Origin, value string, err error) {
		problems = append(problems, newProblem(w, setting, from, value, err.Error()))
	}
	if hasMulti {
		problems = append(problems, parseMultiSettings(w, &s, bad)...) // multiports.go
	} else if hasHost {
		var err error
		if s.Hosts, err = ParseHosts(hosts); err != nil {
			bad(SettingHost, from, hosts, err)
		}
	}
	s.Proto, s.Path, s.Weight = "http", "/", 1
	type field struct {
		name  string
		parse func(string) error
	}
	fields := []field{
		{SettingPort, func(v string) (err error) { s.Port, err = ParsePort(v); return }},
		{SettingProto, func(v string) (err error) { s.Proto, err = ParseProto(v); return }},
		{SettingPath, func(v string) (err error) { s.Path, err = ParsePath(v); return }},
		{SettingDest, func(v string) (err error) { s.Dest, err = ParsePath(v); return }},
		{SettingNetwork, func(v string) (err error) { s.Network, err = ParseNetwork(v); return }},
		{SettingWeight, func(v string) (err error) { s.Weight, err = ParseWeight(v); return }},
		{SettingSticky, func(v string) (err error) { s.Sticky, err = ParseSticky(v); return }},
		{SettingTCPPort, func(v string) (err error) { s.TCPPort, err = ParsePort(v); return }},
		{SettingRoot, func(v string) (err error) { s.Root, err = ParsePath(v); return }},
		{SettingNetworkAccess, func(v string) (err error) { s.Internal, err = ParseNetworkAccess(v); return }},
	}
	for _, f := range fields {
		if hasMulti && replacedByMulti[f.name] {
			continue
		}
		if v, from, ok := w.Setting(f.name); ok {
			if err := f.parse(v); err != nil {
				bad(f.name, from, v, err)
			}
		}
	}
	problems = append(problems, checkProto(w, &s, bad)...) // warnings, and VIRTUAL_DEST's error
	s.TLS = parseTLS(w, bad)
	problems = append(problems, parseUpstream(w, &s)...)     // warnings only
	problems = append(problems, parseSiteSettings(w, &s)...) // warnings only
	return s, problems, true
}

// ParseHosts splits a comma-separated VIRTUAL_HOST, ignoring blanks and empty entries, and
// validates each name. The result is lower case, sorted order is left to the table.
func ParseHosts(v string) ([]string, error) {
	var hosts []string
	seen := map[string]bool{}
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		name, err := ParseHost(h)
		if err != nil {
			if !strings.Contains(v, ",") { // one entry: the problem already quotes the value
				return nil, errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("host %q: ", h)))
			}
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			hosts = append(hosts, name)
		}
	}
	if len(hosts) == 0 {
		return nil, errors.New("no host names")
	}
	return hosts, nil
}

// ParseHost validates one VIRTUAL_HOST entry: an exact name, "*.example.com", "example.*", an
// IPv6 address ("[fd00::1]") or a regular expression, "~^api\d+\.example\.com$" (regexhost.go).
func ParseHost(h string) (string, error) {
	if err := asciiOnly(h); err != nil {
		return "", err
	}
	if IsRegexHost(h) {
		return parseRegexHost(h)
	}
	if strings.Contains(h, ":") {
		return parseIPv6Host(h)
	}
	return ParseHostName(h)
}

// asciiOnly refuses a host with non-ASCII bytes, first: lower-casing maps some non-ASCII letters
// (the Kelvin sign) onto ASCII ones.
func asciiOnly(h string) error {
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return fmt.Errorf("host %q: non-ASCII characters are not allowed (use punycode for IDNs)", h)
		}
	}
	return nil
}

// ParseHostName validates a DNS name: exact, "*.example.com" or "example.*"; never a regular
// expression or an IPv6 address (for a server's name, DEFAULT_HOST, the host address).
func ParseHostName(h string) (string, error) {
	if err := asciiOnly(h); err != nil {
		return "", err
	}
	name := strings.TrimSuffix(strings.ToLower(h), ".")
	if len(name) == 0 || len(name) > 253 {
		return "", fmt.Errorf("host %q: must be 1 to 253 characters", h)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" {
			if len(labels) < 2 || (i != 0 && i != len(labels)-1) || strings.Count(name, "*") > 1 {
				return "", fmt.Errorf("host %q: a wildcard must be the whole first or last label, once (*.example.com, example.*)", h)
			}
			continue
		}
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("host %q: %w", h, err)
		}
	}
	return name, nil
}

// parseIPv6Host reads an IPv6 address as a host, "[fd00::1]" or "fd00::1", into the form a
// request's Host header has: in brackets, canonical (nginx matches server_name "[fd00::1]").
func parseIPv6Host(h string) (string, error) {
	inner, bracketed := strings.CutPrefix(h, "[")
	if bracketed {
		inner, bracketed = strings.CutSuffix(inner, "]")
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || bracketed != strings.HasPrefix(h, "[") || strings.HasSuffix(inner, "]") || !a.Is6() || a.Zone() != "" || a.Is4In6() {
		return "", fmt.Errorf("host %q: ':' is allowed in an IPv6 address only ([fd00::1]); a port belongs in VIRTUAL_PORT", h)
	}
	return "[" + a.String() + "]", nil
}

func checkLabel(l string) error {
	if len(l) == 0 || len(l) > 63 {
		return errors.New("each dot-separated label must be 1 to 63 characters")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("character %q not allowed (letters, digits, '-', '_'; use punycode for IDNs)", rune(c))
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("a label cannot start or end with '-'")
	}
	return nil
}

// ParsePort validates a TCP port number.
func ParsePort(v string) (int, error) {
	n, err := parseUint(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("must be a port number from 1 to 65535")
	}
	return n, nil
}

// ParseWeight validates a server weight; 0 drains the server.
func ParseWeight(v string) (int, error) {
	n, err := parseUint(strings.TrimSpace(v))
	if err != nil || n > MaxWeight {
		return 0, fmt.Errorf("must be a whole number from 0 to %d", MaxWeight)
	}
	return n, nil
}

// parseUint accepts plain decimal digits only: no sign, no spaces, at most 6 digits.
func parseUint(v string) (int, error) {
	if v == "" || len(v) > 6 {
		return 0, errors.New("not a number")
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, nil
}

// ParsePath validates a URL path prefix (VIRTUAL_PATH, VIRTUAL_DEST). Only characters that are
// inert in both nginx and HAProxy configs are allowed.
func ParsePath(v string) (string, error) {
	p := strings.TrimSpace(v)
	if p == "" || p[0] != '/' || len(p) > 1024 {
		return "", errors.New("must start with '/' and be at most 1024 characters")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._~%:@!+,=-", c) >= 0) {
			return "", fmt.Errorf("character %q not allowed in a path", rune(c))
		}
	}
	return p, nil
}

// ParseNetwork validates a Docker network name.
func ParseNetwork(v string) (string, error) {
	n := strings.TrimSpace(v)
	if n == "" || len(n) > 255 {
		return "", errors.New("must be a network name of 1 to 255 characters")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && strings.IndexByte("_.-", c) >= 0)
		if !ok {
			return "", fmt.Errorf("character %q not allowed in a network name", rune(c))
		}
	}
	return n, nil
}

// ParseSticky validates a sticky-session cookie name. Letters, digits and '_' only, so that it is
// also a valid nginx variable suffix ($cookie_NAME).
func ParseSticky(v string) (string, error) {
	n := strings.TrimSpace(v)
	if n == "" || len(n) > 64 {
		return "", errors.New("must be a cookie name of 1 to 64 characters")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "", fmt.Errorf("character %q not allowed in a cookie name (letters, digits, '_')", rune(c))
		}
	}
	return n, nil
}
