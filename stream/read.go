package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/camd/camd/stream/internal/rtsp"
	"github.com/pion/rtp"
)

// DefaultReadTimeout is used when Options.ReadTimeout is 0.
const DefaultReadTimeout = 10 * time.Second

// ErrNoVideo is returned (wrapped, with the tracks found) by Read when the
// camera offers no H.264, H.265 or MJPEG video track. It is a refusal
// (ErrRefused).
var ErrNoVideo = errors.New("no video track")

// ErrPacketsLost is matched by the errors given to Options.OnDecodeError
// for frames dropped because one of their packets was lost in transit
// (UDP): the network's doing, not the camera's.
var ErrPacketsLost = errors.New("packets lost in transit")

// lossError is a loss in transit with its own message.
type lossError string

func (e lossError) Error() string      { return string(e) }
func (lossError) Is(target error) bool { return target == ErrPacketsLost }

// ErrReadTimeout is returned (wrapped) by Read when a playing TCP
// connection brings not a byte for ReadTimeout (or LiveReadTimeout).
var ErrReadTimeout = rtsp.ErrReadTimeout

// Read makes one connection attempt to the camera at o.URL and reports its
// video frames until the connection ends, then returns why. It never
// returns nil.
//
// Each error names the step that failed ("describe: ...", "setup: ...",
// "play: ...", "read: ...") and never contains the URL's password.
//
// When ctx is done Read closes the connection, returns promptly (in well
// under a second, at any step) and its error satisfies errors.Is(err,
// ctx.Err()): the caller can tell its own cancellation from a camera
// failure.
//
// Read sets up the video track (preferring H.264, then H.265, then
// MJPEG) and, when o.OnAudio is set, the first audio track that can be
// relayed; audio goes to OnAudio only, so it can never count as frames.
// Callbacks run one at a time for OnInfo and OnFrame (on Read's goroutine
// over TCP, on gortsplib's otherwise) and must not block. A panic in camd's
// decoding or in a callback is recovered: Read closes the connection and
// returns a *PanicError.
func Read(ctx context.Context, o Options) (err error) {
	var panicked atomic.Pointer[PanicError]
	// Every error leaves through here, so none can carry the password.
	defer func() {
		if p := panicked.Load(); p != nil {
			err = p
		}
		err = RedactError(refusal(err), o.URL)
	}()

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	u, err := base.ParseURL(o.URL)
	if err != nil {
		return fmt.Errorf("parse URL: %w", err)
	}

	var tlsConfig *tls.Config
	if u.Scheme == "rtsps" {
		if tlsConfig, err = o.TLS.config(u.Host); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
	}

	timeout := o.ReadTimeout
	if timeout <= 0 {
		timeout = DefaultReadTimeout
	}

	if o.Transport != TransportUDP && o.Transport != TransportAuto {
		err := readTCP(ctx, o, u, tlsConfig, timeout, &panicked)
		if !errors.Is(err, errUseClient) {
			return err
		}
	}
	err = readClient(ctx, o, u, tlsConfig, timeout, &panicked)
	if errors.Is(err, errSwitchTCP) {
		// UDP does not get through: on to TCP, read by camd's session.
		return readTCP(ctx, o, u, tlsConfig, timeout, &panicked)
	}
	return err
}

// errSwitchTCP is returned by readClient when, under TransportAuto, no UDP
// packet came: the attempt goes on over TCP with camd's own session.
var errSwitchTCP = errors.New("switching to TCP")

