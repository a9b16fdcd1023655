package relay

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/camd/camd/stream"
)

// maxQueuedFrames bounds the access units waiting for a Feed's goroutine
// (about 2.5 s at 25 fps). When it is reached the camera's frames are
// dropped, never waited for, and the relay resumes at the next start point.
const maxQueuedFrames = 64

// videoClockRate is the RTP clock rate of every video format the relay
// serves.
const videoClockRate = 90000

// payloadType is the dynamic RTP payload type of the relayed track.
const payloadType = 96

// maxJump is how far, in clock ticks, a camera's PTS may jump within one
// connection before the relay treats it as a new timeline (a camera whose
// clock was reset). It is generous because B-frames reorder PTS.
const maxJump = 10 * videoClockRate

// Feed receives one camera's video and serves it to the relay's readers. It
// implements device.Tap: Info, Frame and Disconnected never block (they
// queue for the Feed's own goroutine, which owns all relaying state), and
// Close ends the camera's readers and waits for that goroutine.
type Feed struct {
	s    *Server
	name string
	log  *slog.Logger

	// Queue from the camera's goroutine to run, guarded by qmu.
	qmu     sync.Mutex
	queue   []event
	queued  int  // frames in queue
	gap     bool // a frame was dropped since the last one queued
	aqueued int  // audio packets in queue
	stopped bool
	wake    chan struct{} // capacity 1

	// Where readers may start, tracked on the camera's side (Info, Frame
	// and Disconnected) because while nobody reads run sees only the
	// frames it may start at; guarded by qmu.
	codec        string    // of the camera's track
	startRef     time.Time // last start point, else first frame of the connection
	noStart      bool      // none for StartPointTimeout: any frame starts a reader
	noStartSince time.Time // startRef when noStart was set
	noStartSaid  bool      // noStart was logged on this connection

	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	endReason string // why the Feed ended; written before quit is closed

	// What run publishes to request handlers and Stats, guarded by pmu.
	pmu         sync.Mutex
	cur         *outStream              // nil while there is no stream
	curTun      *gortsplib.ServerStream // its tunnelled twin (nil unless AllowTunnel)
	ready       chan struct{}           // closed once cur is set
	pastBytes   uint64                  // sent on streams already closed
	pastPackets uint64

	readers    atomic.Int64
	tunReaders atomic.Int64 // of readers, those on the tunnel server
	// batched is set while the camera's connection says when a batch of
	// frames ends (BatchEnd): then run is woken once per batch, not per
	// frame, and all of a batch goes to readers in one write.
	batched      atomic.Bool
	readersTotal atomic.Uint64
	dropped      atomic.Uint64
	streamOpen   atomic.Bool // run has a stream open
	holding      atomic.Bool // run holds frames back until a start point

	// runMu is held by whoever relays the queue: the Feed's goroutine, or
	// the camera's in BatchEnd. It guards what follows.
	runMu      sync.Mutex
	ended      bool
	spareQueue []event
	out        output
	aud        audioOut
	// w is the wire buffer being filled during one run of the queue
	// (nil when nothing was sent yet), guarded by runMu.
	w      *wire
	tunPkt rtp.Packet
}

type eventKind uint8

const (
	evInfo eventKind = iota
	evFrame
	evDisconnected
	evNoStartPoint // the stream has had no start point for StartPointTimeout
	evAudio
)

type event struct {
	kind  eventKind
	info  stream.Info
	frame queuedFrame
	audio *audioPacket
}

// queuedFrame is a copy of a stream.Frame, whose AU is only valid during
// the callback.
type queuedFrame struct {
	time      time.Time
	pts       int64
	clockRate int
	start     bool // a reader may start at this frame (see Feed.track)
	gap       bool // frames were dropped just before this one
	buf       *frameBuf
}

// frameBuf holds a copied access unit. Buffers are recycled.
type frameBuf struct {
	data []byte
	au   [][]byte
}

// maxPooledBuf keeps one huge keyframe from pinning memory in the pool.
const maxPooledBuf = 1 << 20

var bufPool = sync.Pool{New: func() any { return new(frameBuf) }}

