package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// moduleRoot is the directory of vhost-gen's go.mod, so that the tool runs from anywhere in the
// tree.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside vhost-gen's module")
	}
	return filepath.Dir(mod), nil
}

// buildVhostGen builds the binary under test once, as the integration tests do (the same flags,
// so that the build cache they filled serves this build too).
func buildVhostGen(root, dir string) (string, error) {
	bin := filepath.Join(dir, "vhost-gen")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vhost-gen")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vhost-gen: %v\n%s", err, out)
	}
	return bin, nil
}

// buildEchoImage builds the integration tests' echo server statically and imports it as a
// FROM-scratch image, as their harness does: there is no registry to pull a base from.
func buildEchoImage(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "echo")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s", "-o", bin, "./integration/echo")
	build.Dir = root
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
	tw.Close()
	imp := exec.Command("docker", "import", "--change", `ENTRYPOINT ["/echo"]`, "-", echoImage)
	imp.Stdin = &buf
	if out, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import echo (is dockerd running? make env starts it): %v\n%s", err, out)
	}
	return nil
}
