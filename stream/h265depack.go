package stream

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// h265Depacketizer is gortsplib's rtph265.Decoder (v5.6.5) without its
// allocations on the common path, as h264Depacketizer is for H.264: the
// same access units and errors for the same packets
// (TestH265DepacketizerMatchesGortsplib, FuzzH265Depacketizer), lists of
// NAL units reused in two generations, fragmented NAL units joined into the
// packet arena when the packets come from take, and one scan for a start
// code per fragmented NAL unit, where the original splits it.
type h265Depacketizer struct {
	firstPacketReceived bool
	fragments           [][]byte // payloads after the FU header
	fragmentsSize       int
	fragmentHeader      [2]byte
	fragmentNextSeqNum  uint16

	frames    [2][][]byte // as in h264Depacketizer
	cur       int
	frameSize int
	nalus     [][]byte
	oneNALU   [1][]byte
}

// decode is rtph265.Decoder.Decode. arena, when not nil, is where a
// fragmented NAL unit is joined (see take); nil joins into a new buffer.
func (d *h265Depacketizer) decode(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	nalus, err := d.decodeNALUs(pkt, arena)
	if err != nil {
		return nil, err
	}
	fr := d.frames[d.cur]
	l := len(nalus)
	if len(fr)+l > h265.MaxNALUsPerAccessUnit {
		n := len(fr) + l
		d.resetFrame()
		return nil, fmt.Errorf("NALU count (%d) exceeds maximum allowed (%d)", n, h265.MaxNALUsPerAccessUnit)
	}
	add := 0
	for _, n := range nalus {
		add += len(n)
	}
	if d.frameSize+add > h265.MaxAccessUnitSize {
		n := d.frameSize + add
		d.resetFrame()
		return nil, fmt.Errorf("access unit size (%d) is too big, maximum is %d", n, h265.MaxAccessUnitSize)
	}
	d.frames[d.cur] = append(fr, nalus...)
	d.frameSize += add
	if !pkt.Marker {
		return nil, rtph265.ErrMorePacketsNeeded
	}
	ret := d.frames[d.cur]
	if len(ret) == 0 {
		ret = nil // the original's frameBuffer stays nil after appending nothing
	}
	// The next access unit goes to the other generation: the one there
	// was returned by an earlier call and is no longer in use.
	d.cur ^= 1
	d.resetFrame()
	return ret, nil
}

func (d *h265Depacketizer) resetFrame() {
	clear(d.frames[d.cur])
	d.frames[d.cur] = d.frames[d.cur][:0]
	d.frameSize = 0
}

func (d *h265Depacketizer) resetFragments() {
	clear(d.fragments)
	d.fragments = d.fragments[:0]
	d.fragmentsSize = 0
}

// decodeNALUs is the original's, case by case.
func (d *h265Depacketizer) decodeNALUs(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	if len(pkt.Payload) < 2 {
		d.resetFragments()
		return nil, fmt.Errorf("payload is too short")
	}

	typ := h265.NALUType((pkt.Payload[0] >> 1) & 0b111111)
	var nalus [][]byte

	switch typ {
	case h265.NALUType_AggregationUnit:
		d.resetFragments()
		payload := pkt.Payload[2:]
		nalus = d.nalus[:0]
		for {
			if len(payload) < 2 {
				d.nalus = nalus
				return nil, fmt.Errorf("invalid aggregation unit (invalid size)")
			}
			size := uint16(payload[0])<<8 | uint16(payload[1])
			payload = payload[2:]
			if size == 0 || int(size) > len(payload) {
				d.nalus = nalus
				return nil, fmt.Errorf("invalid aggregation unit (invalid size)")
			}
			nalus = append(nalus, payload[:size])
			payload = payload[size:]
			if len(payload) == 0 {
				break
			}
		}
		d.nalus = nalus
		d.firstPacketReceived = true

	case h265.NALUType_FragmentationUnit:
		if len(pkt.Payload) < 3 {
			d.resetFragments()
			return nil, fmt.Errorf("payload is too short")
		}
		start := pkt.Payload[2] >> 7
		end := (pkt.Payload[2] >> 6) & 0x01

		if start == 1 {
			d.resetFragments()
			if end != 0 {
				return nil, fmt.Errorf("invalid fragmentation unit (can't contain both a start and end bit)")
			}
			typ := pkt.Payload[2] & 0b111111
			head := uint16(pkt.Payload[0]&0b10000001)<<8 | uint16(typ)<<9 | uint16(pkt.Payload[1])
			d.fragmentHeader = [2]byte{byte(head >> 8), byte(head)}
			d.fragmentsSize = len(pkt.Payload[1:])
			d.fragments = append(d.fragments, pkt.Payload[3:])
			d.fragmentNextSeqNum = pkt.SequenceNumber + 1
			d.firstPacketReceived = true
			return nil, rtph265.ErrMorePacketsNeeded
		}

		if d.fragmentsSize == 0 {
			if !d.firstPacketReceived {
				return nil, rtph265.ErrNonStartingPacketAndNoPrevious
			}
			return nil, fmt.Errorf("invalid fragmentation unit (non-starting)")
		}
		if pkt.SequenceNumber != d.fragmentNextSeqNum {
			d.resetFragments()
			return nil, errPacketMissing
		}
		d.fragmentsSize += len(pkt.Payload[3:])
		if d.fragmentsSize > h265.MaxAccessUnitSize {
			n := d.fragmentsSize
			d.resetFragments()
			return nil, fmt.Errorf("NALU size (%d) is too big, maximum is %d", n, h265.MaxAccessUnitSize)
		}
		d.fragments = append(d.fragments, pkt.Payload[3:])
		d.fragmentNextSeqNum++
		if end != 1 {
			return nil, rtph265.ErrMorePacketsNeeded
		}
		nalu := d.joinFragments(arena)
		d.resetFragments()
		if !bytes.Contains(nalu, startCode3) {
			d.oneNALU[0] = nalu
			return d.oneNALU[:], nil
		}
		nalus = splitNALUs(nalu)

	case h265.NALUType_PACI:
		d.resetFragments()
		return nil, fmt.Errorf("PACI packets are not supported (yet)")

	default:
		d.resetFragments()
		d.oneNALU[0] = pkt.Payload
		nalus = d.oneNALU[:]
	}
	return nalus, nil
}

// joinFragments copies the fragments of a NAL unit, after its two header
// bytes, into one buffer. fragmentsSize counts one of the header bytes and
// the FU header byte, as the original's does: the buffer is that long.
func (d *h265Depacketizer) joinFragments(arena *rtpArena) []byte {
	var b []byte
	if arena != nil {
		b = arena.alloc(d.fragmentsSize)
	} else {
		b = make([]byte, d.fragmentsSize)
	}
	n := copy(b, d.fragmentHeader[:])
	for _, f := range d.fragments {
		n += copy(b[n:], f)
	}
	return b
}
