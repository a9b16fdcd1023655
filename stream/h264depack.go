package stream

import (
	"bytes"
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// RTP payload structures of RFC 6184 (§5.2, table 3), by the value of the
// type field of the payload's first byte. 1 to 23 are single NAL unit
// packets.
const (
	h264STAPA  = 24
	h264STAPB  = 25
	h264MTAP16 = 26
	h264MTAP24 = 27
	h264FUA    = 28
	h264FUB    = 29
)

var h264Limits = auLimits{units: h264.MaxNALUsPerAccessUnit, size: h264.MaxAccessUnitSize}

var (
	errH264NoPayload  = errors.New("H.264 RTP packet with an empty payload")
	errFUATruncated   = errors.New("FU-A packet without its FU header")
	errSTAPATruncated = errors.New("STAP-A packet: a NAL unit runs past the end of the packet")
	errSTAPAZero      = errors.New("STAP-A packet: a NAL unit of length 0 followed by data")
	errSTAPAEmpty     = errors.New("STAP-A packet without a NAL unit")
	// STAP-B, MTAP16, MTAP24 and FU-B exist only in the interleaved
	// packetization mode, which the track's setup refuses.
	errH264Interleaved = errors.New("STAP-B, MTAP or FU-B packet, which only the interleaved mode has")
)

// h264Depacketizer turns the RTP packets of an H.264 track (RFC 6184,
// single NAL unit and non-interleaved modes) into access units: lists of
// NAL units without start codes. It is used from one goroutine at a time,
// and its zero value is ready.
//
// Besides single NAL unit packets, STAP-A and FU-A, it takes NAL units that
// a camera wrapped in Annex-B start codes: once a packet holding a single
// NAL unit shows a 4-byte start code, every such packet is cut at start
// codes (the sender is known to write Annex-B). A NAL unit joined from
// FU-A is always cut at start codes, since some cameras fragment several
// NAL units as one.
//
// Nothing is allocated per packet once its lists have grown, except the
// buffer of a NAL unit joined from fragments when no arena is given.
type h264Depacketizer struct {
	au     auBuilder
	fu     fuJoiner
	units  [][]byte // the NAL units of the packet at hand
	synced bool     // a packet other than a continuing FU-A came
	annexB bool     // the camera wraps single NAL units in Annex-B
}

// decode takes one packet of the track and returns an access unit when the
// packet completes one. The access unit is valid until the next call. A
// NAL unit joined from fragments is built in arena when it is not nil (the
// packets come from take and live there), else in a new buffer.
//
// errAUIncomplete and errJoinedMidUnit are not failures; any other error
// means the packet, and possibly the access unit around it, was dropped.
func (d *h264Depacketizer) decode(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	units, err := d.unpack(pkt, arena)
	if err != nil {
		return nil, err
	}
	return d.au.push(units, pkt.Timestamp, pkt.Marker, true, h264Limits)
}

// unpack returns the NAL units the packet completes, in d.units.
func (d *h264Depacketizer) unpack(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	p := pkt.Payload
	if len(p) == 0 {
		d.fu.close()
		return nil, errH264NoPayload
	}
	kind := p[0] & 0x1f
	if kind == h264FUA {
		return d.fragment(pkt, arena)
	}
	d.fu.close() // a NAL unit in fragments ends only with its last fragment
	d.synced = true
	d.units = d.units[:0]
	switch kind {
	case h264STAPA:
		if err := d.aggregate(p[1:]); err != nil {
			return nil, err
		}
	case h264STAPB, h264MTAP16, h264MTAP24, h264FUB:
		return nil, errH264Interleaved
	default:
		// One NAL unit, the payload itself. Types 0, 30 and 31 have no
		// meaning in RTP either and pass through as NAL units.
		d.units = append(d.units, p)
	}
	if len(d.units) == 1 {
		return d.unwrapAnnexB()
	}
	return d.units, nil
}

// fragment takes an FU-A packet (RFC 6184 §5.8): the FU indicator, whose F
// and NRI bits are the NAL unit's, the FU header with the start bit, end
// bit and NAL unit type, and a piece of the NAL unit after its header
// byte.
func (d *h264Depacketizer) fragment(pkt *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	p := pkt.Payload
	if len(p) < 2 {
		d.fu.close()
		return nil, errFUATruncated
	}
	indicator, fuHeader, piece := p[0], p[1], p[2:]
	start, end := fuHeader&0x80 != 0, fuHeader&0x40 != 0
	if start {
		d.fu.begin([2]byte{indicator&0xe0 | fuHeader&0x1f}, 1, piece, pkt.SequenceNumber)
		d.synced = true
		// The RFC forbids a NAL unit in a single FU-A (start and end bits
		// both set), but some cameras send small ones that way: taken.
	} else if err := d.fu.extend(piece, pkt.SequenceNumber, d.synced, h264.MaxAccessUnitSize); err != nil {
		return nil, err
	}
	if !end {
		return nil, errAUIncomplete
	}
	nal := d.fu.join(arena)
	d.units = cutAtStartCodes(d.units[:0], nal, h264Limits.units)
	return d.units, nil
}

// aggregate reads the NAL units of a STAP-A packet after its header byte
// (RFC 6184 §5.7.1): each is a 16-bit length and that many bytes. Zero
// bytes after the last one are padding. It appends at most one unit past
// the limit: push refuses that many anyway.
func (d *h264Depacketizer) aggregate(b []byte) error {
	for len(b) > 0 {
		if len(b) < 2 {
			return errSTAPATruncated
		}
		n := int(b[0])<<8 | int(b[1])
		b = b[2:]
		if n == 0 {
			if !allZero(b) {
				return errSTAPAZero
			}
			break
		}
		if n > len(b) {
			return errSTAPATruncated
		}
		if len(d.units) <= h264Limits.units {
			d.units = append(d.units, b[:n])
		}
		b = b[n:]
	}
	if len(d.units) == 0 {
		return errSTAPAEmpty
	}
	return nil
}

// unwrapAnnexB cuts the one NAL unit in d.units at start codes when the
// camera is known to wrap NAL units in Annex-B, or shows it now with a
// 4-byte start code. A 3-byte one alone is not taken as a sign: 00 00 01
// can occur in a NAL unit whose sender did not add emulation prevention.
func (d *h264Depacketizer) unwrapAnnexB() ([][]byte, error) {
	nal := d.units[0]
	if !d.annexB && bytes.Contains(nal, longStartCode) {
		d.annexB = true
	}
	if !d.annexB {
		return d.units, nil
	}
	d.units = cutAtStartCodes(d.units[:0], nal, h264Limits.units)
	switch {
	case len(d.units) == 0:
		return nil, errOnlyStartCode
	case len(d.units) > h264Limits.units:
		return nil, errTooManyUnits
	}
	return d.units, nil
}
