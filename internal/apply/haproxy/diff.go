package haproxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// command is one runtime API command and how to tell that it worked: HAProxy answers every
// command with free text, so each kind has its own success reply.
type command struct {
	line string
	ok   reply
}

type reply int

const (
	replyEmpty     reply = iota // most commands answer nothing on success
	replyAdded                  // "New server registered."
	replyDeleted                // "Server deleted." (or the server is already gone)
	replyAddr                   // "IP changed from ..." / "no need to change the addr"
	replySet                    // "Transaction created for certificate ..."
	replyCommitted              // "Committing ...\nSuccess!"
	replyNewCert                // "New empty certificate store '...'!"
	replyInserted               // "Inserting certificate '...' in crt-list '...'.\nSuccess!"
)

// plan is the runtime API commands that turn prev's servers, certificates and maps into next's.
type plan struct {
	// newCerts are certificates' PEM files not loaded before, sorted: each is created (new ssl
	// cert) then loaded like a renewed one.
	newCerts []string
	// certs are the renewed certificates' PEM files, sorted: each is replaced with the file's
	// content (set ssl cert, commit ssl cert) before the commands run.
	certs []string
	// crtLists are the crt-list lines to add, after the certificates they name are loaded.
	crtLists []crtListLine
	commands []command
	// maps are the map changes, run last: a site's redirect to HTTPS goes live once its
	// certificate is served.
	maps []command
	// deletes are the servers to delete after the commands, each "backend/server"; a server
	// with connections still open cannot be deleted yet and stays in maintenance until it can.
	deletes []string
}

// diff plans the change from prev to next; ok is false when they differ in more than servers,
// certificates, crt-list lines added and map entries (or a server changed in more than its
// address and weight): only a reload applies that. Servers are added before others are removed,
// so a backend never runs short.
func diff(prev, next parsed) (p plan, ok bool) {
	if !slices.Equal(prev.skeleton, next.skeleton) || len(prev.sections) != len(next.sections) {
		return plan{}, false
	}
	if p.newCerts, p.certs, ok = certChanges(prev.certs, next.certs); !ok {
		return plan{}, false
	}
	if len(next.crtLists) == 0 && !slices.Equal(prev.certMasked, next.certMasked) {
		return plan{}, false // a template without crt-list comments: what the change is for is unknown
	}
	if p.crtLists, ok = crtListAdds(prev.crtLists, next.crtLists, p.newCerts); !ok {
		return plan{}, false
	}
	p.maps = mapChanges(prev.maps, next.maps)
	var adds, changes, removes []command
	for i, ns := range next.sections {
		ps := prev.sections[i]
		if ps == ns {
			continue // a chunk the parse reused: the same servers
		}
		if ps.name != ns.name {
			return plan{}, false
		}
		old := make(map[string]server, len(ps.servers))
		for _, s := range ps.servers {
			old[s.name] = s
		}
		moved := false
		for _, s := range ns.servers {
			id := ns.name + "/" + s.name
			o, had := old[s.name]
			delete(old, s.name)
			if !had {
				if next.defaultServer {
					return plan{}, false // an added server would miss the default-server settings
				}
				line := fmt.Sprintf("add server %s %s weight %d", id, net.JoinHostPort(s.ip, strconv.Itoa(s.port)), s.weight)
				if s.rest != "" {
					line += " " + s.rest
				}
				adds = append(adds, command{line, replyAdded})
				// Added servers start in maintenance, their checks off.
				if hasKeyword(s.rest, "check") {
					adds = append(adds, command{"enable health " + id, replyEmpty})
				}
				if hasKeyword(s.rest, "agent-check") {
					adds = append(adds, command{"enable agent " + id, replyEmpty})
				}
				if !hasKeyword(s.rest, "disabled") { // which a reload would leave in maintenance
					adds = append(adds, command{"enable server " + id, replyEmpty})
				}
				moved = true
				continue
			}
			if o.rest != s.rest || o.weightSet != s.weightSet || o.slot != s.slot {
				return plan{}, false
			}
			if o.ip != s.ip || o.port != s.port {
				changes = append(changes, command{fmt.Sprintf("set server %s addr %s port %d", id, s.ip, s.port), replyAddr})
				changes = append(changes, forgetHealth(id, s.rest)...)
				moved = true
			}
			if o.weight != s.weight {
				changes = append(changes, command{fmt.Sprintf("set server %s weight %d", id, s.weight), replyEmpty})
			}
		}
		for _, s := range ps.servers { // file order, for a stable plan
			if _, gone := old[s.name]; gone {
				id := ns.name + "/" + s.name
				removes = append(removes, command{"set server " + id + " state maint", replyEmpty})
				p.deletes = append(p.deletes, id)
			}
		}
		if moved && ns.dynamicCookie {
			changes = append(changes, command{"enable dynamic-cookie backend " + ns.name, replyEmpty})
		}
	}
	p.commands = append(append(adds, changes...), removes...)
	return p, true
}

