//go:build unix

package relay

import "syscall"

// directWrite is set where a session may write a batch with one
// non-blocking write from the Feed's side (session.writeNow).
const directWrite = true

// writeFD is one write(2) on a socket the runtime keeps non-blocking.
func writeFD(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
