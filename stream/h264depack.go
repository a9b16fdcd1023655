package stream

import (
	"bytes"
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// RTP payload structures of RFC 6184 (§5.2, table 1), by the value of the
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

var h264Limits = auLimits{units: h264.MaxNALUsPerAccessUnit, total: h264.MaxAccessUnitSize}

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
// NAL units as one. NAL units of the types RFC 6184 reserves are left out,
// as the RFC tells receivers to do.
//
// Nothing is allocated per packet once its lists have grown, except the
// buffer of a NAL unit joined from fragments when no arena is given.
type h264Depacketizer struct {
	gather auBuilder
	fu     fuJoiner
	units  [][]byte // the NAL units of the packet at hand
	synced bool     // a packet other than a continuing FU-A came
	annexB bool     // the camera wraps single NAL units in Annex-B
	// ignored counts the NAL units of reserved types left out, for tests.
	ignored int
}

// decode takes one packet of the track and returns an access unit when the
// packet completes one. The access unit is valid until the next call. A
// NAL unit joined from fragments is built in arena when it is not nil (the
// packets come from take and live there), else in a new buffer.
//
// errAUIncomplete and errJoinedMidUnit are not failures; any other error
// means the packet, and possibly the access unit around it, was dropped.
func (dp *h264Depacketizer) decode(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	units, err := dp.unpack(pk, arena)
	if err != nil {
		return nil, err
	}
	return dp.gather.push(units, pk.Timestamp, pk.Marker, true, h264Limits)
}

// unpack returns the NAL units the packet completes, in dp.units.
func (dp *h264Depacketizer) unpack(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	pl := pk.Payload
	if len(pl) == 0 {
		dp.fu.close()
		return nil, errH264NoPayload
	}
	kind := pl[0] & 0x1f
	if kind == h264FUA {
		return dp.fragment(pk, arena)
	}
	dp.fu.close() // a NAL unit in fragments ends only with its last fragment
	dp.synced = true
	dp.units = dp.units[:0]
	switch kind {
	case h264STAPA:
		seen, err := dp.aggregate(pl[1:])
		if err != nil {
			return nil, err
		}
		if seen > 1 {
			return dp.units, nil
		}
	case h264STAPB, h264MTAP16, h264MTAP24, h264FUB:
		return nil, errH264Interleaved
	default:
		// One NAL unit, the payload itself.
		dp.units = append(dp.units, pl)
	}
	return dp.unwrapAnnexB()
}

// h264Reserved tells the NAL unit types that RFC 6184 §5.4 reserves (0, 30
// and 31) from a NAL unit's header byte. A receiver must ignore such NAL
// units, whether they come alone, aggregated or in fragments.
func h264Reserved(header byte) bool {
	kind := header & 0x1f
	return kind == 0 || kind >= 30
}

// fragment takes an FU-A packet (RFC 6184 §5.8): the FU indicator, whose F
// and NRI bits are the NAL unit's, the FU header with the start bit, end
// bit and NAL unit type, and a piece of the NAL unit after its header
// byte.
func (dp *h264Depacketizer) fragment(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	pl := pk.Payload
	if len(pl) < 2 {
		dp.fu.close()
		return nil, errFUATruncated
	}
	indicator, fuHeader, piece := pl[0], pl[1], pl[2:]
	sBit, eBit := fuHeader&0x80 != 0, fuHeader&0x40 != 0
	if sBit {
		dp.fu.begin([2]byte{indicator&0xe0 | fuHeader&0x1f}, 1, piece, pk.SequenceNumber)
		dp.synced = true
		// The RFC forbids a NAL unit in a single FU-A (start and end bits
		// both set), but some cameras send small ones that way: taken.
	} else if err := dp.fu.extend(piece, pk.SequenceNumber, dp.synced, h264.MaxAccessUnitSize); err != nil {
		return nil, err
	}
	if !eBit {
		return nil, errAUIncomplete
	}
	nal := dp.fu.join(arena)
	var skipped int
	dp.units, skipped = cutAtStartCodes(dp.units[:0], nal, h264Limits.units, h264Reserved)
	dp.ignored += skipped
	return dp.units, nil
}

// aggregate reads the NAL units of a STAP-A packet after its header byte
// (RFC 6184 §5.7.1): each is a 16-bit length and that many bytes. Zero
// bytes after the last one are padding. It returns how many NAL units the
// packet holds, and keeps those not of a reserved type, at most one past
// the limit: push refuses that many anyway.
func (dp *h264Depacketizer) aggregate(raw []byte) (int, error) {
	seen := 0
	for len(raw) > 0 {
		if len(raw) < 2 {
			return 0, errSTAPATruncated
		}
		ln := int(raw[0])<<8 | int(raw[1])
		raw = raw[2:]
		if ln == 0 {
			if !allZero(raw) {
				return 0, errSTAPAZero
			}
			break
		}
		if ln > len(raw) {
			return 0, errSTAPATruncated
		}
		seen++
		switch {
		case h264Reserved(raw[0]):
			dp.ignored++
		case len(dp.units) <= h264Limits.units:
			dp.units = append(dp.units, raw[:ln])
		}
		raw = raw[ln:]
	}
	if seen == 0 {
		return 0, errSTAPAEmpty
	}
	return seen, nil
}

// unwrapAnnexB takes the one NAL unit in dp.units, if any, and cuts it at
// start codes when the camera is known to wrap NAL units in Annex-B, or
// shows it now. The sign is a 4-byte start code, which Annex-B writers put
// at least before parameter sets and the first NAL unit of an access unit;
// a 3-byte one before that is left in place. It leaves out NAL units of
// reserved types: a payload that starts with a start code has type 0 until
// it is cut.
func (dp *h264Depacketizer) unwrapAnnexB() ([][]byte, error) {
	if len(dp.units) == 0 {
		return dp.units, nil
	}
	nal := dp.units[0]
	if !dp.annexB && bytes.Contains(nal, annexBLongStart) {
		dp.annexB = true
	}
	if !dp.annexB {
		if h264Reserved(nal[0]) {
			dp.ignored++
			dp.units = dp.units[:0]
		}
		return dp.units, nil
	}
	var skipped int
	dp.units, skipped = cutAtStartCodes(dp.units[:0], nal, h264Limits.units, h264Reserved)
	dp.ignored += skipped
	switch {
	case len(dp.units) == 0 && skipped == 0:
		return nil, errOnlyStartCode
	case len(dp.units) > h264Limits.units:
		return nil, errTooManyUnits
	}
	return dp.units, nil
}
