package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// Runtime talks to one HAProxy's runtime API (a "stats socket ... level admin").
type Runtime struct {
	// Socket is the unix socket's path (only a unix socket: at level admin the runtime API must
	// not be reachable from the network).
	Socket string
	// pending are servers taken out of rotation whose deletion waits for their last connection.
	pending []string
	// live is the config the running HAProxy's servers match when no reload happened since the
	// last Hot: the prev or next of that call. nil before the first call, and after a Hot that
	// failed part way (the servers then match no config until a reload).
	live []byte
	// reloadTo is the next of the last Hot that did not put it live: the config the reload that
	// followed loaded, if it succeeded. nil after a Hot that did.
	reloadTo []byte
	// called: Hot ran before.
	called bool
	// planned is the last HotOnly's answer, which the Hot that follows reuses rather than parse
	// the same configs again.
	planned struct {
		prev, next []byte
		p          plan
		ok         bool
	}
	// parsedNext is the next config of the last plan, parsed: the prev of the next plan, in the
	// usual sequence, which then parses one config, not two; and that parse reuses the chunks
	// of this one that did not change (chunk). cfg is compared whole with prev before its parse
	// is reused.
	parsedNext struct {
		cfg []byte
		p   parsed
	}
	// parses counts the configs parsed.
	parses int
	// Observe, if set, hears each command's result: "ok", "refused" (HAProxy answered with an
	// error) or "error" (the socket failed).
	Observe func(result string)
}

func (r *Runtime) note(result string) {
	if r.Observe != nil {
		r.Observe(result)
	}
}

// timeout bounds one command; the runtime API answers in microseconds when HAProxy is healthy.
const timeout = 5 * time.Second

