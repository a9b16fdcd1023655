package rtsp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// chunkConn hands out its chunks one per Read, then io.EOF; writes are
// kept. Deadlines do nothing.
type chunkConn struct {
	net.Conn // nil: only the methods below are called
	chunks   [][]byte
	written  bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	if n < len(c.chunks[0]) {
		c.chunks[0] = c.chunks[0][n:]
	} else {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return c.written.Write(p) }
func (c *chunkConn) SetDeadline(time.Time) error      { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }
func (c *chunkConn) Close() error                     { return nil }

// readAllUnits runs data, cut into chunks of the given size, through a
// session's reader and returns the frames (channel byte, then payload)
// and the first error.
func readAllUnits(data []byte, chunk int) ([][]byte, string, error) {
	return readCut(data, chunk, 0, 0)
}

// readCut is readAllUnits with the bytes from lo to hi read in chunks of
// at least 1 KiB: inside one unit's payload every cut takes the same path
// (the partial unit carried to the next read), and byte-sized reads of a
// 64 KiB payload, each carrying all that came before, are quadratic.
func readCut(data []byte, chunk, lo, hi int) ([][]byte, string, error) {
	c := &chunkConn{}
	for p := 0; p < len(data); {
		n := chunk
		if p >= lo && p < hi {
			n = max(chunk, 1024)
		}
		n = min(n, len(data)-p)
		c.chunks = append(c.chunks, data[p:p+n])
		p += n
	}
	s := &Session{cfg: Config{Timeout: time.Second}, nc: c, conn: c}
	var frames [][]byte
	s.onFrame = func(ch uint8, payload []byte, _ time.Time) {
		frames = append(frames, append([]byte{ch}, payload...))
	}
	for {
		if err := s.rd.readBlocking(s); err != nil {
			if err == io.EOF {
				err = nil
			}
			return frames, c.written.String(), err
		}
	}
}

// A stream of frames and messages gives the same frames and answers
// however it is cut into reads.
func TestReaderCutsAnywhere(t *testing.T) {
	t.Parallel()
	var b []byte
	b = append(b, frame(0, bytes.Repeat([]byte{1}, 1400))...)
	b = append(b, "RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n"...)
	b = append(b, frame(1, nil)...)
	// The middle of the largest frame's payload, where small reads only
	// carry more of the same (see readCut).
	lo := len(b) + 4 + 1024
	hi := lo + 65535 - 2*1024
	b = append(b, frame(0, bytes.Repeat([]byte{2}, 65535))...)
	b = append(b, "\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 4\r\n\r\n"...)
	b = append(b, "ANNOUNCE rtsp://h/p RTSP/1.0\r\nCSeq: 5\r\nContent-Length: 4\r\n\r\nv=0\n"...)
	b = append(b, frame(2, []byte("z"))...)
	want, wantAnswers, err := readAllUnits(b, len(b))
	if err != nil || len(want) != 4 {
		t.Fatalf("whole: %d frames, %v", len(want), err)
	}
	if !bytes.Contains([]byte(wantAnswers), []byte("CSeq: 4")) || !bytes.Contains([]byte(wantAnswers), []byte("CSeq: 5")) {
		t.Fatalf("answers %q", wantAnswers)
	}
	for _, chunk := range []int{1, 2, 3, 5, 7, 100, 1403, 4096, 65539} {
		got, answers, err := readCut(b, chunk, lo, hi)
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if len(got) != len(want) || answers != wantAnswers {
			t.Fatalf("chunks of %d: %d frames, answers %q", chunk, len(got), answers)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("chunks of %d: frame %d differs", chunk, i)
			}
		}
	}
}

// What the reader refuses: a header without an end, a message over the
// bound, a bad Content-Length.
func TestReaderRefuses(t *testing.T) {
	for name, data := range map[string][]byte{
		"endless header": append([]byte("RTSP/1.0 200 OK\r\n"), bytes.Repeat([]byte("X-A: b\r\n"), 3000)...),
		"huge body":      []byte("RTSP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n"),
		"bad length":     []byte("RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n"),
	} {
		if _, _, err := readAllUnits(data, 1000); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The reader never panics and gives the same frames however the input is
// cut.
func FuzzReader(f *testing.F) {
	f.Add([]byte("$\x00\x00\x03abcRTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n$\x01\x00\x00"), uint16(3))
	f.Add([]byte("GET_PARAMETER * RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 2\r\n\r\nab$\x00\x00\x01x"), uint16(1))
	f.Add([]byte("\r\n\r\nRT$\x05\x00\x02hi"), uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		whole, wa, werr := readAllUnits(data, len(data)+1)
		cut, ca, cerr := readAllUnits(data, int(chunk%512)+1)
		if (werr == nil) != (cerr == nil) {
			t.Fatalf("whole: %v; cut: %v", werr, cerr)
		}
		if werr != nil {
			return
		}
		if len(whole) != len(cut) || wa != ca {
			t.Fatalf("whole: %d frames; cut: %d", len(whole), len(cut))
		}
		for i := range whole {
			if !bytes.Equal(whole[i], cut[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}
