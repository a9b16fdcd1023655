package stream

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// Frame is one decoded video access unit.
type Frame struct {
	// Time is when the access unit was complete (wall clock).
	Time time.Time
	// PTS is the presentation timestamp in units of ClockRate.
	PTS int64
	// ClockRate is the RTP clock rate of the track (90000 for video).
	ClockRate int
	// AU holds the NAL units (H.264, H.265) or the one JPEG image (MJPEG).
	// It is only valid during the callback that receives it.
	AU [][]byte
	// Size is the payload size of the access unit in bytes.
	Size int
	// Key reports a random-access point (IDR, IRAP, every MJPEG image).
	Key bool
}

// Transport is the RTP transport a reader asks the camera for.
type Transport int

// Transports.
const (
	// TransportTCP interleaves RTP in the RTSP connection. It is the default
	// because it crosses NAT and firewalls and loses nothing.
	TransportTCP Transport = iota
	// TransportUDP receives RTP on a UDP port pair.
	TransportUDP
	// TransportAuto tries UDP and falls back to TCP.
	TransportAuto
)

// String returns "tcp", "udp" or "auto".
func (t Transport) String() string {
	switch t {
	case TransportUDP:
		return "udp"
	case TransportAuto:
		return "auto"
	default:
		return "tcp"
	}
}

// ParseTransport parses "tcp", "udp" or "auto"; "" means TCP.
func ParseTransport(s string) (Transport, bool) {
	switch s {
	case "", "tcp":
		return TransportTCP, true
	case "udp":
		return TransportUDP, true
	case "auto":
		return TransportAuto, true
	}
	return TransportTCP, false
}

// Info describes the video track once it is set up.
type Info struct {
	// Codec is "h264", "h265" or "mjpeg".
	Codec string
	// Width and Height come from the SPS where available; 0 if unknown.
	Width, Height int
	// Transport is the transport actually in use ("tcp" or "udp").
	Transport string
	// Media and Format are the video track as described by the camera; a
	// relay uses them to describe the stream again.
	Media  *description.Media
	Format format.Format
	// Audio lists the camera's audio tracks: at most one is read (its
	// NotRead is ""), the others say why not. It is shared: read only.
	Audio []AudioTrack
}

// Options configures one connection attempt.
type Options struct {
	// URL is the camera's rtsp:// or rtsps:// URL, credentials included.
	URL string
	// Transport defaults to TransportTCP.
	Transport Transport
	// ReadTimeout bounds each RTSP request and each wait for data on the
	// connection. It defaults to 10 seconds.
	ReadTimeout time.Duration
	// LiveReadTimeout, when set, is read at every check of a batched TCP
	// connection's read timeout (see ErrReadTimeout), so that a new
	// read_timeout (SIGHUP) reaches connections already playing; a zero
	// value in it leaves ReadTimeout in force. Other connections, and the
	// RTSP client's request timeouts, take ReadTimeout at connect.
	LiveReadTimeout *LiveTimeout
	// ReadBatch, when positive, has a playing TCP (or TLS) connection read
	// in batches: at most every ReadBatch (on ticks shared by all cameras)
	// or once 64 KiB are queued, instead of once per packet. That saves
	// most of the CPU of ingest at the cost of up to ReadBatch of delay. It
	// works on Linux; elsewhere, and over UDP, every packet is read as it
	// arrives. 0 reads every packet as it arrives.
	ReadBatch time.Duration
	// TLS says how an rtsps:// camera's certificate is trusted; the zero
	// value verifies it as a browser would.
	TLS CameraTLS
	// OnInfo is called once the video track is set up, before any frame,
	// and again before the next frame whenever what it reports changes
	// (the size learnt from an in-band SPS or an MJPEG header, or a switch
	// from UDP to TCP under TransportAuto).
	OnInfo func(Info)
	// OnFrame is called for each video access unit, from the reader's
	// goroutine; it must not block.
	OnFrame func(Frame)
	// OnAudio, when set, has the camera's first audio track that can be
	// relayed set up beside the video (see Info.Audio), and is called with
	// each of its RTP packets as the camera sent them, track being its
	// index in Info.Audio and at the wall-clock time it arrived. pkt is
	// only valid during the call. It runs on the RTSP client's goroutines,
	// possibly concurrently with OnFrame (over UDP), and must not block.
	// Audio never counts as frames.
	OnAudio func(track int, pkt *rtp.Packet, at time.Time)
	// OnBatch, when set, is called over TCP after the frames and audio of
	// each read of the connection (a batch, see ReadBatch) were handed to
	// OnFrame and OnAudio, on the same goroutine: a consumer can wake once
	// per batch rather than once per frame. Over UDP it is never called.
	OnBatch func()
	// OnDecodeError is called for each packet or access unit dropped
	// because it could not be decoded (a hostile or broken camera). It may
	// be called from any goroutine, concurrently with OnFrame. The error
	// holds no password. Meter.DecodeError fits here.
	OnDecodeError func(error)
}

// PanicError is returned by Read when a panic on one of its goroutines (in
// decoding or in a callback) was recovered. The supervisor counts it as a
// crash of the reader.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("reader panicked: %v", e.Value) }

// ErrReaderPanic matches (errors.Is) every *PanicError, also after
// RedactError, which hides the concrete type.
var ErrReaderPanic = errors.New("reader panicked")

// Is reports whether target is ErrReaderPanic.
func (e *PanicError) Is(target error) bool { return target == ErrReaderPanic }

// LiveTimeout is a duration that may change while connections use it. Its
// zero value (and a nil pointer) reads as 0. Safe for concurrent use.
type LiveTimeout struct{ ns atomic.Int64 }

// Set stores d.
func (t *LiveTimeout) Set(d time.Duration) { t.ns.Store(int64(d)) }

// Get returns the duration; 0 for a nil LiveTimeout.
func (t *LiveTimeout) Get() time.Duration {
	if t == nil {
		return 0
	}
	return time.Duration(t.ns.Load())
}
