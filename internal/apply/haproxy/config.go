// Package haproxy applies changes to a running HAProxy through its runtime API, so that scaling a
// backend up or down needs no reload, and neither does a certificate, new or renewed. It reads
// the rendered configs themselves (the one live and the new one), so it works with any template,
// and it falls back to a reload whenever the two differ in anything but their server lines and
// the comments that describe the files HAProxy reads at run time (certComment, mapComment,
// crtListComment), in the ways those files can change through the runtime API.
package haproxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unique"
	"unsafe"
)

// certComment starts the comment a template writes for each certificate it serves, so that a
// renewed certificate changes the config:
//
//	# vhost-gen cert "<PEM file>" sha256 <64 hex digits>[ <anything>]
//
// with the file's path as a Go string literal (printf "%+q"). Between two configs, a new SHA-256
// for a file is a renewal, which the runtime API loads; a file not loaded before is a new
// certificate, which it loads only with a crt-list line that uses it (crtListComment).
const certComment = "# vhost-gen cert "

// mapComment starts the comment a template writes for each entry of a map file it reads:
//
//	# vhost-gen map "<map file>" <key> <value>
//
// The runtime API adds, changes and deletes entries to match (add/set/del map).
const mapComment = "# vhost-gen map "

// crtListComment starts the comment a template writes for each line of a crt-list it binds:
//
//	# vhost-gen crt-list "<crt-list file>" <line>
//
// A line added is added through the runtime API (add ssl crt-list); one removed reloads.
const crtListComment = "# vhost-gen crt-list "

// mapLine is one map comment.
type mapLine struct {
	path, key, value string
}

// crtListLine is one crt-list comment.
type crtListLine struct {
	list, line string
}

// certLine is one certificate comment: the PEM file HAProxy loaded, and its SHA-256 then.
type certLine struct {
	path   string
	sha256 string
}

// server is one "server" line of a backend or listen section.
type server struct {
	name   string
	ip     string
	port   int
	weight int
	// weightSet: the line says "weight N"; otherwise weight is HAProxy's default, 1, unless a
	// default-server line says otherwise.
	weightSet bool
	// slot is how many non-server lines of its section come before it. Server lines leave no
	// trace in the skeleton, so a server that moved past another line (a "default-server" line
	// applies to the servers after it only) is only seen here.
	slot int
	// rest are the line's other keywords (check, inter 2s, ssl...), in order.
	rest string
}

// section is a backend or listen section and its servers, in file order.
type section struct {
	name    string
	servers []server
	// dynamicCookie: the section has "cookie ... dynamic", whose values HAProxy computes per
	// server address and must recompute after servers are added or moved.
	dynamicCookie bool
}

// parsed is a config split into its server lines and everything else (the skeleton).
type parsed struct {
	// skeleton is each chunk's skeleton, in file order.
	skeleton []string
	// sections are the chunks' own: a section that did not change is the same pointer in the
	// parse before.
	sections []*section
	// defaultServer: the config has a "default-server" line. Servers added through the runtime
	// API do not take default-server settings (checked on HAProxy 2.6), so none can be added hot.
	defaultServer bool
	// certs, maps and crtLists are the comments of their kinds, in file order; the skeleton has
	// none of them.
	certs    []certLine
	maps     []mapLine
	crtLists []crtListLine
	// certMasked are the certificate comments without their hashes, sorted: with no crt-list
	// comments to say what a new one is for, a change here reloads.
	certMasked []string
	// chunks are the config's chunks, for the parse of the next config (parseReusing).
	chunks map[chunkKey]*chunk
}

// skeletonText is the skeleton whole.
func (p parsed) skeletonText() string { return strings.Join(p.skeleton, "") }

var sectionKeywords = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"peers": true, "resolvers": true, "userlist": true, "program": true, "http-errors": true,
	"ring": true, "cache": true, "mailers": true, "log-forward": true, "fcgi-app": true,
	"crt-store": true, "traces": true,
}

// chunk is what parse makes of one section, or of the lines before the first: a function of its
// text and of whether the defaults section before it had "cookie ... dynamic" (dynIn), so that
// the chunks of the last config parsed serve the next one's that did not change. At 10,000
// workloads a change touches a few of 5,000 chunks.
type chunk struct {
	// text is the chunk's text in the last config parsed with it: the key it is kept under.
	text          string
	skeleton      string
	section       *section // a backend or listen section
	defaultServer bool
	certs         []certLine
	certMasked    []string
	maps          []mapLine
	crtLists      []crtListLine
	// dynOut is dynIn for the chunk after it.
	dynOut bool
}

