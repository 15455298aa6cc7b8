package enginesim

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	"github.com/docker/go-connections/nat"
	units "github.com/docker/go-units"
)

// containerList answers GET /containers/json: running containers (all=1: every one), newest
// first, with the engine's filters vhost-gen and tests use: label, id, name, status, network,
// health.
func (s *Sim) containerList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	all := q.Get("all") == "1" || q.Get("all") == "true"
	limit, _ := strconv.Atoi(q.Get("limit"))
	var cs []*ctr
	var out []container.Summary
	s.read(func(wd *world) {
		for _, c := range wd.containers {
			if (all || c.running() || f.Contains("status")) && c.matches(f, wd) {
				cs = append(cs, c)
			}
		}
		slices.SortFunc(cs, func(a, b *ctr) int { return cmp.Compare(b.seq, a.seq) })
		if limit > 0 && len(cs) > limit {
			cs = cs[:limit]
		}
		out = make([]container.Summary, len(cs))
		for i, c := range cs {
			out[i] = wd.summary(c)
		}
	})
	writeJSON(w, http.StatusOK, out)
}

// matches applies a container list's filters.
func (c *ctr) matches(f filters.Args, wd *world) bool {
	if !f.MatchKVList("label", c.labels) || !f.ExactMatch("status", c.state) || !f.ExactMatch("health", c.healthOrNone()) {
		return false
	}
	if f.Contains("id") && !f.Match("id", c.id) {
		return false
	}
	if f.Contains("name") && !f.Match("name", "/"+c.name) {
		return false
	}
	if f.Contains("network") {
		ok := false
		for _, n := range c.networks {
			ok = ok || f.ExactMatch("network", n) || f.ExactMatch("network", wd.netNames[n])
		}
		return ok
	}
	return true
}

func (c *ctr) healthOrNone() string {
	if c.health == "" {
		return container.NoHealthcheck
	}
	return c.health
}

// status is the list's human status: "Up 3 minutes (healthy)", "Exited (0) 2 seconds ago".
func (c *ctr) status(now time.Time) string {
	switch c.state {
	case "created":
		return "Created"
	case "exited":
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, units.HumanDuration(now.Sub(c.end)))
	}
	st := "Up " + units.HumanDuration(now.Sub(c.started))
	switch {
	case c.state == "paused":
		st += " (Paused)"
	case c.health == "starting":
		st += " (health: starting)"
	case c.health != "":
		st += " (" + c.health + ")"
	}
	return st
}

// imageID is the image's content ID, made up from its name.
func imageID(image string) string { return "sha256:" + hashHex(image) }

// hashHex is 64 hex digits derived from s.
func hashHex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// summary is the container as the list shows it.
func (wd *world) summary(c *ctr) container.Summary {
	s := container.Summary{ID: c.id, Names: []string{"/" + c.name}, Image: c.image, ImageID: imageID(c.image),
		Command: "/echo", Created: c.created.Unix(), Ports: []container.Port{}, Labels: c.labels,
		State: container.ContainerState(c.state), Status: c.status(wd.now()), Mounts: []container.MountPoint{},
		NetworkSettings: &container.NetworkSettingsSummary{Networks: wd.endpoints(c)}}
	s.HostConfig.NetworkMode = c.networkMode
	for _, p := range c.ports {
		cp := container.Port{PrivatePort: uint16(p.Port), Type: p.proto()}
		if p.Publish && c.running() {
			cp.IP, cp.PublicPort = p.HostIP, uint16(p.HostPort)
		}
		s.Ports = append(s.Ports, cp)
	}
	return s
}

// endpoints are the container's network attachments; a stopped container keeps them, without
// addresses, as the engine shows them.
func (wd *world) endpoints(c *ctr) map[string]*network.EndpointSettings {
	out := make(map[string]*network.EndpointSettings, len(c.networks))
	for _, name := range c.networks {
		n := wd.networks[wd.netNames[name]]
		ep := &network.EndpointSettings{NetworkID: n.id}
		if c.running() {
			ep.EndpointID = hashHex(c.id + "/" + n.id)
			if ip := c.ips[name]; ip != "" {
				ep.IPAddress, ep.Gateway, ep.IPPrefixLen = ip, n.gateway.String(), n.subnet.Bits()
				ep.MacAddress = mac(ip)
			}
		}
		if name != "bridge" && name != "host" && name != "none" {
			ep.Aliases = []string{c.id[:12]} // 20.10 aliases the short ID on user-defined networks
		}
		out[name] = ep
	}
	return out
}

