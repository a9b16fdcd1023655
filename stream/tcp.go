package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/pion/rtp"

	"github.com/camd/camd/stream/internal/rtsp"
)

// errUseClient is returned by readTCP when the camera's stream is one its
// own session does not read (SRTP): Read then makes the attempt again
// through gortsplib's Client.
var errUseClient = errors.New("stream needs the RTSP client")

// readTCP reads over TCP (or TLS) with camd's own RTSP session: every
// callback runs on this goroutine, and the video's packets are handled
// straight from the batch they were read in (ingest.take).
func readTCP(ctx context.Context, o Options, u *base.URL, tlsConfig *tls.Config, timeout time.Duration, panicked *atomic.Pointer[PanicError]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked.CompareAndSwap(nil, &PanicError{Value: r, Stack: debug.Stack()})
			err = panicked.Load()
		}
	}()
	cfg := rtsp.Config{URL: u, TLS: tlsConfig, Timeout: timeout, Batch: o.ReadBatch, OnRead: o.OnBatch}
	if o.LiveReadTimeout != nil {
		cfg.LiveTimeout = o.LiveReadTimeout.Get
	}
	// step names the step that failed; our own cancellation is reported
	// as the cancellation.
	step := func(name string, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s: %w", name, ctxErr)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	s, err := rtsp.Dial(ctx, cfg)
	if err != nil {
		return step("describe", err)
	}
	// Close runs before the recover above: the connection is never left
	// open by a panic.
	defer s.Close()

	desc, err := s.Describe(ctx)
	if err != nil {
		return step("describe", err)
	}
	medi, forma := findVideo(desc)
	if medi == nil {
		return fmt.Errorf("%w (found: %s)", ErrNoVideo, describeTracks(desc))
	}
	if encrypted(desc, medi) {
		return errUseClient
	}
	decodeErrors := decodeErrorsOf(o)
	in, err := newIngest(medi, forma, o.OnInfo, o.OnFrame, decodeErrors)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer in.arena.release()
	pts := &ptsDecoder{}
	in.ptsOf = func(pkt *rtp.Packet) int64 { return pts.decode(forma, pkt) }
	in.info.Audio = findAudio(desc, o.OnAudio != nil)

	videoCh, err := s.Setup(medi)
	if err != nil {
		return step("setup", err)
	}
	audioCh, audioTrack := -1, -1
	for k, t := range in.info.Audio {
		if t.NotRead != "" {
			continue
		}
		ch, err := s.Setup(t.Media)
		if err != nil {
			if ctx.Err() != nil {
				return step("setup", err)
			}
			// A camera that will not send its audio still sends video.
			in.info.Audio[k].NotRead = "SETUP failed: " + RedactError(err, o.URL).Error()
			continue
		}
		if ch == videoCh {
			in.info.Audio[k].NotRead = "SETUP gave the video's channel"
			continue
		}
		audioCh, audioTrack = int(ch), k
	}

	// Info goes out before PLAY so that it precedes every frame.
	in.setTransport("tcp")
	in.sendInfo()

	var audio rtp.Packet
	return s.Play(func(ch uint8, payload []byte, at time.Time) {
		switch int(ch) {
		case int(videoCh):
			in.take(payload, at)
		case audioCh:
			if err := audio.Unmarshal(payload); err != nil {
				in.decodeError(fmt.Errorf("decode audio RTP packet: %w", err))
				return
			}
			if audio.PayloadType == in.info.Audio[audioTrack].Format.PayloadType() {
				o.OnAudio(audioTrack, &audio, at)
			}
		}
		// RTCP, and channels nothing was set up on, are not read.
	})
}

// isSessionStatus reports whether err is a status the camera answered.
func isSessionStatus(err error) (base.StatusCode, bool) {
	var se *rtsp.StatusError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}
