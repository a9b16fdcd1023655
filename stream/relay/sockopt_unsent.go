//go:build linux || darwin

package relay

import (
	"net"

	"golang.org/x/sys/unix"
)

// limitUnsent sets TCP_NOTSENT_LOWAT on a reader's connection: the kernel
// then holds at most about n bytes that the network has not taken yet, so a
// reader that stops reading blocks the relay's writes (and overflows its
// queue) after n bytes rather than after the several megabytes that send
// buffer autotuning allows. Throughput is not limited: bytes in flight are
// governed by the congestion window as before.
func limitUnsent(c *net.TCPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	// Best effort: without it a stuck reader is only detected later.
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	})
}
