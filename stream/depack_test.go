package stream

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// decodeSeq feeds payloads to decode as consecutive packets of timestamp
// ts, the last with the marker bit, and returns the last result.
func decodeSeq(decode func(*rtp.Packet, *rtpArena) ([][]byte, error), seq uint16, ts uint32, payloads ...[]byte) ([][]byte, error) {
	var au [][]byte
	var err error
	for i, p := range payloads {
		au, err = decode(&rtp.Packet{
			Header:  rtp.Header{SequenceNumber: seq + uint16(i), Timestamp: ts, Marker: i == len(payloads)-1},
			Payload: p,
		}, nil)
	}
	return au, err
}

// A NAL unit joined from FU-A takes its F and NRI bits from the FU
// indicator and its type from the FU header (RFC 6184 §5.8).
func TestH264FUAHeader(t *testing.T) {
	var d h264Depacketizer
	au, err := decodeSeq(d.decode, 1, 0, []byte{0x80 | 0x40 | 28, 0x80 | 5, 1, 2}, []byte{0x80 | 0x40 | 28, 0x40 | 5, 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x80 | 0x40 | 5, 1, 2, 3}; len(au) != 1 || !bytes.Equal(au[0], want) {
		t.Fatalf("access unit % x, want [% x]", au, want)
	}
}

// A camera that wraps NAL units in Annex-B inside RTP: once a 4-byte start
// code shows it, single NAL unit packets are cut at start codes, and one
// holding only a start code is refused.
func TestH264AnnexBInRTP(t *testing.T) {
	var d h264Depacketizer
	// Before any 4-byte start code, 00 00 01 inside a NAL unit is data.
	au, err := decodeSeq(d.decode, 1, 0, []byte{0x41, 0, 0, 1, 7})
	if err != nil || len(au) != 1 || len(au[0]) != 5 {
		t.Fatalf("got % x, %v; want the one NAL unit as sent", au, err)
	}
	au, err = decodeSeq(d.decode, 2, 3600, []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3})
	want := [][]byte{{0x67, 1}, {0x68, 2}, {0x65, 3}}
	if err != nil || !equalAU(au, want) {
		t.Fatalf("got % x, %v; want % x", au, err, want)
	}
	// From now on a 3-byte start code cuts too.
	au, err = decodeSeq(d.decode, 3, 7200, []byte{0x41, 9, 0, 0, 1, 0x41, 8})
	if want := [][]byte{{0x41, 9}, {0x41, 8}}; err != nil || !equalAU(au, want) {
		t.Fatalf("got % x, %v; want % x", au, err, want)
	}
	if _, err := decodeSeq(d.decode, 4, 10800, []byte{0, 0, 0, 1}); !errors.Is(err, errOnlyStartCode) {
		t.Fatalf("a packet of only a start code: %v, want errOnlyStartCode", err)
	}
}

// NAL units of the types RFC 6184 §5.4 reserves (0, 30, 31) are ignored,
// whether alone, in a STAP-A or in fragments; the packets still count for
// the marker bit.
func TestH264ReservedTypesIgnored(t *testing.T) {
	var d h264Depacketizer
	au, err := decodeSeq(d.decode, 1, 0,
		[]byte{0x41, 1}, // a P slice
		[]byte{0x7e, 2}, // type 30
		[]byte{24, 0, 2, 0x1f, 3, 0, 2, 0x41, 4, 0, 2, 0x60, 5}, // STAP-A: types 31, 1, 0
		[]byte{28, 0x80 | 30, 6},                                // FU-A of type 30
		[]byte{28, 0x40 | 30, 7},
	)
	if want := [][]byte{{0x41, 1}, {0x41, 4}}; err != nil || !equalAU(au, want) {
		t.Fatalf("got % x, %v; want % x", au, err, want)
	}
	if d.ignored != 4 {
		t.Errorf("%d NAL units counted as ignored, want 4", d.ignored)
	}
	// A packet of nothing else still ends the access unit.
	if au, err := decodeSeq(d.decode, 10, 3600, []byte{0x7f, 9}); au != nil || err != nil {
		t.Fatalf("got % x, %v; want an empty access unit", au, err)
	}
}

