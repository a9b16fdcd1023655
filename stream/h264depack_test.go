package stream

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"
)

// depackPacket is one packet of a generated stream.
type depackPacket struct {
	payload []byte
	seq     uint16
	ts      uint32
	marker  bool
}

// depacker is a depacketizer under comparison: gortsplib's (ref) and
// camd's (mine), with the codec's sentinel errors.
type depacker struct {
	ref         func(*rtp.Packet) ([][]byte, error)
	mine        func(*rtp.Packet, *rtpArena) ([][]byte, error)
	more        error // "more packets needed"
	nonStarting error
}

func h264Depackers(t testing.TB) depacker {
	ref := &rtph264.Decoder{PacketizationMode: 1}
	if err := ref.Init(); err != nil {
		t.Fatal(err)
	}
	var d h264Depacketizer
	return depacker{ref.Decode, d.decode, rtph264.ErrMorePacketsNeeded, rtph264.ErrNonStartingPacketAndNoPrevious}
}

// depackCompare feeds the packets to both depacketizers and fails at the
// first packet where their results differ. It returns the access units
// and the errors other than "more packets needed" that both gave. With
// viaArena, packets reach camd's as take hands them over: copied into an
// arena from a buffer that is then overwritten, the arena flipped after
// each access unit.
func depackCompare(t testing.TB, dp depacker, pkts []depackPacket, viaArena bool) (aus, errs int) {
	var arena rtpArena
	defer arena.release()
	buf := make([]byte, 0, 2048)
	for i, p := range pkts {
		refPkt := &rtp.Packet{
			Header:  rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker},
			Payload: append([]byte(nil), p.payload...),
		}
		want, wantErr := dp.ref(refPkt)

		pkt := &rtp.Packet{Header: refPkt.Header}
		var a *rtpArena
		if viaArena {
			buf = append(buf[:0], p.payload...)
			data, reset := arena.add(buf)
			if reset {
				t.Fatalf("packet %d: the arena was reset", i)
			}
			for j := range buf {
				buf[j] = 0xAA
			}
			pkt.Payload, a = data, &arena
		} else {
			pkt.Payload = append([]byte(nil), p.payload...)
		}
		got, gotErr := dp.mine(pkt, a)
		if viaArena && gotErr == nil {
			arena.flip()
		}

		if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
			t.Fatalf("packet %d (% x): error %v, gortsplib's %v", i, head(p.payload), gotErr, wantErr)
		}
		if wantErr == dp.more && gotErr != dp.more || wantErr == dp.nonStarting && gotErr != dp.nonStarting { //nolint:errorlint // sentinels returned as is
			t.Fatalf("packet %d: error %v is not gortsplib's sentinel", i, gotErr)
		}
		if wantErr != nil {
			if wantErr != dp.more { //nolint:errorlint // sentinels returned as is
				errs++
			}
			continue
		}
		if (want == nil) != (got == nil) || len(want) != len(got) {
			t.Fatalf("packet %d (% x): %d NAL units (nil %v), gortsplib's %d (nil %v)", i, head(p.payload), len(got), got == nil, len(want), want == nil)
		}
		for k := range want {
			if !bytes.Equal(want[k], got[k]) {
				t.Fatalf("packet %d: NAL unit %d differs: % x, gortsplib's % x", i, k, head(got[k]), head(want[k]))
			}
		}
		aus++
	}
	return aus, errs
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// genDepackStream makes a stream of access units as cameras send them, good
// and bad: single NAL units, STAP-A, FU-A split at random, NAL units that
// hold start codes (Annex-B inside RTP), lost and reordered packets,
// cameras without the marker bit, and packets no decoder accepts.
func genDepackStream(r *rand.Rand, aus int) []depackPacket {
	w := &streamWriter{r: r, noMarker: r.IntN(4) == 0}
	nalu := func() []byte {
		n := make([]byte, 1+r.IntN(3000))
		for i := range n {
			n[i] = byte(r.IntN(256))
		}
		n[0] = byte(r.IntN(4)<<5) | byte(1+r.IntN(23)) // types 1 to 23
		switch r.IntN(40) {
		case 0: // a start code inside (3 or 4 bytes)
			at := r.IntN(len(n))
			sc := []byte{0, 0, 1}
			if r.IntN(2) == 0 {
				sc = []byte{0, 0, 0, 1}
			}
			n = append(n[:at], append(sc, n[at:]...)...)
		case 1: // zeros without a start code
			at := r.IntN(len(n))
			n = append(n[:at], append([]byte{0, 0, 3, 0, 0}, n[at:]...)...)
		}
		return n
	}
	emit := w.emit
	for range aus {
		k := 1 + r.IntN(4)
		if r.IntN(50) == 0 {
			k = 40 + r.IntN(30) // around h264.MaxNALUsPerAccessUnit
		}
		for j := range k {
			last := j == k-1
			n := nalu()
			if k > 4 {
				n = n[:min(len(n), 1+r.IntN(10))]
			}
			switch c := r.IntN(40); {
			case c == 0: // a fragmented unit of nothing but a start code: no NAL unit
				emit([]byte{0x1c, 0xc0, 0, 0, 1}, last)
			case c == 1: // unsupported aggregation and fragmentation types
				emit([]byte{[]byte{25, 26, 27, 29}[r.IntN(4)], 1, 2, 3}, last)
			case c == 2: // empty or truncated
				emit([][]byte{{}, {0x1c}, {0x18}, {0x18, 0, 9, 1}}[r.IntN(4)], last)
			case c <= 10 && len(n) < 1400: // STAP-A of this and a small one
				small := nalu()
				small = small[:min(len(small), 1+r.IntN(20))]
				p := []byte{0x18}
				for _, x := range [][]byte{small, n} {
					p = append(p, byte(len(x)>>8), byte(len(x)))
					p = append(p, x...)
				}
				if r.IntN(5) == 0 {
					p = append(p, 0, 0, 0) // padding
				}
				emit(p, last)
			case len(n) > 1200 || c <= 12: // FU-A
				body := n[1:]
				first := true
				for len(body) > 0 || first {
					sz := min(len(body), 1+r.IntN(1400))
					fh := n[0] & 0x1F
					if first {
						fh |= 0x80
					}
					if sz == len(body) {
						fh |= 0x40
					}
					p := append([]byte{n[0]&0xE0 | 28, fh}, body[:sz]...)
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
		if r.IntN(30) != 0 {
			w.ts += 3600
		}
	}
	return w.out
}

// streamWriter numbers the packets of a generated stream and loses one in
// about 200 (a gap in the sequence numbers).
type streamWriter struct {
	r        *rand.Rand
	out      []depackPacket
	seq      uint16
	ts       uint32 // the timestamp of the packets emitted next
	noMarker bool   // a camera that never sets the marker bit
}

func (w *streamWriter) emit(payload []byte, marker bool) {
	w.out = append(w.out, depackPacket{payload: payload, seq: w.seq, ts: w.ts, marker: marker && !w.noMarker})
	w.seq++
	if w.r.IntN(200) == 0 {
		w.seq++ // lost
	}
}

// h264Depacketizer gives gortsplib's access units and errors for the same
// packets, through the arena (take's path) and without it, for generated
// streams that reach every branch of both.
func TestH264DepacketizerMatchesGortsplib(t *testing.T) {
	compareGenerated(t, h264Depackers, genDepackStream, 1)
}

// compareGenerated runs depackCompare on 300 streams from gen (seeded with
// stream), through the arena and without it, with fresh depacketizers
// each time.
func compareGenerated(t *testing.T, depackers func(testing.TB) depacker, gen func(*rand.Rand, int) []depackPacket, stream uint64) {
	var aus, errs int
	for seed := range uint64(300) {
		pkts := gen(rand.New(rand.NewPCG(seed, stream)), 60)
		for _, viaArena := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed%d/arena=%v", seed, viaArena), func(t *testing.T) {
				a, e := depackCompare(t, depackers(t), pkts, viaArena)
				aus += a
				errs += e
			})
		}
	}
	// The comparison means something only if both kinds of result came.
	if aus < 10000 || errs < 1000 {
		t.Errorf("%d access units and %d errors compared: the streams are too tame", aus, errs)
	}
	t.Logf("%d access units and %d errors compared", aus, errs)
}