// certChanges returns the certificate files not loaded before (added) and those whose hash
// changed (renewed), each sorted. ok is false when a file loaded before is gone (a reload drops
// it), or when a config says two hashes for one file.
func certChanges(prev, next []certLine) (added, renewed []string, ok bool) {
	prevHash, ok := hashes(prev)
	if !ok {
		return nil, nil, false
	}
	nextHash, ok := hashes(next)
	if !ok {
		return nil, nil, false
	}
	for path := range prevHash {
		if _, kept := nextHash[path]; !kept {
			return nil, nil, false
		}
	}
	for path, h := range nextHash {
		switch old, had := prevHash[path]; {
		case !had:
			added = append(added, path)
		case old != h:
			renewed = append(renewed, path)
		}
	}
	slices.Sort(added)
	slices.Sort(renewed)
	return added, renewed, true
}

func hashes(certs []certLine) (map[string]string, bool) {
	m := make(map[string]string, len(certs))
	for _, c := range certs {
		if h, seen := m[c.path]; seen && h != c.sha256 {
			return nil, false
		}
		m[c.path] = c.sha256
	}
	return m, true
}

// crtListAdds returns next's crt-list lines that prev has not, in next's order. ok is false when
// a line is gone (HAProxy 2.6 deletes a crt-list entry by certificate, which may have others), or
// when an added certificate is in no added line: HAProxy would load it and serve it nowhere, as
// a template that writes no crt-list comments would mean.
func crtListAdds(prev, next []crtListLine, newCerts []string) (adds []crtListLine, ok bool) {
	had := make(map[crtListLine]bool, len(prev))
	for _, l := range prev {
		had[l] = true
	}
	have := make(map[crtListLine]bool, len(next))
	used := map[string]bool{}
	for _, l := range next {
		have[l] = true
		if !had[l] {
			if strings.Contains(l.line, " ca-file ") {
				return nil, false // HAProxy 2.6 takes a client CA on a reload only (no CA store commands here)
			}
			adds = append(adds, l)
			used[crtListCert(l.line)] = true
		}
	}
	for l := range had {
		if !have[l] {
			return nil, false
		}
	}
	for _, c := range newCerts {
		if !used[c] {
			return nil, false
		}
	}
	return adds, true
}

// crtListCert is the certificate file a crt-list line loads: its first word.
func crtListCert(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// mapChanges returns the commands that turn prev's map entries into next's: additions, changes,
// then deletions, each by map file then key.
func mapChanges(prev, next []mapLine) []command {
	type key struct{ path, key string }
	old := make(map[key]string, len(prev))
	for _, m := range prev {
		old[key{m.path, m.key}] = m.value
	}
	var adds, sets, dels []command
	seen := make(map[key]bool, len(next))
	for _, m := range next {
		k := key{m.path, m.key}
		seen[k] = true
		v, had := old[k]
		switch {
		case !had:
			adds = append(adds, command{"add map " + m.path + " " + m.key + " " + cliEscape(m.value), replyEmpty})
		case v != m.value:
			sets = append(sets, command{"set map " + m.path + " " + m.key + " " + cliEscape(m.value), replyEmpty})
		}
	}
	for _, m := range prev {
		if k := (key{m.path, m.key}); !seen[k] {
			seen[k] = true // once, if prev repeats it
			dels = append(dels, command{"del map " + m.path + " " + m.key, replyEmpty})
		}
	}
	byLine := func(a, b command) int { return strings.Compare(a.line, b.line) }
	slices.SortStableFunc(adds, byLine)
	slices.SortStableFunc(sets, byLine)
	slices.SortStableFunc(dels, byLine)
	return append(append(adds, sets...), dels...)
}

// cliEscape escapes a word for the runtime API's command line, which splits at spaces and tabs,
// ends a command at ';' and takes '\' as an escape.
func cliEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, " ", `\ `, "\t", "\\\t", ";", `\;`).Replace(s)
}

// forgetHealth drops the check verdicts of a moved server's old address: like an added server,
// it takes traffic at once instead of staying down until its checks pass again, and live traffic
// still marks it down at once if the new address fails (observe ... on-error mark-down).
// "health up" rather than "state maint" then "ready": the server never leaves the rotation, and
// one check of the old address still in flight cannot take it down.
func forgetHealth(id, rest string) []command {
	var cmds []command
	// Even without "check" on the line (a default-server line may add it; without checks it
	// changes nothing), but not on a tracking server, whose health HAProxy refuses to set.
	if !hasKeyword(rest, "track") {
		cmds = append(cmds, command{"set server " + id + " health up", replyEmpty})
	}
	if hasKeyword(rest, "agent-check") { // HAProxy refuses "agent up" without an agent check
		cmds = append(cmds, command{"set server " + id + " agent up", replyEmpty})
	}
	return cmds
}

func hasKeyword(rest, kw string) bool {
	for _, f := range strings.Fields(rest) {
		if f == kw {
			return true
		}
	}
	return false
}
