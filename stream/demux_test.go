package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/conn"
)

// demuxCase is one byte stream from a camera, how it arrives (the sizes of
// the reads) and when taking starts.
type demuxCase struct {
	stream []byte
	ch     int   // the video RTP channel
	reads  []int // sizes of the reads, cycled
	enable int   // the read from which frames on ch are taken
}

// item is what gortsplib's reader makes of the stream: a frame, a
// request or a response, in a form that compares.
type item struct {
	video bool // a frame on the video channel
	s     string
}

// parseItems reads s with gortsplib's own reader until it fails or the
// stream ends.
func parseItems(r io.Reader, ch int) (items []item, err error) {
	c := conn.NewConn(bufio.NewReaderSize(r, 4096), io.Discard)
	for {
		what, err := c.Read()
		if err != nil {
			return items, err
		}
		items = append(items, describe(what, ch))
	}
}

func describe(what any, ch int) item {
	switch w := what.(type) {
	case *base.InterleavedFrame:
		return item{video: w.Channel == ch, s: fmt.Sprintf("frame %d %q", w.Channel, w.Payload)}
	case *base.Response:
		return item{s: fmt.Sprintf("response %d %q %v %q", w.StatusCode, w.StatusMessage, w.Header, w.Body)}
	case *base.Request:
		return item{s: fmt.Sprintf("request %s %v %v %q", w.Method, w.URL, w.Header, w.Body)}
	}
	return item{s: fmt.Sprintf("%#v", what)}
}

// batchReader gives the client the stream the way batchConn does: in
// reads of the case's sizes, run through a demux once taking has started.
type batchReader struct {
	tc      demuxCase
	d       demux
	pos     int
	nread   int
	buf     []byte
	out     []byte
	onVideo func(string)
	taken   int
	passed  int // bytes the client got
	// quiet: the client does not check for a read timeout, and is not
	// fed empty frames.
	quiet bool
}

func (r *batchReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.pos == len(r.tc.stream) {
			return 0, io.EOF
		}
		n := min(r.tc.reads[r.nread%len(r.tc.reads)], len(r.tc.stream)-r.pos)
		chunk := r.tc.stream[r.pos : r.pos+n]
		r.pos += n
		if r.nread < r.tc.enable {
			r.nread++
			// Unbatched, the client reads into its own buffer: the
			// demux only follows.
			r.buf = append(r.buf[:0], chunk...)
			if got := r.d.filter(r.buf, 0, -1, nil); got != n || !bytes.Equal(r.buf, chunk) {
				panic("demux changed the bytes while only following")
			}
			r.out = r.buf
			continue
		}
		r.nread++
		r.buf = append(append(r.buf[:0], make([]byte, batchHead)...), chunk...)
		take := func(b []byte) {
			r.taken++
			r.onVideo(fmt.Sprintf("frame %d %q", r.tc.ch, b))
		}
		r.out = r.buf[:demuxBatch(&r.d, r.buf, batchHead, len(r.buf), r.tc.ch, take, !r.quiet)]
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	r.passed += n
	return n, nil
}

// checkDemux checks that gortsplib reading the stream through the demux
// sees what it sees reading it directly, but for the video frames taken,
// and that camd gets every video frame once, in order, from one path or
// the other: with the client fed empty frames and without.
func checkDemux(t *testing.T, tc demuxCase) (taken, wantFrames int) {
	t.Helper()
	taken, wantFrames = checkDemuxWith(t, tc, false)
	if tq, _ := checkDemuxWith(t, tc, true); tq != taken {
		t.Fatalf("%d frames taken with the client fed, %d without", taken, tq)
	}
	return taken, wantFrames
}

