package relay

import "github.com/camd/camd/stream"

// seiRecoveryPoint is the SEI payload type of a recovery point, in H.264
// (D.1.8) and H.265 (D.2.8) alike: decoding may start at the picture it
// precedes. x264 with intra refresh sends one where a keyframe would be.
const seiRecoveryPoint = 6

// NAL unit types of SEI.
const (
	h264NALSEI       = 6
	h265NALPrefixSEI = 39
)

// recoveryPoint reports whether an access unit of codec carries an SEI
// recovery point message.
func recoveryPoint(codec string, au [][]byte) bool {
	for _, nalu := range au {
		switch codec {
		case stream.CodecH264:
			if len(nalu) > 1 && nalu[0]&0x1F == h264NALSEI && seiHas(nalu[1:], seiRecoveryPoint) {
				return true
			}
		case stream.CodecH265:
			if len(nalu) > 2 && (nalu[0]>>1)&0x3F == h265NALPrefixSEI && seiHas(nalu[2:], seiRecoveryPoint) {
				return true
			}
		}
	}
	return false
}

// seiHas reports whether the SEI payload b (the NAL unit after its header,
// with emulation prevention bytes) holds a message of type typ. It walks
// the sei_message headers (payload type and size, each coded as a run of
// 0xFF bytes and a last byte) without looking into payloads.
func seiHas(b []byte, typ int) bool {
	r := rbsp{b: b}
	for {
		if r.trailing() {
			return false
		}
		t, ok := r.ff()
		if !ok {
			return false
		}
		if t == typ {
			return true
		}
		size, ok := r.ff()
		if !ok || !r.skip(size) {
			return false
		}
	}
}

// rbsp reads the bytes of a NAL unit payload with its emulation prevention
// bytes (0x03 after two zero bytes) removed.
type rbsp struct {
	b     []byte
	i     int
	zeros int
}

func (r *rbsp) next() (byte, bool) {
	for r.i < len(r.b) {
		c := r.b[r.i]
		r.i++
		if r.zeros >= 2 && c == 3 {
			r.zeros = 0
			continue
		}
		if c == 0 {
			r.zeros++
		} else {
			r.zeros = 0
		}
		return c, true
	}
	return 0, false
}

// trailing reports whether only the RBSP trailing bits (and any trailing
// zero bytes) are left: there is no further message.
func (r *rbsp) trailing() bool {
	rest := r.b[r.i:]
	for len(rest) > 0 && rest[len(rest)-1] == 0 {
		rest = rest[:len(rest)-1]
	}
	return len(rest) == 0 || (len(rest) == 1 && rest[0] == 0x80)
}

// ff reads a payload type or size: 0xFF bytes that add 255 each, then a
// last byte that is added.
func (r *rbsp) ff() (int, bool) {
	v := 0
	for {
		c, ok := r.next()
		if !ok {
			return 0, false
		}
		v += int(c)
		if c != 0xFF {
			return v, true
		}
		if v > 1<<20 {
			return 0, false
		}
	}
}

func (r *rbsp) skip(n int) bool {
	for range n {
		if _, ok := r.next(); !ok {
			return false
		}
	}
	return true
}