// copyAU copies the non-empty NAL units of au into a pooled buffer.
func copyAU(au [][]byte) *frameBuf {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	b := bufPool.Get().(*frameBuf)
	if cap(b.data) < n {
		b.data = make([]byte, 0, n)
	}
	b.data, b.au = b.data[:0], b.au[:0]
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		start := len(b.data)
		b.data = append(b.data, nalu...) // within capacity: no reallocation
		b.au = append(b.au, b.data[start:len(b.data):len(b.data)])
	}
	return b
}

func releaseBuf(b *frameBuf) {
	if b == nil || cap(b.data) > maxPooledBuf {
		return
	}
	clear(b.au)
	bufPool.Put(b)
}

func newFeed(s *Server, name string) *Feed {
	f := &Feed{
		s:     s,
		name:  name,
		log:   s.log.With("camera", name),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		ready: make(chan struct{}),
	}
	f.out.needKey = true
	f.out.delta = videoClockRate / 25
	f.aud.track = -1
	go f.run()
	return f
}

// Info implements device.Tap: the camera's video track was set up (or what
// Info reports changed).
func (f *Feed) Info(i stream.Info) {
	f.qmu.Lock()
	f.codec = i.Codec
	f.qmu.Unlock()
	f.push(event{kind: evInfo, info: i})
}

// Frame implements device.Tap. It copies the access unit and returns at
// once; if the Feed's goroutine has fallen maxQueuedFrames behind, the frame
// is dropped and the relay resumes at the next start point. While nobody
// reads the camera only start points are copied (the relay needs them to
// notice new parameters and to keep its timeline); the first reader starts
// at the next one.
func (f *Feed) Frame(fr stream.Frame) {
	f.qmu.Lock()
	if f.stopped {
		f.qmu.Unlock()
		return
	}
	start, anyway := f.track(&fr)
	if !start && f.readers.Load() == 0 && (!anyway || f.streamOpen.Load()) {
		// Nothing to relay, and nothing for run to do but note that the
		// next reader must start at a start point, which a gap says:
		// waking run for it would double the wake-ups of ingest.
		f.gap = true
		f.qmu.Unlock()
		return
	}
	f.qmu.Unlock()
	buf := copyAU(fr.AU)
	f.qmu.Lock()
	if f.stopped || f.queued >= maxQueuedFrames {
		f.gap = f.gap || !f.stopped
		f.qmu.Unlock()
		releaseBuf(buf)
		return
	}
	f.queue = append(f.queue, event{kind: evFrame, frame: queuedFrame{
		time:      fr.Time,
		pts:       fr.PTS,
		clockRate: fr.ClockRate,
		start:     start || anyway,
		gap:       f.gap,
		buf:       buf,
	}})
	f.gap = false
	f.queued++
	f.qmu.Unlock()
	if !f.batched.Load() {
		f.signal()
	}
}

// BatchEnd implements device.BatchTap: the frames of one read of the
// camera's connection were handed over. They are relayed at once, on the
// camera's goroutine: packetizing and queueing for readers never block,
// and that spares a goroutine wake-up per batch.
func (f *Feed) BatchEnd() {
	f.batched.Store(true)
	f.runMu.Lock()
	if !f.ended {
		f.drain()
	}
	f.runMu.Unlock()
}

// Disconnected implements device.Tap: the camera's connection ended. Readers
// stay connected; the next connection resumes their stream at a start point.
func (f *Feed) Disconnected() {
	f.batched.Store(false)
	f.qmu.Lock()
	// The next connection is given StartPointTimeout of its own, unless
	// this one already showed that the camera sends no start points.
	f.startRef = time.Time{}
	f.noStartSaid = false
	f.qmu.Unlock()
	f.push(event{kind: evDisconnected})
}

// track is called with qmu held for every frame of the camera. It reports
// whether a reader may start at fr: start for a keyframe or a recovery
// point, anyway for any frame of a stream that has had neither for
// StartPointTimeout (an intra-refresh stream that marks none: a frame
// after a whole refresh period is as good a start as any).
func (f *Feed) track(fr *stream.Frame) (start, anyway bool) {
	if f.startRef.IsZero() {
		f.startRef = fr.Time
	}
	if fr.Key || recoveryPoint(f.codec, fr.AU) {
		f.startRef = fr.Time
		f.noStart = false
		return true, false
	}
	if !f.noStart && fr.Time.Sub(f.startRef) >= f.s.cfg.StartPointTimeout {
		f.noStart = true
		f.noStartSince = f.startRef
		// Once per connection: a camera whose start points are further
		// apart than the timeout would otherwise log one line each.
		if !f.noStartSaid {
			f.noStartSaid = true
			f.queue = append(f.queue, event{kind: evNoStartPoint, frame: queuedFrame{time: f.startRef}})
			f.signal()
		}
	}
	return false, f.noStart
}

