//go:build unix

package testutil

import "syscall"

// RcvBufControl returns a net.Dialer or net.ListenConfig Control that sets
// SO_RCVBUF before the handshake, so that the TCP window is negotiated
// with it and a slow reader is seen after size bytes.
func RcvBufControl(size int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}
}
