package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/camd/camd/stream"
)

// decodeFunc is gortsplib's decoder for one track, the oracle the
// packetizer is checked against: it returns the access unit when a packet
// completes one, and nil, nil when it needs more packets.
type decodeFunc func(*rtp.Packet) ([][]byte, error)

func newOracle(tb testing.TB, codec string) decodeFunc {
	tb.Helper()
	switch codec {
	case stream.CodecH264:
		d, err := (&format.H264{PayloadTyp: 96, PacketizationMode: 1}).CreateDecoder()
		if err != nil {
			tb.Fatal(err)
		}
		return func(pkt *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(pkt)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
				return nil, nil
			}
			return au, err
		}
	case stream.CodecH265:
		d, err := (&format.H265{PayloadTyp: 96}).CreateDecoder()
		if err != nil {
			tb.Fatal(err)
		}
		return func(pkt *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(pkt)
			if errors.Is(err, rtph265.ErrMorePacketsNeeded) {
				return nil, nil
			}
			return au, err
		}
	}
	tb.Fatalf("no oracle for %q", codec)
	return nil
}

// sent is what a test expects of the packets of one access unit.
type sent struct {
	ch   byte
	pt   uint8
	ssrc uint32
	seq  uint16 // of the first packet
	ts   uint32
}

// packet kinds, by the type in the payload's first NAL unit header.
const (
	kindSingle = "single"
	kindAgg    = "aggregate"
	kindFrag   = "fragment"
)

func packetKind(codec string, payload []byte) string {
	if codec == stream.CodecH265 {
		switch (payload[0] >> 1) & 0x3f {
		case 48:
			return kindAgg
		case 49:
			return kindFrag
		}
		return kindSingle
	}
	switch payload[0] & 0x1f {
	case 24:
		return kindAgg
	case 28:
		return kindFrag
	}
	return kindSingle
}

// checkPackets walks buf, one access unit as appendAU wrote it in n
// packets, checks every interleaved and RTP header, and that the oracle
// decodes exactly the non-empty NAL units of au from it. It returns the
// payload kinds seen, and the RTP packets' lengths.
func checkPackets(tb testing.TB, codec string, buf []byte, n int, w sent, au [][]byte, decode decodeFunc) (map[string]int, []int) {
	tb.Helper()
	var want [][]byte
	for _, nalu := range au {
		if len(nalu) > 0 {
			want = append(want, nalu)
		}
	}
	var offs, lens []int
	eachPacket(buf, func(off, l int) {
		offs = append(offs, off)
		lens = append(lens, l)
	})
	kinds := map[string]int{}
	var got [][]byte
	off, i := 0, 0
	for off < len(buf) {
		if len(buf)-off < 4 {
			tb.Fatalf("packet %d: %d bytes left, no room for an interleaved header", i, len(buf)-off)
		}
		if buf[off] != '$' || buf[off+1] != w.ch {
			tb.Fatalf("packet %d: interleaved header % x, want '$' and channel %d", i, buf[off:off+2], w.ch)
		}
		l := int(binary.BigEndian.Uint16(buf[off+2:]))
		if l > maxRTPPacket {
			tb.Fatalf("packet %d: %d bytes, more than %d", i, l, maxRTPPacket)
		}
		if off+4+l > len(buf) {
			tb.Fatalf("packet %d: length %d runs past the buffer", i, l)
		}
		if i >= len(offs) || offs[i] != off || lens[i] != l {
			tb.Fatalf("packet %d at %d (%d bytes): eachPacket gave %v %v", i, off, l, offs, lens)
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[off+4 : off+4+l]); err != nil {
			tb.Fatalf("packet %d: %v", i, err)
		}
		last := off+4+l == len(buf)
		switch {
		case pkt.Version != 2 || pkt.Padding || pkt.Extension || len(pkt.CSRC) != 0:
			tb.Fatalf("packet %d: header %v", i, pkt.Header)
		case pkt.PayloadType != w.pt || pkt.SSRC != w.ssrc:
			tb.Fatalf("packet %d: payload type %d SSRC %x, want %d %x", i, pkt.PayloadType, pkt.SSRC, w.pt, w.ssrc)
		case pkt.SequenceNumber != w.seq+uint16(i):
			tb.Fatalf("packet %d: sequence number %d, want %d", i, pkt.SequenceNumber, w.seq+uint16(i))
		case pkt.Timestamp != w.ts:
			tb.Fatalf("packet %d: timestamp %d, want %d", i, pkt.Timestamp, w.ts)
		case pkt.Marker != last:
			tb.Fatalf("packet %d of %d bytes: marker %v", i, len(buf), pkt.Marker)
		case len(pkt.Payload) == 0:
			tb.Fatalf("packet %d: empty payload", i)
		}
		kinds[packetKind(codec, pkt.Payload)]++
		dec, err := decode(&pkt)
		if err != nil {
			tb.Fatalf("packet %d: decoder: %v", i, err)
		}
		if dec != nil {
			if !last {
				tb.Fatalf("packet %d: decoder ended the access unit before the last packet", i)
			}
			got = dec
		}
		off += 4 + l
		i++
	}
	if i != n || len(offs) != n {
		tb.Fatalf("appendAU said %d packets, buffer holds %d, eachPacket saw %d", n, i, len(offs))
	}
	if len(got) != len(want) {
		tb.Fatalf("decoded %d NAL units, want %d", len(got), len(want))
	}
	for k := range want {
		if !bytes.Equal(got[k], want[k]) {
			tb.Fatalf("NAL unit %d: decoded %d bytes, want %d (differ)", k, len(got[k]), len(want[k]))
		}
	}
	return kinds, lens
}

