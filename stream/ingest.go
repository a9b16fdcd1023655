package stream

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmjpeg"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// Codec names as reported in Info.Codec.
const (
	CodecH264  = "h264"
	CodecH265  = "h265"
	CodecMJPEG = "mjpeg"
)

// ingest is the per-packet hot path: RTP packet → access unit → Frame. It
// has no network dependency so that it can be tested and benchmarked alone.
// It is used from one goroutine at a time (the one gortsplib delivers the
// track's packets on); only infoDirty may be touched from elsewhere.
type ingest struct {
	codec     string
	clockRate int
	h264      h264Depacketizer
	h265      h265Depacketizer
	mjpeg     *rtpmjpeg.Decoder

	onInfo        func(Info)
	onFrame       func(Frame)
	onDecodeError func(error)

	info      Info
	infoSent  bool
	infoDirty atomic.Bool // set when something Info reports changed
	// transport is the transport to report at the next Info, stored as a
	// string pointer because the client's goroutine sets it on a switch.
	transport atomic.Pointer[string]

	decodeErrors atomic.Uint64

	lastSPS []byte // last parameter set parsed, to parse only on change

	// The PTS of the current run of packets with one RTP timestamp, and of
	// the run before it (see handle).
	runStarted bool
	runTS      uint32
	runPTS     int64
	prevRunPTS int64

	oneAU [1][]byte

	// For packets taken from the connection (take): the packet they are
	// read into, the copies the decoder may still refer to, and the PTS
	// of a packet, which the client computes.
	pkt   rtp.Packet
	arena rtpArena
	ptsOf func(*rtp.Packet) int64
	// taking is set while take hands a packet to handle: the H.264 and
	// H.265 depacketizers may then join fragments into the arena.
	taking bool
}

// newIngest prepares the decoder for forma, which must be H.264, H.265 or
// MJPEG. The callbacks may be nil.
func newIngest(medi *description.Media, forma format.Format, onInfo func(Info),
	onFrame func(Frame), onDecodeError func(error),
) (*ingest, error) {
	in := &ingest{
		clockRate:     forma.ClockRate(),
		onInfo:        onInfo,
		onFrame:       onFrame,
		onDecodeError: onDecodeError,
	}
	in.info = Info{Media: medi, Format: forma}
	switch forma.(type) {
	case *format.H264:
		in.codec = CodecH264
	case *format.H265:
		in.codec = CodecH265
	case *format.MJPEG:
		in.codec = CodecMJPEG
	default:
		return nil, fmt.Errorf("%w %s", ErrUnsupportedCodec, codecName(forma))
	}
	if err := in.newDecoder(); err != nil {
		return nil, err
	}
	switch f := forma.(type) {
	case *format.H264:
		if len(f.SPS) > 0 {
			in.parseSPS(f.SPS)
		}
	case *format.H265:
		if len(f.SPS) > 0 {
			in.parseSPS(f.SPS)
		}
	}
	in.info.Codec = in.codec
	return in, nil
}

// newDecoder sets up a fresh decoder for the track, which holds nothing
// of the packets before.
func (in *ingest) newDecoder() error {
	var err error
	switch f := in.info.Format.(type) {
	case *format.H264:
		// h264Depacketizer reads the single NAL unit (0) and
		// non-interleaved (1) modes of RFC 6184, not the interleaved one.
		if f.PacketizationMode != 0 && f.PacketizationMode != 1 {
			err = fmt.Errorf("packetization-mode %d: only 0 and 1 are read", f.PacketizationMode)
		}
		in.h264 = h264Depacketizer{}
	case *format.H265:
		// With sprop-max-don-diff above 0, packets carry DONL fields
		// (RFC 7798), which h265Depacketizer does not read.
		if f.MaxDONDiff != 0 {
			err = fmt.Errorf("sprop-max-don-diff %d: packets with decoding order numbers are not read", f.MaxDONDiff)
		}
		in.h265 = h265Depacketizer{}
	case *format.MJPEG:
		in.mjpeg, err = f.CreateDecoder()
	}
	if err != nil {
		return fmt.Errorf("create %s decoder: %w", in.codec, err)
	}
	return nil
}

// setTransport records the transport in use; the next frame re-sends Info
// if it changed after the first Info.
func (in *ingest) setTransport(t string) {
	in.transport.Store(&t)
	in.infoDirty.Store(true)
}

// sendInfo calls onInfo with the current description.
func (in *ingest) sendInfo() {
	if t := in.transport.Load(); t != nil {
		in.info.Transport = *t
	}
	in.infoDirty.Store(false)
	in.infoSent = true
	if in.onInfo != nil {
		in.onInfo(in.info)
	}
}

// decodeError counts and reports a packet or access unit that was dropped.
func (in *ingest) decodeError(err error) {
	in.decodeErrors.Add(1)
	if in.onDecodeError != nil {
		in.onDecodeError(err)
	}
}

