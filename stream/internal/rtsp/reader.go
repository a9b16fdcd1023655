package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The bounds of what is read whole before it is handled: an interleaved
// frame is at most 4+65535 bytes; an RTSP message (an answer with an SDP,
// or a server's request) at most maxMessage.
const (
	maxHeader  = 16 << 10
	maxMessage = 64 << 10
	maxUnit    = maxMessage
	// readSize is how much one read asks for, and (SO_RCVLOWAT) how much
	// queued data wakes a batched session before its tick.
	readSize = 64 << 10
)

// bufs holds the read buffers: room for a unit left over from the last
// read, then a read. A session holds one only while it reads, so a few
// serve every camera.
var bufs = sync.Pool{New: func() any { b := make([]byte, maxUnit+4+readSize); return &b }}

// reader turns the bytes of the connection into interleaved frames and
// RTSP messages. A unit split across reads waits in carry.
type reader struct {
	buf   *[]byte
	carry []byte
	at    time.Time
}

// release gives the buffer back.
func (r *reader) release() {
	if r.buf != nil {
		bufs.Put(r.buf)
		r.buf = nil
	}
}

// reset forgets everything read (a new connection).
func (r *reader) reset() {
	r.release()
	r.carry = r.carry[:0]
}

// readBlocking makes one read (the connection's deadline bounds it) and
// handles every whole unit in it.
func (r *reader) readBlocking(s *Session) error {
	return r.read(s, false)
}

// drain reads until the connection has nothing queued (errDrained) and
// handles every whole unit.
func (r *reader) drain(s *Session) error {
	return r.read(s, true)
}

func (r *reader) read(s *Session, untilDrained bool) error {
	r.buf = bufs.Get().(*[]byte)
	b := *r.buf
	w := copy(b, r.carry)
	p := 0
	var rerr error
	for {
		n, err := s.conn.Read(b[w:])
		if n > 0 {
			r.at = time.Now()
			s.lastData = r.at
			w += n
			q, perr := r.parse(s, b[p:w])
			p += q
			if perr != nil {
				rerr = perr
				break
			}
			if w == len(b) {
				// Room for the rest of a unit: what is left moves to the
				// front (the buffer holds any whole unit, so a full buffer
				// that is all one unit is not one).
				if p == 0 {
					rerr = errors.New("invalid data from the server")
					break
				}
				w = copy(b, b[p:w])
				p = 0
			}
		}
		if err != nil {
			if err != errDrained { //nolint:errorlint // returned as is
				rerr = err
			}
			break
		}
		if !untilDrained {
			break
		}
	}
	r.carry = append(r.carry[:0], b[p:w]...)
	r.release()
	return rerr
}

// messageStarts are the beginnings of the RTSP messages a server sends a
// client: answers and the requests it may make.
var messageStarts = [][]byte{
	[]byte("RTSP/"), []byte("ANNOUNCE "), []byte("GET_PARAMETER "), []byte("SET_PARAMETER "),
	[]byte("OPTIONS "), []byte("REDIRECT "), []byte("TEARDOWN "), []byte("PLAY "), []byte("PAUSE "),
	[]byte("DESCRIBE "), []byte("SETUP "), []byte("RECORD "),
}

// messageStart reports whether b starts a message: yes, no, or more is
// needed to tell.
func messageStart(b []byte) (yes, more bool) {
	for _, m := range messageStarts {
		if len(b) < len(m) {
			if bytes.HasPrefix(m, b) {
				more = true
			}
			continue
		}
		if bytes.HasPrefix(b, m) {
			return true, false
		}
	}
	return false, more
}

// parse handles every whole unit at the start of b and returns how many
// bytes they took. A byte that starts neither a frame nor a message is
// skipped, as stray line ends between messages are.
func (r *reader) parse(s *Session, b []byte) (int, error) {
	p := 0
	for p < len(b) {
		if b[p] == '$' {
			if len(b)-p < 4 {
				break
			}
			n := int(b[p+2])<<8 | int(b[p+3])
			if len(b)-p < 4+n {
				break
			}
			if s.onFrame != nil {
				s.onFrame(b[p+1], b[p+4:p+4+n], r.at)
			}
			p += 4 + n
			continue
		}
		yes, more := messageStart(b[p:])
		if more {
			break
		}
		if !yes {
			p++
			continue
		}
		end := bytes.Index(b[p:], []byte("\r\n\r\n"))
		if end < 0 {
			if len(b)-p > maxHeader {
				return p, errors.New("RTSP message header too long")
			}
			break
		}
		cl, err := contentLength(b[p : p+end+2])
		if err != nil {
			return p, err
		}
		total := end + 4 + cl
		if total > maxMessage {
			return p, fmt.Errorf("RTSP message of %d bytes is too long", total)
		}
		if len(b)-p < total {
			break
		}
		if err := s.handleMessage(b[p : p+total]); err != nil {
			return p, err
		}
		p += total
	}
	return p, nil
}

// contentLength reads the Content-Length of a message's header lines.
func contentLength(hdr []byte) (int, error) {
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.Index(hdr, []byte("\r\n")); i >= 0 {
			line, hdr = hdr[:i], hdr[i+2:]
		} else {
			hdr = nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("Content-Length")) {
			continue
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid Content-Length %q", bytes.TrimSpace(v))
		}
		return n, nil
	}
	return 0, nil
}

func bufReader(msg []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(msg), max(len(msg), 16))
}
