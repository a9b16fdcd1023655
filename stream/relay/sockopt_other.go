//go:build !linux && !darwin

package relay

import "net"

// limitUnsent is a no-op where TCP_NOTSENT_LOWAT is not available: a reader
// that stops reading is detected once the OS's socket buffers are full.
func limitUnsent(*net.TCPConn, int) {}
