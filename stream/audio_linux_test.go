package stream

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A camera with G.711 audio beside its video: with OnAudio set, the audio
// track is set up and its packets reach OnAudio, never OnFrame, whether
// the connection is read in batches, packet by packet, or over UDP.
func TestReadAudioBesideVideo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		udp   bool
		batch time.Duration
	}{
		{"tcp-batched", false, 100 * time.Millisecond},
		{"tcp", false, 0},
		{"udp", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := newTestCamera(t, cameraConfig{codec: CodecH264, withAudio: true, udp: tc.udp})
			rec := newRecorder()
			o := rec.options(cam.URL())
			o.ReadBatch = tc.batch
			transport := "tcp"
			if tc.udp {
				o.Transport, transport = TransportUDP, "udp"
			}
			var mu sync.Mutex
			var audio, wrong int
			o.OnAudio = func(track int, pkt *rtp.Packet, at time.Time) {
				mu.Lock()
				defer mu.Unlock()
				audio++
				if track != 0 || pkt.PayloadType != 0 || len(pkt.Payload) != 320 || at.IsZero() {
					wrong++
				}
			}
			startRead(t, o)
			checkStream(t, rec, CodecH264, 640, 480, transport)
			mu.Lock()
			defer mu.Unlock()
			if audio < 30 || wrong > 0 {
				t.Fatalf("%d audio packets, %d of them not the camera's", audio, wrong)
			}
			info := rec.lastInfo()
			if len(info.Audio) != 1 || info.Audio[0].Codec != CodecPCMU || info.Audio[0].NotRead != "" {
				t.Fatalf("Info.Audio = %+v, want pcmu read", info.Audio)
			}
			if _, _, decodeErr := rec.snapshot(); decodeErr != 0 {
				t.Fatalf("%d decode errors", decodeErr)
			}
		})
	}
}
