package stream

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
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

// depacker is a pair of depacketizers under comparison: gortsplib's (ref),
// the oracle, and camd's (mine). refMore and refMidUnit are the oracle's
// errors that mean "more packets to come" and "joined in the middle of a
// fragmented NAL unit".
type depacker struct {
	ref        func(*rtp.Packet) ([][]byte, error)
	mine       func(*rtp.Packet, *rtpArena) ([][]byte, error)
	refMore    error
	refMidUnit error
	// fBit: the oracle clears the F bit of a NAL unit joined from FU-A,
	// where RFC 6184 §5.8 says the FU indicator's F bit is the NAL unit's;
	// camd keeps it. A NAL unit of camd's may then differ from the
	// oracle's in that bit alone, and only where camd's has it set.
	fBit bool
	// ignored, when not nil, counts the NAL units of reserved types camd
	// has left out. RFC 6184 §5.4 tells receivers to ignore them; the
	// oracle passes them on. A single NAL unit packet of such a type
	// without a start code in it, the common case, is given to the oracle
	// as a packet that it reads as no NAL unit at all (emptyForOracle), so
	// the comparison stays exact. After any other (in a STAP-A, in
	// fragments, between start codes) the two differ in what their access
	// units hold and therefore where they end: the rest of the stream is
	// only checked for what camd gives, no NAL unit of a reserved type.
	ignored func() int
}

// emptyForOracle is an FU-A with the start and end bits whose NAL unit is
// a start code alone: the oracle then has the state a single NAL unit
// packet leaves, and no NAL unit.
var emptyForOracle = []byte{28, 0xc0, 0, 0, 1}

func h264Depackers(t testing.TB) depacker {
	ref := &rtph264.Decoder{PacketizationMode: 1}
	if err := ref.Init(); err != nil {
		t.Fatal(err)
	}
	d := &h264Depacketizer{}
	return depacker{ref: ref.Decode, mine: d.decode, refMore: rtph264.ErrMorePacketsNeeded,
		refMidUnit: rtph264.ErrNonStartingPacketAndNoPrevious, fBit: true,
		ignored: func() int { return d.ignored }}
}

