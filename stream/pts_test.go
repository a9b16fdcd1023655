package stream

import (
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/rtptime"
	"github.com/pion/rtp"
)

// ptsDecoder gives the PTS gortsplib's GlobalDecoder gives for a session's
// one track, on streams that start with packets whose PTS is not known
// (not a keyframe), jump back and forth and wrap around.
func TestPTSDecoderMatchesGortsplib(t *testing.T) {
	formats := []format.Format{
		&format.H264{PayloadTyp: 96, PacketizationMode: 1},
		&format.H265{PayloadTyp: 96},
		&format.MJPEG{},
	}
	// First bytes of payloads: for H.264 a non-IDR slice, an IDR, an
	// FU-A start of a non-IDR and of an IDR, a STAP-A with an SPS; for
	// H.265 a trailing picture, an IDR, an FU; empty.
	payloads := [][]byte{
		{0x41, 0x9a}, {0x65, 0x88}, {0x7c, 0x81}, {0x7c, 0x85},
		{0x78, 0x00, 0x02, 0x67, 0x42},
		{0x02, 0x01, 0xd0}, {0x26, 0x01, 0xaf}, {0x62, 0x01, 0x93}, {0x62, 0x01, 0x13},
		{},
	}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		forma := formats[rng.IntN(len(formats))]
		var ours ptsDecoder
		var theirs rtptime.GlobalDecoder
		theirs.Initialize()
		ts := rng.Uint32()
		for i := range 300 {
			switch r := rng.IntN(20); {
			case r < 14:
				ts += 3600 // the next frame
			case r < 16:
				// the same frame
			case r < 18:
				ts -= uint32(rng.IntN(90000)) // back
			default:
				ts += uint32(rng.Int64N(1 << 32)) // anywhere: wraps
			}
			pkt := &rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: payloads[rng.IntN(len(payloads))]}
			want, _ := theirs.Decode(forma, pkt)
			if got := ours.decode(forma, pkt); got != want {
				t.Fatalf("seed %d, packet %d (%T, payload % x, ts %d): PTS %d, gortsplib's %d", seed, i, forma, pkt.Payload, ts, got, want)
			}
		}
	}
}
