package access

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

// Auth is the basic authentication of one route, from nginx-proxy's htpasswd directory: a file
// per host and path (<host>_<sha1(path)>), else per host (<host>; a regular expression host's
// files are named by its SHA-1).
type Auth struct {
	// File is the htpasswd file's path (nginx reads it at each request), Realm what the browser
	// shows (nginx-proxy's: "Restricted <host><path>", "Restricted <host>", "Restricted access"
	// for a regular expression), Userlist a name for HAProxy's userlist section.
	File, Realm, Userlist string
	// Users are the file's entries HAProxy can check (crypt(3) hashes); Skipped says which
	// entries were left out and why, by line.
	Users   []User
	Skipped []string
}

// User is one htpasswd entry.
type User struct {
	Name, Hash string
}

// BasicAuth finds a route's htpasswd file in the directory's files; nil when there is none.
func BasicAuth(dir *snippets.Set, host, path string) *Auth {
	if dir.Empty() {
		return nil
	}
	h := snippets.HostName(host)
	realm := "Restricted " + h + path
	f := dir.Get(h + "_" + snippets.PathHash(path))
	if f == nil {
		realm = "Restricted " + h
		if strings.HasPrefix(host, "~") {
			realm = "Restricted access"
		}
		f = dir.Get(h)
	}
	if f == nil {
		return nil
	}
	a := &Auth{File: filepath.Join(dir.Dir, f.Name), Realm: realm, Userlist: userlistName(f.Name)}
	a.Users, a.Skipped = parseHtpasswd(f.Lines())
	return a
}

// userlistName is an HAProxy section name for a file: letters, digits, '.', '-' and '_' of its
// name, and a hash of it (two files never share one).
func userlistName(file string) string {
	h := fnv.New32a()
	h.Write([]byte(file))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, file)
	return fmt.Sprintf("vhost-gen-auth:%s-%08x", safe, h.Sum32())
}

// parseHtpasswd reads "name:hash" lines. nginx reads the file itself, whatever it holds; HAProxy
// gets only the entries it can check and that are safe in its config: a user name of letters,
// digits and ._@- and a crypt(3) hash ($1$ MD5, $5$ SHA-256, $6$ SHA-512, $2a/b/y$ bcrypt, $y$
// yescrypt, or 13-character DES) of the characters crypt writes. htpasswd's default $apr1$ and
// its {SHA} are nginx's only: such entries are skipped for HAProxy, with the reason.
func parseHtpasswd(lines []string) (users []User, skipped []string) {
	seen := map[string]bool{}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, hash, ok := strings.Cut(l, ":")
		reason := ""
		switch {
		case !ok:
			reason = "not name:hash"
		case !safeUser(name):
			reason = "a user name of letters, digits and ._@- only"
		case seen[name]:
			reason = "user " + name + " again (the first one counts)"
		default:
			reason = cryptProblem(hash)
		}
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("line %d: %s", i+1, reason))
			continue
		}
		seen[name] = true
		users = append(users, User{Name: name, Hash: hash})
	}
	slices.SortStableFunc(users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return users, skipped
}

func safeUser(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@-", c) >= 0) {
			return false
		}
	}
	return true
}

// cryptProblem says why HAProxy cannot check a hash ("" when it can).
func cryptProblem(h string) string {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("$./=", c) >= 0) {
			return "not a crypt(3) hash (" + describeHash(h) + "): nginx checks it, HAProxy cannot"
		}
	}
	for _, p := range []string{"$1$", "$5$", "$6$", "$2a$", "$2b$", "$2y$", "$y$"} {
		if strings.HasPrefix(h, p) && len(h) > len(p) {
			return ""
		}
	}
	if len(h) == 13 && !strings.HasPrefix(h, "$") {
		return "" // DES
	}
	return "not a crypt(3) hash (" + describeHash(h) + "): nginx checks it, HAProxy cannot"
}

func describeHash(h string) string {
	switch {
	case strings.HasPrefix(h, "$apr1$"):
		return "$apr1$, htpasswd's default; make it with htpasswd -B for bcrypt"
	case strings.HasPrefix(h, "{SHA}"), strings.HasPrefix(h, "{SSHA}"):
		return "{SHA}"
	case strings.HasPrefix(h, "{PLAIN}"):
		return "{PLAIN}"
	}
	return "an unknown scheme"
}

// HAProxySkipped lists, for every file of an htpasswd directory, the entries HAProxy's userlists
// leave out and why ("FILE: line N: reason"), for the log.
func HAProxySkipped(dir *snippets.Set) []string {
	var out []string
	for _, n := range dir.Names() {
		_, skipped := parseHtpasswd(dir.Get(n).Lines())
		for _, s := range skipped {
			out = append(out, filepath.Join(dir.Dir, n)+": "+s)
		}
	}
	return out
}