// Close ends the Feed as End does, for a camera that was removed.
func (f *Feed) Close() { f.End("camera removed") }

// End implements device.Tap: the camera was removed or updated, or camd is
// shutting down, as reason says. Its readers get an end of stream, new
// readers get 404, and End returns once the Feed's goroutine has ended. It is
// safe to call more than once; the first reason is the one logged.
func (f *Feed) End(reason string) {
	f.closeOnce.Do(func() {
		f.s.remove(f)
		f.qmu.Lock()
		f.stopped = true
		pending := f.queue
		f.queue = nil
		f.qmu.Unlock()
		for i := range pending {
			releaseBuf(pending[i].frame.buf)
			releaseAudio(pending[i].audio)
		}
		f.endReason = reason
		close(f.quit)
		<-f.done
	})
}

func (f *Feed) push(ev event) {
	f.qmu.Lock()
	if f.stopped {
		f.qmu.Unlock()
		return
	}
	f.queue = append(f.queue, ev)
	f.qmu.Unlock()
	f.signal()
}

func (f *Feed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run is the Feed's goroutine: it owns out, the ServerStream and the
// encoder.
func (f *Feed) run() {
	defer close(f.done)
	for {
		select {
		case <-f.quit:
			f.runMu.Lock()
			f.ended = true
			f.closeStream(f.endReason)
			f.runMu.Unlock()
			return
		case <-f.wake:
		}
		f.runMu.Lock()
		if !f.ended {
			f.drain()
		}
		f.runMu.Unlock()
	}
}

// drain handles what is queued and sends what it packetized; runMu held.
func (f *Feed) drain() {
	f.qmu.Lock()
	batch := f.queue
	f.queue, f.spareQueue = f.spareQueue[:0], nil
	f.queued, f.aqueued = 0, 0
	f.qmu.Unlock()
	for i := range batch {
		ev := &batch[i]
		switch ev.kind {
		case evInfo:
			f.handleInfo(ev.info)
		case evFrame:
			f.handleFrame(&ev.frame)
			releaseBuf(ev.frame.buf)
		case evDisconnected:
			f.out.needKey = true
			f.out.newConn = true
			f.audioNewConn()
		case evNoStartPoint:
			f.log.Warn("relay: camera sends no keyframe or recovery point; readers start at any frame",
				"since", ev.frame.time, "after", f.s.cfg.StartPointTimeout)
		case evAudio:
			f.handleAudio(ev.audio)
			releaseAudio(ev.audio)
		}
		*ev = event{}
	}
	f.spareQueue = batch[:0]
	f.flush()
}

// batchWire is the wire buffer this run of the queue writes into.
func (f *Feed) batchWire() *wire {
	if f.w == nil {
		f.w = newWire()
	}
	return f.w
}

// flush sends what this run of the queue packetized: to camd's own
// sessions in one go, and packet by packet to tunnelled readers.
func (f *Feed) flush() {
	w := f.w
	if w == nil {
		return
	}
	f.w = nil
	defer w.release()
	o := &f.out
	if o.st == nil || w.pkts == 0 {
		return
	}
	o.st.broadcast(w)
	if o.tun != nil && f.tunReaders.Load() > 0 {
		f.writeTunnel(w)
	}
}

// writeTunnel writes w's packets to the tunnelled readers' stream.
func (f *Feed) writeTunnel(w *wire) {
	o := &f.out
	eachPacket(w.buf, func(off, n int) {
		k, at := 0, w.vAt
		if w.buf[off+1] == audioChannel {
			k, at = 1, w.aAt
		}
		if k >= len(o.tunMedias) || f.tunPkt.Unmarshal(w.buf[off+4:off+4+n]) != nil {
			return
		}
		if err := o.tun.WritePacketRTPWithNTP(o.tunMedias[k], &f.tunPkt, at); err != nil {
			f.log.Debug("relay: tunnel write failed", "err", err)
		}
	})
	f.tunPkt.Payload = nil
}

// waitStream returns the camera's stream, waiting up to d for it to start;
// nil if it did not (or the Feed or server closed meanwhile).
func (f *Feed) waitStream(d time.Duration, serverDone <-chan struct{}) *outStream {
	if !f.wait(d, serverDone) {
		return nil
	}
	f.pmu.Lock()
	defer f.pmu.Unlock()
	return f.cur
}

// waitTunnel is waitStream for the tunnel server's readers.
func (f *Feed) waitTunnel(d time.Duration, serverDone <-chan struct{}) *gortsplib.ServerStream {
	if !f.wait(d, serverDone) {
		return nil
	}
	f.pmu.Lock()
	defer f.pmu.Unlock()
	return f.curTun
}

// wait waits up to d for the camera's stream; false if it did not start
// (or the Feed or server closed meanwhile).
func (f *Feed) wait(d time.Duration, serverDone <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		f.pmu.Lock()
		st, ready := f.cur, f.ready
		f.pmu.Unlock()
		if st != nil {
			return true
		}
		select {
		case <-ready:
		case <-t.C:
			return false
		case <-f.quit:
			return false
		case <-serverDone:
			return false
		}
	}
}

