package routing

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// nginx-proxy's labels for a backend's load balancing and its idle connections to the servers.
// nginx-proxy writes their values into the upstream block as they are; vhost-gen never does: it
// reads them into one of the forms below, which both templates render in their own terms, and a
// value it cannot read is a warning on the workload (the backend keeps the default).
const (
	SettingLoadBalance = "com.github.nginx-proxy.nginx-proxy.loadbalance"
	SettingKeepalive   = "com.github.nginx-proxy.nginx-proxy.keepalive"
)

// The balancing methods (Balance.Method), named as nginx names them.
const (
	BalanceRoundRobin = "round_robin" // nginx's default; HAProxy balance roundrobin
	BalanceLeastConn  = "least_conn"  // HAProxy balance leastconn
	BalanceIPHash     = "ip_hash"     // HAProxy balance source (consistent)
	BalanceHash       = "hash"        // hash $remote_addr or $cookie_NAME; HAProxy balance source / hash req.cook(NAME)
	BalanceRandom     = "random"      // HAProxy balance random
	BalanceRandomTwo  = "random_two"  // random two least_conn; HAProxy balance random(2)
)

// The keys BalanceHash hashes on (Balance.Hash).
const (
	HashRemoteAddr = "remote_addr"
	HashCookie     = "cookie"
)

// The keepalive label's words (Backend.Keepalive, besides a number).
const (
	KeepaliveAuto     = "auto"
	KeepaliveDisabled = "disabled"
)

// MaxKeepalive bounds the keepalive label's number of idle connections.
const MaxKeepalive = 10000

// maxTuningBytes bounds a loadbalance or keepalive value before it is read: the longest accepted
// form is "hash $cookie_" with a 64-character name and " consistent;".
const maxTuningBytes = 128