// depackCompare feeds the packets to both depacketizers and fails at the
// first packet where their results differ. It returns the access units
// and the errors other than "more packets needed" that both gave, and the
// packets only checked for NAL units of reserved types. With viaArena,
// packets reach camd's as take hands them over: copied into an arena from
// a buffer that is then overwritten, the arena flipped after each access
// unit has been compared.
//
// Results are compared by kind, not by message: an access unit (the same
// NAL units), "more packets needed", "joined mid-unit" or a refusal. One
// exception: camd counts the stream as followed from the start of a NAL
// unit after any packet that is not a continuing fragment, the oracle
// after some kinds only (for H.265, never after a single NAL unit packet).
// So where the oracle gives its "joined mid-unit" error, camd may give a
// loss instead (errFragmentStart): both drop the packet. For NAL units of
// reserved types, see depacker.ignored.
func depackCompare(t testing.TB, dp depacker, pkts []depackPacket, viaArena bool) (aus, errs, unchecked int) {
	var arena rtpArena
	defer arena.release()
	buf := make([]byte, 0, 2048)
	explained := 0 // reserved NAL units camd is expected to have ignored
	for i, p := range pkts {
		refPkt := &rtp.Packet{
			Header:  rtp.Header{SequenceNumber: p.seq, Timestamp: p.ts, Marker: p.marker},
			Payload: append([]byte(nil), p.payload...),
		}
		if dp.ignored != nil && len(p.payload) > 0 && h264Reserved(p.payload[0]) && !bytes.Contains(p.payload, annexBStart) {
			refPkt.Payload = append([]byte(nil), emptyForOracle...)
			explained++
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
		if dp.ignored != nil && dp.ignored() > explained {
			unchecked++
			for k, nal := range got {
				if h264Reserved(nal[0]) {
					t.Fatalf("packet %d: NAL unit %d is of a reserved type: % x", i, k, head(nal))
				}
			}
			if viaArena && gotErr == nil {
				arena.flip()
			}
			continue
		}

		wantKind, gotKind := dp.refKind(wantErr), depackKind(gotErr)
		if wantKind == "joined mid-unit" && errors.Is(gotErr, errFragmentStart) {
			gotKind = wantKind // the exception above
		}
		if wantKind != gotKind {
			t.Fatalf("packet %d (% x): %s (%v), the oracle's %s (%v)", i, head(p.payload), gotKind, gotErr, wantKind, wantErr)
		}
		if wantErr != nil {
			if wantErr != dp.refMore { //nolint:errorlint // returned unwrapped
				errs++
			}
			continue
		}
		if (want == nil) != (got == nil) || len(want) != len(got) {
			t.Fatalf("packet %d (% x): %d NAL units (nil %v), the oracle's %d (nil %v)", i, head(p.payload), len(got), got == nil, len(want), want == nil)
		}
		for k := range want {
			if !dp.sameNAL(got[k], want[k]) {
				t.Fatalf("packet %d: NAL unit %d differs: % x, the oracle's % x", i, k, head(got[k]), head(want[k]))
			}
		}
		aus++
		if viaArena {
			arena.flip() // as take does once the frame is handed on
		}
	}
	return aus, errs, unchecked
}

// refKind and depackKind name the kind of a result of the oracle and of
// camd's depacketizers.
func (dp depacker) refKind(err error) string {
	switch err { //nolint:errorlint // returned unwrapped
	case nil:
		return "access unit"
	case dp.refMore:
		return "more packets needed"
	case dp.refMidUnit:
		return "joined mid-unit"
	}
	return "refusal"
}

func depackKind(err error) string {
	switch err { //nolint:errorlint // returned unwrapped
	case nil:
		return "access unit"
	case errAUIncomplete:
		return "more packets needed"
	case errJoinedMidUnit:
		return "joined mid-unit"
	}
	return "refusal"
}

// sameNAL compares a NAL unit of camd's with the oracle's (see fBit).
func (dp depacker) sameNAL(got, want []byte) bool {
	if bytes.Equal(got, want) {
		return true
	}
	return dp.fBit && len(got) > 0 && len(got) == len(want) &&
		got[0] == want[0]|0x80 && bytes.Equal(got[1:], want[1:])
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
			if i > 0 && n[i-1] == 0 && n[i] < 3 {
				n[i] = 3 // as emulation prevention does: no start code by chance
			}
		}
		n[0] = byte(r.IntN(4)<<5) | byte(1+r.IntN(23)) // types 1 to 23
		if r.IntN(50) == 0 {
			n[0] |= 0x80 // the F bit: a unit with errors, passed on as such
		}
		switch r.IntN(40) {
		case 0: // a start code inside (3 or 4 bytes), before a NAL unit header
			if len(n) < 2 {
				break
			}
			at := 1 + r.IntN(len(n)-1)
			sc := []byte{0, 0, 1}
			if r.IntN(2) == 0 {
				sc = []byte{0, 0, 0, 1}
			}
			n = append(n[:at], append(sc, n[at:]...)...)
			// Not of a reserved type, which would end the exact comparison.
			n[at+len(sc)] = n[at+len(sc)]&0xe0 | byte(1+r.IntN(23))
		case 1: // zeros without a start code, after the header
			if len(n) < 2 {
				break
			}
			at := 1 + r.IntN(len(n)-1)
			n = append(n[:at], append([]byte{0, 0, 3, 0, 0, 3}, n[at:]...)...)
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
			case c == 2: // empty, truncated or of a reserved type
				emit([][]byte{{}, {0x1c}, {0x18}, {0x18, 0, 9, 1}, {0x7e, 1}, {0x1f, 2, 3}}[r.IntN(6)], last)
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

// h264Depacketizer gives the oracle's access units, and accepts and refuses
// the same packets, through the arena (take's path) and without it, for
// generated streams that reach every branch of both.
func TestH264DepacketizerMatchesGortsplib(t *testing.T) {
	t.Parallel()
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
				dp := depackers(t)
				a, e, unchecked := depackCompare(t, dp, pkts, viaArena)
				if unchecked > 0 {
					t.Fatalf("%d packets not compared (NAL units of reserved types)", unchecked)
				}
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

// The clips, as cameras send them, give the same access units, and take's
// path allocates nothing for them once warm: H.264 as the simulator sends
// it, the same with every single NAL unit packet wrapped in an Annex-B
// start code (as some cameras do), and H.265.
func TestDepacketizerClips(t *testing.T) {
	for _, c := range []struct {
		name      string
		depackers func(testing.TB) depacker
		codec     string
		annexB    bool
	}{
		{"h264", h264Depackers, CodecH264, false},
		{"h264-annexb", h264Depackers, CodecH264, true},
		{"h265", h265Depackers, CodecH265, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			pkts, naus := clipStream(t, c.codec, c.annexB)
			if n, errs, unchecked := depackCompare(t, c.depackers(t), pkts, true); n != naus || errs != 0 || unchecked != 0 {
				t.Fatalf("%d access units, %d errors, %d packets not compared, from %d", n, errs, unchecked, naus)
			}

			decode := c.depackers(t).mine
			var arena rtpArena
			defer arena.release()
			pkt := &rtp.Packet{}
			feed := func(p depackPacket, round int) {
				pkt.Header.SequenceNumber = p.seq + uint16(round*len(pkts))
				pkt.Header.Timestamp = p.ts + uint32(round*naus*3600)
				pkt.Header.Marker = p.marker
				pkt.Payload, _ = arena.add(p.payload)
				if _, err := decode(pkt, &arena); err == nil {
					arena.flip()
				} else if err != errAUIncomplete { //nolint:errorlint // returned unwrapped
					t.Fatalf("packet %d: %v", p.seq, err)
				}
			}
			// AllocsPerRun rounds down to whole allocations per run, so a
			// run is the whole clip.
			round := 0
			feedAll := func() {
				for _, p := range pkts {
					feed(p, round)
				}
				round++
			}
			feedAll() // grows the lists and the arena
			if raceDetector {
				t.Log("allocations not counted under the race detector")
				return
			}
			perRound := testing.AllocsPerRun(5, feedAll)
			if perPkt := perRound / float64(len(pkts)); perPkt > 0.005 {
				t.Errorf("%.3f allocations per packet of the clip (%v per %d packets), want none", perPkt, perRound, len(pkts))
			}
		})
	}
}

// clipStream is the clip of codec packetized as the simulator does it, three
// times over, and its number of access units. With annexB, every single NAL
// unit packet has a 4-byte start code before its NAL unit.
func clipStream(t *testing.T, codec string, annexB bool) (pkts []depackPacket, aus int) {
	var au [][]*rtp.Packet
	if codec == CodecH264 {
		_, au = clipPackets(t)
	} else {
		au = packetize(t, &format.H265{PayloadTyp: 96}, loadAnnexB(t, clipH265, true))
	}
	var seq uint16
	for round := range 3 {
		for i, a := range au {
			for _, p := range a {
				payload := p.Payload
				if annexB && payload[0]&0x1f < 24 {
					payload = append([]byte{0, 0, 0, 1}, payload...)
				}
				pkts = append(pkts, depackPacket{payload: payload, seq: seq,
					ts: uint32((round*len(au) + i) * 3600), marker: p.Marker})
				seq++
			}
		}
	}
	return pkts, 3 * len(au)
}

// FuzzH264Depacketizer compares h264Depacketizer with the oracle, as
// depackCompare does, on any packets. Each packet is a length byte, a flags byte (bit 0: the
// marker; bit 1: a new timestamp; bit 2: a sequence number skipped; bit 3:
// through the arena) and the payload.
func FuzzH264Depacketizer(f *testing.F) {
	f.Add([]byte{3, 1, 0x65, 1, 2})
	f.Add([]byte{4, 8, 0x7c, 0x85, 1, 2, 3, 9, 0x7c, 0x45, 3, 4, 4, 10, 0x7c, 0x45, 5, 6})
	f.Add([]byte{7, 3, 0x18, 0, 2, 0x67, 1, 0, 0, 3, 2, 0x65, 0, 0, 0, 1, 0x65, 4})
	f.Add([]byte{1, 0, 0x65, 4, 2, 0x41, 0, 0, 1, 1, 0x41})
	// Annex-B inside RTP; an FU-A with the F bit; STAP-B.
	f.Add([]byte{9, 3, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 4, 1, 0x41, 0, 0, 1})
	f.Add([]byte{3, 0, 0xfc, 0x85, 1, 3, 1, 0xfc, 0x45, 2, 4, 3, 0x19, 0, 1})
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