// droppedOnce counts s as dropped the first time; it reports whether this
// was it.
func (f *Feed) droppedOnce(s *session) bool {
	if !s.dropped.CompareAndSwap(false, true) {
		return false
	}
	f.dropped.Add(1)
	return true
}

func (f *Feed) stats() Stats {
	f.qmu.Lock()
	noStart, since := f.noStart, f.noStartSince
	f.qmu.Unlock()
	f.pmu.Lock()
	b, p := f.pastBytes, f.pastPackets
	if f.cur != nil {
		b += f.cur.bytes.Load()
		p += f.cur.packets.Load()
	}
	if f.curTun != nil {
		st := f.curTun.Stats()
		b += st.OutboundBytes
		p += st.OutboundRTPPackets
	}
	f.pmu.Unlock()
	st := Stats{
		Readers:        int(f.readers.Load()),
		ReadersTotal:   f.readersTotal.Load(),
		BytesSent:      b,
		PacketsSent:    p,
		ReadersDropped: f.dropped.Load(),
	}
	st.WaitingForStartPoint = st.Readers > 0 && f.holding.Load()
	if noStart {
		st.NoStartPointSince = &since
	}
	return st
}

// output is the relaying state, owned by the Feed's goroutine.
type output struct {
	// The camera side.
	codec      string // of the current connection; "" if unsupported
	width      int
	height     int
	vps        []byte // parameter sets last seen (SDP or in band)
	sps        []byte
	pps        []byte
	needKey    bool // drop frames until a start point
	newConn    bool // the next frame sent starts a new camera timeline
	lastPTS    int64
	warnedCode string

	// The relay side.
	st        *outStream
	media     *description.Media
	tun       *gortsplib.ServerStream // nil unless the relay serves tunnels
	tunMedias []*description.Media
	pack      packetizer // H.264 and H.265
	enc       encoder    // MJPEG
	stCodec   string
	stW       int
	stH       int
	stVPS     []byte
	stSPS     []byte
	stPPS     []byte
	started   bool // a frame was sent on st
	// anchorAt is when the stream's first frame (relay timestamp 0) came:
	// the wall-clock origin of its timeline.
	anchorAt time.Time
	offset   int64     // relay timestamp = camera PTS + offset
	lastOut  int64     // highest relay timestamp sent (not wrapped)
	lastAt   time.Time // arrival of the last frame sent
	delta    int64     // frame interval estimate, for joining a new timeline
}

