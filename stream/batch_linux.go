package stream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// batchSupported is set where connections are read in batches.
const batchSupported = true

// batchBufSize is the size of one batched read, and the amount of data that
// wakes a reader before its tick (SO_RCVLOWAT). 64 KiB is half a second of
// a 1 Mbit/s camera and 25 ms of a 20 Mbit/s one.
const batchBufSize = 64 << 10

// batchBufs holds the read buffers. A connection holds one only while it
// has bytes the client has not taken yet, which is for the few
// microseconds it takes to parse them, so a handful serve every camera.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, batchHead+batchBufSize); return &b }}

// batchConn is a camera's TCP connection that, once enabled (after PLAY),
// is read in batches instead of one packet at a time.
//
// Unbatched, a camera sending 100 RTP packets a second wakes its reader
// goroutine (and, through the network poller, an OS thread) 100 times a
// second, and those wake-ups, not the parsing, were most of camd's CPU
// (bench/RESULTS.md). Batched, the kernel does not signal the socket
// readable until batchBufSize bytes are queued (SO_RCVLOWAT), and the reader
// otherwise sleeps until the next tick of a clock shared by every camera
// (multiples of interval), then takes everything queued with one read.
// Every camera wakes on the same tick, so the runtime handles them in one
// go. That matters more than it looks: with a random phase per camera, 64
// cameras cost 14.8 % of a core instead of 8.3 %, more than reading every
// packet (13.5 %).
//
// What it costs: frames reach camd, and the relay's readers, up to one
// interval later than they arrived, and a frame's Time is when its batch
// was read. End of stream and connection errors are not delayed: they wake
// the reader whatever the low-water mark.
//
// Given a timeout, it also ends a connection that brings no data for that
// long (ErrReadTimeout): once enabled, checked at the ticks it wakes on
// anyway (or at the timeout, if sooner); before, as a read deadline. That
// is the check gortsplib's client makes with a timer of its own, which
// wakes every camera's client once a second at its own phase; Read turns
// that timer off when the connection is batched (see quietClientTimers).
//
// Given a take callback, it also takes the video track's RTP packets out of
// what the client reads, from the same point on: see demux.
//
// Read is called by one goroutine (the RTSP client's reader); enable and
// Close may be called from others.
type batchConn struct {
	net.Conn
	rc       syscall.RawConn
	interval time.Duration
	on       atomic.Bool
	// plain is set when batching could not be turned on: reads then go
	// straight to the connection (owned by the reading goroutine).
	plain bool
	// takeCh is the interleaved channel whose frames go to take once
	// batching is on, -1 for none. It is set before on.
	takeCh atomic.Int32
	take   func([]byte, time.Time)
	// timeout is how long a batched connection may bring no data; 0 for
	// no limit. live, when set and positive, overrides it while the
	// connection runs (see Options.LiveReadTimeout).
	timeout time.Duration
	live    *LiveTimeout
	// clientQuiet is set (before the first Read) when the client does not
	// check for a read timeout itself: then it needs no sign that taken
	// data came (see demuxBatch).
	clientQuiet bool

	// Owned by the reading goroutine. dm sees every byte read (when take
	// is set), so that it knows where messages and frames start by the
	// time it takes frames.
	dm      demux
	started bool
	buf     *[]byte // non-nil while it holds bytes not yet taken
	r, w    int
	// drained is set when the last read left the socket empty: the next
	// one sleeps first.
	drained bool
	// readAt is when the last batch was read: the time take is given for
	// its packets (one clock read per batch rather than per packet).
	// lastData is when data last came, for timeout.
	readAt, lastData time.Time
	// reads counts the reads that returned data (for tests).
	reads int
	// taken is dm.taken, for tests on other goroutines.
	taken atomic.Uint64

	// The callbacks for rc.Read and what they pass back, bound once in
	// newBatchConn: a closure made per call would be one allocation per
	// read, and garbage is what camd's CPU goes to next.
	waitFn, readFn func(fd uintptr) bool
	takeFn         func([]byte)
	waitFirst      bool
	readDst        []byte
	readN          int
	readErr        error
	pollFD         [1]unix.PollFd
}

// batchHead is the room left before the bytes of a batched read: the demux
// can hold back one byte ('$') from the read before, and writes it before
// this read's bytes.
const batchHead = 8

