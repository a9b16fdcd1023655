package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pion/rtp"

	"github.com/camd/camd/stream"
)

// The packetizer writes H.264 (RFC 6184, packetization mode 1) and H.265
// (RFC 7798, without DONL) RTP packets straight into the buffer that goes
// to a reader's socket, each behind its RTSP interleaved header (RFC 2326
// §10.12), so that a frame's packets leave in one write.

const (
	// maxRTPPacket is the largest RTP packet the relay sends: the usual
	// UDP payload limit (1500-byte MTU minus IP and UDP headers).
	maxRTPPacket = 1472
	rtpHeaderLen = 12
	// maxPayload is the largest RTP payload the relay sends.
	maxPayload = maxRTPPacket - rtpHeaderLen
	// interleavedLen is the '$', channel, 16-bit length prefix.
	interleavedLen = 4
	// senderReportLen is an RTCP SR without report blocks (RFC 3550 §6.4.1).
	senderReportLen = 28
)

// RTP payload structures whose type numbers a NAL unit must not carry,
// or a receiver would parse it as one of them.
const (
	h264STAPA = 24
	h264FUA   = 28
	h265AP    = 48
	h265FU    = 49
	h265PACI  = 50
)

var (
	errEmptyAU      = errors.New("relay: access unit has no NAL unit")
	errBadNALU      = errors.New("relay: NAL unit cannot be sent over RTP")
	errPacketCodec  = errors.New("relay: codec has no packetizer")
	errPacketTooBig = errors.New("relay: RTP packet longer than an interleaved frame")
)

// packetizer turns access units into RTP packets of one track, written
// straight into a caller's buffer. Owned by one goroutine.
type packetizer struct {
	codec string // stream.CodecH264 or stream.CodecH265
	pt    uint8  // payload type
	ssrc  uint32
	seq   uint16 // next sequence number
}

// appendAU appends the RTP packets of au (NAL units without start codes,
// in decoding order), all with timestamp ts and the marker bit on the
// last, to dst; each packet is preceded by the 4-byte RTSP interleaved
// header for channel ch. It returns the grown dst and how many packets it
// wrote. Empty NAL units are skipped. Runs of NAL units that fit one packet
// together go into one aggregation packet (STAP-A, AP), NAL units too big
// for a packet into fragments (FU-A, FU), the rest into single NAL unit
// packets. On error dst and the sequence number are left as they were.
// It does not allocate when dst has room.
func (p *packetizer) appendAU(dst []byte, ch byte, au [][]byte, ts uint32) ([]byte, int, error) {
	var hevc bool
	switch p.codec {
	case stream.CodecH264:
	case stream.CodecH265:
		hevc = true
	default:
		return dst, 0, fmt.Errorf("%w: %q", errPacketCodec, p.codec)
	}
	// Check everything first so that a bad NAL unit leaves no half frame.
	last := -1
	for i, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		if err := checkNALU(nalu, hevc); err != nil {
			return dst, 0, err
		}
		last = i
	}
	if last < 0 {
		return dst, 0, errEmptyAU
	}
	aggHeader := 1 // STAP-A NAL unit header
	if hevc {
		aggHeader = 2 // AP payload header
	}
	count := 0
	for i := 0; i <= last; {
		nalu := au[i]
		if len(nalu) == 0 {
			i++
			continue
		}
		if len(nalu) > maxPayload {
			dst, count = p.appendFragments(dst, ch, nalu, ts, i == last, hevc, count)
			i++
			continue
		}
		// Gather the following NAL units that still fit one aggregation packet.
		size, n, j := aggHeader+2+len(nalu), 1, i+1
		for ; j <= last; j++ {
			l := len(au[j])
			if l == 0 {
				continue
			}
			if size+2+l > maxPayload {
				break
			}
			size += 2 + l
			n++
		}
		if n == 1 {
			var pl []byte
			dst, pl = p.grow(dst, ch, len(nalu), ts, i == last)
			copy(pl, nalu)
			count++
			i++
			continue
		}
		var pl []byte
		dst, pl = p.grow(dst, ch, size, ts, j > last)
		count++
		aggregate(pl, au[i:j], hevc)
		i = j
	}
	return dst, count, nil
}

