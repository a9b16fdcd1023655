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

var h265Limits = auLimits{units: h265.MaxNALUsPerAccessUnit, total: h265.MaxAccessUnitSize}

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
// setup refuses a sprop-max-don-diff above 0, which is what brings them).
// An access unit ends with the marker bit. A NAL unit joined from
// fragments is cut at Annex-B start codes, for the cameras that fragment
// several NAL units as one; a single NAL unit packet is taken as it is.
type h265Depacketizer struct {
	gather auBuilder
	fu     fuJoiner
	units  [][]byte // the NAL units of the packet at hand
	synced bool     // a packet other than a continuing FU came
}

// decode is h264Depacketizer.decode for H.265, with the same errors that
// are not failures and the same rules for the access unit returned and for
// arena.
func (dp *h265Depacketizer) decode(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	units, err := dp.unpack(pk, arena)
	if err != nil {
		return nil, err
	}
	return dp.gather.push(units, pk.Timestamp, pk.Marker, false, h265Limits)
}

// unpack returns the NAL units the packet completes, in dp.units.
func (dp *h265Depacketizer) unpack(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	pl := pk.Payload
	if len(pl) < 2 {
		dp.fu.close()
		return nil, errH265Short
	}
	kind := pl[0] >> 1 & 0x3f
	if kind == h265FU {
		return dp.fragment(pk, arena)
	}
	dp.fu.close() // a NAL unit in fragments ends only with its last fragment
	dp.synced = true
	dp.units = dp.units[:0]
	switch kind {
	case h265AP:
		if err := dp.aggregate(pl[2:]); err != nil {
			return nil, err
		}
	case h265PACI:
		return nil, errPACI
	default:
		dp.units = append(dp.units, pl)
	}
	return dp.units, nil
}

// fragment takes an FU packet (RFC 7798 §4.4.3): the payload header, whose
// F bit, LayerId and TID are the NAL unit's, the FU header with the start
// bit, end bit and NAL unit type, and a piece of the NAL unit after its
// 2-byte header.
func (dp *h265Depacketizer) fragment(pk *rtp.Packet, arena *rtpArena) ([][]byte, error) {
	pl := pk.Payload
	if len(pl) < 3 {
		dp.fu.close()
		return nil, errFUTruncated
	}
	fuHeader, piece := pl[2], pl[3:]
	sBit, eBit := fuHeader&0x80 != 0, fuHeader&0x40 != 0
	if sBit {
		dp.synced = true
		if eBit {
			dp.fu.close()
			return nil, errFUStartAndEnd
		}
		header := [2]byte{pl[0]&0x81 | (fuHeader&0x3f)<<1, pl[1]}
		dp.fu.begin(header, 2, piece, pk.SequenceNumber)
		return nil, errAUIncomplete
	}
	if err := dp.fu.extend(piece, pk.SequenceNumber, dp.synced, h265.MaxAccessUnitSize); err != nil {
		return nil, err
	}
	if !eBit {
		return nil, errAUIncomplete
	}
	nal := dp.fu.join(arena)
	dp.units, _ = cutAtStartCodes(dp.units[:0], nal, h265Limits.units, nil)
	return dp.units, nil
}

// aggregate reads the aggregation units of an AP after its payload header
// (RFC 7798 §4.4.2, without DONL): each is a 16-bit length and that many
// bytes of NAL unit. It appends at most one unit past the limit: push
// refuses that many anyway.
func (dp *h265Depacketizer) aggregate(raw []byte) error {
	for len(raw) > 0 {
		if len(raw) < 2 {
			return errAPTruncated
		}
		ln := int(raw[0])<<8 | int(raw[1])
		raw = raw[2:]
		switch {
		case ln == 0:
			return errAPZero
		case ln > len(raw):
			return errAPTruncated
		}
		if len(dp.units) <= h265Limits.units {
			dp.units = append(dp.units, raw[:ln])
		}
		raw = raw[ln:]
	}
	if len(dp.units) == 0 {
		return errAPEmpty
	}
	return nil
}