// Do runs one command and returns HAProxy's reply. A command with a payload ("... <<\n" then its
// lines) ends with the empty line Do adds; its errors name its first line only (a certificate's
// payload holds its private key).
func (r *Runtime) Do(ctx context.Context, cmd string) (string, error) {
	name, _, _ := strings.Cut(cmd, "\n")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", r.Socket)
	if err != nil {
		r.note("error")
		return "", fmt.Errorf("runtime API %s: %q: %w", r.Socket, name, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		r.note("error")
		return "", fmt.Errorf("runtime API %s: %q: %w", r.Socket, name, err)
	}
	// Half-close: HAProxy then answers and closes (the master CLI waits for it).
	if uc, ok := conn.(*net.UnixConn); ok {
		uc.CloseWrite()
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		r.note("error")
		return "", fmt.Errorf("runtime API %s: %q: %w", r.Socket, name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Hot is an apply.HotFunc: it applies a change of servers, certificates (new or renewed, with
// their crt-list lines) and map entries through the runtime API, and says "reload" for anything
// else. The config and the certificates' files are
// already in place when it runs, so a reload at any later time loads the same servers and
// certificates. Hot keeps prev and next (not copies): the caller must not change them.
func (r *Runtime) Hot(ctx context.Context, prev, next []byte) (bool, error) {
	switch {
	case !r.called:
		// The first call: HAProxy runs prev (the Applier reloaded it, or found it in place).
	case r.reloadTo != nil && bytes.Equal(prev, r.reloadTo):
		// The last call left the change to a reload, which happened: new workers run prev, and
		// the servers waiting for deletion went with the old ones.
		r.pending = nil
	case r.live != nil && bytes.Equal(prev, r.live):
		// No reload since the last call, or one that failed and left the old workers running.
	default:
		// The last call failed part way and no reload followed: the servers match neither prev
		// nor anything else known.
		r.reloadTo = next
		return false, nil
	}
	r.called = true
	r.live, r.reloadTo = prev, next
	ok, err := r.hot(ctx, prev, next)
	switch {
	case err != nil:
		r.live = nil
	case ok:
		r.live, r.reloadTo = r.reloadTo, nil
	}
	return ok, err
}

// HotOnly reports whether the runtime API can take the change from prev to next whole (the
// Applier then skips haproxy -c: HAProxy validates each command). It applies nothing; the Hot
// that follows with the same configs reuses its plan.
func (r *Runtime) HotOnly(prev, next []byte) bool {
	p, ok := r.planFor(prev, next)
	r.planned.prev, r.planned.next, r.planned.p, r.planned.ok = prev, next, p, ok
	return ok
}

// planFor is the runtime API's plan from prev to next; ok is false when a reload is needed.
func (r *Runtime) planFor(prev, next []byte) (plan, bool) {
	var pp parsed
	if last := &r.parsedNext; last.cfg != nil && bytes.Equal(prev, last.cfg) {
		pp = last.p
	} else {
		var err error
		r.parses++
		if pp, err = parseReusing(prev, last.p.chunks); err != nil {
			return plan{}, false
		}
	}
	r.parses++
	np, err := parseReusing(next, pp.chunks)
	if err != nil {
		r.parsedNext.cfg, r.parsedNext.p = nil, parsed{}
		return plan{}, false
	}
	r.parsedNext.cfg, r.parsedNext.p = next, np
	return diff(pp, np)
}

func (r *Runtime) hot(ctx context.Context, prev, next []byte) (bool, error) {
	var p plan
	var ok bool
	if c := &r.planned; c.prev != nil && bytes.Equal(prev, c.prev) && bytes.Equal(next, c.next) {
		p, ok = c.p, c.ok
	} else {
		p, ok = r.planFor(prev, next)
	}
	r.planned.prev, r.planned.next = nil, nil
	if !ok {
		return false, nil
	}
	// Every file is read before any command: one that cannot be is left to the reload whole.
	load := append(slices.Clone(p.newCerts), p.certs...)
	payloads := make([]string, len(load))
	for i, path := range load {
		var err error
		if payloads[i], err = certPayload(path); err != nil {
			return false, err
		}
	}
	for i, path := range load {
		if i < len(p.newCerts) {
			if err := r.expect(ctx, command{"new ssl cert " + path, replyNewCert}); err != nil {
				return false, err
			}
		}
		if err := r.replaceCert(ctx, path, payloads[i]); err != nil {
			return false, err
		}
	}
	for _, l := range p.crtLists {
		if err := r.expect(ctx, command{"add ssl crt-list " + l.list + " <<\n" + l.line + "\n", replyInserted}); err != nil {
			return false, err
		}
	}
	if err := r.retryPending(ctx, p); err != nil {
		return false, err
	}
	for _, c := range p.commands {
		if err := r.expect(ctx, c); err != nil {
			return false, err
		}
	}
	for _, id := range p.deletes {
		r.del(ctx, id)
	}
	for _, c := range p.maps {
		if err := r.expect(ctx, c); err != nil {
			return false, err
		}
	}
	return true, nil
}

// expect runs a command and checks its reply. An error names the command's first line only (a
// payload may hold a private key).
func (r *Runtime) expect(ctx context.Context, c command) error {
	out, err := r.Do(ctx, c.line)
	if err != nil {
		return err
	}
	if !c.ok.matches(out) {
		r.note("refused")
		name, _, _ := strings.Cut(c.line, "\n")
		return fmt.Errorf("runtime API: %q: %s", name, out)
	}
	r.note("ok")
	return nil
}

// maxCertFile bounds a certificate file read for the runtime API. HAProxy 2.6 takes a payload
// of up to its buffer size (tune.bufsize, 16 KB by default; a longer one gets no reply, which
// fails the update): a chain of a few certificates and a key.
const maxCertFile = 1 << 20

// certPayload reads a certificate's PEM file (written by vhost-gen before the config went live:
// its chain then its key) as a runtime API payload: its lines without the empty ones, each ending
// in a newline, since an empty line ends the payload. Its content is never in an error.
func certPayload(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("renewed certificate: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return "", fmt.Errorf("renewed certificate: %w", err)
	}
	if len(data) > maxCertFile {
		return "", fmt.Errorf("renewed certificate %s: larger than %d bytes", path, maxCertFile)
	}
	var b strings.Builder
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimRight(line, "\r\n"); strings.TrimSpace(line) != "" {
			b.WriteString(line + "\n")
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("renewed certificate %s: empty file", path)
	}
	return b.String(), nil
}

// replaceCert replaces a loaded certificate with payload: "set ssl cert" opens a transaction
// with the new content, "commit ssl cert" puts it live for every bind and crt-list line that
// loaded the file, from the next handshake. On any failure the transaction is aborted: HAProxy
// holds one at a time, and one left open would refuse the next certificate's.
func (r *Runtime) replaceCert(ctx context.Context, path, payload string) error {
	err := r.expect(ctx, command{"set ssl cert " + path + " <<\n" + payload, replySet})
	if err == nil {
		err = r.expect(ctx, command{"commit ssl cert " + path, replyCommitted})
	}
	if err != nil {
		r.Do(ctx, "abort ssl cert "+path) // "No ongoing transaction!" after a set that failed
		return err
	}
	return nil
}

// retryPending deletes servers whose deletion had to wait. One that still cannot go blocks the
// plan only if the plan adds a server of the same name.
func (r *Runtime) retryPending(ctx context.Context, p plan) error {
	waiting := r.pending
	r.pending = nil
	for _, id := range waiting {
		r.del(ctx, id)
	}
	for _, id := range r.pending {
		for _, c := range p.commands {
			if c.ok == replyAdded && strings.HasPrefix(c.line, "add server "+id+" ") {
				return fmt.Errorf("runtime API: server %s is being re-added but still has connections from before", id)
			}
		}
	}
	return nil
}

// del deletes a server already in maintenance, or keeps it for later while connections remain.
func (r *Runtime) del(ctx context.Context, id string) {
	if err := r.expect(ctx, command{"del server " + id, replyDeleted}); err != nil {
		r.pending = append(r.pending, id)
	}
}

func (k reply) matches(out string) bool {
	switch k {
	case replyAdded:
		return strings.HasPrefix(out, "New server registered")
	case replyDeleted:
		// "No such server": gone already, by a reload since.
		return strings.HasPrefix(out, "Server deleted") || strings.HasPrefix(out, "No such server")
	case replyAddr:
		return strings.Contains(out, "changed from") || strings.Contains(out, "no need to change")
	case replySet:
		// "Transaction updated ...": one left open for this file by an update that failed.
		return strings.HasPrefix(out, "Transaction created for certificate ") ||
			strings.HasPrefix(out, "Transaction updated for certificate ")
	case replyNewCert:
		return strings.HasPrefix(out, "New empty certificate store ")
	case replyInserted:
		return strings.HasPrefix(out, "Inserting certificate ") && strings.HasSuffix(out, "\nSuccess!")
	case replyCommitted:
		// "Committing /x.pem.\nSuccess!" (a dot per instance of the certificate updated).
		return strings.HasPrefix(out, "Committing ") && strings.HasSuffix(out, "\nSuccess!")
	}
	return out == ""
}
