//go:build unix

package api

import (
	"os"
	"syscall"
)

// openNoFollow opens p for reading and fails if p is a symlink.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