// chunkKey is a chunk's text and what it depends on besides. last: the chunk ends the config,
// whose text after the last newline is a line of its own (an empty one when the config ends
// with a newline), as strings.Split has it.
type chunkKey struct {
	text  string
	dynIn bool
	last  bool
}

// parse splits a config. A server line it cannot read is an error: the caller then reloads.
// The skeleton is every other line, verbatim (comments too).
func parse(cfg []byte) (parsed, error) { return parseReusing(cfg, nil) }

// parseReusing is parse, taking the chunks that did not change from an earlier parse (nil: none).
func parseReusing(cfg []byte, known map[chunkKey]*chunk) (parsed, error) {
	// Borrowed, not copied (3.4 MB at 10,000 workloads): a config is never changed once written
	// (the applier keeps the one in force, as the renderer's parts do). A chunk's text is its
	// part of cfg, moved to the next config that has the same chunk (repoint); what a chunk keeps
	// besides is its own (detach), so that no older config stays alive.
	text := unsafe.String(unsafe.SliceData(cfg), len(cfg))
	p := parsed{chunks: make(map[chunkKey]*chunk, len(known)),
		skeleton: make([]string, 0, len(known)), sections: make([]*section, 0, len(known))}
	dyn := false
	start, startLine, line := 0, 1, 1
	add := func(end int, last bool) error {
		k := chunkKey{text: text[start:end], dynIn: dyn, last: last}
		c := known[k]
		if c == nil {
			var err error
			if c, err = parseChunk(k, startLine); err != nil {
				return err
			}
			c.detach()
		} else {
			c.repoint(k.text)
		}
		k.text = c.text
		p.chunks[k] = c
		p.skeleton = append(p.skeleton, c.skeleton)
		if c.section != nil {
			p.sections = append(p.sections, c.section)
		}
		p.defaultServer = p.defaultServer || c.defaultServer
		p.certs = append(p.certs, c.certs...)
		p.certMasked = append(p.certMasked, c.certMasked...)
		p.maps = append(p.maps, c.maps...)
		p.crtLists = append(p.crtLists, c.crtLists...)
		dyn = c.dynOut
		return nil
	}
	for i := 0; i <= len(text); line++ {
		end := strings.IndexByte(text[i:], '\n')
		if end < 0 {
			end = len(text) - i
		}
		if i > start && startsSection(text[i:i+end]) {
			if err := add(i, false); err != nil {
				return parsed{}, err
			}
			start, startLine = i, line
		}
		i += end + 1
	}
	if err := add(len(text), true); err != nil {
		return parsed{}, err
	}
	slices.Sort(p.certMasked)
	return p, nil
}

// repoint moves the chunk's text, and its skeleton when that is part of the text, to text: the
// same bytes in another config.
func (c *chunk) repoint(text string) {
	if len(c.skeleton) > 0 && unsafe.StringData(c.skeleton) == unsafe.StringData(c.text) {
		c.skeleton = text[:len(c.skeleton)]
	}
	c.text = text
}

// detach gives the chunk its own copy of every string it keeps but its text and a skeleton that
// is part of it: those are parts of its config, which repoint replaces. A server's other keywords,
// the same for most servers, are kept once (unique).
func (c *chunk) detach() {
	if c.section != nil {
		c.section.name = strings.Clone(c.section.name)
		for i := range c.section.servers {
			s := &c.section.servers[i]
			s.name, s.ip, s.rest = strings.Clone(s.name), strings.Clone(s.ip), unique.Make(s.rest).Value()
		}
	}
	for i := range c.certs {
		c.certs[i].path, c.certs[i].sha256 = strings.Clone(c.certs[i].path), strings.Clone(c.certs[i].sha256)
	}
	for i := range c.certMasked {
		c.certMasked[i] = strings.Clone(c.certMasked[i])
	}
	for i := range c.maps {
		m := &c.maps[i]
		m.path, m.key, m.value = strings.Clone(m.path), strings.Clone(m.key), strings.Clone(m.value)
	}
	for i := range c.crtLists {
		c.crtLists[i].list, c.crtLists[i].line = strings.Clone(c.crtLists[i].list), strings.Clone(c.crtLists[i].line)
	}
}