func clipCodec(c *clip) string {
	if c.codec == "" {
		return stream.CodecH264
	}
	return c.codec
}

// TestPacketizeClips sends every access unit of real clips through the
// packetizer and gortsplib's decoder, with the sequence number and the
// timestamp wrapping on the way.
func TestPacketizeClips(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *clip
	}{
		{"sim", loadClip(t, "../sim/clip.h264")},
		{"h264", loadClip(t, "../testdata/h264_640x480_25fps.h264")},
		{"h265", loadH265Clip(t, "../testdata/h265_320x240_25fps.h265")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			codec := clipCodec(tc.c)
			p := &packetizer{codec: codec, pt: 96, ssrc: 0xdeadbeef, seq: 65000}
			decode := newOracle(t, codec)
			all := map[string]int{}
			var buf []byte
			ts := uint32(1<<32 - 20*3600)
			for _, au := range tc.c.aus {
				w := sent{ch: 4, pt: 96, ssrc: 0xdeadbeef, seq: p.seq, ts: ts}
				var n int
				var err error
				buf, n, err = p.appendAU(buf[:0], 4, au, ts)
				if err != nil {
					t.Fatal(err)
				}
				kinds, _ := checkPackets(t, codec, buf, n, w, au, decode)
				for k, v := range kinds {
					all[k] += v
				}
				if p.seq != w.seq+uint16(n) {
					t.Fatalf("next sequence number %d after %d packets from %d", p.seq, n, w.seq)
				}
				ts += 3600
			}
			t.Logf("%d access units: %v packets", len(tc.c.aus), all)
			if all[kindAgg] == 0 {
				t.Error("parameter sets were never aggregated")
			}
			if codec == stream.CodecH264 && all[kindFrag] == 0 {
				t.Error("no NAL unit was fragmented")
			}
		})
	}
}

// testNALU is a NAL unit of size bytes (an IDR slice header) with no zero
// byte in it, so that no start code can appear.
func testNALU(codec string, size int, seed byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7+int(seed)) | 1
	}
	if codec == stream.CodecH264 {
		b[0] = 0x65
	} else {
		b[0], b[1] = 19<<1, 1
	}
	return b
}

