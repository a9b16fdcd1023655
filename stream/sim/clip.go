package sim

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// clipH264 is the looped video, made by makeclip.sh.
//
//go:embed clip.h264
var clipH264 []byte

const (
	// videoClockRate is the RTP clock rate of H.264.
	videoClockRate = 90000
	// audioClockRate is the RTP clock rate of G.711.
	audioClockRate = 8000
	// rtpPayloadMax keeps RTP packets within gortsplib's default
	// MaxPacketSize (1472) with the 12-byte header.
	rtpPayloadMax = 1450
)

// rtpPayload is one precomputed RTP packet body; only the header changes
// from camera to camera and from loop to loop.
type rtpPayload struct {
	data   []byte
	marker bool
}

// clip is the parsed video, shared read-only by every camera.
type clip struct {
	sps, pps      []byte
	width, height int
	fps           int
	// frames holds, for each access unit in decoding order, its RTP packets.
	frames [][]rtpPayload
	// picAt holds, for each frame, the index of its first packet that
	// carries a slice: where a send-time SEI goes (Config.Stamp).
	picAt []int
	// garbage is what a camera in FaultGarbage sends instead of a frame.
	garbage []rtpPayload
	// silence is one frame period of G.711 mu-law silence.
	silence []byte
}

// loadClip parses the embedded Annex B stream into access units and
// packetizes each one once, so that serving a frame costs no parsing and no
// packetizing.
func loadClip() (*clip, error) {
	// Not h264.AnnexB.Unmarshal: it caps the NALU count at one access
	// unit's worth, and this is a whole stream.
	nalus := SplitAnnexB(clipH264)

	c := &clip{}
	var aus [][][]byte
	var cur [][]byte
	curHasSlice := false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		typ := h264.NALUType(n[0] & 0x1f)
		switch typ {
		case h264.NALUTypeSPS:
			if c.sps == nil {
				c.sps = n
			}
		case h264.NALUTypePPS:
			if c.pps == nil {
				c.pps = n
			}
		}
		isSlice := typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR
		// An access unit ends where a non-VCL unit follows a slice, or where
		// a slice starts a new picture (first_mb_in_slice == 0, which is a
		// leading 1 bit in its ue(v) encoding).
		newAU := curHasSlice && (!isSlice || (len(n) > 1 && n[1]&0x80 != 0))
		if newAU {
			aus = append(aus, cur)
			cur = nil
			curHasSlice = false
		}
		cur = append(cur, n)
		curHasSlice = curHasSlice || isSlice
	}
	if curHasSlice {
		aus = append(aus, cur)
	}
	if len(aus) == 0 || c.sps == nil || c.pps == nil {
		return nil, errors.New("parse clip: no SPS, PPS or frames")
	}
	if !h264.IsRandomAccess(aus[0]) {
		return nil, errors.New("parse clip: it does not start with an IDR, so it cannot loop")
	}

	var sps h264.SPS
	if err := sps.Unmarshal(c.sps); err != nil {
		return nil, fmt.Errorf("parse clip SPS: %w", err)
	}
	c.width, c.height = sps.Width(), sps.Height()
	c.fps = int(math.Round(sps.FPS()))
	if c.fps <= 0 {
		return nil, errors.New("parse clip: the SPS has no frame rate")
	}

	enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: rtpPayloadMax, PacketizationMode: 1}
	if err := enc.Init(); err != nil {
		return nil, fmt.Errorf("packetize clip: %w", err)
	}
	for _, au := range aus {
		pkts, err := enc.Encode(au)
		if err != nil {
			return nil, fmt.Errorf("packetize clip: %w", err)
		}
		f := make([]rtpPayload, len(pkts))
		for i, p := range pkts {
			f[i] = rtpPayload{data: p.Payload, marker: p.Marker}
		}
		c.frames = append(c.frames, f)
		c.picAt = append(c.picAt, firstSlicePacket(f))
	}

	c.garbage = makeGarbage()
	c.silence = make([]byte, audioClockRate/c.fps)
	for i := range c.silence {
		c.silence[i] = 0xff // mu-law zero
	}
	return c, nil
}

// firstSlicePacket returns the index of the first packet of a frame that
// carries (the start of) a slice: a single NAL unit packet of a slice, an
// FU-A that starts one, or a STAP-A that holds one. It returns 0 if none
// does.
func firstSlicePacket(pkts []rtpPayload) int {
	isSlice := func(t h264.NALUType) bool { return t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR }
	for i, p := range pkts {
		if len(p.data) < 2 {
			continue
		}
		switch t := h264.NALUType(p.data[0] & 0x1f); t {
		case h264.NALUTypeFUA:
			if p.data[1]&0x80 != 0 && isSlice(h264.NALUType(p.data[1]&0x1f)) {
				return i
			}
		case h264.NALUTypeSTAPA:
			for b := p.data[1:]; len(b) > 2; {
				size := int(b[0])<<8 | int(b[1])
				if size == 0 || 2+size > len(b) {
					break
				}
				if isSlice(h264.NALUType(b[2] & 0x1f)) {
					return i
				}
				b = b[2+size:]
			}
		default:
			if isSlice(t) {
				return i
			}
		}
	}
	return 0
}

// makeGarbage builds one frame's worth of malformed H.264 RTP payloads.
// Each is wrong in a different way so that any depacketizer or decoder has
// something to complain about: an unsupported packet type, a STAP-A whose
// length runs past the end, an FU-A continuation with no start, and a
// "slice" of random bytes that depacketizes fine but cannot be decoded.
func makeGarbage() []rtpPayload {
	// A fixed seed keeps the garbage identical from run to run.
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}

	unsupported := append([]byte{0x1e}, random(200)...)            // NAL type 30
	stapA := append([]byte{0x18, 0xff, 0xff, 0x65}, random(50)...) // STAP-A, length 65535
	fuaMiddle := append([]byte{0x7c, 0x05}, random(800)...)        // FU-A, neither S nor E
	slice := append([]byte{0x41}, random(1200)...)                 // non-IDR slice, noise
	// Avoid start codes inside the noise, which a decoder would take as a
	// NALU boundary rather than as corrupt slice data.
	for i := 1; i < len(slice); i++ {
		if slice[i] == 0 {
			slice[i] = 0x5a
		}
	}
	return []rtpPayload{
		{data: unsupported},
		{data: stapA},
		{data: fuaMiddle},
		{data: slice, marker: true},
	}
}

// SplitAnnexB splits an Annex B byte stream at its start codes (00 00 01,
// with or without a leading zero byte). The tests read their clips with
// it too.
func SplitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			// Trailing zeros belong to the next start code (00 00 00 01)
			// or are trailing_zero_8bits, never to the NALU.
			for end > start && b[end-1] == 0 {
				end--
			}
			out = append(out, b[start:end])
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}