// handle takes one RTP packet of the track, its PTS and the wall-clock
// time, and emits a Frame when the packet completes an access unit.
// Undecodable input is counted and dropped; it never stops the stream. It
// returns true when the decoder gave an access unit (emitted, or dropped
// as empty): the decoder then refers to no packet before this one.
func (in *ingest) handle(pkt *rtp.Packet, pts int64, now time.Time) bool {
	if !in.runStarted || pkt.Timestamp != in.runTS {
		in.prevRunPTS = in.runPTS
		in.runStarted, in.runTS, in.runPTS = true, pkt.Timestamp, pts
	}

	var au [][]byte
	var err error
	switch in.codec {
	case CodecH264:
		au, err = in.h264.decode(pkt, in.joinArena())
		if err != nil {
			if err != errAUIncomplete && err != errJoinedMidUnit { //nolint:errorlint // returned unwrapped
				in.decodeError(fmt.Errorf("decode H.264 RTP packet: %w", err))
			}
			return false
		}
	case CodecH265:
		au, err = in.h265.decode(pkt, in.joinArena())
		if err != nil {
			if err != errAUIncomplete && err != errJoinedMidUnit { //nolint:errorlint // returned unwrapped
				in.decodeError(fmt.Errorf("decode H.265 RTP packet: %w", err))
			}
			return false
		}
	case CodecMJPEG:
		in.mjpegSize(pkt.Payload)
		var img []byte
		img, err = in.mjpeg.Decode(pkt)
		if err != nil {
			if err != rtpmjpeg.ErrMorePacketsNeeded && err != rtpmjpeg.ErrNonStartingPacketAndNoPrevious { //nolint:errorlint // sentinels returned as is
				in.decodeError(fmt.Errorf("decode MJPEG RTP packet: %w", err))
			}
			return false
		}
		in.oneAU[0] = img
		au = in.oneAU[:]
	}

	// The H.264/H.265 decoders close an access unit either on the marker
	// bit (the packet belongs to it) or, for cameras that never set the
	// marker, on the first complete NAL unit of the next one (which can be
	// several FU-A packets in): then the access unit has the timestamp of
	// the previous run of packets.
	if !pkt.Marker {
		pts = in.prevRunPTS
	}

	size, key, ok := in.inspect(au)
	if !ok {
		in.decodeError(errEmptyAU)
		return true
	}
	if !in.infoSent || in.infoDirty.Load() {
		in.sendInfo()
	}
	if in.onFrame != nil {
		in.onFrame(Frame{
			Time:      now,
			PTS:       pts,
			ClockRate: in.clockRate,
			AU:        au,
			Size:      size,
			Key:       key,
		})
	}
	in.oneAU[0] = nil
	return true
}

// joinArena is where the depacketizers join fragmented NAL units: the
// packet arena while take hands over a packet, else nowhere (a new
// buffer), because packets from the client are not in the arena.
func (in *ingest) joinArena() *rtpArena {
	if in.taking {
		return &in.arena
	}
	return nil
}

var errEmptyAU = errors.New("decode access unit: no data")

// inspect sums the NAL unit sizes, tells whether the access unit is a
// random-access point and picks up parameter sets sent in band. It checks
// NAL unit lengths itself because h264.IsRandomAccess and friends index
// nalu[0] and a hostile camera can send empty NAL units.
func (in *ingest) inspect(au [][]byte) (size int, key, ok bool) {
	switch in.codec {
	case CodecMJPEG:
		if len(au[0]) == 0 {
			return 0, false, false
		}
		return len(au[0]), true, true
	case CodecH264:
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			size += len(nalu)
			switch h264.NALUType(nalu[0] & 0x1F) {
			case h264.NALUTypeIDR:
				key = true
			case h264.NALUTypeSPS:
				in.parseSPS(nalu)
			}
		}
	case CodecH265:
		for _, nalu := range au {
			if len(nalu) == 0 {
				continue
			}
			size += len(nalu)
			switch h265.NALUType((nalu[0] >> 1) & 0b111111) {
			case h265.NALUType_IDR_W_RADL, h265.NALUType_IDR_N_LP, h265.NALUType_CRA_NUT:
				key = true
			case h265.NALUType_SPS_NUT:
				in.parseSPS(nalu)
			}
		}
	}
	return size, key, size > 0
}

// parseSPS updates width and height from a sequence parameter set. Cameras
// repeat the SPS before every keyframe, so it is parsed only when it
// differs from the last one. A bad SPS counts as a decode error and leaves
// the size as it was.
func (in *ingest) parseSPS(sps []byte) {
	if bytes.Equal(sps, in.lastSPS) {
		return
	}
	in.lastSPS = append(in.lastSPS[:0], sps...)
	w, h, err := spsSize(in.codec, sps)
	if err != nil {
		in.decodeError(err)
		return
	}
	in.setSize(w, h)
}

// spsSize parses an SPS. The parsers come from mediacommon and get bytes
// straight from the camera; a panic in them would take the reader down
// with a hostile stream, so it is turned into an error here (this runs once
// per SPS change, not per packet).
func spsSize(codec string, sps []byte) (w, h int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parse %s SPS: invalid data (%v)", codec, r)
		}
	}()
	switch codec {
	case CodecH264:
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H.264 SPS: %w", err)
		}
		return s.Width(), s.Height(), nil
	case CodecH265:
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H.265 SPS: %w", err)
		}
		return s.Width(), s.Height(), nil
	}
	return 0, 0, nil
}

func (in *ingest) setSize(w, h int) {
	if w < 0 || h < 0 {
		return
	}
	if w != in.info.Width || h != in.info.Height {
		in.info.Width, in.info.Height = w, h
		if in.infoSent {
			in.infoDirty.Store(true)
		}
	}
}

// mjpegSize reads the picture size from the RTP/JPEG header (RFC 2435
// §3.1) of the first fragment of each image: bytes 6 and 7 hold width and
// height in units of 8 pixels. 0 means 2048 or more, which RFC 2435 cannot
// express; then the size stays unknown.
func (in *ingest) mjpegSize(payload []byte) {
	if len(payload) < 8 {
		return
	}
	if payload[1] != 0 || payload[2] != 0 || payload[3] != 0 { // fragment offset
		return
	}
	in.setSize(int(payload[6])*8, int(payload[7])*8)
}
