package docker

import (
	"os"
	"regexp"
)

var containerIDInMount = regexp.MustCompile(`/containers/([0-9a-f]{64})/`)

// SelfContainerID returns the ID of the container this process runs in, read from the mounts the
// engine makes for every container (/etc/hostname, /etc/resolv.conf); "" outside a container.
func SelfContainerID() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	return ParseSelfContainerID(b)
}

// ParseSelfContainerID finds the container ID in a mountinfo text.
func ParseSelfContainerID(mountinfo []byte) string {
	if m := containerIDInMount.FindSubmatch(mountinfo); m != nil {
		return string(m[1])
	}
	return ""
}
