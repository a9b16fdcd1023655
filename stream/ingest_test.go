package stream

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// clipPackets returns the H.264 clip as RTP packets with timestamps 1/25 s
// apart, and the format they were made for.
func clipPackets(tb testing.TB) (*format.H264, [][]*rtp.Packet) {
	tb.Helper()
	aus := loadAnnexB(tb, clipH264, false)
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	pkts := packetize(tb, f, aus)
	var seq uint16
	for i, au := range pkts {
		for _, p := range au {
			p.SequenceNumber = seq
			p.Timestamp = uint32(i * 3600)
			seq++
		}
	}
	return f, pkts
}

func newTestIngest(tb testing.TB, forma format.Format, onFrame func(Frame)) *ingest {
	tb.Helper()
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	in, err := newIngest(medi, forma, nil, onFrame, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

func TestIngestClip(t *testing.T) {
	f, pkts := clipPackets(t)
	var frames []Frame
	in := newTestIngest(t, f, func(fr Frame) { fr.AU = nil; frames = append(frames, fr) })
	for _, au := range pkts {
		for _, p := range au {
			in.handle(p, int64(p.Timestamp), time.Now())
		}
	}
	if len(frames) != len(pkts) {
		t.Fatalf("%d frames from %d access units", len(frames), len(pkts))
	}
	keys := 0
	for i, fr := range frames {
		if fr.Key {
			keys++
		}
		if fr.PTS != int64(i*3600) {
			t.Fatalf("frame %d PTS %d, want %d", i, fr.PTS, i*3600)
		}
	}
	if keys != 2 || !frames[0].Key || !frames[25].Key {
		t.Errorf("%d keyframes, want frames 0 and 25", keys)
	}
	if in.info.Width != 640 || in.info.Height != 480 {
		t.Errorf("size from in-band SPS %dx%d", in.info.Width, in.info.Height)
	}
	if n := in.decodeErrors.Load(); n != 0 {
		t.Errorf("%d decode errors", n)
	}
}

// Cameras that never set the marker bit: the access unit closes on the
// next timestamp and must carry the previous packet's PTS.
func TestIngestWithoutMarker(t *testing.T) {
	f, pkts := clipPackets(t)
	var frames []Frame
	in := newTestIngest(t, f, func(fr Frame) { frames = append(frames, fr) })
	for _, au := range pkts {
		for _, p := range au {
			q := *p
			q.Marker = false
			in.handle(&q, int64(q.Timestamp), time.Now())
		}
	}
	if len(frames) != len(pkts)-1 {
		t.Fatalf("%d frames from %d access units", len(frames), len(pkts))
	}
	for i, fr := range frames {
		if fr.PTS != int64(i*3600) {
			t.Fatalf("frame %d PTS %d, want %d", i, fr.PTS, i*3600)
		}
	}
}

// hostilePayloads are RTP payloads crafted to hit the depacketizers' edge
// cases, plus the empty payload.
var hostilePayloads = [][]byte{
	{},
	{0x00},
	{0x07},                                // "SPS" with no body
	{0x67, 0xff, 0xff, 0xff, 0xff, 0xff},  // SPS of garbage
	{0x7c},                                // FU-A header only
	{0x7c, 0x85},                          // FU-A start, no data
	{0x7c, 0x45},                          // FU-A end, no start
	{0x78, 0x00, 0x00},                    // STAP-A with a zero-length NALU
	{0x78, 0x00, 0x05, 0x65},              // STAP-A with a short NALU
	{0x78, 0xff, 0xff},                    // STAP-A claims 64 KiB
	{0x40, 0x01, 0x0c},                    // H.265 VPS with no body
	{0x42, 0x01, 0xff, 0xff, 0xff},        // H.265 SPS of garbage
	{0x62, 0x01, 0x93},                    // H.265 FU start, no data
	{0x60, 0x01, 0x00, 0x00},              // H.265 AP with a zero-length NALU
	{0, 0, 0, 0, 1, 1, 1, 1},              // MJPEG header, offset 0, 8x8
	{0, 0, 0, 9, 1, 255, 0, 0},            // MJPEG fragment out of order, 0x0
	{0, 0, 0, 0, 1, 255, 0, 0, 0, 0},      // MJPEG with Q >= 128 and no table
	{0, 0, 0, 0, 64, 1, 1, 1, 0, 0, 0, 0}, // MJPEG restart marker header, short
}

func hostileFormats() []format.Format {
	return []format.Format{
		&format.H264{PayloadTyp: 96, PacketizationMode: 1},
		&format.H265{PayloadTyp: 96},
		&format.MJPEG{},
	}
}

// Hostile input is counted and dropped; it must never panic (a panic here
// would kill the reader, and the supervisor's recover would count it as a
// crash rather than a decode error).
func TestIngestHostileInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, forma := range hostileFormats() {
		in := newTestIngest(t, forma, func(fr Frame) {
			if fr.Size <= 0 || len(fr.AU) == 0 {
				t.Errorf("%s: empty frame emitted", codecName(forma))
			}
		})
		var seq uint16
		send := func(payload []byte, marker bool, ts uint32) {
			seq++
			in.handle(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
				Timestamp: ts, Marker: marker}, Payload: payload}, int64(ts), time.Now())
		}
		for round := 0; round < 3; round++ {
			for i, p := range hostilePayloads {
				send(p, i%2 == 0, uint32(i))
				send(p, true, uint32(i))
			}
		}
		for i := 0; i < 20000; i++ {
			p := make([]byte, rng.IntN(64))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			send(p, rng.IntN(3) == 0, uint32(i/4))
		}
		if in.decodeErrors.Load() == 0 {
			t.Errorf("%s: no decode error counted", codecName(forma))
		}
	}
}

func FuzzIngest(f *testing.F) {
	for _, p := range hostilePayloads {
		f.Add(p, true)
	}
	f.Fuzz(func(t *testing.T, payload []byte, marker bool) {
		for _, forma := range hostileFormats() {
			in := newTestIngest(t, forma, nil)
			for i := 0; i < 3; i++ {
				in.handle(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
					SequenceNumber: uint16(i), Timestamp: uint32(i / 2), Marker: marker},
					Payload: payload}, 0, time.Now())
			}
		}
	})
}

// BenchmarkIngestH264 measures the per-frame cost of the ingest path for a
// 2 Mbit/s, 25 fps, 640x480 H.264 stream: the RTP packets of one access
// unit through the depacketizer, keyframe and SPS inspection, Frame
// construction and Meter.Observe. The network and gortsplib's RTP parsing
// are not included. One op is one frame.
func BenchmarkIngestH264(b *testing.B) {
	f, pkts := clipPackets(b)
	m := NewMeter()
	in := newTestIngest(b, f, m.Observe)
	var bytes, npkts int
	for _, au := range pkts {
		npkts += len(au)
		for _, p := range au {
			bytes += len(p.Payload)
		}
	}
	b.SetBytes(int64(bytes / len(pkts)))
	b.ReportAllocs()
	now := time.Now()
	i := 0
	for b.Loop() {
		for _, p := range pkts[i%len(pkts)] {
			in.handle(p, int64(p.Timestamp), now)
		}
		i++
	}
	if got := m.Snapshot(now).Frames; got == 0 {
		b.Fatal("no frames")
	}
	b.ReportMetric(float64(npkts)/float64(len(pkts)), "pkts/frame")
}
