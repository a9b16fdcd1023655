//go:build unix

package relay

import "syscall"

// rcvbufControl returns a net.Dialer Control that sets SO_RCVBUF before
// connecting (so that the TCP window is negotiated with it).
func rcvbufControl(size int) func(network, address string, c syscall.RawConn) error {
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
