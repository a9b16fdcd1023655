package stream

import (
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/camd/camd/internal/procfd"
	"github.com/pion/rtp"
)

// What the external tests (package stream_test) share with the internal
// ones. Those tests drive Read through its public API only, so that they
// hold whatever RTSP client Read is built on.

// H264Clip returns the H.264 test clip (640x480, 25 fps) as its SPS, its
// PPS and the RTP packets (packetization-mode 1) of each access unit.
func H264Clip(tb testing.TB) (sps, pps []byte, aus [][]*rtp.Packet) {
	tb.Helper()
	units := loadAnnexB(tb, clipH264, false)
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	f.SPS = firstNALU(units, func(n []byte) bool { return n[0]&0x1f == 7 })
	f.PPS = firstNALU(units, func(n []byte) bool { return n[0]&0x1f == 8 })
	return f.SPS, f.PPS, packetize(tb, f, units)
}

// WaitForBaseline polls until the goroutine count and the FD counts are no
// higher than wantG and wantFD, or fails the test with every stack.
func WaitForBaseline(t *testing.T, wantG int, wantFD procfd.Counts) {
	t.Helper()
	waitForBaseline(t, wantG, wantFD)
}
