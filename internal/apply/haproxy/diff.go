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
)

// plan is the runtime API commands that turn prev's servers into next's, and the certificates
// whose files have new content.
type plan struct {
	// certs are the renewed certificates' PEM files, sorted: each is replaced with the file's
	// content (set ssl cert, commit ssl cert) before the commands run.
	certs    []string
	commands []command
	// deletes are the servers to delete after the commands, each "backend/server"; a server
	// with connections still open cannot be deleted yet and stays in maintenance until it can.
	deletes []string
}

// diff plans the change from prev to next; ok is false when they differ in more than servers
// and certificate hashes (or a server changed in more than its address and weight): only a reload
// applies that. Servers are added before others are removed, so a backend never runs short.
func diff(prev, next parsed) (p plan, ok bool) {
	if prev.skeleton != next.skeleton || len(prev.sections) != len(next.sections) {
		return plan{}, false
	}
	if p.certs, ok = renewed(prev.certs, next.certs); !ok {
		return plan{}, false
	}
	var adds, changes, removes []command
	for i, ns := range next.sections {
		ps := prev.sections[i]
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

// renewed returns the certificate files whose hash changed, sorted. The skeletons being the same,
// both configs name the same files on the same lines: a new certificate, or a site's certificate
// in another file, changed the skeleton and reloads (HAProxy would load it only into a crt-list
// entry the reload writes). ok is false when next says two hashes for one changed file.
func renewed(prev, next []certLine) (paths []string, ok bool) {
	if len(prev) != len(next) {
		return nil, false
	}
	changed := map[string]bool{}
	for i, n := range next {
		if prev[i].path != n.path {
			return nil, false
		}
		if prev[i].sha256 != n.sha256 {
			changed[n.path] = true
		}
	}
	hash := map[string]string{}
	for _, n := range next {
		if !changed[n.path] {
			continue
		}
		if h, seen := hash[n.path]; seen && h != n.sha256 {
			return nil, false
		}
		hash[n.path] = n.sha256
	}
	for path := range changed {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	return paths, true
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
