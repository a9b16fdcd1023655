//go:build !unix

package testutil

import "syscall"

// RcvBufControl leaves the receive buffer alone where it cannot be set the
// Unix way; a slow reader is then seen only once the OS's larger buffers
// fill.
func RcvBufControl(int) func(network, address string, c syscall.RawConn) error { return nil }
