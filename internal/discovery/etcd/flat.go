package etcd

// The "flat" layouts that older etcd setups already write: one key per server, whose value is
// "ip:port", in a directory that stands for one host name or one TCP port (confd + HAProxy's
// /app/servers, docker-register's /services/<name>, registrator's <prefix>/<service>, the
// ambassador's /backends/<service> and /vhosts/<host>/services/<service>). The decoders here are
// pure: the etcd source reads the keys and hands them over. Keys and values are
// attacker-controlled, so both are validated and only ever shown quoted.

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

const (
	flatFlagName   = "--etcd-flat"
	flatHostKey    = "_host"     // DIR/_host: the directory's host names, as VIRTUAL_HOST
	flatTCPPortKey = "_tcp_port" // DIR/_tcp_port: the directory's TCP port, as VIRTUAL_TCP_PORT
	flatSource     = "etcd"
	flatMaxValue   = 1024 // bytes; an address or host list is far shorter
	flatMaxShown   = 80   // bytes of a value quoted in a problem
	flatMaxName    = 512  // bytes of a key shown as a workload's name
	flatMaxDetail  = 300  // bytes of a validator's message quoted in a problem
)

// FlatDir is one --etcd-flat mapping.
type FlatDir struct {
	Dir     string // "/app/servers": cleaned, absolute, no trailing slash
	Host    string // VIRTUAL_HOST for every entry (may be a comma list), or
	TCPPort int    // VIRTUAL_TCP_PORT for every entry; neither: read DIR/_host or DIR/_tcp_port
}

// FlatServer is one routed server to publish in the flat layout.
type FlatServer struct{ Service, Name, Address string }

// KV is one etcd key and its value.
type KV struct {
	Key   string
	Value []byte
}

// ParseFlatFlag parses "DIR", "DIR=HOST[,HOST]" or "DIR=tcp:PORT"; errors name the flag value.
// The host list is validated here, so that a typo stops vhost-gen at start rather than turning
// every server of the directory into a problem.
func ParseFlatFlag(v string) (FlatDir, error) {
	bad := func(format string, a ...any) (FlatDir, error) {
		return FlatDir{}, fmt.Errorf("%s %s: %s", flatFlagName, strconv.QuoteToASCII(v), fmt.Sprintf(format, a...))
	}
	dir, target, hasTarget := strings.Cut(v, "=")
	clean, err := flatCleanDir(dir)
	if err != nil {
		return bad("%v (want DIR, DIR=HOST[,HOST] or DIR=tcp:PORT)", err)
	}
	d := FlatDir{Dir: clean}
	switch port, isTCP := strings.CutPrefix(target, "tcp:"); {
	case !hasTarget:
		return d, nil // the mapping comes from DIR/_host or DIR/_tcp_port
	case target == "":
		return bad("nothing after '=' (want DIR=HOST[,HOST] or DIR=tcp:PORT, or DIR alone to read %s/%s or %s/%s)", clean, flatHostKey, clean, flatTCPPortKey)
	case isTCP:
		if d.TCPPort, err = routing.ParsePort(port); err != nil {
			return bad("TCP port %s: %v", strconv.QuoteToASCII(port), err)
		}
	default:
		hosts, err := routing.ParseHosts(target)
		if err != nil {
			return bad("host list %s: %v", strconv.QuoteToASCII(target), err)
		}
		d.Host = strings.Join(hosts, ",")
	}
	return d, nil
}

// flatCleanDir checks that a flag's DIR is an absolute key prefix an operator can type, and
// cleans it ("/app/servers/" and "/app//servers" are "/app/servers").
func flatCleanDir(dir string) (string, error) {
	if !strings.HasPrefix(dir, "/") {
		return "", fmt.Errorf("directory %s must be absolute (start with '/')", strconv.QuoteToASCII(dir))
	}
	for i := 0; i < len(dir); i++ {
		if c := dir[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return "", fmt.Errorf("directory %s: character %q not allowed", strconv.QuoteToASCII(dir), rune(c))
		}
	}
	clean := path.Clean(dir)
	if clean == "/" {
		return "", fmt.Errorf("directory %s is the root: name the directory that holds the servers", strconv.QuoteToASCII(dir))
	}
	return clean, nil
}