// Balance is how a backend picks a server for a request: the loadbalance label, read. The zero
// value is "not set": nginx's round robin, unless another workload of the backend sets it.
type Balance struct {
	Method string `json:"method,omitempty"`
	// Hash is what BalanceHash hashes: HashRemoteAddr or HashCookie (the cookie Cookie).
	Hash   string `json:"hash,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	// Consistent is nginx's "consistent" (ketama) hashing; HAProxy's hashing is always
	// consistent (hash-type consistent), so that servers can come and go without a reload.
	Consistent bool `json:"consistent,omitempty"`
}

// String is the label's value in its canonical form, without the ';' ("hash $cookie_SID
// consistent"); "" when not set.
func (b Balance) String() string {
	switch b.Method {
	case BalanceHash:
		key := "$" + HashRemoteAddr
		if b.Hash == HashCookie {
			key = "$cookie_" + b.Cookie
		}
		if b.Consistent {
			return "hash " + key + " consistent"
		}
		return "hash " + key
	case BalanceRandomTwo:
		return "random two least_conn"
	}
	return b.Method
}

// loadBalanceForms is what the loadbalance label accepts, for its problems.
const loadBalanceForms = `round_robin, least_conn, ip_hash, "hash $remote_addr [consistent]", "hash $cookie_NAME [consistent]", random or "random two least_conn" (a trailing ';' is allowed; nothing else is passed to the proxy)`

// ParseLoadBalance reads the loadbalance label: one of the forms above, with or without a
// trailing ';', in any spacing; nginx's words are lower case, as nginx reads them. An empty value
// is "not set" (the zero Balance).
func ParseLoadBalance(v string) (Balance, error) {
	if len(v) > maxTuningBytes {
		return Balance{}, fmt.Errorf("too long: must be one of %s", loadBalanceForms)
	}
	s := strings.TrimSpace(v)
	if rest, ok := strings.CutSuffix(s, ";"); ok {
		if rest = strings.TrimSpace(rest); rest == "" {
			return Balance{}, fmt.Errorf("must be one of %s", loadBalanceForms)
		}
		s = rest
	}
	f := strings.Fields(s)
	switch strings.Join(f, " ") {
	case "":
		return Balance{}, nil
	case BalanceRoundRobin, BalanceLeastConn, BalanceIPHash, BalanceRandom:
		return Balance{Method: f[0]}, nil
	case "random two least_conn":
		return Balance{Method: BalanceRandomTwo}, nil
	}
	if len(f) >= 2 && len(f) <= 3 && f[0] == "hash" && (len(f) == 2 || f[2] == "consistent") {
		b := Balance{Method: BalanceHash, Consistent: len(f) == 3}
		if f[1] == "$"+HashRemoteAddr {
			b.Hash = HashRemoteAddr
			return b, nil
		}
		if name, ok := strings.CutPrefix(f[1], "$cookie_"); ok {
			cookie, err := ParseSticky(name)
			if err != nil {
				return Balance{}, fmt.Errorf("hash on a cookie: %w", err)
			}
			b.Hash, b.Cookie = HashCookie, cookie
			return b, nil
		}
		return Balance{}, fmt.Errorf("hash takes $remote_addr or $cookie_NAME only (must be one of %s)", loadBalanceForms)
	}
	return Balance{}, fmt.Errorf("must be one of %s", loadBalanceForms)
}

// ParseKeepalive reads the keepalive label: a number of idle connections (1 to MaxKeepalive),
// "auto" or "disabled". An empty value is "not set".
func ParseKeepalive(v string) (string, error) {
	if len(v) > maxTuningBytes {
		return "", fmt.Errorf("too long: must be auto, disabled or a number from 1 to %d", MaxKeepalive)
	}
	s := strings.TrimSpace(v)
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case KeepaliveAuto, KeepaliveDisabled:
		return strings.ToLower(s), nil
	}
	n, err := parseUint(s)
	if err != nil || n < 1 || n > MaxKeepalive {
		return "", fmt.Errorf("must be auto, disabled or a number from 1 to %d", MaxKeepalive)
	}
	return strconv.Itoa(n), nil
}

// parseUpstream reads a workload's loadbalance and keepalive labels into s. A value it cannot
// read, or a loadbalance beside VIRTUAL_STICKY (which picks the server itself), is a warning:
// the workload is routed as if the label were not set.
func parseUpstream(w *discovery.Workload, s *Settings) []Problem {
	var warnings []Problem
	warn := func(setting string, from discovery.Origin, value, reason string) {
		warnings = append(warnings, newWarning(w, setting, from, value, reason))
	}
	if v, from, ok := w.Setting(SettingLoadBalance); ok {
		b, err := ParseLoadBalance(v)
		switch {
		case err != nil:
			warn(SettingLoadBalance, from, v, err.Error()+"; the backend keeps its balancing")
		case b.Method != "" && s.Sticky != "":
			warn(SettingLoadBalance, from, v, "ignored: VIRTUAL_STICKY picks the server for a client")
		default:
			s.Balance = b
		}
	}
	if v, from, ok := w.Setting(SettingKeepalive); ok {
		k, err := ParseKeepalive(v)
		if err != nil {
			warn(SettingKeepalive, from, v, err.Error()+"; the backend keeps its keepalive")
		}
		s.Keepalive = k
	}
	return warnings
}

// IdleConns is how many idle connections nginx keeps to the backend's servers (its upstream's
// keepalive): the keepalive label's number; for auto (and when not set) two per server, at least
// 16; 0 when disabled.
func (b Backend) IdleConns() int {
	switch b.Keepalive {
	case KeepaliveDisabled:
		return 0
	case "", KeepaliveAuto:
		return max(16, 2*len(b.Servers))
	}
	n, err := strconv.Atoi(b.Keepalive)
	if err != nil || n < 1 {
		return max(16, 2*len(b.Servers))
	}
	return n
}

// tuningClaim records which workload set a route's loadbalance and keepalive: a workload that
// does not set one takes the backend's, and the first (in Build's order) that sets one decides
// it; a later one with another value is left out of the route, as for VIRTUAL_PROTO.
type tuningClaim struct {
	balanceBy, keepaliveBy string
}

// tuningConflict says why s cannot join the route k (its loadbalance or keepalive differs from
// the one a workload placed before it set), and who set it.
func (b *builder) tuningConflict(k routeKey, r *Route, s *Settings) (reason, holder string) {
	c := b.tuning[k]
	switch {
	case s.Balance.Method != "" && r.Backend.Balance.Method != "" && s.Balance != r.Backend.Balance:
		return fmt.Sprintf("%s %q differs from the other servers' %q", SettingLoadBalance, s.Balance, r.Backend.Balance), c.balanceBy
	case s.Keepalive != "" && r.Backend.Keepalive != "" && s.Keepalive != r.Backend.Keepalive:
		return fmt.Sprintf("%s %q differs from the other servers' %q", SettingKeepalive, s.Keepalive, r.Backend.Keepalive), c.keepaliveBy
	}
	return "", ""
}

// adoptTuning gives the route k the loadbalance and keepalive of w, the first of its workloads
// to set them.
func (b *builder) adoptTuning(k routeKey, r *Route, s *Settings, w *discovery.Workload) {
	c := b.tuning[k]
	if r.Backend.Balance.Method == "" && s.Balance.Method != "" {
		r.Backend.Balance, c.balanceBy = s.Balance, w.Name
	}
	if r.Backend.Keepalive == "" && s.Keepalive != "" {
		r.Backend.Keepalive, c.keepaliveBy = s.Keepalive, w.Name
	}
	if b.tuning == nil {
		b.tuning = map[routeKey]tuningClaim{}
	}
	b.tuning[k] = c
}

// hasErrors reports whether any problem is more than a warning.
func hasErrors(ps []Problem) bool {
	for _, p := range ps {
		if !p.Warning {
			return true
		}
	}
	return false
}