// wantPackets is how many packets RFC 6184/7798 packetization with
// maxPayload-byte payloads needs for one NAL unit of size bytes.
func wantPackets(codec string, size int) int {
	if size <= maxPayload {
		return 1
	}
	hdr, fu := 1, 2 // NAL unit header dropped, FU indicator and header added
	if codec == stream.CodecH265 {
		hdr, fu = 2, 3
	}
	per := maxPayload - fu
	return (size - hdr + per - 1) / per
}

// TestPacketizeSizes tries NAL units around every size where the packets
// change shape, alone and between small ones.
func TestPacketizeSizes(t *testing.T) {
	for _, codec := range []string{stream.CodecH264, stream.CodecH265} {
		t.Run(codec, func(t *testing.T) {
			fu := 2
			if codec == stream.CodecH265 {
				fu = 3
			}
			sizes := []int{2, 3, 100,
				maxPayload - 3, maxPayload - 2, maxPayload - 1, maxPayload, maxPayload + 1, maxPayload + 2, maxPayload + 3,
				2*(maxPayload-fu) + fu - 1, 2*(maxPayload-fu) + fu, 2*(maxPayload-fu) + fu + 1,
				65535, 65536, 65537, 300000}
			if codec == stream.CodecH264 {
				sizes = append(sizes, 1)
			}
			for _, size := range sizes {
				p := &packetizer{codec: codec, pt: 97, ssrc: 1, seq: 65535}
				decode := newOracle(t, codec)
				nalu := testNALU(codec, size, byte(size))
				w := sent{ch: 0, pt: 97, ssrc: 1, seq: 65535, ts: 90000}
				buf, n, err := p.appendAU(nil, 0, [][]byte{nalu}, 90000)
				if err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
				if n != wantPackets(codec, size) {
					t.Fatalf("%d bytes: %d packets, want %d", size, n, wantPackets(codec, size))
				}
				kinds, lens := checkPackets(t, codec, buf, n, w, [][]byte{nalu}, decode)
				if size <= maxPayload && (kinds[kindSingle] != 1 || lens[0] != rtpHeaderLen+size) {
					t.Fatalf("%d bytes: %v packets of %v bytes, want one single NAL unit packet", size, kinds, lens)
				}
				if size > maxPayload && lens[0] != maxRTPPacket {
					t.Fatalf("%d bytes: first fragment of %d bytes, want a full packet", size, lens[0])
				}

				// The same between parameter-set-sized NAL units, with empty ones around.
				au := [][]byte{nil, testNALU(codec, 20, 1), testNALU(codec, 4, 2), {}, nalu, testNALU(codec, 7, 3), nil}
				w.seq = p.seq
				buf, n, err = p.appendAU(buf[:0], 0, au, 90000)
				if err != nil {
					t.Fatalf("%d bytes in a frame: %v", size, err)
				}
				checkPackets(t, codec, buf, n, w, au, decode)
			}
		})
	}
}

// TestPacketizeAggregateBoundary checks that NAL units that fill a packet
// exactly are aggregated, and one byte more is not.
func TestPacketizeAggregateBoundary(t *testing.T) {
	for _, codec := range []string{stream.CodecH264, stream.CodecH265} {
		hdr := 1 // STAP-A NAL unit header
		if codec == stream.CodecH265 {
			hdr = 2 // AP payload header
		}
		room := maxPayload - hdr - 2*2 // two NAL units with their 16-bit sizes
		for _, tc := range []struct {
			extra, packets int
		}{{0, 1}, {1, 2}} {
			p := &packetizer{codec: codec, pt: 96, ssrc: 2}
			au := [][]byte{testNALU(codec, 100, 1), testNALU(codec, room-100+tc.extra, 2)}
			buf, n, err := p.appendAU(nil, 2, au, 5)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.packets {
				t.Fatalf("%s, %d bytes over: %d packets, want %d", codec, tc.extra, n, tc.packets)
			}
			kinds, lens := checkPackets(t, codec, buf, n, sent{ch: 2, pt: 96, ssrc: 2, ts: 5}, au, newOracle(t, codec))
			if tc.extra == 0 && (kinds[kindAgg] != 1 || lens[0] != maxRTPPacket) {
				t.Fatalf("%s: %v packets of %v bytes, want one full aggregation packet", codec, kinds, lens)
			}
		}
	}
}

