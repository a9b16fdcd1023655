package sim

import (
	"bytes"
	"encoding/binary"
	"time"
)

// StampUUID is the uuid_iso_iec_11578 that marks a send-time stamp: a
// user_data_unregistered SEI message (payload type 5) whose 16-byte UUID is
// this, followed by the send time as 8 bytes big-endian Unix nanoseconds.
var StampUUID = [16]byte{'c', 'a', 'm', 'd', '/', 's', 'e', 'n', 'd', 't', 'i', 'm', 'e', '/', 'v', '1'}

const (
	seiUserDataUnregistered = 5
	stampPayloadSize        = len(StampUUID) + 8
	h264NALUTypeSEI         = 6
	h265NALUTypePrefixSEI   = 39
)

// AppendStampSEI appends to dst an H.264 SEI NAL unit (no start code) that
// carries t as a send-time stamp, with emulation prevention applied.
func AppendStampSEI(dst []byte, t time.Time) []byte {
	var rbsp [2 + stampPayloadSize + 1]byte
	rbsp[0] = seiUserDataUnregistered
	rbsp[1] = byte(stampPayloadSize)
	copy(rbsp[2:], StampUUID[:])
	binary.BigEndian.PutUint64(rbsp[2+len(StampUUID):], uint64(t.UnixNano()))
	rbsp[len(rbsp)-1] = 0x80 // rbsp_trailing_bits
	dst = append(dst, h264NALUTypeSEI)
	return appendEmulationPrevented(dst, rbsp[:])
}

// appendEmulationPrevented appends rbsp to dst with an emulation prevention
// byte (0x03) after every two zero bytes that a byte ≤ 3 follows, so that
// the NAL unit never contains a start code.
func appendEmulationPrevented(dst, rbsp []byte) []byte {
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			dst = append(dst, 3)
			zeros = 0
		}
		dst = append(dst, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return dst
}

// ReadStamp returns the send time carried by nalu if it is an SEI NAL unit
// (H.264, or with h265 an H.265 prefix SEI) holding a send-time stamp.
func ReadStamp(nalu []byte, h265 bool) (time.Time, bool) {
	var body []byte
	if h265 {
		if len(nalu) < 3 || (nalu[0]>>1)&0x3f != h265NALUTypePrefixSEI {
			return time.Time{}, false
		}
		body = nalu[2:]
	} else {
		if len(nalu) < 2 || nalu[0]&0x1f != h264NALUTypeSEI {
			return time.Time{}, false
		}
		body = nalu[1:]
	}
	// Cheap rejection before any copying: the UUID must be in there.
	if !bytes.Contains(body, StampUUID[:4]) {
		return time.Time{}, false
	}
	rbsp := removeEmulationPrevention(body)
	for len(rbsp) > 0 && rbsp[0] != 0x80 {
		typ, n := seiValue(rbsp)
		rbsp = rbsp[n:]
		size, n := seiValue(rbsp)
		rbsp = rbsp[n:]
		if n == 0 || size > len(rbsp) {
			return time.Time{}, false
		}
		p := rbsp[:size]
		rbsp = rbsp[size:]
		if typ == seiUserDataUnregistered && size >= stampPayloadSize && bytes.Equal(p[:len(StampUUID)], StampUUID[:]) {
			ns := binary.BigEndian.Uint64(p[len(StampUUID):])
			return time.Unix(0, int64(ns)), true
		}
	}
	return time.Time{}, false
}

// seiValue reads an SEI payload type or size (a run of 0xFF bytes, each
// adding 255, then the last byte) and returns it and the bytes it took;
// 0 bytes means b ran out.
func seiValue(b []byte) (int, int) {
	v := 0
	for i, x := range b {
		v += int(x)
		if x != 0xff {
			return v, i + 1
		}
	}
	return 0, 0
}

// removeEmulationPrevention drops the 0x03 that follows every two zero bytes.
func removeEmulationPrevention(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, x := range b {
		if zeros >= 2 && x == 3 {
			zeros = 0
			continue
		}
		out = append(out, x)
		if x == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
