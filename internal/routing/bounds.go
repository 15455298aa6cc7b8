package routing

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Bounds on what one workload may ask of routing. Labels and env are written by whoever can
// start a container (or a Swarm service), so they are untrusted input: a hostile or mistaken
// value must cost its own workload a problem, never the gateway its time or memory, nor the
// other sites their routes. The limits are far above anything a real deployment writes; each
// says why. checkBounds applies them in ParseSettings, before any value is parsed, to every
// workload that asks for routing, whatever its source (etcd's registry and flat layouts bound
// their values further when they decode them).
const (
	// MaxSettingBytes bounds the value of one setting routing reads (VIRTUAL_HOST, VIRTUAL_PATH,
	// ACME_HOST, ...). A VIRTUAL_HOST of MaxHosts names of 64 characters fits (65 KB); every other
	// setting is a word, a number or a path of at most 1024 characters. Linux refuses to start a
	// process with an environment string over 128 KiB anyway.
	MaxSettingBytes = 64 << 10
	// MaxHosts bounds the host names in one host list (VIRTUAL_HOST, ACME_HOST, LETSENCRYPT_HOST).
	// Each is a site, so one container could otherwise take over thousands of names, and every
	// rebuild would parse them; a few hundred names on one container is already unusual (use a
	// wildcard, or several containers).
	MaxHosts = 1000
	// MaxNetworks bounds the networks of one routed workload. A container is on a handful; the
	// address rules and their messages walk the list for every rebuild.
	MaxNetworks = 256
	// MaxDefaultPortSearch bounds the exposed TCP ports searched for VIRTUAL_PORT's default (the
	// single exposed port, else 80). The search compares ports pairwise, so a container exposing
	// every port (EXPOSE 1-65535) cost a second of every rebuild; a published range of a few
	// thousand ports fits, and VIRTUAL_PORT lifts the bound.
	MaxDefaultPortSearch = 4096
)

// Every setting ParseSettings reads (SettingNames, explain.go: a new setting is bounded once it is
// listed there) is bounded here, but for warnOnly: their parsers bound their own values, and a
// value they refuse is a warning (the workload is routed without it, balance.go). hostLists are
// the settings that hold comma-separated host names.
var (
	warnOnly  = map[string]bool{SettingLoadBalance: true, SettingKeepalive: true}
	hostLists = map[string]bool{SettingHost: true, SettingACMEHost: true, SettingLEHost: true}
)

// maxShown bounds the part of an oversized value a problem quotes.
const maxShown = 64

// checkBounds returns a problem for every bound w exceeds. It costs a length check per setting
// and one pass over each host list of at most 256 KiB: no value is copied or split.
func checkBounds(w *discovery.Workload) []Problem {
	var problems []Problem
	for _, name := range SettingNames {
		v, from, ok := w.Setting(name)
		if !ok || warnOnly[name] {
			continue
		}
		reason := ""
		// Counting the names of a value far over the size bound would tell no more than its size.
		if hostLists[name] && len(v) <= 4*MaxSettingBytes {
			if n := countHosts(v); n > MaxHosts {
				reason = fmt.Sprintf("%d host names, at most %d on one workload (use a wildcard, or spread them over several)", n, MaxHosts)
			}
		}
		if reason == "" && len(v) > MaxSettingBytes {
			reason = fmt.Sprintf("a value of %d bytes, at most %d", len(v), MaxSettingBytes)
		}
		if reason != "" {
			problems = append(problems, newProblem(w, name, from, shown(v), reason))
		}
	}
	if n := len(w.Networks); n > MaxNetworks {
		problems = append(problems, newProblem(w, "", "", "", fmt.Sprintf("attached to %d networks, at most %d on one routed workload", n, MaxNetworks)))
	}
	if _, _, hasPort := w.Setting(SettingPort); !hasPort {
		if n := tcpPorts(w.Ports); n > MaxDefaultPortSearch {
			problems = append(problems, newProblem(w, "", "", "", fmt.Sprintf("%d TCP ports exposed and VIRTUAL_PORT not set: at most %d are searched for the default port; set VIRTUAL_PORT", n, MaxDefaultPortSearch)))
		}
	}
	return problems
}

// countHosts counts the entries of a host list as ParseHosts reads them: comma-separated, blank
// entries ignored.
func countHosts(v string) int {
	n := 0
	for v != "" {
		var entry string
		entry, v, _ = strings.Cut(v, ",")
		if strings.TrimSpace(entry) != "" {
			n++
		}
	}
	return n
}

// tcpPorts counts the distinct TCP ports of a port list sorted by port, as the sources give it
// (an unsorted list is over-counted, never under-counted).
func tcpPorts(ps []discovery.Port) int {
	n, last := 0, -1
	for _, p := range ps {
		if p.Proto == "tcp" && p.Port != last {
			n, last = n+1, p.Port
		}
	}
	return n
}

// shown is the start of an oversized value, cut at a rune boundary, with "…" when cut: enough for
// a person to recognise it, never the megabyte itself (problems are logged and served).
func shown(v string) string {
	if len(v) <= maxShown {
		return v
	}
	n := maxShown
	for n > 0 && !utf8.RuneStart(v[n]) {
		n--
	}
	return v[:n] + "…"
}