func (f *Feed) handleInfo(i stream.Info) {
	o := &f.out
	o.codec = ""
	var vps, sps, pps []byte
	switch fm := i.Format.(type) {
	case *format.H264:
		o.codec = stream.CodecH264
		sps, pps = fm.SPS, fm.PPS
	case *format.H265:
		o.codec = stream.CodecH265
		vps, sps, pps = fm.VPS, fm.SPS, fm.PPS
	case *format.MJPEG:
		o.codec = stream.CodecMJPEG
	default:
		if i.Codec != o.warnedCode {
			o.warnedCode = i.Codec
			f.log.Warn("relay: codec not supported; camera not relayed", "codec", i.Codec)
		}
	}
	o.width, o.height = i.Width, i.Height
	f.audioInfo(i)
	if o.st != nil {
		switch {
		case o.codec != o.stCodec:
			f.closeStream("codec changed")
		case o.width != 0 && o.stW == 0:
			// The size is learnt from the first in-band SPS.
			o.stW, o.stH = o.width, o.height
		case o.width != 0 && (o.width != o.stW || o.height != o.stH):
			f.closeStream("resolution changed")
		}
	}
	// The SDP's parameter sets; in-band ones found later take precedence.
	// Those of a stream just closed describe another picture.
	switch {
	case len(sps) > 0:
		o.vps, o.sps, o.pps = vps, sps, pps
	case o.st == nil:
		o.vps, o.sps, o.pps = nil, nil, nil
	}
	// Readers are answered as soon as the parameters are known; they get
	// frames from the next start point on.
	f.open()
}

// open starts the stream if it is not open and the parameters are known.
func (f *Feed) open() {
	o := &f.out
	if o.st != nil || o.codec == "" {
		return
	}
	switch o.codec {
	case stream.CodecH264:
		if o.sps == nil || o.pps == nil {
			return
		}
	case stream.CodecH265:
		if o.vps == nil || o.sps == nil || o.pps == nil {
			return
		}
	}
	if err := f.openStream(); err != nil {
		f.log.Error("relay: cannot serve camera", "err", err)
	}
}

func (f *Feed) handleFrame(fr *queuedFrame) {
	o := &f.out
	if o.codec == "" {
		return
	}
	if fr.gap {
		o.needKey = true
	}
	if o.needKey && !fr.start {
		f.holding.Store(true)
		return
	}
	au := fr.buf.au
	if len(au) == 0 {
		return
	}
	if fr.start && o.codec != stream.CodecMJPEG {
		au = f.keyParams(au)
		if o.st != nil && (!bytes.Equal(o.sps, o.stSPS) || !bytes.Equal(o.pps, o.stPPS) || !bytes.Equal(o.vps, o.stVPS)) {
			if o.started {
				f.closeStream("parameter sets changed")
			} else {
				// Nothing was sent yet with those of the SDP: whoever
				// read them gets these in band before the first picture.
				f.reloadParams()
			}
		}
	}
	if o.st == nil {
		if !fr.start {
			return
		}
		if f.open(); o.st == nil {
			return
		}
	}

	pts := fr.pts
	if fr.clockRate > 0 && fr.clockRate != videoClockRate {
		pts = pts * videoClockRate / int64(fr.clockRate)
	}
	switch {
	case !o.started:
		o.offset = -pts
		o.lastOut = 0
		o.started = true
		o.anchorAt = fr.time
	case o.newConn:
		o.offset = o.join(pts, fr.time)
	default:
		if d := pts - o.lastPTS; d > 0 && d < videoClockRate {
			o.delta = d
		}
		if out := pts + o.offset; out > o.lastOut+maxJump || out < o.lastOut-maxJump {
			o.offset = o.join(pts, fr.time)
		}
	}
	o.newConn = false
	o.lastPTS = pts
	o.lastAt = fr.time
	out := pts + o.offset
	if out > o.lastOut {
		o.lastOut = out
	}
	f.noteVideoSent(out, fr.time)

	if f.readers.Load() == 0 {
		// Nobody to send to: spare the packetizing.
		o.needKey = true
		f.holding.Store(false)
		return
	}
	f.holding.Store(false)
	w := f.batchWire()
	start := len(w.buf)
	ts := uint32(out)
	var n int
	var err error
	if o.codec == stream.CodecMJPEG {
		w.buf, n, err = f.encodeMJPEG(w.buf, au, ts)
	} else {
		w.buf, n, err = o.pack.appendAU(w.buf, videoChannel, au, ts)
	}
	if err != nil {
		// A frame the camera sent but that cannot be packetized again:
		// skip to the next keyframe rather than send a broken picture.
		w.buf = w.buf[:start]
		f.log.Debug("relay: frame dropped", "err", err)
		o.needKey = true
		return
	}
	o.needKey = false
	if fr.start && w.startOff < 0 {
		w.startOff = start
	}
	w.pkts += n
	// The sender reports map RTP time to wall-clock time through the
	// stream's timeline (which keeps real time, see join), not through
	// each frame's arrival, which batching makes jitter by up to a
	// batch: a reader that syncs on reports would see time step back.
	w.vTS, w.vAt, w.vSet = ts, o.anchorAt.Add(ticks(out, videoClockRate)), true
}

