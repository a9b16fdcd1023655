//go:build !windows

package daemon

import (
	"os"
	"syscall"
)

// fileOwner is the uid owning fi's file.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
