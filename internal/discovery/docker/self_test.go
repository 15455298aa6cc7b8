package docker

import (
	"strings"
	"testing"
)

const selfID = "3f4e8b2a9c1d0e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"

// A container's /proc/self/mountinfo on a cgroup v2 host with overlay2 (Docker 20.10+).
var mountinfoInContainer = `1187 1028 0:123 / / rw,relatime master:566 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/5ZQ2BZ4Z6V7MZ3N5YQ7OJWQK4D:/var/lib/docker/overlay2/l/QW2VUM3EZ3BKSL6B6XKPHRZTJ2,upperdir=/var/lib/docker/overlay2/9d9c6c1b7e3fd4a1f2c62d2b6b3e0a1d8f0d0f7e5b4c2a1908172635445362718/diff,workdir=/var/lib/docker/overlay2/9d9c6c1b7e3fd4a1f2c62d2b6b3e0a1d8f0d0f7e5b4c2a1908172635445362718/work
1188 1187 0:126 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1189 1187 0:127 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
1190 1189 0:128 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
1191 1187 0:129 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1192 1191 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
1193 1189 0:125 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
1194 1189 0:130 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k,inode64
1195 1187 259:2 /var/lib/docker/containers/` + selfID + `/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
1196 1187 259:2 /var/lib/docker/containers/` + selfID + `/hostname /etc/hostname rw,relatime - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
1197 1187 259:2 /var/lib/docker/containers/` + selfID + `/hosts /etc/hosts rw,relatime - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
1029 1188 0:126 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
1030 1188 0:126 /fs /proc/fs ro,nosuid,nodev,noexec,relatime - proc proc rw
`

// The same with /var/lib/docker on its own file system: the mount root is relative to it.
var mountinfoSeparateDataRoot = `700 600 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/srv/docker/overlay2/l/AAAA
712 700 8:17 /containers/` + selfID + `/hostname /etc/hostname rw,relatime - xfs /dev/sdb1 rw,attr2,inode64
`

// A host's mountinfo (no container), including docker's own mounts of other containers' shm and
// overlay directories, and a log shipper style mount of the whole containers directory.
var mountinfoOnHost = `22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
24 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
566 22 0:123 / /var/lib/docker/overlay2/9d9c6c1b7e3fd4a1f2c62d2b6b3e0a1d8f0d0f7e5b4c2a1908172635445362718/merged rw,relatime shared:300 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/5ZQ2BZ4Z6V7MZ3N5YQ7OJWQK4D
601 22 0:55 / /run/docker/netns/4f1e2d3c4b5a rw shared:310 - nsfs nsfs rw
602 22 259:2 /var/lib/docker/containers /mnt/logs ro,relatime - ext4 /dev/nvme0n1p2 rw
`

func TestParseSelfContainerID(t *testing.T) {
	tests := []struct {
		name, mountinfo, want string
	}{
		{"cgroup v2 container", mountinfoInContainer, selfID},
		{"separate data root", mountinfoSeparateDataRoot, selfID},
		{"host", mountinfoOnHost, ""},
		{"empty", "", ""},
		{"short id", "1 0 8:1 /var/lib/docker/containers/3f4e8b2a9c1d/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n", ""},
		{"upper-case hex is not an engine id", "1 0 8:1 /var/lib/docker/containers/" + strings.ToUpper(selfID) + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseSelfContainerID([]byte(tt.mountinfo)); got != tt.want {
				t.Errorf("ParseSelfContainerID = %q, want %q", got, tt.want)
			}
		})
	}
}

// On the test machine it must not panic and, if it finds something, it is a 64-hex ID.
func TestSelfContainerID(t *testing.T) {
	id := SelfContainerID()
	if id != "" && (len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "") {
		t.Errorf("SelfContainerID = %q", id)
	}
}