// DecodeFlatDir turns the keys under d.Dir (full keys -> values, as read from etcd; only keys
// exactly one level below d.Dir are servers; deeper keys are ignored) into workloads, sorted by ID.
// A key whose last segment starts with '_' is metadata, never a server. The flag's host or port
// wins over DIR/_host and DIR/_tcp_port.
func DecodeFlatDir(d FlatDir, kvs map[string][]byte) []discovery.Workload {
	dir := strings.TrimRight(d.Dir, "/")
	prefix := dir + "/"
	m := flatMappingOf(d, prefix, kvs)
	service := cmp.Or(dir, "/") // replicas of one TCP service share their directory
	var ws []discovery.Workload
	for key, v := range kvs {
		if server, ok := strings.CutPrefix(key, prefix); ok && flatIsServer(server) {
			ws = append(ws, flatWorkload(key, service, v, m))
		}
	}
	flatSortByID(ws)
	return ws
}

// DecodeVHosts turns the ambassador tree under root ("/vhosts") into workloads: one per
// root/<host>/services/<service>/<server> key; other keys ignored. Sorted by ID.
// The host segment is passed on as VIRTUAL_HOST, which routing validates.
func DecodeVHosts(root string, kvs map[string][]byte) []discovery.Workload {
	prefix := strings.TrimRight(root, "/") + "/"
	var ws []discovery.Workload
	for key, v := range kvs {
		host, service, ok := flatSplitVHost(prefix, key)
		if !ok {
			continue
		}
		m := flatMapping{labels: map[string]string{routing.SettingHost: host}}
		if strings.Contains(host, ",") { // routing would read a comma as a list of hosts
			m.problem = fmt.Sprintf("key %s: host segment %s must be one host name (no commas)", flatKeyName(key), flatQuote(host))
		}
		ws = append(ws, flatWorkload(key, service, v, m))
	}
	flatSortByID(ws)
	return ws
}

// flatSplitVHost splits prefix<host>/services/<service>/<server> into the host and the service
// directory (the key without its server segment).
func flatSplitVHost(prefix, key string) (host, service string, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[1] != "services" || slices.Contains(parts, "") || !flatIsServer(parts[3]) {
		return "", "", false
	}
	return parts[0], strings.TrimSuffix(key, "/"+parts[3]), true
}

// flatIsServer reports whether a key segment below a directory is a server: one level only, and
// not metadata ('_').
func flatIsServer(segment string) bool {
	return segment != "" && !strings.Contains(segment, "/") && !strings.HasPrefix(segment, "_")
}

// flatMapping is what a directory's servers are routed as: settings, or why there are none.
type flatMapping struct {
	labels  map[string]string
	problem string
}