// encodeMJPEG appends the RTP packets of an MJPEG frame to dst.
func (f *Feed) encodeMJPEG(dst []byte, au [][]byte, ts uint32) ([]byte, int, error) {
	o := &f.out
	pkts, err := o.enc.encode(au)
	if err != nil {
		return dst, 0, err
	}
	for _, pkt := range pkts {
		pkt.Timestamp = ts
		pkt.SSRC = o.st.ssrcVideo
		if dst, err = appendPacket(dst, videoChannel, pkt); err != nil {
			return dst, 0, err
		}
	}
	return dst, len(pkts), nil
}

// join returns the offset that puts a new camera timeline (a reconnect, or
// a camera clock that jumped) after the last frame sent by the wall-clock
// time between their arrivals, at least one frame interval: the relay's
// timeline keeps real time, so that a recording has the gap where the
// outage was and RTCP sender reports map RTP to NTP time consistently.
func (o *output) join(pts int64, t time.Time) int64 {
	step := o.delta
	if gap := t.Sub(o.lastAt); !o.lastAt.IsZero() && gap > 0 {
		step = max(step, int64(gap/time.Microsecond)*videoClockRate/1e6)
	}
	return o.lastOut + step - pts
}

// reloadParams makes the parameter sets last seen those of the stream's
// description.
func (f *Feed) reloadParams() {
	o := &f.out
	o.st.reload(func() {
		switch fm := o.media.Formats[0].(type) {
		case *format.H264:
			fm.SPS, fm.PPS = o.sps, o.pps
		case *format.H265:
			fm.VPS, fm.SPS, fm.PPS = o.vps, o.sps, o.pps
		}
	})
	if o.tun != nil {
		o.tun.ReloadDesc()
	}
	o.stVPS, o.stSPS, o.stPPS = o.vps, o.sps, o.pps
}

// keyParams records the parameter sets carried by a start point and
// returns the access unit with the missing ones prepended, so that every
// start point a reader gets is decodable on its own.
func (f *Feed) keyParams(au [][]byte) [][]byte {
	o := &f.out
	var vps, sps, pps []byte
	for _, nalu := range au {
		if o.codec == stream.CodecH264 {
			switch h264.NALUType(nalu[0] & 0x1F) {
			case h264.NALUTypeSPS:
				sps = nalu
			case h264.NALUTypePPS:
				pps = nalu
			}
		} else {
			switch h265.NALUType((nalu[0] >> 1) & 0b111111) {
			case h265.NALUType_VPS_NUT:
				vps = nalu
			case h265.NALUType_SPS_NUT:
				sps = nalu
			case h265.NALUType_PPS_NUT:
				pps = nalu
			}
		}
	}
	// The frame's buffer is recycled: keep copies.
	if sps != nil && !bytes.Equal(sps, o.sps) {
		o.sps = bytes.Clone(sps)
	}
	if pps != nil && !bytes.Equal(pps, o.pps) {
		o.pps = bytes.Clone(pps)
	}
	if vps != nil && !bytes.Equal(vps, o.vps) {
		o.vps = bytes.Clone(vps)
	}
	var pre [][]byte
	if vps == nil && o.vps != nil && o.codec == stream.CodecH265 {
		pre = append(pre, o.vps)
	}
	if sps == nil && o.sps != nil {
		pre = append(pre, o.sps)
	}
	if pps == nil && o.pps != nil {
		pre = append(pre, o.pps)
	}
	if pre == nil {
		return au
	}
	return append(pre, au...)
}