// TestPacketizeRefuses checks that what cannot be sent is refused with a
// clear error and leaves the buffer and the sequence number alone.
func TestPacketizeRefuses(t *testing.T) {
	for _, tc := range []struct {
		codec string
		au    [][]byte
		err   error
	}{
		{stream.CodecH264, nil, errEmptyAU},
		{stream.CodecH264, [][]byte{{}, nil}, errEmptyAU},
		{stream.CodecH265, [][]byte{{}}, errEmptyAU},
		{stream.CodecH264, [][]byte{{0x67, 1}, {0x7c, 0x85, 1}}, errBadNALU},  // FU-A
		{stream.CodecH264, [][]byte{{0x18, 0, 1, 0x65}}, errBadNALU},          // STAP-A
		{stream.CodecH265, [][]byte{{0x40, 1, 5}, {0x26}}, errBadNALU},        // 1-byte NAL unit
		{stream.CodecH265, [][]byte{{49 << 1, 1, 0x93, 1}}, errBadNALU},       // FU
		{stream.CodecH265, [][]byte{{48 << 1, 1, 0, 2, 0x26, 1}}, errBadNALU}, // AP
		{stream.CodecMJPEG, [][]byte{{0xff, 0xd8}}, errPacketCodec},
	} {
		p := &packetizer{codec: tc.codec, pt: 96, ssrc: 3, seq: 10}
		dst := []byte{'$', 0, 0, 0}
		got, n, err := p.appendAU(dst, 0, tc.au, 1)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s %x: error %v, want %v", tc.codec, tc.au, err, tc.err)
		}
		if n != 0 || len(got) != 4 || p.seq != 10 {
			t.Errorf("%s %x: %d packets, buffer %d bytes, next sequence number %d after an error", tc.codec, tc.au, n, len(got), p.seq)
		}
		if err != nil && bytes.ContainsAny([]byte(err.Error()), "\n") {
			t.Errorf("error %q is more than one line", err)
		}
	}
}

// TestPacketizeNoAllocs checks that packetizing into a buffer with room
// allocates nothing.
func TestPacketizeNoAllocs(t *testing.T) {
	c := loadClip(t, "../testdata/h264_640x480_25fps.h264")
	h := loadH265Clip(t, "../testdata/h265_320x240_25fps.h265")
	ph := &packetizer{codec: stream.CodecH264, pt: 96}
	pv := &packetizer{codec: stream.CodecH265, pt: 96}
	buf := make([]byte, 0, 1<<20)
	i := 0
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, Marker: true}, Payload: make([]byte, 160)}
	packets := 0
	allocs := testing.AllocsPerRun(len(c.aus), func() {
		var err error
		buf, _, err = ph.appendAU(buf[:0], 0, c.aus[i%len(c.aus)], uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		buf, _, err = pv.appendAU(buf, 2, h.aus[i%len(h.aus)], uint32(i))
		if err != nil {
			t.Fatal(err)
		}
		buf, err = appendPacket(buf, 4, pkt)
		if err != nil {
			t.Fatal(err)
		}
		buf = appendSenderReport(buf, 1, 1, time.Now(), uint32(i), 1, 2)
		eachPacket(buf, func(off, n int) { packets++ })
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per access unit, want 0", allocs)
	}
	if packets == 0 {
		t.Fatal("no packets")
	}
}

// TestAppendPacket checks that a ready RTP packet comes back as it went in.
func TestAppendPacket(t *testing.T) {
	in := &rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: true, PayloadType: 14, SequenceNumber: 65535,
			Timestamp: 123456789, SSRC: 0xabcdef01, CSRC: []uint32{7},
		},
		Payload: bytes.Repeat([]byte{0xab}, 400),
	}
	dst := []byte("xyz")
	buf, err := appendPacket(dst, 6, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:3]) != "xyz" || buf[3] != '$' || buf[4] != 6 || int(binary.BigEndian.Uint16(buf[5:])) != len(buf)-7 {
		t.Fatalf("interleaved frame starts % x", buf[:7])
	}
	var seen [][2]int
	eachPacket(buf[3:], func(off, n int) { seen = append(seen, [2]int{off, n}) })
	if len(seen) != 1 || seen[0] != [2]int{0, len(buf) - 7} {
		t.Fatalf("eachPacket saw %v", seen)
	}
	var out rtp.Packet
	if err := out.Unmarshal(buf[7:]); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out.Header) != fmt.Sprint(in.Header) || !bytes.Equal(out.Payload, in.Payload) {
		t.Fatalf("got %v, want %v", out.Header, in.Header)
	}

	big := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: make([]byte, 70000)}
	buf2, err := appendPacket(buf, 6, big)
	if !errors.Is(err, errPacketTooBig) || len(buf2) != len(buf) {
		t.Fatalf("70000-byte payload: error %v, buffer %d bytes (was %d)", err, len(buf2), len(buf))
	}
}

