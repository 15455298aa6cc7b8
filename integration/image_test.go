package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
)

var (
	imageOnce sync.Once
	imageErr  error
)

const vhostGenImage = "vhost-gen:test"

// buildImage builds the Dockerfile's default target, the edge gateway (vhost-gen with nginx and
// HAProxy), once per run, with a Go builder made from this machine's toolchain and a base made by
// debootstrap (there is no registry to pull either from).
func buildImage(t testing.TB) string {
	imageOnce.Do(func() {
		for _, script := range []string{"../scripts/builder-image.sh", "../scripts/base-image.sh"} {
			if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
				imageErr = &buildError{script, err, out}
				return
			}
		}
		cmd := exec.Command("docker", "build", "-q", "--build-arg", "GO_IMAGE=vhost-gen-go:local", "-t", vhostGenImage, "..")
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0") // the legacy builder: no buildx here
		if out, err := cmd.CombinedOutput(); err != nil {
			imageErr = &buildError{"docker build", err, out}
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return vhostGenImage
}

type buildError struct {
	what string
	err  error
	out  []byte
}

func (e *buildError) Error() string { return e.what + ": " + e.err.Error() + "\n" + string(e.out) }

// TestInContainer runs the image built from the Dockerfile as a container on one network, with
// the Docker socket mounted: vhost-gen finds its own container, takes its networks as the proxy's,
// routes the backend that shares one, and reports the one that does not.
func TestInContainer(t *testing.T) {
	t.Parallel()
	img := buildImage(t)
	e := newEnv(t)
	front, back := e.network("front"), e.network("back")
	e.run("web", "--network", front, "-e", "VIRTUAL_HOST="+e.host("web"))
	e.run("hidden", "--network", back, "-e", "VIRTUAL_HOST="+e.host("hidden"))
	out := e.docker("run", "--rm", "--network", front, "--label", labelKey+"="+e.label,
		"-v", "/var/run/docker.sock:/var/run/docker.sock:ro", img,
		"routes", "--json", "--label-filter", labelKey+"="+e.label)
	var doc struct {
		ProxyNetworks []string `json:"proxyNetworks"`
		Sites         []struct {
			Host   string `json:"host"`
			Routes []struct {
				Backend struct {
					Servers []struct{ Address string } `json:"servers"`
				} `json:"backend"`
			} `json:"routes"`
		} `json:"sites"`
		Problems []struct{ Workload, Reason string } `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("routes --json: %v\n%s", err, out)
	}
	if !slices.Equal(doc.ProxyNetworks, []string{front}) {
		t.Errorf("proxy networks %v, want [%s] (its own container's)", doc.ProxyNetworks, front)
	}
	if len(doc.Sites) != 1 || doc.Sites[0].Host != e.host("web") ||
		doc.Sites[0].Routes[0].Backend.Servers[0].Address != e.ip("web", front)+":80" {
		t.Errorf("want only %s at its %s address, got %s", e.host("web"), front, out)
	}
	if len(doc.Problems) != 1 || doc.Problems[0].Workload != e.name("hidden") {
		t.Errorf("want one problem, for hidden, got %+v", doc.Problems)
	}
}