// checkNALU rejects what no receiver could take back as the NAL unit it is.
func checkNALU(nalu []byte, hevc bool) error {
	if !hevc {
		if t := nalu[0] & 0x1f; t >= h264STAPA && t <= 29 {
			return fmt.Errorf("%w: H.264 NAL unit type %d is an RTP payload structure", errBadNALU, t)
		}
		return nil
	}
	if len(nalu) < 2 {
		return fmt.Errorf("%w: H.265 NAL unit of %d byte has no 2-byte header", errBadNALU, len(nalu))
	}
	if t := (nalu[0] >> 1) & 0x3f; t >= h265AP && t <= h265PACI {
		return fmt.Errorf("%w: H.265 NAL unit type %d is an RTP payload structure", errBadNALU, t)
	}
	return nil
}

// grow appends the interleaved header and the RTP header of one packet
// with an n-byte payload to dst, uses up a sequence number, and returns dst
// and the payload for the caller to fill.
func (p *packetizer) grow(dst []byte, ch byte, n int, ts uint32, marker bool) ([]byte, []byte) {
	off := len(dst)
	size := rtpHeaderLen + n
	dst = slices.Grow(dst, interleavedLen+size)[:off+interleavedLen+size]
	b := dst[off:]
	b[0] = '$'
	b[1] = ch
	binary.BigEndian.PutUint16(b[2:], uint16(size))
	b[4] = 2 << 6 // version 2, no padding, no extension, no CSRC
	b[5] = p.pt & 0x7f
	if marker {
		b[5] |= 0x80
	}
	binary.BigEndian.PutUint16(b[6:], p.seq)
	binary.BigEndian.PutUint32(b[8:], ts)
	binary.BigEndian.PutUint32(b[12:], p.ssrc)
	p.seq++
	return dst, b[interleavedLen+rtpHeaderLen:]
}

// aggregate fills pl with a STAP-A (RFC 6184 §5.7.1) or an AP (RFC 7798
// §4.4.2) of the non-empty NAL units in nalus.
func aggregate(pl []byte, nalus [][]byte, hevc bool) {
	var k int
	if !hevc {
		// F is set if any F is; NRI is the highest NRI.
		var f, nri byte
		for _, nalu := range nalus {
			if len(nalu) == 0 {
				continue
			}
			f |= nalu[0] & 0x80
			nri = max(nri, nalu[0]&0x60)
		}
		pl[0] = f | nri | h264STAPA
		k = 1
	} else {
		// F is set if any F is; LayerId and TID are the lowest ones.
		var f byte
		layer, tid := byte(0x3f), byte(7)
		for _, nalu := range nalus {
			if len(nalu) == 0 {
				continue
			}
			f |= nalu[0] & 0x80
			layer = min(layer, (nalu[0]&1)<<5|nalu[1]>>3)
			tid = min(tid, nalu[1]&7)
		}
		pl[0] = f | h265AP<<1 | layer>>5
		pl[1] = layer<<3 | tid
		k = 2
	}
	for _, nalu := range nalus {
		if len(nalu) == 0 {
			continue
		}
		binary.BigEndian.PutUint16(pl[k:], uint16(len(nalu)))
		k += 2 + copy(pl[k+2:], nalu)
	}
}

