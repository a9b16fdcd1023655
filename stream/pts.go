package stream

import (
	"sync"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// ptsDecoder turns the RTP timestamps of the one track camd reads into
// PTS, as gortsplib's rtptime.GlobalDecoder does for a session's leading
// track (which the only track decoded always is): 0 until the first packet
// whose PTS equals its DTS, which is 0, then the running sum of the signed
// 32-bit differences between timestamps, so that wrapping is seen through.
//
// GlobalDecoder does that per packet with a map lookup, a lock and a clock
// read (for tracks that follow the leading one), about 4 % of camd's CPU in
// a profile with 64 cameras; this is the same arithmetic without them.
//
// The lock is uncontended: one PLAY's packets come on one goroutine, but
// over UDP that is not the one that reads TCP.
type ptsDecoder struct {
	mu      sync.Mutex
	started bool
	overall int64
	prev    uint32
}

// decode returns the PTS of pkt, a packet of forma, in forma's clock rate.
func (d *ptsDecoder) decode(forma format.Format, pkt *rtp.Packet) int64 {
	if forma.ClockRate() == 0 {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started {
		if !forma.PTSEqualsDTS(pkt) {
			return 0
		}
		d.started, d.prev = true, pkt.Timestamp
		return 0
	}
	d.overall += int64(int32(pkt.Timestamp - d.prev))
	d.prev = pkt.Timestamp
	return d.overall
}
