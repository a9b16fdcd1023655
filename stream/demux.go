package stream

import "bytes"

// demux follows the bytes of an RTSP connection over TCP, message by
// message, the way gortsplib's reader frames them (pkg/conn Conn.Read of
// gortsplib v5), and takes out the interleaved frames of one channel: the
// video track's RTP packets, which camd then handles itself. gortsplib
// allocates a payload, a packet and more for every frame it reads, and that
// garbage, collected, was most of what ingest cost (bench/RESULTS.md).
// Everything else reaches gortsplib unchanged and in order: RTSP answers to
// its keepalives, requests from the camera, RTCP.
//
// The framing it mirrors: at a boundary, '$', a channel and a 16-bit length
// start an interleaved frame; two bytes that can start an RTSP message
// ("RT", "GE", "OP", ...) start one; any other byte is skipped. A message is
// a first line ending in CRLF, header lines "key: value" ending in CRLF, an
// empty line, and as many bytes of body as its one Content-Length says.
//
// Where a message does anything this reading is not sure to frame as
// gortsplib does (a first line without CRLF, a line end in a request's
// method, an over-long line, a bad Content-Length, more than 255 headers), the demux turns off for good and
// passes every byte from then on: gortsplib then reads the stream
// exactly as it would have without camd in the way, frames included.
//
// It is used by one goroutine at a time.
type demux struct {
	st   demuxState
	next demuxState // the state after the LF that st == dsLF expects
	off  bool

	// left is what remains of the current frame payload or message body,
	// or how many more bytes the current line or key may have.
	left int

	// The frame being read: its first byte was held back while it was not
	// yet known whether to take it ('$' alone: dsFrameCh). held is set
	// while the '$' has not been passed on yet.
	held  bool
	ch    byte
	take  bool
	frame []byte // a taken frame's payload, when it spans calls

	// The header line being read.
	lines    int  // header lines so far
	keyLen   int  // bytes of the key so far
	isCL     bool // the key so far can still be Content-Length
	inCL     bool // the value being read is a Content-Length's
	clCount  int  // Content-Length headers seen
	clVal    int  // the value of the last, while clOK
	clOK     bool // the last Content-Length is a valid length
	clDigits int

	// first is the first byte of a possible message, until the second
	// says whether gortsplib reads a message or skips it.
	first byte
	// method is set while the method of a request's first line is read:
	// gortsplib reads it up to a space, across a line end if need be.
	method bool
	// skipped is set when the client has a byte it will skip once it sees
	// the next one: the next frame is not taken, or the client would pair
	// that byte with what follows the frame instead.
	skipped bool

	// taken counts the frames taken (RTP packets, for the video).
	taken uint64
}

type demuxState uint8

const (
	dsBoundary  demuxState = iota // between frames and messages
	dsPeek                        // one byte of a possible message seen
	dsFrameCh                     // '$' seen, channel next
	dsFrameLen1                   // length, high byte next
	dsFrameLen2                   // length, low byte next
	dsPayload                     // in a frame's payload
	dsLine                        // in a message's first line
	dsLF                          // a CR seen, LF next
	dsLineStart                   // at the start of a header line
	dsKey                         // in a header key
	dsSpaces                      // after a key's colon
	dsValue                       // in a header value
	dsBody                        // in a message's body
)

// The limits gortsplib's reader applies (pkg/base), or fewer: a message
// beyond them fails there, and the demux turns off before it.
const (
	demuxMaxLine     = 1024
	demuxMaxLines    = 255
	demuxMaxKey      = 511
	demuxMaxValue    = 2047
	demuxMaxBody     = 128 * 1024
	contentLengthKey = "content-length"
)

// isMessageStart reports whether gortsplib reads a message starting with a
// and b (pkg/conn Conn.Read).
func isMessageStart(a, b byte) bool {
	switch string([]byte{a, b}) {
	case "RT", "AN", "DE", "GE", "OP", "PA", "PL", "RE", "SE", "TE":
		return true
	}
	return false
}

