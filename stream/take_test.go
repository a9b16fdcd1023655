package stream

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// auDigest sums an access unit's NAL units, for comparing frames after
// their callback (AU is only valid during it).
func auDigest(au [][]byte) [32]byte {
	h := sha256.New()
	for _, n := range au {
		h.Write(n)
		h.Write([]byte{0xff, 0xfe})
	}
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

type takenFrame struct {
	pts  int64
	key  bool
	size int
	au   [32]byte
}

// Packets taken from the connection give the frames that the client's path
// gives, although the buffer they were read from is reused at once: the
// arena keeps what the depacketizer still refers to, with and without the
// marker bit, across many access units.
func TestTakeMatchesHandle(t *testing.T) {
	f, pkts := clipPackets(t)
	for _, marker := range []bool{true, false} {
		var want, got []takenFrame
		record := func(to *[]takenFrame) func(Frame) {
			return func(fr Frame) {
				*to = append(*to, takenFrame{fr.PTS, fr.Key, fr.Size, auDigest(fr.AU)})
			}
		}
		ref := newTestIngest(t, f, record(&want))
		in := newTestIngest(t, f, record(&got))
		in.ptsOf = func(p *rtp.Packet) int64 { return int64(p.Timestamp) }
		buf := make([]byte, 0, 2000)
		for round := range 4 { // past several flips of both halves
			for _, au := range pkts {
				for _, p := range au {
					q := *p
					q.Marker = q.Marker && marker
					q.Timestamp += uint32(round * len(pkts) * 3600)
					ref.handle(&q, int64(q.Timestamp), time.Now())

					b, err := q.Marshal()
					if err != nil {
						t.Fatal(err)
					}
					buf = append(buf[:0], b...)
					in.take(buf, time.Now())
					for i := range buf {
						buf[i] = 0xAA // the connection's buffer, reused
					}
				}
			}
		}
		if len(got) != len(want) || len(want) < 4*len(pkts)-1 {
			t.Fatalf("marker %v: %d frames taken, %d through handle, from %d access units", marker, len(got), len(want), 4*len(pkts))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("marker %v: frame %d differs: %+v, want %+v", marker, i, got[i], want[i])
			}
		}
		if n := in.decodeErrors.Load(); n != 0 {
			t.Errorf("marker %v: %d decode errors", marker, n)
		}
	}
}

// A camera that never completes an access unit cannot grow the arena past
// its bound: the depacketizer starts over, and frames come again once the
// camera behaves.
func TestTakeArenaBounded(t *testing.T) {
	f, pkts := clipPackets(t)
	frames := 0
	in := newTestIngest(t, f, func(Frame) { frames++ })
	// An FU-A that starts and never ends.
	start := append([]byte{0x7c, 0x85}, bytes.Repeat([]byte{1}, 60000)...)
	payload := append([]byte{0x7c, 0x05}, bytes.Repeat([]byte{1}, 60000)...)
	var seq uint16
	for i := range 400 { // 24 MB, more than twice the bound
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1}, Payload: payload}
		if i == 0 {
			p.Payload = start
		}
		seq++
		b, _ := p.Marshal()
		in.take(b, time.Now())
		for h := range in.arena.half {
			if s := in.arena.half[h].size; s > maxArena {
				t.Fatalf("after %d packets the arena holds %d bytes, bound %d", i+1, s, maxArena)
			}
		}
	}
	for _, au := range pkts {
		for _, p := range au {
			q := *p
			q.SequenceNumber = seq
			q.Timestamp += 1000
			seq++
			b, _ := q.Marshal()
			in.take(b, time.Now())
		}
	}
	if frames < len(pkts)-1 {
		t.Errorf("%d frames from the %d access units after the hostile run", frames, len(pkts))
	}
	in.arena.release()
}

// A taken packet that is not RTP of the track is a decode error, as it is
// on the client's path.
func TestTakeRejects(t *testing.T) {
	f, _ := clipPackets(t)
	in := newTestIngest(t, f, nil)
	var errs []error
	in.onDecodeError = func(err error) { errs = append(errs, err) }
	in.take([]byte{0x80}, time.Now())
	other, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 97}, Payload: []byte{0x65, 1}}).Marshal()
	in.take(other, time.Now())
	in.take(nil, time.Now())
	if len(errs) != 3 || in.decodeErrors.Load() != 3 {
		t.Fatalf("errors %v (counted %d), want 3", errs, in.decodeErrors.Load())
	}
	t.Logf("%v", errs)
}

// BenchmarkTakeH264 is BenchmarkIngestH264 for packets taken from the
// connection: RTP parsing and the copy into the arena included.
func BenchmarkTakeH264(b *testing.B) {
	f, pkts := clipPackets(b)
	m := NewMeter()
	in := newTestIngest(b, f, m.Observe)
	in.ptsOf = func(p *rtp.Packet) int64 { return int64(p.Timestamp) }
	raw := make([][][]byte, len(pkts))
	for i, au := range pkts {
		for _, p := range au {
			bb, _ := p.Marshal()
			raw[i] = append(raw[i], bb)
		}
	}
	b.ReportAllocs()
	now := time.Now()
	i := 0
	for b.Loop() {
		for _, p := range raw[i%len(raw)] {
			in.take(p, now)
		}
		i++
	}
	if got := m.Snapshot(now).Frames; got == 0 {
		b.Fatal("no frames")
	}
}
