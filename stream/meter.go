package stream

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// MeterWindow is the span over which Meter computes fps and bitrate.
const MeterWindow = 5 * time.Second

// meterBuckets is one bucket per second of the window plus the current,
// partly filled second.
const meterBuckets = int(MeterWindow/time.Second) + 1

// Meter keeps one camera's statistics. One goroutine (the reader) calls
// Observe; any number of goroutines may call the other methods at any time.
// A Meter outlives connections: the supervisor keeps one per camera and
// feeds every connection's frames into it.
type Meter struct {
	frames, keyframes, bytes atomic.Uint64
	decodeErrors             atomic.Uint64
	losses                   atomic.Uint64
	// lastFrame is in Unix nanoseconds, 0 before the first frame; it is an
	// atomic because stall detection reads it on every deadline check.
	lastFrame atomic.Int64

	// mu guards the window. A mutex (uncontended but for the odd Snapshot)
	// costs some tens of nanoseconds per frame and keeps the buckets
	// consistent, which lock-free per-field atomics would not.
	mu         sync.Mutex
	buckets    [meterBuckets]meterBucket
	firstFrame time.Time
	info       Info
}

type meterBucket struct {
	sec    int64 // Unix second this bucket counts, so stale ones are skipped
	frames uint64
	bytes  uint64
}

// MeterSnapshot is a consistent-enough copy of a Meter's statistics.
type MeterSnapshot struct {
	Frames, Keyframes, Bytes uint64
	// FPS and BitrateBPS (bits per second) are averaged over the last
	// MeterWindow and fall to 0 within MeterWindow after frames stop.
	FPS, BitrateBPS float64
	LastFrameAt     time.Time // zero before the first frame
	Codec           string
	Width, Height   int
	Transport       string
	DecodeErrors    uint64
	// Losses counts the frames dropped for a packet lost in transit (UDP).
	Losses uint64
	// Audio is the connection's audio tracks (Info.Audio): read only.
	Audio []AudioTrack
}

// NewMeter returns an empty Meter.
func NewMeter() *Meter { return &Meter{} }

// Observe counts one frame. It does not allocate.
func (m *Meter) Observe(f Frame) {
	m.frames.Add(1)
	if f.Key {
		m.keyframes.Add(1)
	}
	m.bytes.Add(uint64(f.Size))
	t := f.Time
	if t.IsZero() {
		t = time.Now()
	}
	m.lastFrame.Store(t.UnixNano())

	sec := t.Unix()
	m.mu.Lock()
	if m.firstFrame.IsZero() {
		m.firstFrame = t
	}
	b := &m.buckets[bucketIndex(sec)]
	if b.sec != sec {
		*b = meterBucket{sec: sec}
	}
	b.frames++
	b.bytes += uint64(f.Size)
	m.mu.Unlock()
}

func bucketIndex(sec int64) int {
	i := int(sec % int64(meterBuckets))
	if i < 0 {
		i += meterBuckets
	}
	return i
}

// DecodeError counts one packet or access unit dropped because it could
// not be decoded, or, for an error that matches ErrPacketsLost, one loss
// in transit (which says nothing against the camera). Safe from any
// goroutine; it suits Options.OnDecodeError.
func (m *Meter) DecodeError(err error) {
	if errors.Is(err, ErrPacketsLost) {
		m.losses.Add(1)
		return
	}
	m.decodeErrors.Add(1)
}

// SetInfo records the track description of the current connection.
func (m *Meter) SetInfo(i Info) {
	m.mu.Lock()
	m.info = i
	m.mu.Unlock()
}

// LastFrame returns when the last frame arrived, or the zero time.
func (m *Meter) LastFrame() time.Time {
	n := m.lastFrame.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Snapshot returns the statistics as of now.
func (m *Meter) Snapshot(now time.Time) MeterSnapshot {
	s := MeterSnapshot{
		Frames:       m.frames.Load(),
		Keyframes:    m.keyframes.Load(),
		Bytes:        m.bytes.Load(),
		LastFrameAt:  m.LastFrame(),
		DecodeErrors: m.decodeErrors.Load(),
		Losses:       m.losses.Load(),
	}

	nowSec := now.Unix()
	oldest := nowSec - int64(meterBuckets) + 1
	var frames, bytes uint64
	m.mu.Lock()
	for i := range m.buckets {
		b := &m.buckets[i]
		if b.sec >= oldest && b.sec <= nowSec {
			frames += b.frames
			bytes += b.bytes
		}
	}
	first := m.firstFrame
	s.Codec, s.Width, s.Height, s.Transport = m.info.Codec, m.info.Width, m.info.Height, m.info.Transport
	s.Audio = m.info.Audio
	m.mu.Unlock()

	// The window covers the full seconds before now's second plus the part
	// of now's second that has elapsed. A camera that started within the
	// window is averaged over the time since its first frame, with a floor
	// of one second so that two early frames do not read as 1000 fps.
	start := time.Unix(oldest, 0)
	if first.After(start) {
		start = first
	}
	span := now.Sub(start)
	if span < time.Second {
		span = time.Second
	}
	if frames > 0 {
		s.FPS = float64(frames) / span.Seconds()
		s.BitrateBPS = float64(bytes) * 8 / span.Seconds()
	}
	return s
}