func checkDemuxWith(t *testing.T, tc demuxCase, quiet bool) (taken, wantFrames int) {
	t.Helper()
	want, wantErr := parseItems(bytes.NewReader(tc.stream), tc.ch)

	var video []string // in the order camd would get them
	br := &batchReader{tc: tc, quiet: quiet, onVideo: func(s string) { video = append(video, s) }}
	c := conn.NewConn(bufio.NewReaderSize(br, 4096), io.Discard)
	var other []string
	var gotErr error
	for {
		what, err := c.Read()
		if err != nil {
			gotErr = err
			break
		}
		if f, ok := what.(*base.InterleavedFrame); ok {
			switch {
			case f.Channel == tc.ch:
				video = append(video, describe(f, tc.ch).s)
				continue
			case f.Channel == (tc.ch+2)&0xFF && len(f.Payload) == 0:
				continue // the demux's keep-alive for the client
			}
		}
		other = append(other, describe(what, tc.ch).s)
	}

	var wantVideo, wantOther []string
	for _, it := range want {
		if it.s == describe(&base.InterleavedFrame{Channel: (tc.ch + 2) & 0xFF, Payload: []byte{}}, tc.ch).s {
			continue // reads as the demux's keep-alive
		}
		if it.video {
			wantVideo = append(wantVideo, it.s)
		} else {
			wantOther = append(wantOther, it.s)
		}
	}
	if i, ok := firstDiff(other, wantOther); !ok {
		t.Fatalf("the client read, besides video, %d items; item %d:\n%s\nwant %d; item %d:\n%s",
			len(other), i, at(other, i), len(wantOther), i, at(wantOther, i))
	}
	// The client stops at the first message it cannot read; the demux may
	// have taken frames after it from the same read. Those come after every
	// frame it should have.
	if i, ok := firstDiff(video[:min(len(video), len(wantVideo))], wantVideo); !ok {
		t.Fatalf("camd got %d video frames; frame %d:\n%s\nwant %d; frame %d:\n%s",
			len(video), i, at(video, i), len(wantVideo), i, at(wantVideo, i))
	}
	// At the end of the stream (possibly in the middle of a frame or
	// message) rather than at a message the client cannot read.
	ended := func(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
	if ended(wantErr) && len(video) != len(wantVideo) {
		t.Fatalf("camd got %d video frames, want %d", len(video), len(wantVideo))
	}
	if ended(wantErr) != ended(gotErr) {
		t.Fatalf("the client ended with %v, want %v", gotErr, wantErr)
	}
	return br.taken, len(wantVideo)
}

// firstDiff is the index of the first item where a and b differ.
func firstDiff(a, b []string) (int, bool) {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i, false
		}
	}
	return min(len(a), len(b)), len(a) == len(b)
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}

// genStream builds a camera's stream from r: video and RTCP frames, frames
// on other channels, RTSP answers and requests with and without bodies,
// in the spellings cameras use and some they should not, and garbage.
func genStream(r *rand.Rand, ch int) []byte {
	var s []byte
	frame := func(ch, n int) {
		s = append(s, '$', byte(ch), byte(n>>8), byte(n))
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.IntN(256))
		}
		if n >= 4 {
			binary.BigEndian.PutUint32(p, uint32(len(s))) // unique
		}
		s = append(s, p...)
	}
	for range 1 + r.IntN(40) {
		switch k := r.IntN(20); {
		case k < 10:
			frame(ch, r.IntN(1500))
		case k == 10:
			frame(ch, r.IntN(70000)&0xFFFF)
		case k == 11:
			frame((ch+1)&0xFF, r.IntN(100))
		case k == 12:
			frame(r.IntN(256), r.IntN(300))
		case k == 13:
			frame(ch, 0)
		case k <= 16:
			s = append(s, genMessage(r)...)
		case k == 17:
			// Bytes gortsplib skips, or starts a message with.
			for range 1 + r.IntN(5) {
				s = append(s, "xRTGEP$\r\n:"[r.IntN(10)])
			}
		default:
			n := r.IntN(20)
			for range n {
				s = append(s, byte(r.IntN(256)))
			}
		}
	}
	return s
}