// TestSenderReport checks the sender report against pion/rtcp's parser
// and the NTP time against the wall clock it was made from.
func TestSenderReport(t *testing.T) {
	for _, wall := range []time.Time{
		time.Date(2026, 12, 7, 12, 30, 15, 123456789, time.UTC),
		time.Date(2036, 2, 7, 6, 28, 17, 500000000, time.UTC), // NTP era 1
		time.Unix(0, 999999999),
	} {
		buf := appendSenderReport([]byte{1, 2}, 3, 0x11223344, wall, 0xfffffff0, 1000, 1234567)
		if len(buf) != 2+4+28 || buf[2] != '$' || buf[3] != 3 || binary.BigEndian.Uint16(buf[4:]) != 28 {
			t.Fatalf("frame % x", buf)
		}
		pkts, err := rtcp.Unmarshal(buf[6:])
		if err != nil {
			t.Fatal(err)
		}
		sr, ok := pkts[0].(*rtcp.SenderReport)
		if len(pkts) != 1 || !ok {
			t.Fatalf("parsed %v", pkts)
		}
		if sr.SSRC != 0x11223344 || sr.RTPTime != 0xfffffff0 || sr.PacketCount != 1000 || sr.OctetCount != 1234567 || len(sr.Reports) != 0 {
			t.Fatalf("parsed %+v", sr)
		}
		// Back from NTP (seconds since 1900, modulo 2^32) to Unix time.
		sec := int64(sr.NTPTime>>32) - 2208988800
		if sec < 0 {
			sec += 1 << 32
		}
		frac := time.Duration((sr.NTPTime & 0xffffffff) * 1e9 >> 32)
		got := time.Unix(sec, 0).Add(frac)
		if d := got.Sub(wall); d < -time.Nanosecond || d > time.Nanosecond {
			t.Fatalf("NTP time %x is %v, want %v", sr.NTPTime, got.UTC(), wall)
		}
	}
}