// flatMappingOf reads a directory's mapping: the flag's, else the one its _host or _tcp_port key
// gives.
func flatMappingOf(d FlatDir, prefix string, kvs map[string][]byte) flatMapping {
	dir := flatKeyName(cmp.Or(strings.TrimSuffix(prefix, "/"), "/"))
	switch {
	case d.Host != "" && d.TCPPort != 0:
		return flatMapping{problem: fmt.Sprintf("the %s mapping of %s gives both a host and a TCP port: give one", flatFlagName, dir)}
	case d.Host != "":
		return flatMapping{labels: map[string]string{routing.SettingHost: d.Host}}
	case d.TCPPort != 0:
		return flatMapping{labels: map[string]string{routing.SettingTCPPort: strconv.Itoa(d.TCPPort)}}
	}
	hostKey, portKey := prefix+flatHostKey, prefix+flatTCPPortKey
	host, hasHost := kvs[hostKey]
	port, hasPort := kvs[portKey]
	switch {
	case hasHost && hasPort:
		return flatMapping{problem: fmt.Sprintf("both %s and %s are set: delete one (a directory serves either host names or one TCP port)", flatKeyName(hostKey), flatKeyName(portKey))}
	case hasHost:
		return flatHostMapping(hostKey, host)
	case hasPort:
		return flatPortMapping(portKey, port)
	}
	return flatMapping{problem: fmt.Sprintf("no host name or TCP port for the servers under %s: set %s %s=HOST or %s %s=tcp:PORT, or write the key %s (host names, as VIRTUAL_HOST takes them) or %s (a port)",
		dir, flatFlagName, dir, flatFlagName, dir, flatKeyName(hostKey), flatKeyName(portKey))}
}

func flatHostMapping(key string, v []byte) flatMapping {
	s, problem := flatText(key, v)
	if problem != "" {
		return flatMapping{problem: problem}
	}
	hosts, err := routing.ParseHosts(s)
	if err != nil {
		return flatMapping{problem: fmt.Sprintf("key %s: value %s is not a host name list: %s", flatKeyName(key), flatQuote(s), flatDetail(err.Error(), flatMaxDetail))}
	}
	return flatMapping{labels: map[string]string{routing.SettingHost: strings.Join(hosts, ",")}}
}

func flatPortMapping(key string, v []byte) flatMapping {
	s, problem := flatText(key, v)
	if problem != "" {
		return flatMapping{problem: problem}
	}
	port, err := routing.ParsePort(s)
	if err != nil {
		return flatMapping{problem: fmt.Sprintf("key %s: value %s is not a TCP port: %s", flatKeyName(key), flatQuote(s), flatDetail(err.Error(), flatMaxDetail))}
	}
	return flatMapping{labels: map[string]string{routing.SettingTCPPort: strconv.Itoa(port)}}
}

// flatWorkload is one server key: routed as the mapping says, at the address its value gives.
func flatWorkload(key, service string, v []byte, m flatMapping) discovery.Workload {
	w := discovery.Workload{
		ID:      "etcd:" + key,
		Name:    flatKeyName(key),
		Source:  flatSource,
		Service: service,
		Labels:  maps.Clone(m.labels), // workloads are immutable, but not shared
	}
	if m.problem != "" {
		w.Problem = m.problem
		return w
	}
	w.Address, w.Problem = flatAddress(key, v)
	return w
}

// flatAddress validates a server's value as routing will (ParseEndpoint) and returns the address
// in the form the config carries, or a problem.
func flatAddress(key string, v []byte) (addr, problem string) {
	s, problem := flatText(key, v)
	if problem != "" {
		return "", problem
	}
	addr, detail := flatEndpoint(s)
	if detail != "" {
		return "", fmt.Sprintf("key %s: value %s: %s; a server is HOST:PORT, e.g. 10.0.0.5:8080 or [fd00::5]:8080",
			flatKeyName(key), flatQuote(s), detail)
	}
	return addr, ""
}

// flatEndpoint is routing.ParseEndpoint with a reason fit for a problem.
func flatEndpoint(s string) (addr, detail string) {
	addr, err := routing.ParseEndpoint(s)
	if err != nil {
		return "", flatEndpointDetail(s, err)
	}
	return addr, ""
}

// flatEndpointDetail is ParseEndpoint's reason without the value it quotes first (the problem
// quotes it already, cut).
func flatEndpointDetail(s string, err error) string {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, strconv.Quote(s))
	switch {
	case !ok:
		return flatDetail(msg, flatMaxDetail)
	case strings.HasPrefix(rest, ": "):
		return flatDetail(rest[2:], flatMaxDetail)
	}
	return "not HOST:PORT"
}

