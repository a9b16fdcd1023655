package stream

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// h264Depacketizer is gortsplib's rtph264.Decoder (v5.6.5) without its
// allocations on the common path. That decoder allocates for every
// access unit: a new buffer for each fragmented NAL unit, its header byte,
// the list of NAL units; and it scans each fragmented NAL unit twice for
// start codes. At 25 fps per camera that garbage and the second scan were
// about a third of camd's ingest CPU (at 64 simulated cameras, 3.5 % of a
// core with the original and 2.4 % with this one).
//
// This one gives the same access units and the same errors for the same
// packets (TestH264DepacketizerMatchesGortsplib and FuzzH264Depacketizer
// compare the two) but:
//   - reuses its lists of NAL units, in two generations, because the access
//     unit it returns is only used until the next call (Frame.AU's rule);
//   - joins a fragmented NAL unit into the packet arena when the packets
//     come from take (so the copy lives exactly as long as the packets it
//     was made of), or into a new buffer otherwise;
//   - scans a NAL unit for a start code once, and only where one is found
//     does it take gortsplib's exact path (split, Annex-B mode), which
//     allocates as before: cameras that wrap NAL units in Annex-B are rare.
//
// Like the original, it is used from one goroutine at a time.
type h264Depacketizer struct {
	firstPacketReceived bool
	fragments           [][]byte // payloads after the FU header
	fragmentsSize       int
	fragmentHeader      byte
	fragmentNextSeqNum  uint16
	annexBMode          bool

	// The access unit being built is frames[cur]; frames[cur^1] is the
	// one returned last, which its caller may use until the next call.
	frames    [2][][]byte
	cur       int
	frameSet  bool // frames[cur] holds the start of an access unit (the original's frameBuffer != nil)
	frameSize int
	frameTS   uint32
	nalus     [][]byte // decodeNALUs' result, reused
	oneNALU   [1][]byte
}

var startCode3 = []byte{0x00, 0x00, 0x01}

// decode is rtph264.Decoder.Decode. arena, when not nil, is where a
// fragmented NAL unit is joined (see take); nil joins into a new buffer.
func (d *h264Depacketizer) decode(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	nalus, err := d.decodeNALUs(pkt, arena)
	if err != nil {
		return nil, err
	}
	l := len(nalus)

	// Access units split by timestamp, for cameras that never set the
	// marker bit (the original's comment names the FLIR M400).
	if d.frameSet && pkt.Timestamp != d.frameTS {
		ret := d.frames[d.cur]
		d.next()
		if err := d.addToFrame(nalus, l, pkt.Timestamp); err != nil {
			return nil, err
		}
		return ret, nil
	}

	if err := d.addToFrame(nalus, l, pkt.Timestamp); err != nil {
		return nil, err
	}
	if !pkt.Marker {
		return nil, rtph264.ErrMorePacketsNeeded
	}
	var ret [][]byte
	if d.frameSet {
		ret = d.frames[d.cur]
	}
	d.next()
	return ret, nil
}

// next starts a new access unit in the other generation: the one there
// was returned by an earlier call and is no longer in use.
func (d *h264Depacketizer) next() {
	d.cur ^= 1
	clear(d.frames[d.cur])
	d.frames[d.cur] = d.frames[d.cur][:0]
	d.frameSet = false
	d.frameSize = 0
}

func (d *h264Depacketizer) addToFrame(nalus [][]byte, l int, ts uint32) error {
	fr := d.frames[d.cur]
	if len(fr)+l > h264.MaxNALUsPerAccessUnit {
		n := len(fr) + l
		d.resetFrame()
		return fmt.Errorf("NALU count (%d) exceeds maximum allowed (%d)", n, h264.MaxNALUsPerAccessUnit)
	}
	add := 0
	for _, n := range nalus {
		add += len(n)
	}
	if d.frameSize+add > h264.MaxAccessUnitSize {
		n := d.frameSize + add
		d.resetFrame()
		return fmt.Errorf("access unit size (%d) is too big, maximum is %d", n, h264.MaxAccessUnitSize)
	}
	d.frames[d.cur] = append(fr, nalus...)
	// The original's frameBuffer stays nil after appending nothing.
	d.frameSet = d.frameSet || l > 0
	d.frameSize += add
	d.frameTS = ts
	return nil
}

func (d *h264Depacketizer) resetFrame() {
	clear(d.frames[d.cur])
	d.frames[d.cur] = d.frames[d.cur][:0]
	d.frameSet = false
	d.frameSize = 0
}

func (d *h264Depacketizer) resetFragments() {
	clear(d.fragments)
	d.fragments = d.fragments[:0]
	d.fragmentsSize = 0
}

