package stream

import (
	"bytes"
	"errors"
	"fmt"
)

// What the H.264 (RFC 6184) and H.265 (RFC 7798) depacketizers have in
// common: gathering NAL units into access units within fixed bounds,
// rebuilding a NAL unit from its fragmentation units, and cutting a buffer
// at Annex-B start codes.

// Results of a depacketizer that are not failures. ingest drops the packet
// silently for these and reports every other error.
var (
	// errAUIncomplete: the packet was taken in; its access unit goes on in
	// the packets to come.
	errAUIncomplete = errors.New("access unit goes on in later packets")
	// errJoinedMidUnit: the first packets seen carry the middle or end of a
	// fragmented NAL unit. Normal when the stream was joined while a camera
	// was sending one.
	errJoinedMidUnit = errors.New("stream joined in the middle of a fragmented NAL unit")
)

// Errors for packets and access units the depacketizers drop.
var (
	// A gap in the sequence numbers inside a fragmented NAL unit, or the
	// end of one without its start: packets were lost on the way, and the
	// NAL unit cannot be rebuilt. These count as losses, not bad data.
	errFragmentGap   error = lossError("NAL unit dropped: a fragment between its first and last is missing")
	errFragmentStart error = lossError("NAL unit dropped: its first fragment never arrived")

	errUnitTooLarge  = errors.New("fragmented NAL unit over the access unit size limit")
	errTooManyUnits  = errors.New("access unit over the NAL unit count limit")
	errAUTooLarge    = errors.New("access unit over the size limit")
	errOnlyStartCode = errors.New("Annex-B payload with start codes and no NAL unit between them")
)

// auLimits bounds what one access unit may hold, so that a hostile camera
// cannot make a depacketizer grow without end.
type auLimits struct {
	units int // NAL units
	total int // bytes of NAL units, without start codes or length fields
}

// auBuilder gathers NAL units into access units. It fills one of two lists
// and hands it out when the access unit is complete, then fills the other:
// the list handed out stays as it is until the next call, which is as long
// as Frame.AU is valid. The NAL units are slices of packets (or of buffers
// joined from them), never copies.
type auBuilder struct {
	lists [2][][]byte
	fill  int    // the list being filled
	total int    // bytes in lists[fill]
	stamp uint32 // RTP timestamp of the NAL units in lists[fill]
}

// push adds the NAL units of one packet. The access unit is complete when
// the packet has the marker bit or, with tsCloses, when the packet's
// timestamp differs from that of the units gathered so far: every NAL unit
// of an access unit carries its timestamp, and some cameras never set the
// marker. In the second case the packet's units begin the next access unit
// and the one returned does not include them.
func (g *auBuilder) push(units [][]byte, stamp uint32, mbit, tsCloses bool, lim auLimits) ([][]byte, error) {
	var closed [][]byte
	if tsCloses && len(g.lists[g.fill]) > 0 && stamp != g.stamp {
		closed = g.lists[g.fill]
		g.swap()
	}
	if err := g.add(units, stamp, lim); err != nil {
		return nil, err
	}
	switch {
	case closed != nil:
		return closed, nil
	case !mbit:
		return nil, errAUIncomplete
	case len(g.lists[g.fill]) == 0:
		// A marker after packets that held no NAL unit: an access unit of
		// nothing, which ingest reports.
		return nil, nil
	}
	closed = g.lists[g.fill]
	g.swap()
	return closed, nil
}

// add appends units to the access unit being gathered. Past a limit, the
// access unit is thrown away with them.
func (g *auBuilder) add(units [][]byte, stamp uint32, lim auLimits) error {
	list := g.lists[g.fill]
	if len(list)+len(units) > lim.units {
		g.discard()
		return fmt.Errorf("%w: more than %d", errTooManyUnits, lim.units)
	}
	total := g.total
	for _, u := range units {
		total += len(u)
	}
	if total > lim.total {
		g.discard()
		return fmt.Errorf("%w: %d bytes, at most %d", errAUTooLarge, total, lim.total)
	}
	if len(units) > 0 {
		g.lists[g.fill] = append(list, units...)
		g.total = total
		g.stamp = stamp
	}
	return nil
}

// swap starts filling the other list. What it holds was handed out before
// the current call, so its caller is done with it.
func (g *auBuilder) swap() {
	g.fill ^= 1
	g.discard()
}