// The clip, as the simulator sends it, gives the same access units, and
// take's path allocates nothing for it.
func TestH264DepacketizerClip(t *testing.T) {
	_, aus := clipPackets(t)
	var pkts []depackPacket
	for round := range 3 {
		for _, au := range aus {
			for _, p := range au {
				pkts = append(pkts, depackPacket{
					payload: p.Payload,
					seq:     p.SequenceNumber + uint16(round*10000),
					ts:      p.Timestamp + uint32(round*len(aus)*3600),
					marker:  p.Marker,
				})
			}
		}
	}
	if n, errs := depackCompare(t, h264Depackers(t), pkts, true); n != 3*len(aus) || errs != 0 {
		t.Fatalf("%d access units, %d errors from %d", n, errs, 3*len(aus))
	}

	var d h264Depacketizer
	var arena rtpArena
	defer arena.release()
	pkt := &rtp.Packet{}
	for _, p := range pkts { // warm up the buffers
		pkt.Header.SequenceNumber, pkt.Header.Timestamp, pkt.Header.Marker = p.seq, p.ts, p.marker
		pkt.Payload, _ = arena.add(p.payload)
		if _, err := d.decode(pkt, &arena); err == nil {
			arena.flip()
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(len(pkts), func() {
		p := pkts[i%len(pkts)]
		i++
		pkt.Header.SequenceNumber, pkt.Header.Timestamp, pkt.Header.Marker = p.seq, p.ts+uint32(9*len(aus)*3600), p.marker
		pkt.Payload, _ = arena.add(p.payload)
		if _, err := d.decode(pkt, &arena); err == nil {
			arena.flip()
		}
	})
	if allocs > 0.05 {
		t.Errorf("%.2f allocations per packet of the clip, want none", allocs)
	}
}

// FuzzH264Depacketizer compares h264Depacketizer with gortsplib's decoder
// on any packets. Each packet is a length byte, a flags byte (bit 0: the
// marker; bit 1: a new timestamp; bit 2: a sequence number skipped; bit 3:
// through the arena) and the payload.
func FuzzH264Depacketizer(f *testing.F) {
	f.Add([]byte{3, 1, 0x65, 1, 2})
	f.Add([]byte{4, 8, 0x7c, 0x85, 1, 2, 3, 9, 0x7c, 0x45, 3, 4, 4, 10, 0x7c, 0x45, 5, 6})
	f.Add([]byte{7, 3, 0x18, 0, 2, 0x67, 1, 0, 0, 3, 2, 0x65, 0, 0, 0, 1, 0x65, 4})
	f.Add([]byte{1, 0, 0x65, 4, 2, 0x41, 0, 0, 1, 1, 0x41})
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, arena := fuzzPackets(data)
		depackCompare(t, h264Depackers(t), pkts, arena)
	})
}

// fuzzPackets reads packets as the depacketizer fuzz targets describe them,
// and whether one asked for the arena.
func fuzzPackets(data []byte) (pkts []depackPacket, arena bool) {
	var seq uint16
	var ts uint32
	for len(data) >= 2 {
		n, flags := int(data[0]), data[1]
		data = data[2:]
		n = min(n, len(data))
		if flags&2 != 0 {
			ts += 3600
		}
		if flags&4 != 0 {
			seq++
		}
		arena = arena || flags&8 != 0
		pkts = append(pkts, depackPacket{payload: data[:n], seq: seq, ts: ts, marker: flags&1 != 0})
		seq++
		data = data[n:]
	}
	return pkts, arena
}
