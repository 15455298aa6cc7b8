//go:build linux

package dirwatch

import (
	"io/fs"
	"syscall"
)

// identity adds what a rewrite in place or a rename changes even within one mtime tick: the
// inode and the change time.
func identity(fi fs.FileInfo) [3]int64 {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [3]int64{}
	}
	sec, nsec := st.Ctim.Unix()
	return [3]int64{int64(st.Ino), sec, nsec}
}
