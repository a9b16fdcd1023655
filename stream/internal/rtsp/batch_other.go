//go:build !linux

package rtsp

import (
	"errors"
	"net"
	"os"
	"time"
)

// batchConn is a session's TCP connection. Batching relies on SO_RCVLOWAT
// waking the poller only once enough data is queued, which is tested on
// Linux only; elsewhere a playing session reads data as it arrives, and
// Read says errDrained when the deadline wait set passes.
type batchConn struct {
	net.Conn
	playing bool
}

func newBatchConn(nc net.Conn) *batchConn { return &batchConn{Conn: nc} }

func (c *batchConn) play(time.Duration) { c.playing = true }

func (*batchConn) nextTick(time.Time) time.Time { return time.Time{} }

func (c *batchConn) wait(s *Session, wake time.Time) error { return s.setReadDeadline(wake) }

func (c *batchConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.playing && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, errDrained
	}
	return n, err
}
