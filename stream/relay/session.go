package relay

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// senderReportEvery is how often a session sends each track's RTCP sender
// report, which lets readers map RTP timestamps to wall-clock time.
const senderReportEvery = 5 * time.Second

// track is how one track of the stream reaches a session's reader.
type track struct {
	setup bool
	// Over TCP: the interleaved channels of RTP and RTCP.
	rtpCh, rtcpCh byte
	// Over UDP: where the reader receives RTP and RTCP.
	rtpAddr, rtcpAddr *net.UDPAddr

	packets, octets uint32 // sent, for sender reports
}

// session is one reader of one camera, on one of camd's own RTSP
// connections. The connection's goroutine sets it up; once playing, the
// Feed's goroutine queues wire buffers for it (enqueue) and its own writer
// goroutine writes them, all that is queued in one write.
type session struct {
	id     string
	c      *rconn
	feed   *Feed
	st     *outStream
	udp    bool
	tracks [2]track // video, audio
	// fast is set when the reader's channels are the wire's and it set up
	// every track the stream has: then the wire is written as it is.
	fast bool

	// isPlaying is owned by the connection's goroutine.
	isPlaying bool
	dropped   atomic.Bool

	// rc, for a plain TCP reader, lets enqueue write a batch at once
	// without blocking (see enqueue); nil otherwise.
	rc syscall.RawConn

	mu      sync.Mutex
	writing bool // the writer or enqueue is writing (one at a time)
	queue   []queued
	spare   []queued
	qpkts   int
	started bool // a start point was queued
	ended   bool
	wake    chan struct{}
	done    chan struct{} // closed when the writer returns

	// Owned by the writer.
	scratch []byte
	bufs    net.Buffers
	lastSR  time.Time
}

// queued is a wire buffer queued for a session, from offset off; counted
// is set when its packets were counted already (the part before off went
// out at once, see writeNow).
type queued struct {
	w       *wire
	off     int
	counted bool
}

// enqueue queues w; called by the Feed's goroutine (through broadcast,
// with the stream's lock held). A reader starts at a start point; one
// whose queue would pass the relay's QueueSize is dropped.
func (s *session) enqueue(w *wire) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	off, counted := 0, false
	if !s.started {
		if w.startOff < 0 {
			s.mu.Unlock()
			return
		}
		off, s.started = w.startOff, true
	}
	if s.rc != nil && !s.writing && len(s.queue) == 0 && time.Since(s.lastSR) < senderReportEvery {
		// The common case: nothing waits and the socket has room. One
		// write now, without waking the writer; what the socket does not
		// take is queued for it.
		s.writing = true
		s.mu.Unlock()
		n := s.writeNow(w, off)
		s.mu.Lock()
		s.writing = false
		if s.ended || off+n == len(w.buf) {
			s.mu.Unlock()
			return
		}
		off += n
		counted = n > 0
	}
	if s.qpkts+w.pkts > s.feed.s.cfg.QueueSize {
		s.ended = true
		s.mu.Unlock()
		go s.c.drop(s, "write queue full", nil)
		return
	}
	w.refs.Add(1)
	s.queue = append(s.queue, queued{w, off, counted})
	s.qpkts += w.pkts
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// write is the session's writer goroutine.
func (s *session) write() {
	defer close(s.done)
	defer s.releaseQueue()
	for {
		select {
		case <-s.wake:
		case <-s.c.quit:
			return
		}
		s.mu.Lock()
		if s.ended {
			s.mu.Unlock()
			return
		}
		if s.writing || len(s.queue) == 0 {
			// enqueue is writing; it queues what it cannot write and
			// wakes the writer again.
			s.mu.Unlock()
			continue
		}
		batch := s.queue
		s.queue, s.spare = s.spare[:0], nil
		s.qpkts = 0
		s.writing = true
		s.mu.Unlock()

		err := s.send(batch)
		for i := range batch {
			batch[i].w.release()
			batch[i] = queued{}
		}
		s.mu.Lock()
		s.writing = false
		if s.spare == nil {
			s.spare = batch[:0]
		}
		more := len(s.queue) > 0
		s.mu.Unlock()
		if more {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.c.drop(s, "write timeout", err)
			} else {
				s.c.close()
			}
			return
		}
	}
}

// releaseQueue gives back what is still queued when the session ends.
func (s *session) releaseQueue() {
	s.mu.Lock()
	s.ended = true
	q := s.queue
	s.queue = nil
	s.mu.Unlock()
	for _, e := range q {
		e.w.release()
	}
}