func genMessage(r *rand.Rand) []byte {
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteString([]string{
			"GET_PARAMETER rtsp://cam/ RTSP/1.0\r\n", "OPTIONS * RTSP/1.0\r\n", "ANNOUNCE rtsp://c/x RTSP/1.0\r\n",
			"REDIRECT rtsp://c/x RTSP/1.0\r\n", "SET_PARAMETER rtsp://c/x RTSP/1.0\r\n", "TEARDOWN rtsp://c/x RTSP/1.0\r\n",
			"SE\r\nX * RTSP/1.0\r\n", // a method gortsplib reads across the line end
		}[r.IntN(7)])
	} else {
		b.WriteString([]string{"RTSP/1.0 200 OK\r\n", "RTSP/1.0 200\r\n", "RTSP/1.0 454 Session Not Found\r\n", "RTSP/1.0 200 OK\n"}[r.IntN(4)])
	}
	// A body that would read as frames or messages where it is not taken
	// as a body.
	body := strings.Repeat([]string{"b", "$\x00\x00\x01x", "RTSP/1.0 200 OK\r\n\r\n"}[r.IntN(3)], r.IntN(30))
	hdrs := []string{"CSeq: 7", "Session: 12345678;timeout=60", "Server:  cam", "X-Odd:value"}
	switch r.IntN(4) {
	case 0:
		hdrs = append(hdrs, "X-Line\r\nBreak: in the key")
	case 1:
		hdrs = append(hdrs, "X-Line\r\n\r\nBreak: in the key")
	case 2:
		hdrs = append(hdrs, ":colon: first")
	}
	switch r.IntN(12) {
	case 0, 1, 2, 3:
		hdrs = append(hdrs, fmt.Sprintf("Content-Length: %d", len(body)))
	case 4:
		hdrs = append(hdrs, fmt.Sprintf("content-LENGTH:%d", len(body)))
	case 5:
		hdrs = append(hdrs, fmt.Sprintf("Content-Length: %d", len(body)), fmt.Sprintf("Content-Length: %d", len(body)))
	case 6:
		hdrs = append(hdrs, fmt.Sprintf("Content-Length: %d ", len(body)))
	case 7:
		hdrs = append(hdrs, "Content-Length: x")
	case 8:
		hdrs = append(hdrs, "Content-Length: 999999")
	case 9:
		hdrs = append(hdrs, "Content-Length:")
	case 10:
		hdrs = append(hdrs, "Broken header line")
	default:
		body = ""
	}
	r.Shuffle(len(hdrs), func(i, j int) { hdrs[i], hdrs[j] = hdrs[j], hdrs[i] })
	for _, h := range hdrs {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

func genCase(r *rand.Rand) demuxCase {
	tc := demuxCase{ch: r.IntN(254)}
	tc.stream = genStream(r, tc.ch)
	for range 1 + r.IntN(4) {
		switch r.IntN(3) {
		case 0:
			tc.reads = append(tc.reads, 1+r.IntN(8))
		case 1:
			tc.reads = append(tc.reads, 1+r.IntN(2000))
		default:
			tc.reads = append(tc.reads, 1+r.IntN(70000))
		}
	}
	tc.enable = r.IntN(4)
	return tc
}

// The demux against gortsplib's reader, on many generated streams (the
// fuzz target FuzzDemux explores more): what the client reads and what
// camd gets agree with gortsplib reading the stream alone.
func TestDemuxMatchesClient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	taken, video := 0, 0
	for i := range 1000 {
		tc := genCase(r)
		t.Run("", func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("case %d: ch %d reads %v enable %d, %d bytes", i, tc.ch, tc.reads, tc.enable, len(tc.stream))
				}
			}()
			tk, v := checkDemux(t, tc)
			taken += tk
			video += v
		})
		if t.Failed() {
			return
		}
	}
	// Not a test that passes by taking nothing.
	t.Logf("took %d of %d video frames", taken, video)
	if taken < video/8 {
		t.Errorf("the demux took %d of %d video frames, want more", taken, video)
	}
}

// A clean stream, the common case: every video frame is taken once taking
// starts, and a keep-alive answer in the middle still reaches the client.
func TestDemuxTakesVideo(t *testing.T) {
	var s []byte
	for i := range 100 {
		s = append(s, '$', 0, 0, 4, 0, 0, 0, byte(i))
		if i == 50 {
			s = append(s, "RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 5\r\n\r\n$$$$$"...)
		}
		if i%10 == 0 {
			s = append(s, '$', 1, 0, 2, 0x80, 0xc8) // RTCP
		}
	}
	for _, reads := range [][]int{{1}, {3}, {7, 1}, {100}, {1 << 16}} {
		if taken, _ := checkDemux(t, demuxCase{stream: s, ch: 0, reads: reads}); taken != 100 {
			t.Errorf("reads of %v: took %d of 100 video frames", reads, taken)
		}
	}
}

// Each batch from which frames were taken ends with an empty frame on an
// unused channel, which feeds the client's read timeout, where the client
// can take it: between messages, not in the middle of one. A client whose
// check is turned down gets none.
func TestDemuxBatchFeedsTimeout(t *testing.T) {
	video := []byte{'$', 4, 0, 2, 0x80, 0x60}
	rtcp := []byte{'$', 5, 0, 2, 0x80, 0xc8}
	marker := []byte{'$', 6, 0, 0}
	for _, tc := range []struct {
		name           string
		in, out, quiet []byte
		wantTaken      uint64
	}{
		{"all taken", bytes.Repeat(video, 3), marker, nil, 3},
		{"RTCP after", append(bytes.Repeat(video, 3), rtcp...), append(append([]byte(nil), rtcp...), marker...), rtcp, 3},
		{"RTCP before", append(append([]byte(nil), rtcp...), video...), append(append([]byte(nil), rtcp...), marker...), rtcp, 1},
		{"in a message", append(append([]byte(nil), video...), "RTSP/1.0 2"...), []byte("RTSP/1.0 2"), []byte("RTSP/1.0 2"), 1},
		{"nothing taken", rtcp, rtcp, rtcp, 0},
		{"a frame's start", video[:3], marker, nil, 0},
	} {
		for _, feed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/feed=%v", tc.name, feed), func(t *testing.T) {
				var d demux
				b := append(make([]byte, batchHead), tc.in...)
				n := demuxBatch(&d, b, batchHead, len(b), 4, func([]byte) {}, feed)
				want := tc.out
				if !feed {
					want = tc.quiet
				}
				if !bytes.Equal(b[:n], want) || d.taken != tc.wantTaken {
					t.Errorf("passed %q, took %d; want %q, %d", b[:n], d.taken, want, tc.wantTaken)
				}
			})
		}
	}
}

