package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// floorBufs are the read buffers: a connection holds one only while it
// reads, as in camd.
var floorBufs = sync.Pool{New: func() any { b := make([]byte, floorLowat); return &b }}

// drainBatched reads the connection in batches until it fails: whatever
// is queued without waiting, then sleep until the next tick of the shared
// clock or until the low-water mark makes the socket readable.
func (s *floorSession) drainBatched(interval time.Duration) error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, floorLowat)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_RCVLOWAT: %w", serr)
	}
	var (
		dst   []byte
		n     int
		rerr  error
		first bool
		pfd   [1]unix.PollFd
	)
	// Bound once: a closure per call would allocate per read.
	readFn := func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), dst)
			if rerr != unix.EINTR {
				return true
			}
		}
	}
	// The first call asks poll(2), which applies the low-water mark,
	// whether the socket is readable already; returning false parks the
	// goroutine in the network poller until it is, or until the deadline.
	waitFn := func(fd uintptr) bool {
		if !first {
			return true
		}
		first = false
		pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}
		for {
			k, err := unix.Poll(pfd[:], 0)
			if err == unix.EINTR {
				continue
			}
			return err != nil || k > 0
		}
	}
	nextKeepalive := time.Now().Add(floorKeepalive)
	for {
		// Take everything queued.
		bp := floorBufs.Get().(*[]byte)
		for {
			dst = *bp
			if err := rc.Read(readFn); err != nil {
				floorBufs.Put(bp)
				return err
			}
			if rerr == unix.EAGAIN {
				break
			}
			if rerr != nil {
				floorBufs.Put(bp)
				return rerr
			}
			if n == 0 {
				floorBufs.Put(bp)
				return io.EOF
			}
			s.reads.Add(1)
			s.bytes.Add(uint64(n))
			if n < len(dst) {
				break
			}
		}
		floorBufs.Put(bp)
		dst = nil

		now := time.Now()
		if now.After(nextKeepalive) {
			nextKeepalive = now.Add(floorKeepalive)
			if err := s.request("OPTIONS", s.url, s.sessionHeader()); err != nil {
				return err
			}
		}
		if err := s.conn.SetReadDeadline(now.Truncate(interval).Add(interval)); err != nil {
			return err
		}
		first = true
		if err := rc.Read(waitFn); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		s.wakes.Add(1)
		if err := s.conn.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
	}
}