// appendFragments appends nalu as FU-A (RFC 6184 §5.8) or FU (RFC 7798
// §4.4.3) packets, each as full as it can be; marker says whether the last
// one ends the access unit. It returns dst and count plus the packets
// written.
func (p *packetizer) appendFragments(dst []byte, ch byte, nalu []byte, ts uint32, marker, hevc bool, count int) ([]byte, int) {
	// The NAL unit header is not sent: the payload header and the FU
	// header carry its fields.
	var head [2]byte
	var fuType byte
	var hl int // payload header plus FU header
	var data []byte
	if !hevc {
		head[0] = nalu[0]&0xe0 | h264FUA
		fuType = nalu[0] & 0x1f
		hl, data = 2, nalu[1:]
	} else {
		head[0] = nalu[0]&0x81 | h265FU<<1
		head[1] = nalu[1]
		fuType = (nalu[0] >> 1) & 0x3f
		hl, data = 3, nalu[2:]
	}
	start := byte(0x80)
	for len(data) > 0 {
		k := min(len(data), maxPayload-hl)
		end := k == len(data)
		var pl []byte
		dst, pl = p.grow(dst, ch, hl+k, ts, end && marker)
		count++
		fu := start | fuType
		if end {
			fu |= 0x40
		}
		copy(pl, head[:hl-1])
		pl[hl-1] = fu
		copy(pl[hl:], data[:k])
		data = data[k:]
		start = 0
	}
	return dst, count
}

// appendPacket appends pkt, already an RTP packet (audio, MJPEG), as an
// interleaved frame on channel ch to dst. It does not allocate when dst
// has room.
func appendPacket(dst []byte, ch byte, pkt *rtp.Packet) ([]byte, error) {
	n := pkt.MarshalSize()
	if n > 0xffff {
		return dst, fmt.Errorf("%w: %d bytes", errPacketTooBig, n)
	}
	off := len(dst)
	dst = slices.Grow(dst, interleavedLen+n)[:off+interleavedLen+n]
	m, err := pkt.MarshalTo(dst[off+interleavedLen:])
	if err != nil {
		return dst[:off], fmt.Errorf("relay: RTP packet: %w", err)
	}
	dst[off] = '$'
	dst[off+1] = ch
	binary.BigEndian.PutUint16(dst[off+2:], uint16(m))
	return dst[:off+interleavedLen+m], nil
}

// eachPacket calls fn for every interleaved frame in buf, as built by
// appendAU, appendPacket and appendSenderReport, with the offset of its
// 4-byte header and the length of the RTP or RTCP packet behind it. It
// stops at the end of buf or at anything that is not a whole frame.
func eachPacket(buf []byte, fn func(off, n int)) {
	for off := 0; off+interleavedLen <= len(buf) && buf[off] == '$'; {
		n := int(binary.BigEndian.Uint16(buf[off+2:]))
		if off+interleavedLen+n > len(buf) {
			return
		}
		fn(off, n)
		off += interleavedLen + n
	}
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// ntpTime is t as a 64-bit NTP timestamp (RFC 3550 §4). The seconds wrap
// in 2036, which is what NTP era 1 expects.
func ntpTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// appendSenderReport appends an RTCP sender report without report blocks
// (RFC 3550 §6.4.1) as an interleaved frame on channel ch to dst: it maps
// rtpTS to the wall clock ntp and gives the packets and payload octets
// sent so far. It does not allocate when dst has room.
func appendSenderReport(dst []byte, ch byte, ssrc uint32, ntp time.Time, rtpTS uint32, packets, octets uint32) []byte {
	off := len(dst)
	dst = slices.Grow(dst, interleavedLen+senderReportLen)[:off+interleavedLen+senderReportLen]
	b := dst[off:]
	b[0] = '$'
	b[1] = ch
	binary.BigEndian.PutUint16(b[2:], senderReportLen)
	b[4] = 2 << 6 // version 2, no padding, no report blocks
	b[5] = 200    // SR
	binary.BigEndian.PutUint16(b[6:], senderReportLen/4-1)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	binary.BigEndian.PutUint64(b[12:], ntpTime(ntp))
	binary.BigEndian.PutUint32(b[20:], rtpTS)
	binary.BigEndian.PutUint32(b[24:], packets)
	binary.BigEndian.PutUint32(b[28:], octets)
	return dst
}
