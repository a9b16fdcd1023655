package stream

import (
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// take handles one RTP packet of the track as camd's own session read it
// (the payload of an interleaved frame), without allocating. b is valid
// only during the call.
func (in *ingest) take(b []byte, now time.Time) {
	// The decoder keeps slices of a packet's payload until its access unit
	// is complete, so the packet is copied first: b's buffer is reused.
	data, reset := in.arena.add(b)
	if reset {
		// The decoder may refer to what the arena dropped: it starts over.
		if err := in.newDecoder(); err != nil {
			in.decodeError(err)
			return
		}
	}
	if err := in.pkt.Unmarshal(data); err != nil {
		in.decodeError(fmt.Errorf("decode RTP packet: %w", err))
		return
	}
	if pt := in.pkt.PayloadType; pt != in.info.Format.PayloadType() {
		// Another format of the track is dropped, as the client drops
		// it; a payload type the track does not have is an error there.
		if !in.hasPayloadType(pt) {
			in.decodeError(fmt.Errorf("decode RTP packet: payload type %d is not the track's", pt))
		}
		return
	}
	var pts int64
	if in.ptsOf != nil {
		pts = in.ptsOf(&in.pkt)
	}
	in.taking = true
	done := in.handle(&in.pkt, pts, now)
	in.taking = false
	if done {
		in.arena.flip()
	}
}

// hasPayloadType reports whether one of the track's formats has payload
// type pt.
func (in *ingest) hasPayloadType(pt uint8) bool {
	if in.info.Media == nil {
		return false
	}
	for _, f := range in.info.Media.Formats {
		if f.PayloadType() == pt {
			return true
		}
	}
	return false
}

// arenaChunk is the size of the blocks arenas copy packets into. The
// blocks come from a pool shared by every camera, so memory follows the
// access units in flight rather than each camera's largest.
const arenaChunk = 32 << 10

var arenaChunks = sync.Pool{New: func() any { b := make([]byte, 0, arenaChunk); return &b }}

// maxArena bounds the bytes an arena half holds: more than the largest
// access unit the decoders accept. A camera that never completes one (a
// hostile one) has the decoder start over instead of growing it.
const maxArena = h264.MaxAccessUnitSize + 1<<20

// rtpArena holds copies of the packets the decoder may still refer to, in
// two halves. Packets go to the current half; when an access unit is
// complete (flip) the other half is emptied and becomes current. That is
// safe because after returning an access unit the decoder refers to no
// packet before the one that completed it: at most to that one (the first
// of the next access unit, for cameras that do not set the marker bit),
// which is in the half just left. (MJPEG's quantization tables point into
// an image's first packet, which is in the same half as its last.) The
// H.264 and H.265 depacketizers also join fragmented NAL units into the
// half that holds their packets (alloc): no access unit is complete while
// a NAL unit is in fragments, so its fragments never span a flip, and the
// joined unit is safe for as long as its last packet is.
type rtpArena struct {
	half [2]arenaHalf
	cur  int
}

type arenaHalf struct {
	chunks []*[]byte // the last one is filling
	size   int
}

// add copies b into the current half and returns the copy. reset reports
// that the arena was full and emptied first: whatever referred to it must
// start over.
func (a *rtpArena) add(b []byte) (data []byte, reset bool) {
	h := &a.half[a.cur]
	if h.size+len(b) > maxArena {
		a.half[0].empty()
		a.half[1].empty()
		reset = true
	}
	h.size += len(b)
	data = a.alloc(len(b))
	copy(data, b)
	return data, reset
}

// alloc returns n bytes in the current half, which the caller fills: a
// NAL unit the depacketizer joins from fragments in this half lives as
// long as they do. Only add counts against maxArena; what is built from
// the packets is no larger than they are. Blocks come from the pool with
// their old contents.
func (a *rtpArena) alloc(n int) []byte {
	if n > arenaChunk {
		// Larger than any RTP packet over a network (a packet in an
		// interleaved frame can be), or a large joined NAL unit. The
		// garbage collector has it.
		return make([]byte, n)
	}
	h := &a.half[a.cur]
	var c *[]byte
	if k := len(h.chunks); k > 0 && cap(*h.chunks[k-1])-len(*h.chunks[k-1]) >= n {
		c = h.chunks[k-1]
	} else {
		c = arenaChunks.Get().(*[]byte)
		h.chunks = append(h.chunks, c)
	}
	m := len(*c)
	*c = (*c)[:m+n]
	// The full slice expression keeps an append to the result from
	// writing over what follows it.
	return (*c)[m : m+n : m+n]
}

// flip empties the other half and makes it current.
func (a *rtpArena) flip() {
	a.cur ^= 1
	a.half[a.cur].empty()
}

// release gives every block back; the arena is not used after it.
func (a *rtpArena) release() {
	a.half[0].empty()
	a.half[1].empty()
}

func (h *arenaHalf) empty() {
	for i, c := range h.chunks {
		*c = (*c)[:0]
		arenaChunks.Put(c)
		h.chunks[i] = nil
	}
	h.chunks = h.chunks[:0]
	h.size = 0
}