// Where the demux cannot be sure to frame a message as gortsplib does, it
// stops taking and the client reads the rest, frames included.
func TestDemuxTurnsOff(t *testing.T) {
	frames := func(n int) []byte {
		var s []byte
		for i := range n {
			s = append(s, '$', 0, 0, 2, 0, byte(i))
		}
		return s
	}
	for name, msg := range map[string]string{
		"no colon":          "RTSP/1.0 200 OK\r\nCSeq 1\r\n" + strings.Repeat("x", 600),
		"CRLF in a method":  "SE\r\nX * RTSP/1.0\r\nContent-Length: 8\r\n\r\n$\x00\x00\x04EVIL",
		"bad length":        "RTSP/1.0 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"LF only":           "RTSP/1.0 200 OK\nCSeq: 1\n\n\r" + strings.Repeat("x", 2000),
		"long first line":   "RTSP/1.0 200 " + strings.Repeat("K", 2000) + "\r\n\r\n",
		"body too large":    "RTSP/1.0 200 OK\r\nContent-Length: 131073\r\n\r\n",
		"empty length":      "RTSP/1.0 200 OK\r\nContent-Length: \r\n\r\n",
		"length with space": "RTSP/1.0 200 OK\r\nContent-Length: 2 \r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := append(append(frames(5), msg...), frames(5)...)
			var d demux
			buf := append(make([]byte, batchHead), s...)
			var took int
			n := d.filter(buf, batchHead, 0, func([]byte) { took++ })
			if !d.off || took != 5 || !bytes.Equal(buf[:n], s[5*6:]) {
				t.Errorf("off %v, took %d, passed %q; want off after the 5 frames before the message and all the rest passed", d.off, took, buf[:n])
			}
		})
	}
}

// Two Content-Length headers: gortsplib reads no body, and so does the
// demux (it stays on).
func TestDemuxTwoLengths(t *testing.T) {
	s := []byte("RTSP/1.0 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n$\x00\x00\x01x")
	var d demux
	buf := append(make([]byte, batchHead), s...)
	var took int
	n := d.filter(buf, batchHead, 0, func([]byte) { took++ })
	if d.off || took != 1 || n != len(s)-5 {
		t.Errorf("off %v, took %d, passed %d bytes; want on, 1 taken, the message passed", d.off, took, n)
	}
}

// The demux allocates nothing per frame: that is what it is for.
func TestDemuxAllocs(t *testing.T) {
	var s []byte
	for range 50 {
		s = append(s, '$', 0, 0x05, 0xc0)
		s = append(s, make([]byte, 1472)...)
	}
	buf := make([]byte, batchHead+len(s))
	var d demux
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf[batchHead:], s)
		demuxBatch(&d, buf, batchHead, len(buf), 0, func([]byte) {}, true)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of 50 frames, want 0", allocs)
	}
}

func FuzzDemux(f *testing.F) {
	f.Add(uint64(1), []byte(nil))
	f.Add(uint64(2), []byte("RTSP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n$\x00\x00"))
	f.Add(uint64(3), []byte("$\x00\x00\x02ab$\x01\x00\x01cGET_PARAMETER x RTSP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, seed uint64, raw []byte) {
		r := rand.New(rand.NewPCG(seed, seed>>1))
		tc := genCase(r)
		// The fuzzer's bytes go in the middle of a generated stream.
		at := r.IntN(len(tc.stream) + 1)
		tc.stream = append(append(append([]byte(nil), tc.stream[:at]...), raw...), tc.stream[at:]...)
		checkDemux(t, tc)
	})
}

// gortsplib reads a request's method up to a space, so "SE\r\nX" is a
// method to it, and the Content-Length after belongs to that request. The
// demux does not read it as a line end plus a header: it turns off.
func TestDemuxMethodWithCRLF(t *testing.T) {
	var s []byte
	for i := range 3 {
		s = append(s, '$', 0, 0, 4, 'v', 'v', 'v', byte('0'+i))
	}
	s = append(s, "SE\r\nX * RTSP/1.0\r\nContent-Length: 8\r\n\r\n$\x00\x00\x04EVIL"...)
	for i := range 3 {
		s = append(s, '$', 0, 0, 4, 'w', 'w', 'w', byte('0'+i))
	}
	if _, err := parseItems(bytes.NewReader(s), 0); err != io.EOF {
		t.Fatalf("gortsplib alone: %v, want the whole stream read", err)
	}
	checkDemux(t, demuxCase{stream: s, ch: 0, reads: []int{1 << 16}})
}
