package relay

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
)

// The interleaved channels of the relay's wire buffers: the video's RTP on
// 0 and the audio's on 2, which is what readers ask for almost always. A
// reader that set up other channels, or not every track, gets a copy with
// its own (see session.payload).
const (
	videoChannel = 0
	audioChannel = 2
)

// wire is what the Feed's goroutine sends readers in one go: the RTP
// packets of the frames and audio of one batch, each already framed as an
// interleaved TCP frame. It is built once and shared by every reader; the
// last reader to write it returns it to the pool.
type wire struct {
	buf  []byte
	pkts int
	// startOff is the offset of the first packet of the first start point
	// (keyframe or recovery point) in buf, -1 without one: a reader starts
	// there.
	startOff int
	// The last video and audio packets' timestamps and the wall-clock times
	// they stand for on the stream's timeline, for sender reports.
	vTS, aTS   uint32
	vAt, aAt   time.Time
	vSet, aSet bool
	refs       atomic.Int32
}

// maxPooledWire keeps one huge keyframe from pinning memory in the pool.
const maxPooledWire = 1 << 20

var wirePool = sync.Pool{New: func() any { return new(wire) }}

func newWire() *wire {
	w := wirePool.Get().(*wire)
	w.buf, w.pkts, w.startOff = w.buf[:0], 0, -1
	w.vSet, w.aSet = false, false
	w.refs.Store(1)
	return w
}

// release drops one reference; the last returns w to the pool.
func (w *wire) release() {
	if w.refs.Add(-1) == 0 && cap(w.buf) <= maxPooledWire {
		wirePool.Put(w)
	}
}

// outStream is one description of a camera's stream, served by camd's own
// RTSP sessions: its SDP, its RTP identities, and the sessions playing it.
// The Feed's goroutine broadcasts to it; sessions come and go on their
// connections' goroutines.
type outStream struct {
	feed      *Feed
	ssrcVideo uint32
	ssrcAudio uint32

	mu       sync.Mutex
	desc     *description.Session
	sessions map[*session]struct{}
	closed   bool
	// The latest RTP-to-wall-clock mapping of each track, for sender
	// reports: any pair serves, since the relay's timelines keep real
	// time, and every session reports every track from its first report.
	vTS, aTS   uint32
	vAt, aAt   time.Time
	vSet, aSet bool

	bytes   atomic.Uint64
	packets atomic.Uint64
}

func newOutStream(f *Feed, desc *description.Session) *outStream {
	var b [8]byte
	_, _ = rand.Read(b[:])
	st := &outStream{feed: f, desc: desc, sessions: map[*session]struct{}{},
		ssrcVideo: binary.BigEndian.Uint32(b[:4]), ssrcAudio: binary.BigEndian.Uint32(b[4:])}
	for i, m := range desc.Medias {
		m.Control = "trackID=" + strconv.Itoa(i)
	}
	return st
}

// sdp returns the description for DESCRIBE.
func (st *outStream) sdp() ([]byte, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.desc.Marshal()
}

// medias returns how many tracks the stream has.
func (st *outStream) medias() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.desc.Medias)
}

// reload runs fn, which changes the description's formats in place (new
// parameter sets before the first frame), under the lock DESCRIBE takes.
func (st *outStream) reload(fn func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	fn()
}

// add starts s on the stream; false if the stream has ended.
func (st *outStream) add(s *session) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	st.sessions[s] = struct{}{}
	return true
}

func (st *outStream) remove(s *session) {
	st.mu.Lock()
	delete(st.sessions, s)
	st.mu.Unlock()
}

// broadcast queues w for every playing session. It never blocks: a session
// whose queue is full is dropped.
func (st *outStream) broadcast(w *wire) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if w.vSet {
		st.vTS, st.vAt, st.vSet = w.vTS, w.vAt, true
	}
	if w.aSet {
		st.aTS, st.aAt, st.aSet = w.aTS, w.aAt, true
	}
	for s := range st.sessions {
		s.enqueue(w)
	}
}

// close ends the stream: every session's connection is closed, so that
// readers get an end of stream.
func (st *outStream) close() {
	st.mu.Lock()
	st.closed = true
	sessions := st.sessions
	st.sessions = map[*session]struct{}{}
	st.mu.Unlock()
	for s := range sessions {
		s.c.close()
	}
}
