// Package echoimage builds the integration tests' echo server (integration/echo) into a
// FROM-scratch image: there is no registry here to pull a base image from. The tests' harness and
// the bench table use it.
package echoimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the echo server in src (its package directory) statically into work and imports
// it as the image tag, with /bin/sh a link to it (for --health-cmd).
func Build(src, work, tag string) error {
	bin := filepath.Join(work, "echo")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build echo: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "echo", Mode: 0o755, Size: int64(len(data))})
	tw.Write(data)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeLink, Linkname: "echo", Mode: 0o755})
	tw.Close()
	imp := exec.Command("docker", "import", "--change", `ENTRYPOINT ["/echo"]`, "-", tag)
	imp.Stdin = &buf
	if out, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import echo (is dockerd running? make env starts it): %v\n%s", err, out)
	}
	return nil
}
