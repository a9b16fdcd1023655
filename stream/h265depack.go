package stream

import (
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// RTP payload structures of RFC 7798 (§4.4) beyond single NAL unit packets,
// by the type field of the 2-byte payload header.
const (
	h265AP   = 48 // aggregation packet
	h265FU   = 49 // fragmentation unit
	h265PACI = 50 // payload content information
)

var h265Limits = auLimits{units: h265.MaxNALUsPerAccessUnit, size: h265.MaxAccessUnitSize}

var (
	errH265Short     = errors.New("H.265 RTP payload shorter than its 2-byte header")
	errFUTruncated   = errors.New("FU packet without its FU header")
	errFUStartAndEnd = errors.New("FU packet with both the start and end bits set, which RFC 7798 forbids")
	errAPTruncated   = errors.New("AP packet: an aggregation unit runs past the end of the packet")
	errAPZero        = errors.New("AP packet: an aggregation unit of length 0")
	errAPEmpty       = errors.New("AP packet without an aggregation unit")
	errPACI          = errors.New("PACI packet (type 50), which camd does not read")
)

// h265Depacketizer is h264Depacketizer's counterpart for H.265 (RFC 7798):
// single NAL unit packets, AP and FU, without DONL fields (the track's
// setup refuses sprop-max-don-diff other than 0, the only case where they
// are absent). An access unit ends with the marker bit. A NAL unit joined
// from fragments is cut at Annex-B start codes, for the cameras that
// fragment several NAL units as one.
type h265Depacketizer struct {
	au     auBuilder
	fu     fuJoiner
	units  [][]byte // the NAL units of the packet at hand
	synced bool     // a packet other than a continuing FU came
}

// decode is h264Depacketizer.decode for H.265, with the same errors that
// are not failures and the same rules for the access unit returned and for
// arena.
func (d *h265Depacketizer) decode(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	units, err := d.unpack(pkt, arena)
	if err != nil {
		return nil, err
	}
	return d.au.push(units, pkt.Timestamp, pkt.Marker, false, h265Limits)
}

// unpack returns the NAL units the packet completes, in d.units.
func (d *h265Depacketizer) unpack(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	p := pkt.Payload
	if len(p) < 2 {
		d.fu.close()
		return nil, errH265Short
	}
	kind := p[0] >> 1 & 0x3f
	if kind == h265FU {
		return d.fragment(pkt, arena)
	}
	d.fu.close() // a NAL unit in fragments ends only with its last fragment
	d.synced = true
	d.units = d.units[:0]
	switch kind {
	case h265AP:
		if err := d.aggregate(p[2:]); err != nil {
			return nil, err
		}
	case h265PACI:
		return nil, errPACI
	default:
		d.units = append(d.units, p)
	}
	return d.units, nil
}

// fragment takes an FU packet (RFC 7798 §4.4.3): the payload header, whose
// F bit, LayerId and TID are the NAL unit's, the FU header with the start
// bit, end bit and NAL unit type, and a piece of the NAL unit after its
// 2-byte header.
func (d *h265Depacketizer) fragment(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	p := pkt.Payload
	if len(p) < 3 {
		d.fu.close()
		return nil, errFUTruncated
	}
	fuHeader, piece := p[2], p[3:]
	start, end := fuHeader&0x80 != 0, fuHeader&0x40 != 0
	if start {
		d.synced = true
		if end {
			d.fu.close()
			return nil, errFUStartAndEnd
		}
		header := [2]byte{p[0]&0x81 | (fuHeader&0x3f)<<1, p[1]}
		d.fu.begin(header, 2, piece, pkt.SequenceNumber)
		return nil, errAUIncomplete
	}
	if err := d.fu.extend(piece, pkt.SequenceNumber, d.synced, h265.MaxAccessUnitSize); err != nil {
		return nil, err
	}
	if !end {
		return nil, errAUIncomplete
	}
	nal := d.fu.join(arena)
	d.units = cutAtStartCodes(d.units[:0], nal, h265Limits.units)
	return d.units, nil
}

// aggregate reads the aggregation units of an AP after its payload header
// (RFC 7798 §4.4.2, without DONL): each is a 16-bit length and that many
// bytes of NAL unit. It appends at most one unit past the limit: push
// refuses that many anyway.
func (d *h265Depacketizer) aggregate(b []byte) error {
	for len(b) > 0 {
		if len(b) < 2 {
			return errAPTruncated
		}
		n := int(b[0])<<8 | int(b[1])
		b = b[2:]
		switch {
		case n == 0:
			return errAPZero
		case n > len(b):
			return errAPTruncated
		}
		if len(d.units) <= h265Limits.units {
			d.units = append(d.units, b[:n])
		}
		b = b[n:]
	}
	if len(d.units) == 0 {
		return errAPEmpty
	}
	return nil
}
