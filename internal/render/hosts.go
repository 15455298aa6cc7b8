package render

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// nginxServerName writes a host for server_name: a regular expression in double quotes (where
// routing.ParseHost allows none of the escapes nginx reads there), other names as they are.
func nginxServerName(host string) string {
	if routing.IsRegexHost(host) {
		return `"` + host + `"`
	}
	return host
}

// siteKey names a site in HAProxy's maps and variables: its host, or for a regular expression,
// which a map key or str() cannot hold, "~" and a hash of it.
func siteKey(host string) string {
	if !routing.IsRegexHost(host) {
		return host
	}
	h := fnv.New64a()
	h.Write([]byte(host))
	return fmt.Sprintf("~%016x", h.Sum64())
}

// haproxyRegex writes a regular-expression host for an HAProxy match: in single quotes, where
// HAProxy reads nothing (routing.ParseHost allows no quote in it).
func haproxyRegex(host string) string {
	return "'" + strings.TrimPrefix(host, "~") + "'"
}
