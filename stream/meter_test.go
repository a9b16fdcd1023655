package stream

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestMeterRatesAndDecay(t *testing.T) {
	m := NewMeter()
	m.SetInfo(Info{Codec: CodecH264, Width: 640, Height: 480, Transport: "tcp"})
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

	// 10 s of 25 fps, 10 kB per frame (2 Mbit/s), a keyframe a second.
	var now time.Time
	for i := 0; i < 250; i++ {
		now = t0.Add(time.Duration(i) * 40 * time.Millisecond)
		m.Observe(Frame{Time: now, Size: 10000, Key: i%25 == 0})
	}
	s := m.Snapshot(now)
	if s.Frames != 250 || s.Keyframes != 10 || s.Bytes != 2_500_000 {
		t.Errorf("counters %+v", s)
	}
	if math.Abs(s.FPS-25) > 2 {
		t.Errorf("fps %.2f, want 25", s.FPS)
	}
	if math.Abs(s.BitrateBPS-2e6) > 0.2e6 {
		t.Errorf("bitrate %.0f, want 2e6", s.BitrateBPS)
	}
	if !s.LastFrameAt.Equal(now) || !m.LastFrame().Equal(now) {
		t.Errorf("last frame %v / %v, want %v", s.LastFrameAt, m.LastFrame(), now)
	}
	if s.Codec != CodecH264 || s.Width != 640 || s.Height != 480 || s.Transport != "tcp" {
		t.Errorf("info %+v", s)
	}

	// Frames stop: the rate falls, then reaches 0 once the window passed.
	if s := m.Snapshot(now.Add(3 * time.Second)); s.FPS <= 0 || s.FPS >= 25 {
		t.Errorf("3 s after the last frame fps = %.2f, want between 0 and 25", s.FPS)
	}
	if s := m.Snapshot(now.Add(MeterWindow + 2*time.Second)); s.FPS != 0 || s.BitrateBPS != 0 {
		t.Errorf("after the window fps = %.2f bitrate = %.0f, want 0", s.FPS, s.BitrateBPS)
	}
	// Counters are totals and do not decay.
	if s := m.Snapshot(now.Add(time.Hour)); s.Frames != 250 {
		t.Errorf("frames %d after an hour", s.Frames)
	}
}

func TestMeterStartUp(t *testing.T) {
	m := NewMeter()
	if s := m.Snapshot(time.Now()); s.FPS != 0 || !s.LastFrameAt.IsZero() || !m.LastFrame().IsZero() {
		t.Errorf("empty meter %+v", s)
	}
	// 2 s after the first frame the rate must not be diluted by the rest of
	// the window.
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 500e6, time.UTC)
	var now time.Time
	for i := 0; i < 50; i++ {
		now = t0.Add(time.Duration(i) * 40 * time.Millisecond)
		m.Observe(Frame{Time: now, Size: 1000})
	}
	if s := m.Snapshot(now); math.Abs(s.FPS-25) > 2 {
		t.Errorf("fps %.2f after 2 s, want 25", s.FPS)
	}
	m.DecodeError(nil)
	if s := m.Snapshot(now); s.DecodeErrors != 1 {
		t.Errorf("decode errors %d", s.DecodeErrors)
	}
}

func TestMeterObserveDoesNotAllocate(t *testing.T) {
	m := NewMeter()
	f := Frame{Time: time.Now(), Size: 1234, Key: true}
	if n := testing.AllocsPerRun(1000, func() {
		f.Time = f.Time.Add(40 * time.Millisecond)
		m.Observe(f)
	}); n != 0 {
		t.Errorf("Observe allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = m.LastFrame() }); n != 0 {
		t.Errorf("LastFrame allocates %.1f times", n)
	}
}

// One writer, many readers, under -race.
func TestMeterConcurrent(t *testing.T) {
	m := NewMeter()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = m.Snapshot(time.Now())
				_ = m.LastFrame()
				m.DecodeError(nil)
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < 5000; i++ {
		m.Observe(Frame{Time: t0.Add(time.Duration(i) * time.Millisecond), Size: 100})
		if i%1000 == 0 {
			m.SetInfo(Info{Codec: CodecH264})
		}
	}
	close(stop)
	wg.Wait()
	if s := m.Snapshot(time.Now()); s.Frames != 5000 {
		t.Errorf("frames %d", s.Frames)
	}
}

// TestLossIsNotUndecodable checks that a frame dropped for a packet lost on
// the way (one FU-A fragment missing, as a lossy UDP link gives) counts as
// a loss, not as undecodable video from the camera.
func TestLossIsNotUndecodable(t *testing.T) {
	var d h264Depacketizer
	var arena rtpArena
	defer arena.release()
	fu := func(seq uint16, start, end bool) *rtp.Packet {
		h := byte(5) // IDR slice
		if start {
			h |= 0x80
		}
		if end {
			h |= 0x40
		}
		p := &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: 9000, Marker: end}}
		p.Payload, _ = arena.add([]byte{0x7c, h, 1, 2, 3})
		return p
	}
	if _, err := d.decode(fu(1, true, false), &arena); err == nil {
		t.Fatal("a first fragment completed a frame")
	}
	_, err := d.decode(fu(3, false, true), &arena) // 2 is lost
	if !errors.Is(err, ErrPacketsLost) {
		t.Fatalf("a missing fragment: error %v, want one matching ErrPacketsLost", err)
	}
	m := NewMeter()
	m.DecodeError(fmt.Errorf("decode H.264 RTP packet: %w", err))
	m.DecodeError(fmt.Errorf("%w: 3 RTP packets", ErrPacketsLost))
	m.DecodeError(errors.New("invalid STAP-A packet"))
	if s := m.Snapshot(time.Now()); s.Losses != 2 || s.DecodeErrors != 1 {
		t.Fatalf("losses %d, decode errors %d; want 2 and 1", s.Losses, s.DecodeErrors)
	}
}