// startsSection says whether a line's first word is a section keyword. Most lines of a large
// config are server lines and comments, told apart by their first byte (no section keyword starts
// with an 's'), without firstField's walk over runes.
func startsSection(line string) bool {
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i < len(line) && (line[i] == 's' || line[i] == '#') {
		return false
	}
	j := i
	for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '#' {
		if line[j] >= utf8.RuneSelf || line[j] == '\v' || line[j] == '\f' || line[j] == '\r' || line[j] == '\n' {
			return sectionKeywords[firstField(line)] // other white space: firstField's rules
		}
		j++
	}
	return sectionKeywords[line[i:j]]
}

// parseChunk parses one chunk whose first line is line number first of the config.
func parseChunk(k chunkKey, first int) (*chunk, error) {
	c := &chunk{text: k.text}
	var skel strings.Builder
	var cur *section
	var names map[string]bool  // cur's server names
	slot := 0                  // cur's non-server lines so far
	defaultsDynamic := k.dynIn // the last defaults section has "cookie ... dynamic"
	inDefaults := false
	lines := strings.Split(k.text, "\n")
	if !k.last {
		lines = lines[:len(lines)-1] // the chunk ends with a newline: no line after it
	}
	for n, line := range lines {
		var fields []string // only for the lines whose first word matters: most have none
		if parsedKeyword(firstField(line)) {
			fields = strings.Fields(stripComment(line))
		}
		if len(fields) > 0 && sectionKeywords[fields[0]] {
			cur, names, slot = nil, nil, 0
			inDefaults = fields[0] == "defaults"
			if inDefaults {
				defaultsDynamic = false // each defaults section replaces the one before
			}
			if (fields[0] == "backend" || fields[0] == "listen") && len(fields) > 1 {
				c.section = &section{name: fields[1], dynamicCookie: defaultsDynamic}
				cur = c.section
				names = map[string]bool{}
			}
		}
		if len(fields) > 0 && fields[0] == "default-server" {
			c.defaultServer = true
		}
		if cur != nil && len(fields) > 0 && fields[0] == "server" {
			s, err := parseServer(fields)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", first+n, err)
			}
			if names[s.name] {
				// HAProxy refuses it too; and the diff keys servers by name.
				return nil, fmt.Errorf("line %d: server %s: a second server of that name in %s", first+n, s.name, cur.name)
			}
			names[s.name] = true
			s.slot = slot
			cur.servers = append(cur.servers, s)
			continue // the skeleton holds no server lines, so scaling does not change it
		}
		if cert, masked, ok := parseCertComment(line); ok {
			c.certs = append(c.certs, cert)
			c.certMasked = append(c.certMasked, strings.TrimSpace(masked))
			continue
		}
		if m, ok := parseMapComment(line); ok {
			c.maps = append(c.maps, m)
			continue
		}
		if l, ok := parseCrtListComment(line); ok {
			c.crtLists = append(c.crtLists, l)
			continue
		}
		slot++
		if len(fields) > 1 && fields[0] == "cookie" {
			// A backend's own cookie line replaces the one it inherited from defaults.
			dyn := contains(fields[2:], "dynamic")
			switch {
			case cur != nil:
				cur.dynamicCookie = dyn
			case inDefaults:
				defaultsDynamic = dyn
			}
		}
		skel.WriteString(line)
		skel.WriteByte('\n')
	}
	c.skeleton, c.dynOut = skel.String(), defaultsDynamic
	if strings.HasPrefix(k.text, c.skeleton) {
		// Kept once: a chunk without servers (a frontend's thousands of lines) is its own
		// skeleton, and a backend's servers often end it.
		c.skeleton = k.text[:len(c.skeleton)]
	}
	return c, nil
}

// parseCertComment reads a certificate comment (certComment); masked is the line without its
// hash. A line that is not one, or whose path the runtime API could not take, is not: it stays in
// the skeleton, so that any change to it reloads.
func parseCertComment(line string) (c certLine, masked string, ok bool) {
	path, rest, ok := quotedComment(line, certComment)
	if !ok || !strings.HasSuffix(path, ".pem") {
		return certLine{}, "", false
	}
	hash, found := strings.CutPrefix(rest, " sha256 ")
	const n = 64
	if !found || len(hash) < n || strings.Trim(hash[:n], "0123456789abcdef") != "" || len(hash) > n && hash[n] != ' ' {
		return certLine{}, "", false
	}
	masked = line[:len(line)-len(hash)] + hash[n:]
	return certLine{path: path, sha256: hash[:n]}, masked, true
}