// openStream starts serving the current parameters to readers.
func (f *Feed) openStream() error {
	o := &f.out
	var forma format.Format
	var enc encoder
	switch o.codec {
	case stream.CodecH264:
		forma = &format.H264{PayloadTyp: payloadType, SPS: o.sps, PPS: o.pps, PacketizationMode: 1}
	case stream.CodecH265:
		forma = &format.H265{PayloadTyp: payloadType, VPS: o.vps, SPS: o.sps, PPS: o.pps}
	case stream.CodecMJPEG:
		fm := &format.MJPEG{}
		e, err := fm.CreateEncoder()
		if err != nil {
			return fmt.Errorf("create MJPEG encoder: %w", err)
		}
		forma, enc = fm, mjpegEncoder{e}
	default:
		return fmt.Errorf("codec %q not supported", o.codec)
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	audio := f.audioMedias()
	st := newOutStream(f, &description.Session{Title: f.name, Medias: append([]*description.Media{media}, audio...)})
	var tun *gortsplib.ServerStream
	var tunMedias []*description.Media
	if f.s.rtsp != nil {
		// The same formats, in media of its own: the tunnel server's.
		tunMedias = []*description.Media{{Type: media.Type, Formats: media.Formats}}
		for _, m := range audio {
			tunMedias = append(tunMedias, &description.Media{Type: m.Type, Formats: m.Formats})
		}
		tun = &gortsplib.ServerStream{Server: f.s.rtsp, Desc: &description.Session{Title: f.name, Medias: tunMedias}}
		if err := tun.Initialize(); err != nil {
			return fmt.Errorf("start stream: %w", err)
		}
	}
	o.st, o.media, o.enc, o.tun, o.tunMedias = st, media, enc, tun, tunMedias
	o.pack = packetizer{codec: o.codec, pt: payloadType, ssrc: st.ssrcVideo, seq: uint16(st.ssrcAudio)}
	o.stCodec, o.stW, o.stH = o.codec, o.width, o.height
	o.stVPS, o.stSPS, o.stPPS = o.vps, o.sps, o.pps
	o.started = false
	f.streamOpen.Store(true)
	f.pmu.Lock()
	f.cur, f.curTun = st, tun
	close(f.ready)
	f.pmu.Unlock()
	f.log.Info("relay: stream started", "codec", o.codec, "width", o.width, "height", o.height)
	return nil
}

// closeStream ends the current stream, if any: its readers get an end of
// stream.
func (f *Feed) closeStream(reason string) {
	o := &f.out
	st, tun := o.st, o.tun
	if st == nil {
		return
	}
	if f.w != nil {
		f.flush() // what this run packetized for the old stream
	}
	o.st, o.media, o.enc, o.tun, o.tunMedias = nil, nil, nil, nil, nil
	o.needKey = true
	f.streamOpen.Store(false)
	f.holding.Store(false)
	f.audioStreamClosed()
	f.pmu.Lock()
	f.cur, f.curTun = nil, nil
	f.ready = make(chan struct{})
	f.pastBytes += st.bytes.Load()
	f.pastPackets += st.packets.Load()
	if tun != nil {
		stats := tun.Stats()
		f.pastBytes += stats.OutboundBytes
		f.pastPackets += stats.OutboundRTPPackets
	}
	f.pmu.Unlock()
	st.close()
	if tun != nil {
		tun.Close()
	}
	f.log.Info("relay: stream ended", "reason", reason)
}

// encoder packetizes one access unit.
type encoder interface {
	encode(au [][]byte) ([]*rtp.Packet, error)
}

// errEncodePanic reports input that made a packetizer panic (mediacommon's
// encoders panic on malformed data).
var errEncodePanic = errors.New("packetizer rejected the frame")

func safeEncode(fn func() ([]*rtp.Packet, error)) (pkts []*rtp.Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkts, err = nil, fmt.Errorf("%w: %v", errEncodePanic, r)
		}
	}()
	return fn()
}

type mjpegEncoder struct{ e *rtpmjpeg.Encoder }

func (e mjpegEncoder) encode(au [][]byte) ([]*rtp.Packet, error) {
	return safeEncode(func() ([]*rtp.Packet, error) { return e.e.Encode(au[0]) })
}

// ticks is n ticks of a clock of rate per second as a duration, without
// overflowing for any timeline camd keeps.
func ticks(n, rate int64) time.Duration {
	return time.Duration(n/rate)*time.Second + time.Duration(n%rate)*time.Second/time.Duration(rate)
}