// escapeNALU inserts emulation prevention bytes so that no start code
// (and so no "00 00 0x", x <= 3) appears inside, as in any real NAL unit.
func escapeNALU(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/2)
	zeros := 0
	for _, c := range b {
		if zeros == 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// fuzzAU makes an access unit of up to 20 NAL units from data: each a
// 16-bit size (0xf000 and up: 60000 bytes and more) and its bytes, taken
// from data and repeated when data runs out.
func fuzzAU(data []byte, hevc bool) [][]byte {
	var au [][]byte
	total := 0
	for len(data) >= 2 && len(au) < 20 && total < 1<<20 {
		sz := int(data[0])<<8 | int(data[1])
		data = data[2:]
		l := sz % 3100
		if sz >= 0xf000 {
			l = 60000 + (sz&0xfff)*32
		}
		if hevc && l == 1 {
			l = 2
		}
		nalu := make([]byte, l)
		k := copy(nalu, data)
		data = data[k:]
		for i := k; i < l; i++ {
			if k > 0 {
				nalu[i] = nalu[i%k]
			} else {
				nalu[i] = byte(i*31 + 7)
			}
		}
		if l > 0 {
			nalu[0] &^= 0x80 // forbidden_zero_bit
			if !hevc {
				if t := nalu[0] & 0x1f; t >= 24 && t <= 29 {
					nalu[0] = nalu[0]&0xe0 | 1
				}
			} else if t := (nalu[0] >> 1) & 0x3f; t >= 48 && t <= 50 {
				nalu[0] = nalu[0]&0x81 | 1<<1
			}
			nalu = escapeNALU(nalu)
		}
		total += len(nalu)
		au = append(au, nalu)
	}
	return au
}

// FuzzPacketizer packetizes random access units and checks that
// gortsplib's decoder gets each one back whole.
func FuzzPacketizer(f *testing.F) {
	f.Add([]byte{0, 0, 3, 0x65, 1, 2})
	f.Add([]byte{1, 0, 4, 0x26, 1, 0, 0, 0, 2, 0x40, 1})
	f.Add([]byte{2, 0, 20, 0x67, 0, 0, 1, 0, 5, 0x68, 9, 0xf0, 0x00, 0x65, 0x88})
	f.Add([]byte{3, 0, 30, 0x40, 1, 0, 10, 0x42, 1, 0, 8, 0x44, 1, 0x05, 0xb5, 0x26, 1, 0xaf})
	f.Add([]byte{0xfe, 0x05, 0xb4, 0x41, 0x9a, 0, 0, 0x05, 0xb5, 0x41, 0x9b})
	f.Add([]byte{5, 0, 0, 0, 1, 0x7c, 0, 1, 0x18})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		flags := data[0]
		codec := stream.CodecH264
		if flags&1 != 0 {
			codec = stream.CodecH265
		}
		au := fuzzAU(data[1:], codec == stream.CodecH265)
		seq := uint16(flags)<<8 | uint16(flags)
		ts := uint32(flags) * 0x01010101
		ch := flags >> 1 & 6
		p := &packetizer{codec: codec, pt: 96, ssrc: 9, seq: seq}
		buf, n, err := p.appendAU(nil, ch, au, ts)
		empty := true
		for _, nalu := range au {
			empty = empty && len(nalu) == 0
		}
		if empty {
			if !errors.Is(err, errEmptyAU) || len(buf) != 0 || n != 0 {
				t.Fatalf("empty access unit: error %v, %d packets", err, n)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkPackets(t, codec, buf, n, sent{ch: ch, pt: 96, ssrc: 9, seq: seq, ts: ts}, au, newOracle(t, codec))
	})
}

// BenchmarkPacketizeH264 packetizes the 2 Mbit/s clip into interleaved
// frames, one access unit per op: camd's packetizer, and gortsplib's
// encoder followed by marshalling each packet into the same kind of buffer.
func BenchmarkPacketizeH264(b *testing.B) {
	c := loadClip(b, "../testdata/h264_640x480_25fps.h264")
	var size int64
	for _, au := range c.aus {
		size += int64(auSize(au))
	}
	size /= int64(len(c.aus))
	b.Run("camd", func(b *testing.B) {
		b.SetBytes(size)
		p := &packetizer{codec: stream.CodecH264, pt: 96, ssrc: 1}
		var buf []byte
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var err error
			buf, _, err = p.appendAU(buf[:0], 0, c.aus[i%len(c.aus)], uint32(i*3600))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gortsplib", func(b *testing.B) {
		enc := &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: maxPayload}
		if err := enc.Init(); err != nil {
			b.Fatal(err)
		}
		var buf []byte
		b.SetBytes(size)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			pkts, err := enc.Encode(c.aus[i%len(c.aus)])
			if err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
			for _, pkt := range pkts {
				pkt.Timestamp = uint32(i * 3600)
				if buf, err = appendPacket(buf, 0, pkt); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