// readClient reads through gortsplib's Client: over UDP, with the
// automatic choice of transport, and for SRTP, which camd's own session
// does not speak.
func readClient(ctx context.Context, o Options, u *base.URL, tlsConfig *tls.Config, timeout time.Duration, panicked *atomic.Pointer[PanicError]) error {
	outer := ctx
	ctx, abort := context.WithCancel(ctx)
	defer abort()

	// recoverPanic is deferred by every callback that runs on gortsplib's
	// goroutines: a panic there would end the whole process, beyond the
	// reach of a recover around Read.
	recoverPanic := func() {
		if r := recover(); r != nil {
			panicked.CompareAndSwap(nil, &PanicError{Value: r, Stack: debug.Stack()})
			abort()
		}
	}

	// in is created once the track is known; the client's callbacks that
	// can fire earlier must cope with nil.
	var in *ingest
	var switched atomic.Bool
	decodeErrors := decodeErrorsOf(o)
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		Protocol:     protocol(o.Transport),
		TLSConfig:    tlsConfig,
		// The library's defaults log to the standard logger; camd decides
		// what to log, and a hostile camera must not be able to flood it.
		OnTransportSwitch: func(error) {
			// The only switch gortsplib makes is from UDP to TCP, when no
			// UDP packet arrives (a NAT or firewall in the way). camd's
			// own session reads TCP: this client stops here.
			switched.Store(true)
			abort()
		},
		// The client's count of lost packets covers every track, audio
		// included; the video's losses that matter are the frames the
		// depacketizer drops for them, which it reports (ErrPacketsLost).
		OnPacketsLost: func(uint64) {},
		OnDecodeError: func(err error) {
			defer recoverPanic()
			if in != nil {
				in.decodeErrors.Add(1)
			}
			decodeErrors(fmt.Errorf("decode RTP/RTCP: %w", err))
		},
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start RTSP client: %w", err)
	}

	// Closing the client from another goroutine is what interrupts a
	// blocked Describe, Setup, Play or Wait when ctx is done.
	closed := make(chan struct{})
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		c.Close()
	})
	defer func() {
		c.Close()
		if !stopClose() {
			<-closed // it ran: Read returns only once it has ended
		}
	}()

	// step wraps a client error; a failure caused by our own Close on ctx
	// cancellation is reported as the cancellation.
	step := func(name string, err error) error {
		if ctxErr := outer.Err(); ctxErr != nil {
			return fmt.Errorf("%s: %w", name, ctxErr)
		}
		if switched.Load() {
			return errSwitchTCP
		}
		return fmt.Errorf("%s: %w", name, err)
	}

	desc, _, err := c.Describe(u)
	if err != nil {
		return step("describe", err)
	}

	medi, forma := findVideo(desc)
	if medi == nil {
		return fmt.Errorf("%w (found: %s)", ErrNoVideo, describeTracks(desc))
	}

	in, err = newIngest(medi, forma, o.OnInfo, o.OnFrame, decodeErrors)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	// camd's own decoder: the client's is dropped when it starts closing,
	// while its callbacks may still run.
	pts := &ptsDecoder{}
	in.info.Audio = findAudio(desc, o.OnAudio != nil)

	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return step("setup", err)
	}
	for k, t := range in.info.Audio {
		if t.NotRead != "" {
			continue
		}
		// A camera that will not send its audio still sends video.
		if _, err := c.Setup(desc.BaseURL, t.Media, 0, 0); err != nil {
			if outer.Err() != nil {
				return step("setup", err)
			}
			in.info.Audio[k].NotRead = "SETUP failed: " + RedactError(err, o.URL).Error()
			continue
		}
		c.OnPacketRTP(t.Media, t.Format, func(pkt *rtp.Packet) {
			if panicked.Load() != nil {
				return
			}
			defer recoverPanic()
			o.OnAudio(k, pkt, time.Now())
		})
	}

	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		if panicked.Load() != nil {
			return
		}
		defer recoverPanic()
		in.handle(pkt, pts.decode(forma, pkt), time.Now())
	})

	// Info goes out before PLAY so that it precedes every frame.
	in.setTransport(transportName(c))
	in.sendInfo()

	if _, err := c.Play(nil); err != nil {
		return step("play", err)
	}

	return step("read", c.Wait())
}

// decodeErrorsOf is o.OnDecodeError with the password taken out, or a
// function that does nothing.
func decodeErrorsOf(o Options) func(error) {
	if o.OnDecodeError == nil {
		return func(error) {}
	}
	return func(err error) { o.OnDecodeError(RedactError(err, o.URL)) }
}

// encrypted reports whether the camera's SDP gives keys for the video
// (SDES a=crypto or MIKEY): then the client decrypts SRTP, over rtsp:// as
// well as rtsps://, and only its path may handle the packets.
func encrypted(desc *description.Session, medi *description.Media) bool {
	return desc.KeyMgmtMikey != nil || medi.KeyMgmtMikey != nil || medi.KeyMgmtSDES != nil
}

// protocol maps a Transport to the client's setting; nil lets gortsplib
// try UDP first and fall back to TCP.
func protocol(t Transport) *gortsplib.Protocol {
	var p gortsplib.Protocol
	switch t {
	case TransportUDP:
		p = gortsplib.ProtocolUDP
	case TransportAuto:
		return nil
	default:
		p = gortsplib.ProtocolTCP
	}
	return &p
}

// transportName reports the transport the client set up.
func transportName(c *gortsplib.Client) string {
	t := c.Transport()
	if t == nil || t.Session == nil {
		return ""
	}
	switch t.Session.Protocol {
	case gortsplib.ProtocolTCP:
		return "tcp"
	case gortsplib.ProtocolUDP:
		return "udp"
	case gortsplib.ProtocolUDPMulticast:
		return "udp-multicast"
	}
	return ""
}

// findVideo picks the video track, preferring H.264 (cheapest to handle
// downstream), then H.265, then MJPEG.
func findVideo(desc *description.Session) (*description.Media, format.Format) {
	var h264 *format.H264
	if m := desc.FindFormat(&h264); m != nil {
		return m, h264
	}
	var h265 *format.H265
	if m := desc.FindFormat(&h265); m != nil {
		return m, h265
	}
	var mjpeg *format.MJPEG
	if m := desc.FindFormat(&mjpeg); m != nil {
		return m, mjpeg
	}
	return nil, nil
}

// describeTracks lists what a camera offered, for the no-video error:
// "audio/MPEG-4 Audio, video/VP8".
func describeTracks(desc *description.Session) string {
	var parts []string
	for _, m := range desc.Medias {
		codecs := make([]string, 0, len(m.Formats))
		for _, f := range m.Formats {
			codecs = append(codecs, codecName(f))
		}
		p := string(m.Type)
		if len(codecs) > 0 {
			p += "/" + strings.Join(codecs, "+")
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// codecName names a format for messages: the encoding name of its rtpmap
// ("H264", "PCMU", "MPEG4-GENERIC"), which is what a camera's SDP shows.
func codecName(f format.Format) string {
	if name, _, _ := strings.Cut(f.RTPMap(), "/"); name != "" {
		return name
	}
	return fmt.Sprintf("payload type %d", f.PayloadType())
}