func equalAU(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Packets of the structures camd does not read are refused with an error
// that names them; fragments before any start are not failures, and after
// one they count as a loss.
func TestDepacketizerRefusals(t *testing.T) {
	var h264d h264Depacketizer
	for _, typ := range []byte{25, 26, 27, 29} { // STAP-B, MTAP16, MTAP24, FU-B
		if _, err := decodeSeq(h264d.decode, 1, 0, []byte{typ, 0x65, 1, 2}); !errors.Is(err, errH264Interleaved) {
			t.Errorf("H.264 packet type %d: %v, want errH264Interleaved", typ, err)
		}
	}
	var h265d h265Depacketizer
	if _, err := decodeSeq(h265d.decode, 1, 0, []byte{50 << 1, 1, 2, 3}); !errors.Is(err, errPACI) {
		t.Errorf("PACI: %v, want errPACI", err)
	}
	if _, err := decodeSeq(h265d.decode, 1, 0, []byte{49 << 1, 1, 0xc0 | 19, 3}); !errors.Is(err, errFUStartAndEnd) {
		t.Errorf("an FU with both bits: %v, want errFUStartAndEnd", err)
	}

	for name, decode := range map[string]func(*rtp.Packet, *rtpArena) ([][]byte, error){
		"h264": new(h264Depacketizer).decode,
		"h265": new(h265Depacketizer).decode,
	} {
		mid := []byte{28, 0x05, 1, 2} // FU-A, neither start nor end
		single := []byte{0x41, 1}     // a P slice
		if name == "h265" {
			mid, single = []byte{49 << 1, 1, 1, 2}, []byte{1 << 1, 1, 1}
		}
		if _, err := decodeSeq(decode, 1, 0, mid); err != errJoinedMidUnit { //nolint:errorlint // returned unwrapped
			t.Errorf("%s: a fragment first: %v, want errJoinedMidUnit", name, err)
		}
		if _, err := decodeSeq(decode, 2, 0, single); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := decodeSeq(decode, 3, 3600, mid); !errors.Is(err, ErrPacketsLost) {
			t.Errorf("%s: a fragment without its start: %v, want a loss", name, err)
		}
	}
}

// The results that are not failures reach no one as decode errors.
func TestIngestQuietDepackResults(t *testing.T) {
	var frames int
	in := newTestIngest(t, &format.H264{PayloadTyp: 96, PacketizationMode: 1}, func(Frame) { frames++ })
	for i, p := range []struct {
		payload []byte
		marker  bool
	}{
		{[]byte{0x7c, 0x45, 1, 2}, true},  // the end of an IDR slice begun before we joined
		{[]byte{0x7c, 0x81, 1, 2}, false}, // the start of a P slice
		{[]byte{0x7c, 0x41, 3}, true},
	} {
		in.handle(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Marker: p.marker},
			Payload: p.payload}, 0, time.Now())
	}
	if n := in.decodeErrors.Load(); n != 0 || frames != 1 {
		t.Fatalf("%d decode errors and %d frames, want none and 1", n, frames)
	}
}

// A hostile camera cannot grow a depacketizer: too many NAL units, too
// large a NAL unit or access unit are refused, and what the depacketizer
// keeps stays small.
func TestDepacketizerBounds(t *testing.T) {
	t.Run("STAP-A of many units", func(t *testing.T) {
		var d h264Depacketizer
		p := []byte{24}
		for range 5000 {
			p = append(p, 0, 1, 0x41)
		}
		if _, err := decodeSeq(d.decode, 1, 0, p); !errors.Is(err, errTooManyUnits) {
			t.Fatalf("%v, want errTooManyUnits", err)
		}
		if c := cap(d.units); c > 2*h264Limits.units {
			t.Errorf("the list of units grew to %d", c)
		}
	})
	t.Run("AP of many units", func(t *testing.T) {
		var d h265Depacketizer
		p := []byte{48 << 1, 1}
		for range 5000 {
			p = append(p, 0, 2, 2, 1)
		}
		if _, err := decodeSeq(d.decode, 1, 0, p); !errors.Is(err, errTooManyUnits) {
			t.Fatalf("%v, want errTooManyUnits", err)
		}
		if c := cap(d.units); c > 2*h265Limits.units {
			t.Errorf("the list of units grew to %d", c)
		}
	})
	t.Run("FU-A of many start codes", func(t *testing.T) {
		var d h264Depacketizer
		body := bytes.Repeat([]byte{0, 0, 1, 0x41}, 15000)
		p := append([]byte{28, 0x80 | 0x40 | 1}, body...)
		if _, err := decodeSeq(d.decode, 1, 0, p); !errors.Is(err, errTooManyUnits) {
			t.Fatalf("%v, want errTooManyUnits", err)
		}
		if c := cap(d.units); c > 2*h264Limits.units {
			t.Errorf("the list of units grew to %d", c)
		}
	})
	t.Run("NAL unit too large", func(t *testing.T) {
		var d h264Depacketizer
		piece := make([]byte, 60000)
		pkts := [][]byte{append([]byte{28, 0x80 | 5}, piece...)}
		for range 8 << 20 / len(piece) {
			pkts = append(pkts, append([]byte{28, 5}, piece...))
		}
		if _, err := decodeSeq(d.decode, 1, 0, pkts...); !errors.Is(err, errUnitTooLarge) {
			t.Fatalf("%v, want errUnitTooLarge", err)
		}
		if len(d.fu.frags) != 0 || d.fu.length != 0 {
			t.Errorf("%d fragments (%d bytes) kept after the refusal", len(d.fu.frags), d.fu.length)
		}
	})
	t.Run("access unit too large", func(t *testing.T) {
		var d h265Depacketizer
		piece := make([]byte, 60000)
		var pkts [][]byte
		for range 3 { // three NAL units of 3.6 MB
			pkts = append(pkts, append([]byte{49 << 1, 1, 0x80 | 1}, piece...))
			for range 59 {
				pkts = append(pkts, append([]byte{49 << 1, 1, 1}, piece...))
			}
			pkts = append(pkts, []byte{49 << 1, 1, 0x40 | 1, 7})
		}
		if _, err := decodeSeq(d.decode, 1, 0, pkts...); !errors.Is(err, errAUTooLarge) {
			t.Fatalf("%v, want errAUTooLarge", err)
		}
		if n := len(d.gather.lists[d.gather.fill]); n != 0 || d.gather.total != 0 {
			t.Errorf("%d NAL units (%d bytes) kept after the refusal", n, d.gather.total)
		}
	})
}
