package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vhost-gen/vhost-gen/integration/echoimage"
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

// buildEchoImage builds the integration tests' echo server into the bench's own image tag.
func buildEchoImage(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	return echoimage.Build(filepath.Join(root, "integration", "echo"), dir, echoImage)
}
