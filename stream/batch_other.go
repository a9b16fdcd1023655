//go:build !linux

package stream

import (
	"net"
	"time"
)

// batchConn is Linux-only (it relies on SO_RCVLOWAT waking the poller only
// once enough data is queued, which is tested there); elsewhere every
// packet is read as it arrives.
type batchConn struct {
	net.Conn
	clientQuiet bool
	live        *LiveTimeout
}

const batchSupported = false

func newBatchConn(net.Conn, time.Duration, time.Duration, func([]byte, time.Time)) *batchConn {
	return nil
}

func (*batchConn) enable(int) {}