// send writes a batch to the reader.
func (s *session) send(batch []queued) error {
	now := time.Now()
	var bytes, packets int
	for _, e := range batch {
		if !e.counted {
			packets += e.w.pkts
		}
	}
	// A sender report goes before the packets: a reader that syncs its
	// streams on reports (ffmpeg) then times every packet it gets through
	// one, rather than shifting its clock after the first ones.
	reportDue := now.Sub(s.lastSR) >= senderReportEvery
	if reportDue {
		s.lastSR = now
	}
	if s.udp {
		if reportDue {
			s.sendReportsUDP()
		}
		for _, e := range batch {
			n, err := s.sendUDP(e.w.buf[e.off:])
			bytes += n
			if err != nil {
				return err
			}
		}
		s.st.bytes.Add(uint64(bytes))
		s.st.packets.Add(uint64(packets))
		return nil
	}
	s.bufs = s.bufs[:0]
	s.scratch = s.scratch[:0]
	if reportDue {
		s.scratch = s.appendReports(s.scratch)
		s.bufs = append(s.bufs, s.scratch)
	}
	for _, e := range batch {
		b := e.w.buf[e.off:]
		switch {
		case !s.fast:
			start := len(s.scratch)
			s.scratch = s.rewrite(s.scratch, b)
			b = s.scratch[start:]
		case !e.counted:
			s.count(b)
		}
		if !e.counted {
			bytes += len(b)
		}
		s.bufs = append(s.bufs, b)
	}
	if len(s.bufs) == 0 {
		return nil
	}
	err := s.c.writeMedia(&s.bufs)
	s.st.bytes.Add(uint64(bytes))
	s.st.packets.Add(uint64(packets))
	return err
}

// count adds the packets of b, written as it is, to the tracks' counts.
func (s *session) count(b []byte) {
	eachPacket(b, func(off, n int) {
		t := &s.tracks[0]
		if b[off+1] == audioChannel {
			t = &s.tracks[1]
		}
		t.packets++
		t.octets += uint32(max(n-12, 0))
	})
}

// rewrite appends to dst the packets of b that the reader set up, on its
// channels.
func (s *session) rewrite(dst, b []byte) []byte {
	eachPacket(b, func(off, n int) {
		k := 0
		if b[off+1] == audioChannel {
			k = 1
		}
		t := &s.tracks[k]
		if !t.setup {
			return
		}
		start := len(dst)
		dst = append(dst, b[off:off+4+n]...)
		dst[start+1] = t.rtpCh
		t.packets++
		t.octets += uint32(max(n-12, 0))
	})
	return dst
}

// appendReports appends a sender report for each track set up that has
// sent a packet.
func (s *session) appendReports(dst []byte) []byte {
	st := s.st
	st.mu.Lock()
	vTS, vAt, vSet, aTS, aAt, aSet := st.vTS, st.vAt, st.vSet, st.aTS, st.aAt, st.aSet
	st.mu.Unlock()
	if t := &s.tracks[0]; t.setup && vSet {
		dst = appendSenderReport(dst, t.rtcpCh, st.ssrcVideo, vAt, vTS, t.packets, t.octets)
	}
	if t := &s.tracks[1]; t.setup && aSet {
		dst = appendSenderReport(dst, t.rtcpCh, st.ssrcAudio, aAt, aTS, t.packets, t.octets)
	}
	return dst
}

// sendUDP sends the packets of b to the reader's UDP ports.
func (s *session) sendUDP(b []byte) (int, error) {
	sent := 0
	var err error
	eachPacket(b, func(off, n int) {
		if err != nil {
			return
		}
		k := 0
		if b[off+1] == audioChannel {
			k = 1
		}
		t := &s.tracks[k]
		if !t.setup {
			return
		}
		t.packets++
		t.octets += uint32(max(n-12, 0))
		sent += n
		_, err = s.c.s.own.udpRTP.WriteToUDP(b[off+4:off+4+n], t.rtpAddr)
	})
	return sent, err
}

// sendReportsUDP sends the sender reports over UDP, best effort.
func (s *session) sendReportsUDP() {
	s.scratch = s.appendReports(s.scratch[:0])
	eachPacket(s.scratch, func(off, n int) {
		k := 0
		if s.scratch[off+1] == s.tracks[1].rtcpCh && s.tracks[1].setup {
			k = 1
		}
		_, _ = s.c.s.own.udpRTCP.WriteToUDP(s.scratch[off+4:off+4+n], s.tracks[k].rtcpAddr)
	})
}

// playing reports whether PLAY started the session.
func (s *session) playing() bool { return s.isPlaying }

// start begins playing: the stream queues for the session from now on.
func (s *session) start() bool {
	if !s.st.add(s) {
		return false
	}
	s.isPlaying = true
	s.feed.readers.Add(1)
	s.feed.readersTotal.Add(1)
	go s.write()
	return true
}

// stop ends the session (TEARDOWN, or its connection ended) and waits for
// its writer.
func (s *session) stop() {
	if !s.isPlaying {
		return
	}
	s.isPlaying = false
	s.st.remove(s)
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
	s.feed.readers.Add(-1)
	s.feed.log.Info("relay: reader ended", "remote", s.c.remote)
}

// writeNow writes w from off with one non-blocking write, if the
// connection is free, and returns how much the socket took. Once any of it
// went out, all of w's packets are counted here (the rest is queued as
// counted).
func (s *session) writeNow(w *wire, off int) int {
	if !s.c.wmu.TryLock() {
		return 0
	}
	defer s.c.wmu.Unlock()
	b := w.buf[off:]
	var n int
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		for {
			n, werr = writeFD(fd, b)
			if werr != syscall.EINTR {
				return true // never wait for room: the writer does that
			}
		}
	})
	if err != nil || werr != nil || n <= 0 {
		return 0
	}
	s.count(b)
	s.st.bytes.Add(uint64(len(b)))
	s.st.packets.Add(uint64(w.pkts))
	return n
}
