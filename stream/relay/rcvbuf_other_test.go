//go:build !unix

package relay

import "syscall"

// rcvbufControl leaves the receive buffer alone where it cannot be set the
// Unix way; the stuck reader is then detected only once the OS's larger
// buffers fill.
func rcvbufControl(int) func(network, address string, c syscall.RawConn) error { return nil }