// discard empties the list being filled, letting go of its slices.
func (g *auBuilder) discard() {
	clear(g.lists[g.fill])
	g.lists[g.fill] = g.lists[g.fill][:0]
	g.total = 0
}

// fuJoiner rebuilds one NAL unit from fragmentation units (FU-A in H.264,
// FU in H.265). It keeps the fragments as slices of their packets and
// copies them into one buffer when the last one comes.
type fuJoiner struct {
	frags   [][]byte // fragment payloads, after the FU headers
	length  int      // of the NAL unit so far, header included; 0: none open
	header  [2]byte  // the NAL unit header, rebuilt from the FU headers
	hdrLen  int      // 1 for H.264, 2 for H.265
	nextSeq uint16   // sequence number the next fragment must have
}

// begin opens a NAL unit with its first fragment, dropping any open one
// (whose last fragment then never came). header holds hdrLen bytes.
func (j *fuJoiner) begin(header [2]byte, hdrLen int, frag []byte, seq uint16) {
	j.close()
	j.header, j.hdrLen = header, hdrLen
	j.frags = append(j.frags, frag)
	j.length = j.hdrLen + len(frag)
	j.nextSeq = seq + 1
}

// extend adds a fragment after the first. synced tells whether the stream
// has been followed from a point where a NAL unit began; before that, a
// fragment without its start is expected and gets errJoinedMidUnit.
func (j *fuJoiner) extend(frag []byte, seq uint16, synced bool, maxLen int) error {
	switch {
	case j.length == 0 && !synced:
		return errJoinedMidUnit
	case j.length == 0:
		return errFragmentStart
	case seq != j.nextSeq:
		j.close()
		return errFragmentGap
	case j.length+len(frag) > maxLen:
		ln := j.length + len(frag)
		j.close()
		return fmt.Errorf("%w: %d bytes, at most %d", errUnitTooLarge, ln, maxLen)
	}
	j.frags = append(j.frags, frag)
	j.length += len(frag)
	j.nextSeq++
	return nil
}

// join copies the open NAL unit into one buffer and closes it. The buffer
// comes from arena when it is not nil (the packets are in it, and the copy
// must live as long as they do), else from the heap.
func (j *fuJoiner) join(arena *rtpArena) []byte {
	var nal []byte
	if arena != nil {
		nal = arena.alloc(j.length)
	} else {
		nal = make([]byte, j.length)
	}
	at := copy(nal, j.header[:j.hdrLen])
	for _, fr := range j.frags {
		at += copy(nal[at:], fr)
	}
	j.close()
	return nal
}

// close forgets the open NAL unit, if any.
func (j *fuJoiner) close() {
	clear(j.frags)
	j.frags = j.frags[:0]
	j.length = 0
}

var (
	annexBStart     = []byte{0, 0, 1}
	annexBLongStart = []byte{0, 0, 0, 1}
)

// cutAtStartCodes appends to units the NAL units of raw, which may hold
// Annex-B start codes (00 00 01, or 00 00 00 01 whose first zero belongs
// to neither neighbour) before, between or after them. Empty pieces are
// not units, and neither are those whose header byte skip (when not nil)
// rejects: it returns how many it skipped. Past limit units it stops
// early: the caller refuses so many, and a hostile buffer full of start
// codes must not grow the list.
func cutAtStartCodes(units [][]byte, raw []byte, limit int, skip func(byte) bool) ([][]byte, int) {
	skipped := 0
	for found := 0; len(raw) > 0 && found <= limit; {
		at := bytes.Index(raw, annexBStart)
		piece := raw
		if at >= 0 {
			piece = raw[:at]
			if at > 0 && piece[at-1] == 0 {
				piece = piece[:at-1]
			}
			raw = raw[at+len(annexBStart):]
		} else {
			raw = nil
		}
		switch {
		case len(piece) == 0:
		case skip != nil && skip(piece[0]):
			skipped++
		default:
			units = append(units, piece)
			found++
		}
	}
	return units, skipped
}

// allZero reports whether raw holds nothing but zero bytes.
func allZero(raw []byte) bool {
	for _, c := range raw {
		if c != 0 {
			return false
		}
	}
	return true
}