// filter runs b[start:], the bytes just read, through the demux. The bytes
// gortsplib is to read are moved to the front of b, in order, and filter
// returns how many. Frames on channel takeCh (none when takeCh < 0) are
// passed to onFrame instead, their payload valid only during the call.
//
// A taken frame's '$' is held back until its channel is known, so the
// output can be one byte longer than the input read so far: start must be
// at least 1 whenever takeCh ≥ 0. With takeCh < 0 (and no '$' held from an
// earlier call) nothing is held or taken and b is not changed.
//
// Frames must reach camd in order, through whichever path. The client
// parses what filter returns only after it returns, so once filter has
// passed on any part of a frame on takeCh (one begun before taking started)
// it takes no frame until the next call: the client has handled that frame
// by then, because it reads again only once it has used every whole
// message it was given.
func (d *demux) filter(b []byte, start int, takeCh int, onFrame func([]byte)) int {
	out := 0
	passed := false // a part of a frame on takeCh was passed on
	emit := func(from, to int) {
		if out != from {
			copy(b[out:], b[from:to])
		}
		out += to - from
	}
	i := start
	for i < len(b) {
		if d.off {
			emit(i, len(b))
			return out
		}
		c := b[i]
		switch d.st {
		case dsBoundary:
			if c == '$' {
				d.st = dsFrameCh
				if takeCh >= 0 && !d.skipped {
					d.held = true
					i++
					continue
				}
				d.skipped = false
				emit(i, i+1)
				i++
				continue
			}
			d.first = c
			d.st = dsPeek
			d.skipped = false
			emit(i, i+1)
			i++

		case dsPeek:
			if isMessageStart(d.first, c) {
				d.st = dsLine
				d.left = demuxMaxLine - 2
				d.method = d.first != 'R' || c != 'T' // not a response
				emit(i, i+1)
				i++
				continue
			}
			// gortsplib skips the first byte and looks again from this
			// one.
			d.st = dsBoundary
			d.skipped = true

		case dsFrameCh:
			d.ch = c
			d.take = d.held && int(c) == takeCh && !passed
			if d.held && !d.take {
				b[out] = '$'
				out++
			}
			d.held = false
			if !d.take {
				passed = passed || int(c) == takeCh
				emit(i, i+1)
			}
			d.st = dsFrameLen1
			i++

		case dsFrameLen1:
			passed = passed || (!d.take && int(d.ch) == takeCh)
			d.left = int(c) << 8
			if !d.take {
				emit(i, i+1)
			}
			d.st = dsFrameLen2
			i++

		case dsFrameLen2:
			passed = passed || (!d.take && int(d.ch) == takeCh)
			d.left |= int(c)
			if !d.take {
				emit(i, i+1)
			}
			d.st = dsPayload
			d.frame = d.frame[:0]
			i++
			if d.left == 0 {
				d.endFrame(onFrame)
			}

		case dsPayload:
			passed = passed || (!d.take && int(d.ch) == takeCh)
			n := min(d.left, len(b)-i)
			if d.take {
				if len(d.frame) == 0 && n == d.left {
					d.taken++
					onFrame(b[i : i+n]) // whole in this read: no copy
				} else {
					d.frame = append(d.frame, b[i:i+n]...)
				}
			} else {
				emit(i, i+n)
			}
			i += n
			d.left -= n
			if d.left == 0 {
				if d.take && len(d.frame) > 0 {
					d.taken++
					onFrame(d.frame)
				}
				d.endFrame(nil)
			}

		case dsLine:
			if d.method {
				switch {
				case c == '\r' || c == '\n' || d.left == 0:
					d.off = true
				case c == ' ':
					d.method = false
					fallthrough
				default:
					d.left--
					emit(i, i+1)
					i++
				}
				continue
			}
			j := bytes.IndexByte(b[i:min(len(b), i+d.left+1)], '\r')
			if j < 0 {
				n := min(len(b)-i, d.left+1)
				if n > d.left {
					d.off = true
					continue
				}
				emit(i, i+n)
				d.left -= n
				i += n
				continue
			}
			emit(i, i+j+1)
			i += j + 1
			d.st, d.next = dsLF, dsLineStart
			d.lines, d.clCount = 0, 0

		case dsLF:
			if c != '\n' {
				d.off = true
				continue
			}
			emit(i, i+1)
			i++
			d.st = d.next
			if d.st == dsBody {
				d.endHeaders()
			}

		case dsLineStart:
			if c == '\r' {
				emit(i, i+1)
				i++
				d.st, d.next = dsLF, dsBody
				continue
			}
			if d.lines >= demuxMaxLines {
				d.off = true
				continue
			}
			d.lines++
			d.st = dsKey
			d.keyLen = 0
			d.isCL = true
			// The first byte is the key's even if it is a colon
			// (gortsplib reads it, then up to the next colon).
			d.keyByte(c)
			emit(i, i+1)
			i++

		case dsKey:
			if c == ':' {
				d.st = dsSpaces
				d.inCL = d.isCL && d.keyLen == len(contentLengthKey)
				if d.inCL {
					d.clCount++
					d.clVal, d.clOK, d.clDigits = 0, true, 0
				}
				emit(i, i+1)
				i++
				continue
			}
			// A key runs to the colon, across a line end if need be, as
			// gortsplib reads it.
			if d.keyLen >= demuxMaxKey {
				d.off = true
				continue
			}
			d.keyByte(c)
			emit(i, i+1)
			i++

		case dsSpaces:
			if c == ' ' {
				emit(i, i+1)
				i++
				continue
			}
			d.st = dsValue
			d.left = demuxMaxValue

		case dsValue:
			if c == '\r' {
				if d.inCL && d.clDigits == 0 {
					d.clOK = false
				}
				emit(i, i+1)
				i++
				d.st, d.next = dsLF, dsLineStart
				continue
			}
			if d.left == 0 {
				d.off = true
				continue
			}
			d.left--
			if d.inCL {
				if c >= '0' && c <= '9' && d.clOK {
					d.clDigits++
					d.clVal = d.clVal*10 + int(c-'0')
					if d.clVal > demuxMaxBody {
						d.clOK = false
					}
				} else {
					d.clOK = false
				}
			}
			emit(i, i+1)
			i++

		case dsBody:
			n := min(d.left, len(b)-i)
			emit(i, i+n)
			i += n
			d.left -= n
			if d.left == 0 {
				d.st = dsBoundary
			}
		}
	}
	return out
}

