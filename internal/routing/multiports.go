package routing

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// SettingMultiports is nginx-proxy's VIRTUAL_HOST_MULTIPORTS: several hosts, paths and ports of
// one container, in YAML or JSON. It replaces the container's VIRTUAL_HOST, VIRTUAL_PORT,
// VIRTUAL_PROTO, VIRTUAL_PATH and VIRTUAL_DEST.
const SettingMultiports = "VIRTUAL_HOST_MULTIPORTS"

// RouteSpec is one host and path a container serves, with its port, protocol and VIRTUAL_DEST.
type RouteSpec struct {
	Host, Path string
	Port       int // 0: the default port (as without VIRTUAL_PORT)
	Proto      string
	Dest       string
}

// ParseMultiports reads VIRTUAL_HOST_MULTIPORTS:
//
//	www.example.org:            # "/" on the default port
//	api.example.org:
//	  "/":
//	    port: 8000
//	  "/v2/":
//	    port: 9000
//	    proto: https
//	    dest: "/"
//
// Hosts are validated as VIRTUAL_HOST's, paths as VIRTUAL_PATH's, and so on; a host or a path
// given twice, an unknown key, an anchor or alias, or a value of the wrong kind is an error naming
// its line. nginx-proxy's external_http_port and external_https_port are refused: vhost-gen
// listens on the gateway's ports only. The specs come sorted by host, then path.
func ParseMultiports(v string) ([]RouteSpec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(v), &doc); err != nil {
		return nil, fmt.Errorf("not YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty: want a mapping of host names")
	}
	root := doc.Content[0]
	if err := noAliases(root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.MappingNode || len(root.Content) == 0 {
		return nil, lineErr(root, "want a mapping of host names (host: {path: {port, proto, dest}})")
	}
	var specs []RouteSpec
	hosts := map[string]int{}
	for i := 0; i < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		host, err := ParseHost(scalar(k))
		if err != nil || k.Kind != yaml.ScalarNode {
			return nil, lineErr(k, fmt.Sprintf("host %q: %v", scalar(k), errOr(err, "not a host name")))
		}
		if line, ok := hosts[host]; ok {
			return nil, lineErr(k, fmt.Sprintf("host %s again (first on line %d)", host, line))
		}
		hosts[host] = k.Line
		paths, err := parsePaths(host, val)
		if err != nil {
			return nil, err
		}
		specs = append(specs, paths...)
	}
	if len(specs) > MaxHosts {
		return nil, fmt.Errorf("%d host and path routes, at most %d on one workload", len(specs), MaxHosts)
	}
	return specs, nil
}

// parsePaths reads one host's paths: nothing (its "/" on the default port), or a mapping of paths.
func parsePaths(host string, n *yaml.Node) ([]RouteSpec, error) {
	if isNull(n) {
		return []RouteSpec{{Host: host, Path: "/", Proto: "http"}}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n, fmt.Sprintf("host %s: want a mapping of paths", host))
	}
	var specs []RouteSpec
	seen := map[string]int{}
	for i := 0; i < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := scalar(k)
		if key == "external_http_port" || key == "external_https_port" {
			return nil, lineErr(k, fmt.Sprintf("host %s: %s is not supported: vhost-gen serves every host on the gateway's own ports", host, key))
		}
		path, err := ParsePath(key)
		if err != nil || k.Kind != yaml.ScalarNode {
			return nil, lineErr(k, fmt.Sprintf("host %s: path %q: %v", host, key, errOr(err, "not a path")))
		}
		if line, ok := seen[path]; ok {
			return nil, lineErr(k, fmt.Sprintf("host %s: path %s again (first on line %d)", host, path, line))
		}
		seen[path] = k.Line
		spec, err := parseRoute(host, path, val)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		specs = append(specs, RouteSpec{Host: host, Path: "/", Proto: "http"})
	}
	return specs, nil
}