// decodeNALUs is the original's, case by case.
func (d *h264Depacketizer) decodeNALUs(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	if len(pkt.Payload) < 1 {
		d.resetFragments()
		return nil, fmt.Errorf("payload is too short")
	}

	typ := h264.NALUType(pkt.Payload[0] & 0x1F)
	var nalus [][]byte

	switch typ {
	case h264.NALUTypeFUA:
		if len(pkt.Payload) < 2 {
			return nil, fmt.Errorf("invalid FU-A packet (invalid size)")
		}
		start := pkt.Payload[1] >> 7
		end := (pkt.Payload[1] >> 6) & 0x01

		if start == 1 {
			d.resetFragments()
			nri := (pkt.Payload[0] >> 5) & 0x03
			d.fragmentHeader = (nri << 5) | (pkt.Payload[1] & 0x1F)
			d.fragmentsSize = len(pkt.Payload[1:])
			d.fragments = append(d.fragments, pkt.Payload[2:])
			d.fragmentNextSeqNum = pkt.SequenceNumber + 1
			d.firstPacketReceived = true
			// A start and an end bit in one FU is against RFC 6184, and
			// some cameras (CostarHD) send it for small P-frames.
			if end != 0 {
				return d.fragmented(arena)
			}
			return nil, rtph264.ErrMorePacketsNeeded
		}

		if d.fragmentsSize == 0 {
			if !d.firstPacketReceived {
				return nil, rtph264.ErrNonStartingPacketAndNoPrevious
			}
			return nil, fmt.Errorf("invalid FU-A packet (non-starting)")
		}
		if pkt.SequenceNumber != d.fragmentNextSeqNum {
			d.resetFragments()
			return nil, errPacketMissing
		}
		d.fragmentsSize += len(pkt.Payload[2:])
		if d.fragmentsSize > h264.MaxAccessUnitSize {
			n := d.fragmentsSize
			d.resetFragments()
			return nil, fmt.Errorf("NALU size (%d) is too big, maximum is %d", n, h264.MaxAccessUnitSize)
		}
		d.fragments = append(d.fragments, pkt.Payload[2:])
		d.fragmentNextSeqNum++
		if end != 1 {
			return nil, rtph264.ErrMorePacketsNeeded
		}
		return d.fragmented(arena)

	case h264.NALUTypeSTAPA:
		d.resetFragments()
		payload := pkt.Payload[1:]
		nalus = d.nalus[:0]
		for {
			if len(payload) < 2 {
				return nil, fmt.Errorf("invalid STAP-A packet (invalid size)")
			}
			size := uint16(payload[0])<<8 | uint16(payload[1])
			payload = payload[2:]
			if size == 0 {
				if isAllZero(payload) { // padding
					break
				}
				return nil, fmt.Errorf("invalid STAP-A packet (invalid size)")
			}
			if int(size) > len(payload) {
				return nil, fmt.Errorf("invalid STAP-A packet (invalid size)")
			}
			nalus = append(nalus, payload[:size])
			payload = payload[size:]
			if len(payload) == 0 {
				break
			}
		}
		d.nalus = nalus
		if len(nalus) == 0 {
			return nil, fmt.Errorf("STAP-A packet doesn't contain any NALU")
		}
		d.firstPacketReceived = true

	case h264.NALUTypeSTAPB, h264.NALUTypeMTAP16,
		h264.NALUTypeMTAP24, h264.NALUTypeFUB:
		d.resetFragments()
		d.firstPacketReceived = true
		return nil, fmt.Errorf("packet type not supported (%v)", typ)

	default:
		d.resetFragments()
		d.firstPacketReceived = true
		d.oneNALU[0] = pkt.Payload
		nalus = d.oneNALU[:]
	}

	return d.removeAnnexB(nalus)
}

// fragmented joins the fragments of a complete NAL unit and splits it as
// the original does. The original scans it twice for start codes (to split
// it, then for Annex-B); a NAL unit with no 00 00 01 needs neither, so one
// scan settles the common case.
func (d *h264Depacketizer) fragmented(arena *rtpArena) ([][]byte, error) {
	nalu := d.joinFragments(arena)
	d.resetFragments()
	if !d.annexBMode && !bytes.Contains(nalu, startCode3) {
		d.oneNALU[0] = nalu
		return d.oneNALU[:], nil
	}
	return d.removeAnnexB(splitNALUs(nalu))
}

// joinFragments copies the fragments of a NAL unit, after its header byte,
// into one buffer.
func (d *h264Depacketizer) joinFragments(arena *rtpArena) []byte {
	var b []byte
	if arena != nil {
		b = arena.alloc(d.fragmentsSize)
	} else {
		b = make([]byte, d.fragmentsSize)
	}
	b[0] = d.fragmentHeader
	n := 1
	for _, f := range d.fragments {
		n += copy(b[n:], f)
	}
	return b
}

// splitNALUs is the original's: some vendors put several NAL units in one
// fragmented unit, with start codes between them.
func splitNALUs(b []byte) [][]byte {
	nalus := make([][]byte, 0, 1)
	for len(b) > 0 {
		idx := bytes.Index(b, startCode3)
		if idx == -1 {
			nalus = append(nalus, b)
			break
		}
		sz := 3
		if idx > 0 && b[idx-1] == 0x00 {
			idx--
			sz++
		}
		if idx == 0 {
			b = b[sz:]
			continue
		}
		nalus = append(nalus, b[:idx])
		b = b[idx+sz:]
	}
	return nalus
}

// removeAnnexB is the original's: some cameras and servers wrap NAL units
// in Annex-B. In that mode it allocates, as the original does.
func (d *h264Depacketizer) removeAnnexB(nalus [][]byte) ([][]byte, error) {
	if len(nalus) != 1 {
		return nalus, nil
	}
	nalu := nalus[0]
	if !d.annexBMode && bytes.Contains(nalu, []byte{0x00, 0x00, 0x00, 0x01}) {
		d.annexBMode = true
	}
	if !d.annexBMode {
		return nalus, nil
	}
	if !bytes.HasPrefix(nalu, []byte{0x00, 0x00, 0x00, 0x01}) {
		nalu = append([]byte{0x00, 0x00, 0x00, 0x01}, nalu...)
	}
	var annexb h264.AnnexB
	err := annexb.Unmarshal(nalu)
	return annexb, err
}

func isAllZero(buf []byte) bool {
	for _, b := range buf {
		if b != 0 {
			return false
		}
	}
	return true
}