// newBatchConn wraps c if it is a TCP connection and interval > 0; it
// returns nil otherwise (and c is used as it is). A Read that has had no
// data for timeout (when positive) fails with ErrReadTimeout. take, when
// not nil, gets the payload of each interleaved frame on the channel
// passed to enable, which the client then does not see, and the time its
// batch was read; it is called on the reading goroutine and the payload is
// valid only during the call.
func newBatchConn(c net.Conn, interval, timeout time.Duration, take func([]byte, time.Time)) *batchConn {
	tc, ok := c.(*net.TCPConn)
	if !ok || interval <= 0 {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batchConn{Conn: c, rc: rc, interval: interval, timeout: timeout, take: take}
	b.takeCh.Store(-1)
	b.waitFn, b.readFn, b.takeFn = b.waitReady, b.readFD, b.takeAt
	return b
}

// takeAt is the demux's callback: take, with the time of the batch.
func (c *batchConn) takeAt(b []byte) { c.take(b, c.readAt) }

// enable switches to batched reads from the next Read on, and to taking
// the frames of interleaved channel takeCh (none if negative, or without a
// take callback). Before it, reads go straight to the connection, so that
// RTSP answers are not delayed.
func (c *batchConn) enable(takeCh int) {
	if c.take != nil && takeCh >= 0 && takeCh <= 255 {
		c.takeCh.Store(int32(takeCh))
	}
	c.on.Store(true)
}

func (c *batchConn) Read(p []byte) (int, error) {
	if c.plain {
		return c.readPlain(p)
	}
	if !c.on.Load() {
		// With a timeout, the reads before batching are bounded too: the
		// client's own check is off, and the read after PLAY's answer
		// usually starts before enable.
		n, err := c.readPlain(p)
		if c.take != nil {
			c.dm.filter(p[:n], 0, -1, nil) // follows; takes nothing yet
		}
		return n, err
	}
	if !c.started {
		c.started = true
		c.lastData = time.Now()
		if c.timeout > 0 {
			// The deadline of the last plain read would cut batched
			// reads short; wait sets its own.
			if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
				return 0, err
			}
		}
		if err := c.setLowat(batchBufSize); err != nil {
			// Without the mark every packet would still wake the
			// poller; batching then saves nothing, so read as before.
			c.plain = true
			c.takeCh.Store(-1)
			return c.readPlain(p)
		}
	}
	for c.buf == nil {
		if c.drained {
			if err := c.wait(); err != nil {
				return 0, err
			}
		}
		// The buffer is taken only now, so that a sleeping camera holds
		// none.
		c.buf = batchBufs.Get().(*[]byte)
		n, err := c.readNow((*c.buf)[batchHead:])
		if n == 0 {
			c.release()
			if err != nil {
				return 0, err
			}
			if c.timeout > 0 && time.Since(c.lastData) >= c.limit() {
				return 0, c.timeoutError()
			}
			continue // nothing queued after all: sleep again
		}
		c.readAt = time.Now()
		c.lastData = c.readAt
		c.r, c.w = batchHead, batchHead+n
		if c.take != nil {
			c.demux()
			if c.r == c.w {
				c.release() // all taken: nothing for the client
			}
		}
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		c.release()
	}
	return n, nil
}

// readPlain reads as the connection would unbatched: before batching is
// enabled, and for a connection that cannot be batched after all. With a
// timeout it applies it as a read deadline.
func (c *batchConn) readPlain(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.limit())); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) && c.timeout > 0 {
		return n, c.timeoutError()
	}
	return n, err
}

// limit is the read timeout in force now.
func (c *batchConn) limit() time.Duration {
	if d := c.live.Get(); d > 0 {
		return d
	}
	return c.timeout
}

func (c *batchConn) timeoutError() error {
	return fmt.Errorf("%w: no data for %s", ErrReadTimeout, c.limit())
}

// demux runs the bytes just read through dm (see demuxBatch).
func (c *batchConn) demux() {
	c.r, c.w = 0, demuxBatch(&c.dm, *c.buf, c.r, c.w, int(c.takeCh.Load()), c.takeFn, !c.clientQuiet)
	c.taken.Store(c.dm.taken)
}

func (c *batchConn) release() {
	batchBufs.Put(c.buf)
	c.buf = nil
}

// wait sleeps until batchBufSize bytes are queued (the low-water mark
// makes the socket readable), the next tick (or the timeout, if sooner),
// or the connection's end.
func (c *batchConn) wait() error {
	wake := c.nextTick()
	if c.timeout > 0 {
		// Not later than the timeout, whatever the interval.
		if t := c.lastData.Add(c.limit()); t.Before(wake) {
			wake = t
		}
	}
	if err := c.Conn.SetReadDeadline(wake); err != nil {
		return err
	}
	c.waitFirst = true
	err := c.rc.Read(c.waitFn)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// The tick, or readable before it. Either way the deadline goes: once
	// expired it would fail every read until the next wait, and a reader
	// that takes full buffers reads without waiting.
	return c.Conn.SetReadDeadline(time.Time{})
}

// waitReady is wait's callback for rc.Read.
func (c *batchConn) waitReady(fd uintptr) bool {
	if !c.waitFirst {
		return true // woken by the poller: readable
	}
	// Before parking, ask whether the socket is readable already: reading
	// the file descriptor resets the poller's record of a readiness edge,
	// and with edge-triggered polling an end of stream or the mark reached
	// just before would never be seen. poll(2), unlike a read, applies the
	// low-water mark.
	c.waitFirst = false
	return c.ready(int(fd))
}

// ready reports whether fd is readable now by poll(2)'s rules: the
// low-water mark reached, or end of stream or an error.
func (c *batchConn) ready(fd int) bool {
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

// readNow reads what is queued into b without waiting: 0 and no error if
// nothing is, and then drained is set.
func (c *batchConn) readNow(b []byte) (int, error) {
	c.readDst = b
	err := c.rc.Read(c.readFn)
	n, rerr := c.readN, c.readErr
	c.readDst, c.readErr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN):
		c.drained = true
		return 0, nil
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return 0, io.EOF
	}
	c.drained = n < len(b)
	c.reads++
	return n, nil
}

// readFD is readNow's callback for rc.Read: one non-blocking read.
func (c *batchConn) readFD(fd uintptr) bool {
	for {
		c.readN, c.readErr = syscall.Read(int(fd), c.readDst)
		if c.readErr != syscall.EINTR {
			return true
		}
	}
}

// nextTick is the next multiple of interval: every camera's reader wakes
// at the same instants.
func (c *batchConn) nextTick() time.Time {
	return time.Now().Truncate(c.interval).Add(c.interval)
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
