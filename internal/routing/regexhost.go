package routing

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// MaxRegexHost bounds a regular-expression host's expression (after its '~').
const MaxRegexHost = 255

// IsRegexHost reports whether a site's host is a regular expression ("~^api\d+\.example\.com$"),
// as nginx-proxy and nginx's server_name write one.
func IsRegexHost(h string) bool { return strings.HasPrefix(h, "~") }

// parseRegexHost validates a regular-expression host. It must mean the same in nginx's PCRE, in
// HAProxy's and in Go's RE2, and be safe in both configs without escaping: nginx has it in double
// quotes (where it reads \\, \", \', \t, \r and \n as escapes) and HAProxy in single quotes (where
// nothing is). So: printable ASCII without white space or quotes, ';', '#' or '`'; none of those
// escapes; no group with options or names ("(?:" only: a named capture would define an nginx
// variable); and Go must compile it. Matching ignores case, as nginx's does. It is kept as
// written: lower-casing would change \D into \d.
func parseRegexHost(h string) (string, error) {
	re := h[1:]
	if re == "" || len(re) > MaxRegexHost {
		return "", fmt.Errorf("host %q: a regular expression after '~' must be 1 to %d characters", h, MaxRegexHost)
	}
	for i := 0; i < len(re); i++ {
		c := re[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'`;#", c) >= 0 {
			return "", fmt.Errorf("host %q: character %q not allowed in a regular expression host", h, rune(c))
		}
		if c == '\\' && i+1 < len(re) && strings.IndexByte("\\\"'trn", re[i+1]) >= 0 {
			return "", fmt.Errorf("host %q: the escape \\%c is not allowed in a regular expression host", h, re[i+1])
		}
		if c == '(' && strings.HasPrefix(re[i+1:], "?") && !strings.HasPrefix(re[i+1:], "?:") {
			return "", fmt.Errorf("host %q: only (?:...) groups are allowed, no options or named groups", h)
		}
	}
	if strings.HasSuffix(re, "\\") {
		return "", fmt.Errorf("host %q: a regular expression cannot end with '\\'", h)
	}
	if _, err := regexp.Compile("(?i)" + re); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return "", fmt.Errorf("host %q: not a regular expression nginx and HAProxy both read: %s", h, se.Code)
		}
		return "", fmt.Errorf("host %q: %w", h, err)
	}
	return h, nil
}

// MatchRegexHost reports whether a request's host matches a regular-expression host, as the
// proxies match it (case-insensitive, unanchored unless it says ^ and $).
func MatchRegexHost(regexHost, host string) bool {
	re, err := regexp.Compile("(?i)" + strings.TrimPrefix(regexHost, "~"))
	return err == nil && re.MatchString(host)
}
