package stream

import (
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
)

func h265Depackers(t testing.TB) depacker {
	ref := &rtph265.Decoder{}
	if err := ref.Init(); err != nil {
		t.Fatal(err)
	}
	var d h265Depacketizer
	return depacker{ref: ref.Decode, mine: d.decode, refMore: rtph265.ErrMorePacketsNeeded,
		refMidUnit: rtph265.ErrNonStartingPacketAndNoPrevious}
}

// genH265Stream is genDepackStream for H.265 (RFC 7798): single NAL units,
// aggregation units, fragmentation units split at random, start codes
// inside NAL units, lost packets, PACI and broken packets.
func genH265Stream(r *rand.Rand, aus int) []depackPacket {
	w := &streamWriter{r: r}
	nalu := func() []byte {
		n := make([]byte, 2+r.IntN(3000))
		for i := range n {
			n[i] = byte(r.IntN(256))
		}
		n[0] = byte(r.IntN(48))<<1 | n[0]&0x81 // types 0 to 47
		if r.IntN(40) == 0 {
			at := 2 + r.IntN(len(n)-1)
			n = append(n[:at], append([]byte{0, 0, 0, 1}[r.IntN(2):], n[at:]...)...)
		}
		return n
	}
	emit := w.emit
	for range aus {
		k := 1 + r.IntN(4)
		if r.IntN(50) == 0 {
			k = 10 + r.IntN(30) // around h265.MaxNALUsPerAccessUnit
		}
		for j := range k {
			last := j == k-1
			n := nalu()
			if k > 4 {
				n = n[:min(len(n), 2+r.IntN(10))]
			}
			switch c := r.IntN(40); {
			case c == 0: // a fragmented unit of nothing but a start code: no NAL unit
				emit([]byte{49 << 1, 0, 0x80, 0}, false)
				emit([]byte{49 << 1, 0, 0x40, 1}, last)
			case c == 1: // PACI, or a fragmentation unit with both bits
				emit([][]byte{{50 << 1, 1, 2, 3}, {49 << 1, 1, 0xc1, 5}}[r.IntN(2)], last)
			case c == 2: // empty or truncated
				emit([][]byte{{}, {0x02}, {49 << 1, 1}, {48 << 1, 1, 0}, {48 << 1, 1, 0, 0, 1}, {48 << 1, 1, 0, 9, 1}}[r.IntN(6)], last)
			case c <= 10 && len(n) < 1400: // aggregation unit of this and a small one
				small := nalu()
				small = small[:min(len(small), 2+r.IntN(20))]
				p := []byte{48 << 1, 1}
				for _, x := range [][]byte{small, n} {
					p = append(p, byte(len(x)>>8), byte(len(x)))
					p = append(p, x...)
				}
				emit(p, last)
			case len(n) > 1200 || c <= 12: // fragmentation unit
				if len(n) < 4 {
					n = append(n, 7, 7)
				}
				typ := (n[0] >> 1) & 0x3f
				body := n[2:]
				first := true
				for len(body) > 0 {
					sz := min(len(body), 1+r.IntN(1400))
					if first && sz == len(body) {
						sz-- // a start and an end bit together is an error of its own
					}
					fh := typ
					if first {
						fh |= 0x80
					}
					if sz == len(body) {
						fh |= 0x40
					}
					p := append([]byte{n[0]&0x81 | 49<<1, n[1], fh}, body[:sz]...)
					body = body[sz:]
					first = false
					if r.IntN(300) != 0 { // else dropped before it left
						emit(p, last && len(body) == 0)
					}
				}
			default:
				emit(n, last)
			}
		}
		w.ts += 3600
	}
	return w.out
}

// h265Depacketizer gives the oracle's access units, and accepts and refuses
// the same packets, through the arena and without it.
func TestH265DepacketizerMatchesGortsplib(t *testing.T) {
	t.Parallel()
	compareGenerated(t, h265Depackers, genH265Stream, 2)
}

// FuzzH265Depacketizer is FuzzH264Depacketizer for H.265.
func FuzzH265Depacketizer(f *testing.F) {
	f.Add([]byte{3, 1, 0x26, 1, 2})
	f.Add([]byte{5, 8, 0x62, 1, 0x93, 1, 2, 4, 0, 0x62, 1, 0x13, 3, 4, 1, 0x62, 1, 0x53, 5})
	f.Add([]byte{9, 1, 0x60, 1, 0, 2, 0x40, 1, 0, 2, 0x26, 1})
	// PACI; an FU with both bits; a fragment before any start.
	f.Add([]byte{4, 0, 0x64, 1, 2, 3, 4, 1, 0x62, 1, 0xd3, 5, 4, 3, 0x62, 1, 0x13, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, arena := fuzzPackets(data)
		depackCompare(t, h265Depackers(t), pkts, arena)
	})
}
