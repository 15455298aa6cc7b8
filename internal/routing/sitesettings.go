package routing

import (
	"errors"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Site-wide settings a workload may set for its hosts, nginx-proxy's, and the gateway settings
// some users set on a container by mistake.
const (
	SettingServerTokens      = "SERVER_TOKENS"
	SettingExternalHTTPPort  = "EXTERNAL_HTTP_PORT"
	SettingExternalHTTPSPort = "EXTERNAL_HTTPS_PORT"
)

// ParseServerTokens validates a SERVER_TOKENS value as nginx's server_tokens takes it (its
// commercial-only string form left out): on, off or build.
func ParseServerTokens(v string) (string, error) {
	switch t := strings.ToLower(strings.TrimSpace(v)); t {
	case "on", "off", "build":
		return t, nil
	case "true":
		return "on", nil
	case "false":
		return "off", nil
	}
	return "", errors.New("must be on, off or build")
}

// parseSiteSettings reads a workload's site-wide settings. Their problems are warnings: the site
// is served with the gateway's value.
func parseSiteSettings(w *discovery.Workload, s *Settings) []Problem {
	var warnings []Problem
	warn := func(setting string, from discovery.Origin, value, reason string) {
		warnings = append(warnings, newWarning(w, setting, from, value, reason))
	}
	if v, from, ok := w.Setting(SettingServerTokens); ok {
		t, err := ParseServerTokens(v)
		if err != nil {
			warn(SettingServerTokens, from, v, err.Error()+"; the site keeps the gateway's server_tokens")
		}
		s.ServerTokens = t
	}
	for _, name := range []string{SettingExternalHTTPPort, SettingExternalHTTPSPort} {
		if v, from, ok := w.Setting(name); ok {
			warn(name, from, v, "ignored: the ports clients use are the gateway's setting (--external-http-port, --external-https-port); a site on ports of its own needs a gateway of its own")
		}
	}
	return warnings
}