// keyByte adds c to the header key being read and keeps isCL: whether the
// key, as gortsplib normalizes it, can still be Content-Length.
func (d *demux) keyByte(c byte) {
	if d.isCL && (d.keyLen >= len(contentLengthKey) || lower(c) != contentLengthKey[d.keyLen]) {
		d.isCL = false
	}
	d.keyLen++
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// endHeaders decides, at a message's empty line, how long its body is:
// the one Content-Length's value, or none when there are several (which
// gortsplib ignores) or none.
func (d *demux) endHeaders() {
	d.left = 0
	if d.clCount == 1 {
		if !d.clOK {
			// gortsplib fails the message and the connection.
			d.off = true
			return
		}
		d.left = d.clVal
	}
	if d.left == 0 {
		d.st = dsBoundary
	}
}

// endFrame ends a frame (calling onFrame for an empty taken one).
func (d *demux) endFrame(onFrame func([]byte)) {
	if d.take && onFrame != nil {
		d.taken++
		onFrame(nil)
	}
	d.st = dsBoundary
	d.take = false
	d.frame = d.frame[:0]
}

// atBoundary reports whether the client, given what filter returned so
// far, is between messages: then a frame can be added to its bytes. With a
// byte it is to skip, it skips that byte on seeing the frame's '$'.
func (d *demux) atBoundary() bool {
	switch d.st {
	case dsBoundary:
		return true
	case dsFrameCh:
		return d.held
	case dsFrameLen1, dsFrameLen2, dsPayload:
		return d.take
	}
	return false
}

// demuxBatch runs b[r:w], the bytes of one batched read, through d (taking
// the frames on takeCh, r ≥ 1) and leaves what the client is to read at
// b[:n]. With feed, after frames were taken, the client also gets an empty
// frame on a channel it has not set up, which it ignores: its read timeout
// counts from the last message it read, and must see that data still comes
// even when all of it is taken. b must have room for that frame (r ≥ 5).
// Without feed (the client's check is turned down) n may be 0.
func demuxBatch(d *demux, b []byte, r, w, takeCh int, take func([]byte), feed bool) int {
	taken := d.taken
	n := d.filter(b[:w], r, takeCh, take)
	if feed && (n == 0 || (d.taken != taken && d.atBoundary())) {
		// filter's output is at most one byte longer than its input, so
		// this fits in the room before it.
		b[n], b[n+1], b[n+2], b[n+3] = '$', byte(takeCh+2), 0, 0
		n += 4
	}
	return n
}