// mac is the engine's MAC for an IPv4 address: 02:42 and the address's bytes.
func mac(ip string) string {
	var a, b, c, d int
	fmt.Sscanf(ip, "%d.%d.%d.%d", &a, &b, &c, &d)
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", a, b, c, d)
}

// inspect is the container as GET /containers/{id}/json shows it.
func (wd *world) inspect(c *ctr) container.InspectResponse {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0001-01-01T00:00:00Z"
		}
		return t.Format(time.RFC3339Nano)
	}
	st := &container.State{Status: container.ContainerState(c.state), Running: c.running(), Paused: c.state == "paused",
		Pid: c.pid, ExitCode: c.exitCode, StartedAt: ts(c.started), FinishedAt: ts(c.end)}
	cfg := &container.Config{Hostname: c.id[:12], Env: c.env, Cmd: nil, Image: c.image, Labels: c.labels,
		Entrypoint: []string{"/echo"}, StopSignal: c.stopSignal, ExposedPorts: nat.PortSet{}}
	if c.health != "" {
		st.Health = &container.Health{Status: c.health, Log: []*container.HealthcheckResult{}}
		if c.health == "unhealthy" {
			st.Health.FailingStreak = 3
		}
		cfg.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "echo health"}, Interval: time.Second}
	}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(c.networkMode), PortBindings: nat.PortMap{},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}, LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{}}}
	ns := &container.NetworkSettings{Networks: wd.endpoints(c)}
	ns.Ports = nat.PortMap{}
	ns.SandboxID = hashHex(c.id + "/sandbox")
	ns.SandboxKey = "/var/run/docker/netns/" + ns.SandboxID[:12]
	for _, p := range c.ports {
		port := nat.Port(fmt.Sprintf("%d/%s", p.Port, p.proto()))
		cfg.ExposedPorts[port] = struct{}{}
		if !p.Publish {
			ns.Ports[port] = nil
			continue
		}
		hp := strconv.Itoa(p.HostPort)
		hc.PortBindings[port] = []nat.PortBinding{{HostIP: p.HostIP, HostPort: hp}}
		if c.running() {
			ns.Ports[port] = []nat.PortBinding{{HostIP: p.HostIP, HostPort: hp}}
		}
	}
	if ep := ns.Networks["bridge"]; ep != nil {
		//lint:ignore SA1019 the engine still fills the deprecated default-network fields
		ns.DefaultNetworkSettings = container.DefaultNetworkSettings{EndpointID: ep.EndpointID, Gateway: ep.Gateway, IPAddress: ep.IPAddress, IPPrefixLen: ep.IPPrefixLen, MacAddress: ep.MacAddress}
	}
	dir := "/var/lib/docker/containers/" + c.id
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.id, Created: ts(c.created), Path: "/echo", Args: []string{},
			State: st, Image: imageID(c.image), ResolvConfPath: dir + "/resolv.conf", HostnamePath: dir + "/hostname",
			HostsPath: dir + "/hosts", LogPath: dir + "/" + c.id + "-json.log", Name: "/" + c.name, RestartCount: c.restarts,
			Driver: "overlay2", Platform: "linux", HostConfig: hc,
			GraphDriver: storage.DriverData{Name: "overlay2", Data: map[string]string{}}},
		Mounts: []container.MountPoint{}, Config: cfg, NetworkSettings: ns,
	}
}

// containerInspect answers GET /containers/{id}/json, by ID, name or unique ID prefix.
func (s *Sim) containerInspect(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("id")
	var out container.InspectResponse
	found := false
	s.read(func(wd *world) {
		if c := wd.findContainer(ref); c != nil {
			out, found = wd.inspect(c), true
		}
	})
	if !found {
		writeError(w, http.StatusNotFound, "No such container: "+ref)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// containerKill answers POST /containers/{id}/kill?signal=HUP (vhost-gen's --reload-container):
// see Kill.
func (s *Sim) containerKill(w http.ResponseWriter, r *http.Request) {
	err := s.mutate(func(wd *world) ([]event, error) { return wd.kill(r.PathValue("id"), r.URL.Query().Get("signal")) })
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "No such container: "+r.PathValue("id"))
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, fmt.Sprintf("Cannot kill container: %s: Container %s is not running", r.PathValue("id"), r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
