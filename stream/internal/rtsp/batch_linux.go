package rtsp

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// batchConn is a session's TCP connection. Until PLAY it is read as any
// connection is; once playing it never blocks in Read: the session sleeps
// in wait until data is due, then reads what is queued until Read says
// errDrained.
//
// Batched (play with an interval), the kernel does not signal the socket
// readable until readSize bytes are queued (SO_RCVLOWAT), and the session
// otherwise sleeps until the next tick of a clock shared by every camera
// (multiples of the interval), then takes everything queued with one
// read. A camera sending 100 RTP packets a second would otherwise wake its
// goroutine, and an OS thread, 100 times a second, and with a phase of its
// own per camera; those wake-ups, not the parsing, were most of camd's CPU
// (bench/RESULTS.md). Without an interval it wakes whenever data arrives.
//
// What batching costs: frames reach camd up to one interval later than
// they arrived. End of stream and errors wake it whatever the mark.
type batchConn struct {
	net.Conn
	rc       syscall.RawConn
	playing  bool
	interval time.Duration
	// drained is set when the last read left the socket empty: the next
	// Read says errDrained without a system call.
	drained bool

	// The callbacks for rc.Read and what they pass back, bound once: a
	// closure made per call would be an allocation per read.
	waitFn, readFn func(fd uintptr) bool
	waitFirst      bool
	readDst        []byte
	readN          int
	readErr        error
	pollFD         [1]unix.PollFd
}

func newBatchConn(nc net.Conn) *batchConn {
	c := &batchConn{Conn: nc}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.rc, _ = tc.SyscallConn()
	}
	c.waitFn, c.readFn = c.waitReady, c.readFD
	return c
}

// play switches to the playing mode, batched every interval when it is
// positive and the socket takes a low-water mark.
func (c *batchConn) play(interval time.Duration) {
	c.playing = true
	if c.rc == nil {
		return
	}
	if interval > 0 && c.setLowat(readSize) == nil {
		c.interval = interval
	}
}

// nextTick is the next multiple of the interval after now (every camera
// wakes at the same instants), or zero when not batched.
func (c *batchConn) nextTick(now time.Time) time.Time {
	if c.interval <= 0 {
		return time.Time{}
	}
	return now.Truncate(c.interval).Add(c.interval)
}

// wait sleeps until data is queued (the low-water mark, when batched),
// until wake, or until the session is stopped.
func (c *batchConn) wait(s *Session, wake time.Time) error {
	if c.rc == nil {
		return s.setReadDeadline(wake)
	}
	if err := s.setReadDeadline(wake); err != nil {
		return err
	}
	c.waitFirst = true
	err := c.rc.Read(c.waitFn)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.drained = false
	// An expired deadline would fail the reads that follow.
	return s.setReadDeadline(time.Time{})
}

// Read reads as any connection does until playing; then it reads what is
// queued without waiting, and says errDrained when nothing is.
func (c *batchConn) Read(p []byte) (int, error) {
	if !c.playing {
		return c.Conn.Read(p)
	}
	if c.rc == nil {
		n, err := c.Conn.Read(p)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return n, errDrained
		}
		return n, err
	}
	if c.drained || len(p) == 0 {
		return 0, errDrained
	}
	c.readDst = p
	err := c.rc.Read(c.readFn)
	n, rerr := c.readN, c.readErr
	c.readDst, c.readErr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN):
		c.drained = true
		return 0, errDrained
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	c.drained = n < len(p)
	return n, nil
}

// waitReady is wait's callback for rc.Read.
func (c *batchConn) waitReady(fd uintptr) bool {
	if !c.waitFirst {
		return true // woken by the poller: readable
	}
	// Before parking, ask whether the socket is readable already: reading
	// the descriptor resets the poller's record of a readiness edge, and
	// with edge-triggered polling an end of stream or the mark reached
	// just before would never be seen. poll(2), unlike a read, applies
	// the low-water mark.
	c.waitFirst = false
	c.pollFD[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}
	for {
		n, err := unix.Poll(c.pollFD[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// On a poll error, read: the read says what is wrong.
		return err != nil || n > 0
	}
}

// readFD is Read's callback for rc.Read: one non-blocking read.
func (c *batchConn) readFD(fd uintptr) bool {
	for {
		c.readN, c.readErr = syscall.Read(int(fd), c.readDst)
		if c.readErr != syscall.EINTR {
			return true
		}
	}
}

func (c *batchConn) setLowat(n int) error {
	var serr error
	err := c.rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	})
	if err != nil {
		return err
	}
	return serr
}