// flatText checks a value's size and encoding and trims the blanks around it (etcdctl users write
// trailing newlines).
func flatText(key string, v []byte) (string, string) {
	if len(v) > flatMaxValue {
		return "", fmt.Sprintf("key %s: value of %d bytes (starting %s) is longer than 1 KiB", flatKeyName(key), len(v), flatQuote(string(v)))
	}
	if !utf8.Valid(v) {
		return "", fmt.Sprintf("key %s: value %s is not UTF-8 text", flatKeyName(key), flatQuote(string(v)))
	}
	return strings.TrimSpace(string(v)), ""
}

// flatKeyName renders a key for names and messages: as is when it is plain printable ASCII,
// else quoted (ASCII only), so that a hostile key cannot forge log lines or inject into a config
// comment; cut when very long.
func flatKeyName(key string) string {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return flatQuoteCut(key, flatMaxName)
		}
	}
	if len(key) > flatMaxName {
		return key[:flatMaxName] + "..."
	}
	return key
}

// flatQuote quotes a value (ASCII only), cut to flatMaxShown bytes.
func flatQuote(s string) string { return flatQuoteCut(s, flatMaxShown) }

// flatQuoteCut quotes the first n bytes of s; a rune cut in two shows as \x escapes.
func flatQuoteCut(s string, n int) string {
	if len(s) > n {
		return strconv.QuoteToASCII(s[:n]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// flatDetail makes a validator's message safe to quote in a problem: cut to n bytes at a rune
// boundary, anything but printable ASCII escaped. Validators quote the values they name, but not
// always (ParseEndpoint shows an IPv6 zone raw: "[::%\x01]:80", found by FuzzDecodeVHosts).
func flatDetail(s string, n int) string {
	cut := ""
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], "..."
	}
	var b strings.Builder
	for _, r := range s {
		if r >= ' ' && r < 0x7f {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRuneToASCII(r) // '\x01'
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String() + cut
}

func flatSortByID(ws []discovery.Workload) {
	slices.SortFunc(ws, func(a, b discovery.Workload) int { return cmp.Compare(a.ID, b.ID) })
}

// FlatEntries is the flat layout of a set of routed servers: for each (dir, service, name, address) the key DIR/<service>/<name> and the value "ip:port". service and name are made safe as one key segment each ([A-Za-z0-9._-], others '_'); sorted by key.
// A segment never starts with '_' (the reader's metadata) or '.' (a flag's DIR is cleaned):
// such a first character becomes '-'. Identical entries are written once; two servers that map
// to one key get "-2", "-3"... in the order of their addresses.
func FlatEntries(dir string, servers []FlatServer) []KV {
	base := strings.TrimRight(path.Clean("/"+dir), "/")
	type entry struct{ key, value string }
	es := make([]entry, 0, len(servers))
	for _, s := range servers {
		es = append(es, entry{base + "/" + flatSegment(s.Service) + "/" + flatSegment(s.Name), s.Address})
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.value, b.value)) })
	es = slices.Compact(es)
	taken := make(map[string]bool, len(es))
	for _, e := range es {
		taken[e.key] = true
	}
	kvs := make([]KV, 0, len(es))
	for i, e := range es {
		key := e.key
		if i > 0 && es[i-1].key == e.key { // not the first of its key: rename
			for n := 2; taken[key]; n++ {
				key = e.key + "-" + strconv.Itoa(n)
			}
			taken[key] = true
		}
		kvs = append(kvs, KV{Key: key, Value: []byte(e.value)})
	}
	slices.SortFunc(kvs, func(a, b KV) int { return cmp.Compare(a.Key, b.Key) })
	return kvs
}

// flatSegment makes s one safe key segment.
func flatSegment(s string) string {
	seg := []byte(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s))
	if len(seg) == 0 {
		return "-"
	}
	if seg[0] == '_' || seg[0] == '.' {
		seg[0] = '-'
	}
	return string(seg)
}