// parseRoute reads one path's port, proto and dest.
func parseRoute(host, path string, n *yaml.Node) (RouteSpec, error) {
	spec := RouteSpec{Host: host, Path: path, Proto: "http"}
	if isNull(n) {
		return spec, nil
	}
	if n.Kind != yaml.MappingNode {
		return spec, lineErr(n, fmt.Sprintf("host %s path %s: want port, proto and dest", host, path))
	}
	seen := map[string]bool{}
	for i := 0; i < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, v := scalar(k), scalar(val)
		if seen[key] {
			return spec, lineErr(k, fmt.Sprintf("host %s path %s: %s again", host, path, key))
		}
		seen[key] = true
		if val.Kind != yaml.ScalarNode {
			return spec, lineErr(val, fmt.Sprintf("host %s path %s: %s: want a value", host, path, key))
		}
		var err error
		switch key {
		case "port":
			if v != "default" && v != "" {
				spec.Port, err = ParsePort(v)
			}
		case "proto":
			spec.Proto, err = ParseProto(v)
		case "dest":
			if v != "" {
				spec.Dest, err = ParsePath(v)
			}
		default:
			err = errors.New("unknown key (port, proto, dest)")
		}
		if err != nil {
			return spec, lineErr(k, fmt.Sprintf("host %s path %s: %s %q: %v", host, path, key, v, err))
		}
	}
	if spec.Dest != "" && spec.Proto != "http" && spec.Proto != "https" {
		return spec, lineErr(n, fmt.Sprintf("host %s path %s: dest works with proto http and https only, not %s", host, path, spec.Proto))
	}
	return spec, nil
}

// noAliases refuses anchors and aliases: a few bytes of them can stand for a huge document.
func noAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return lineErr(n, "anchors and aliases are not allowed")
	}
	for _, c := range n.Content {
		if err := noAliases(c); err != nil {
			return err
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "") ||
		n.Kind == yaml.MappingNode && len(n.Content) == 0
}

func scalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func lineErr(n *yaml.Node, msg string) error {
	return fmt.Errorf("line %s: %s", strconv.Itoa(n.Line), msg)
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// replacedByMulti are the settings VIRTUAL_HOST_MULTIPORTS replaces: ignored beside it.
var replacedByMulti = map[string]bool{SettingHost: true, SettingPort: true, SettingProto: true, SettingPath: true, SettingDest: true}

// parseMultiSettings reads VIRTUAL_HOST_MULTIPORTS into s (Multi, and Hosts: every host it
// names); the settings it replaces, when set too, are a warning each.
func parseMultiSettings(w *discovery.Workload, s *Settings, bad func(string, discovery.Origin, string, error)) []Problem {
	v, from, _ := w.Setting(SettingMultiports)
	specs, err := ParseMultiports(v)
	if err != nil {
		bad(SettingMultiports, from, v, err)
		return nil
	}
	s.Multi = specs
	for _, sp := range specs {
		s.Hosts = append(s.Hosts, sp.Host)
	}
	s.Hosts = slices.Compact(s.Hosts) // sorted by host already
	var warnings []Problem
	for _, name := range []string{SettingHost, SettingPort, SettingProto, SettingPath, SettingDest} {
		if ov, ofrom, ok := w.Setting(name); ok {
			p := newProblem(w, name, ofrom, ov, "ignored: VIRTUAL_HOST_MULTIPORTS replaces it")
			p.Warning = true
			warnings = append(warnings, p)
		}
	}
	return warnings
}

// settings are a workload's settings for one route of its VIRTUAL_HOST_MULTIPORTS.
func (sp RouteSpec) settings(s Settings) Settings {
	s.Hosts, s.Path, s.Port, s.Proto, s.Dest, s.Multi = []string{sp.Host}, sp.Path, sp.Port, sp.Proto, sp.Dest, nil
	switch {
	case sp.Proto != "fastcgi":
		s.Root = ""
	case s.Root == "":
		s.Root = DefaultFastCGIRoot
	}
	return s
}

// placeMulti places each route of a workload's VIRTUAL_HOST_MULTIPORTS: each has its own port,
// so its own address, and its own protocol. ok is false when the workload is left out whole.
func (b *builder) placeMulti(w *discovery.Workload, s *Settings, opt Options, proxyNets []string) (problems []Problem, ok bool) {
	if s.TCPPort != 0 {
		value, from, _ := w.Setting(SettingTCPPort)
		p := []Problem{newProblem(w, SettingTCPPort, from, value, "cannot be combined with VIRTUAL_HOST_MULTIPORTS (give the TCP service a container of its own)")}
		b.exclude(w, s, ExcludedProblem, p)
		return p, false
	}
	for _, sp := range s.Multi {
		rs := sp.settings(*s)
		if reason, unsupported := opt.UnsupportedProtos[rs.Proto]; unsupported {
			v, from, _ := w.Setting(SettingMultiports)
			p := []Problem{newProblem(w, SettingMultiports, from, v, fmt.Sprintf("host %s path %s: proto %s: %s", sp.Host, sp.Path, rs.Proto, reason))}
			b.exclude(w, &rs, ExcludedProblem, p)
			problems = append(problems, p...)
			continue
		}
		problems = append(problems, b.placeRoutes(w, &rs, opt, proxyNets)...)
	}
	return problems, true
}
