package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// nginx-proxy's settings for what a backend speaks and who may reach it.
const (
	SettingRoot          = "VIRTUAL_ROOT"
	SettingNetworkAccess = "NETWORK_ACCESS"
)

// Protos are the VIRTUAL_PROTO values, nginx-proxy's: HTTP and HTTPS to the backend, uwsgi,
// FastCGI (with VIRTUAL_ROOT), and gRPC in clear text or over TLS.
var Protos = []string{"http", "https", "uwsgi", "fastcgi", "grpc", "grpcs"}

// DefaultFastCGIRoot is the document root a FastCGI backend gets without VIRTUAL_ROOT
// (nginx-proxy's).
const DefaultFastCGIRoot = "/var/www/public"

// ParseProto validates the protocol to the backend.
func ParseProto(v string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(v))
	if slices.Contains(Protos, p) {
		return p, nil
	}
	return "", fmt.Errorf("must be one of %s", strings.Join(Protos, ", "))
}

// ParseNetworkAccess reads NETWORK_ACCESS: internal (private and loopback clients only, others
// get 403) or external (everyone, the default).
func ParseNetworkAccess(v string) (internal bool, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "internal":
		return true, nil
	case "external":
		return false, nil
	}
	return false, errors.New("must be internal or external")
}

// checkProto completes the protocol settings once all are read: VIRTUAL_ROOT belongs to FastCGI
// (elsewhere it is a warning) and FastCGI has nginx-proxy's default root; VIRTUAL_DEST rewrites an
// HTTP request's path, which the other protocols do not forward as such.
func checkProto(w *discovery.Workload, s *Settings, bad func(string, discovery.Origin, string, error)) []Problem {
	var warnings []Problem
	if s.Multi != nil {
		return nil // each route's protocol decides (RouteSpec.settings)
	}
	if v, from, ok := w.Setting(SettingRoot); ok && s.Proto != "fastcgi" && s.Root != "" {
		p := newProblem(w, SettingRoot, from, v, fmt.Sprintf("used with VIRTUAL_PROTO=fastcgi only (this workload's is %s): ignored", s.Proto))
		p.Warning = true
		warnings = append(warnings, p)
		s.Root = ""
	}
	if s.Proto == "fastcgi" && s.Root == "" {
		s.Root = DefaultFastCGIRoot
	}
	if v, from, ok := w.Setting(SettingDest); ok && s.Dest != "" && s.Proto != "http" && s.Proto != "https" {
		bad(SettingDest, from, v, fmt.Errorf("works with VIRTUAL_PROTO http and https only, not %s", s.Proto))
	}
	return warnings
}

// protoProblem says why the proxy cannot serve a workload's protocol ("" when it can).
func protoProblem(w *discovery.Workload, s *Settings, opt Options) []Problem {
	reason, unsupported := opt.UnsupportedProtos[s.Proto]
	if !unsupported {
		return nil
	}
	v, from, _ := w.Setting(SettingProto)
	return []Problem{newProblem(w, SettingProto, from, v, reason)}
}
