package enginesim

import (
	"net/http"
	"runtime"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// engineVersion is the engine the simulator poses as.
const engineVersion = "20.10.24-enginesim"

// swarmHeader is /_ping's Swarm header: "inactive", or "active/manager".
func (s *Sim) swarmHeader() string {
	if s.opt.Swarm {
		return "active/manager"
	}
	return "inactive"
}

// ping answers GET and HEAD /_ping, unversioned or not: API version negotiation reads its
// API-Version header (set for every request in ServeHTTP).
func (s *Sim) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Add("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Docker-Experimental", "false")
	h.Set("Swarm", s.swarmHeader())
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return
	}
	w.Write([]byte("OK"))
}

// version answers GET /version.
func (s *Sim) version(w http.ResponseWriter, _ *http.Request) {
	v := types.Version{Version: engineVersion, APIVersion: s.opt.APIVersion, MinAPIVersion: minAPIVersion,
		GitCommit: "enginesim", GoVersion: runtime.Version(), Os: "linux", Arch: runtime.GOARCH,
		KernelVersion: "6.1.0-enginesim", BuildTime: "2023-01-01T00:00:00.000000000+00:00"}
	v.Platform.Name = "Docker Engine - Community (enginesim)"
	v.Components = []types.ComponentVersion{{Name: "Engine", Version: engineVersion,
		Details: map[string]string{"ApiVersion": s.opt.APIVersion, "MinAPIVersion": minAPIVersion, "Os": "linux", "Arch": runtime.GOARCH}}}
	writeJSON(w, http.StatusOK, v)
}

// info answers GET /info: the counts, the host name, and the Swarm state (vhost-gen's --source
// swarm checks LocalNodeState and ControlAvailable; publish reads Name).
func (s *Sim) info(w http.ResponseWriter, _ *http.Request) {
	in := system.Info{ID: "ENGI:NESI:MXXX:0000:0000:0000:0000:0000:0000:0000:0000:0000", Images: 1,
		Driver: "overlay2", DriverStatus: [][2]string{}, Plugins: system.PluginsInfo{Network: []string{"bridge", "host", "null", "overlay"}},
		LoggingDriver: "json-file", CgroupDriver: "systemd", CgroupVersion: "2", KernelVersion: "6.1.0-enginesim",
		OperatingSystem: "enginesim", OSVersion: "1", OSType: "linux", Architecture: "x86_64", NCPU: runtime.NumCPU(),
		MemTotal: 8 << 30, DockerRootDir: "/var/lib/docker", Name: s.opt.Hostname, Labels: []string{},
		ServerVersion: engineVersion, DefaultRuntime: "runc", IndexServerAddress: "https://index.docker.io/v1/",
		SecurityOptions: []string{}, Warnings: []string{}, NEventsListener: s.Subscribers()}
	s.read(func(wd *world) {
		for _, c := range wd.containers {
			in.Containers++
			switch c.state {
			case "running":
				in.ContainersRunning++
			case "paused":
				in.ContainersPaused++
			default:
				in.ContainersStopped++
			}
		}
		in.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive, RemoteManagers: nil}
		if s.opt.Swarm {
			self := wd.nodes[0]
			in.Swarm = swarm.Info{NodeID: self.id, NodeAddr: self.addr, LocalNodeState: swarm.LocalNodeStateActive,
				ControlAvailable: true, RemoteManagers: []swarm.Peer{{NodeID: self.id, Addr: self.addr + ":2377"}},
				Nodes: len(wd.nodes), Managers: 1,
				Cluster: &swarm.ClusterInfo{ID: "enginesimcluster000000000", Meta: swarm.Meta{CreatedAt: self.created, UpdatedAt: self.created},
					Spec: swarm.Spec{Annotations: swarm.Annotations{Name: "default"}}, DefaultAddrPool: []string{"10.0.0.0/8"}, SubnetSize: 24, DataPathPort: 4789}}
		}
	})
	writeJSON(w, http.StatusOK, in)
}