// parseMapComment reads a map comment (mapComment); a key or value the runtime API could not take
// leaves the line in the skeleton.
func parseMapComment(line string) (mapLine, bool) {
	path, rest, ok := quotedComment(line, mapComment)
	if !ok || !strings.HasPrefix(rest, " ") {
		return mapLine{}, false
	}
	key, value, _ := strings.Cut(rest[1:], " ")
	if key == "" || !cliSafe(key) || strings.ContainsFunc(value, unicode.IsControl) {
		return mapLine{}, false
	}
	return mapLine{path: path, key: key, value: value}, true
}

// parseCrtListComment reads a crt-list comment (crtListComment).
func parseCrtListComment(line string) (crtListLine, bool) {
	path, rest, ok := quotedComment(line, crtListComment)
	if !ok || !strings.HasPrefix(rest, " ") || strings.TrimSpace(rest) == "" || strings.ContainsFunc(rest, unicode.IsControl) {
		return crtListLine{}, false
	}
	return crtListLine{list: path, line: strings.TrimSpace(rest)}, true
}

// quotedComment reads a comment that starts with prefix then a file's path as a Go string
// literal, a path the runtime API can be given (runtimePath); rest follows the literal.
func quotedComment(line, prefix string) (path, rest string, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimLeft(line, " \t"), prefix)
	if !found || !strings.HasPrefix(rest, `"`) {
		return "", "", false
	}
	q, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "", "", false
	}
	path, err = strconv.Unquote(q)
	if err != nil || !runtimePath(path) {
		return "", "", false
	}
	return path, rest[len(q):], true
}

// runtimePath reports whether the runtime API can be given this file: an absolute path of
// characters that neither its command line (words, ';' between commands, '\' escapes, "<<"
// payloads) nor a reader of the error could take for something else. (HAProxy 2.6 cannot replace
// a certificate named ".crt" at run time: parseCertComment takes ".pem" files only.)
func runtimePath(p string) bool {
	return strings.HasPrefix(p, "/") && cliSafe(p)
}

// cliSafe reports whether a word needs no escaping on the runtime API's command line.
func cliSafe(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+@=,:~%*", r))
	})
}

// parseServer reads "server NAME IP:PORT [weight N] [keywords...]".
func parseServer(f []string) (server, error) {
	if len(f) < 3 {
		return server{}, fmt.Errorf("server line %q: want a name and an address", strings.Join(f, " "))
	}
	host, port, err := net.SplitHostPort(f[2])
	if err != nil || net.ParseIP(host) == nil {
		return server{}, fmt.Errorf("server %s: address %q is not IP:PORT", f[1], f[2])
	}
	s := server{name: f[1], ip: host, weight: 1}
	// Only a plain port: HAProxy also takes "+N"/"-N" (an offset from the port the client
	// connected to), no port at all, and 0, none of which "set server addr" can express.
	if s.port, err = number(port); err != nil || s.port < 1 || s.port > 65535 {
		return server{}, fmt.Errorf("server %s: address %q is not IP:PORT", f[1], f[2])
	}
	var rest []string
	for i := 3; i < len(f); i++ {
		if f[i] == "weight" && i+1 < len(f) {
			if s.weight, err = number(f[i+1]); err != nil || s.weight > 256 {
				return server{}, fmt.Errorf("server %s: weight %q", f[1], f[i+1])
			}
			s.weightSet = true
			i++
			continue
		}
		rest = append(rest, f[i])
	}
	s.rest = strings.Join(rest, " ")
	return s, nil
}

// number reads a decimal number of digits only (strconv.Atoi also takes a sign).
func number(s string) (int, error) {
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.Atoi(s)
}

// parsedKeyword says whether parse reads a line that starts with word beyond its first word.
func parsedKeyword(word string) bool {
	return sectionKeywords[word] || word == "server" || word == "default-server" || word == "cookie"
}

// firstField is strings.Fields(stripComment(line))[0], when that is a keyword (letters and '-'),
// found without splitting the line: a word ends at a space (unicode.IsSpace, as Fields) or at a
// '#'; one that holds a quote or a backslash is no keyword either way.
func firstField(line string) string {
	start := strings.IndexFunc(line, func(r rune) bool { return !unicode.IsSpace(r) })
	if start < 0 {
		return ""
	}
	word := line[start:]
	if end := strings.IndexFunc(word, func(r rune) bool { return unicode.IsSpace(r) || r == '#' }); end >= 0 {
		word = word[:end]
	}
	return word
}

// stripComment drops an unquoted, unescaped "#..." (HAProxy's comment). As in HAProxy, a
// backslash escapes the next character outside quotes and within double quotes, but is a plain
// character within single quotes.
func stripComment(line string) string {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quote != '\'':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return line[:i]
		}
	}
	return line
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
