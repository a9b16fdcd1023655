package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/rtspread"
)

// tap is device.Tap, restated so that these tests do not depend on package
// device.
type tap interface {
	Info(stream.Info)
	Frame(stream.Frame)
	Audio(track int, pkt *rtp.Packet, at time.Time)
	Disconnected()
	End(reason string)
	Close()
}

var _ tap = (*Feed)(nil)

// testLogger logs to the test at Info level when -v, else discards.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newRelay(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// supervise plays the camd supervisor: it reads url into f with stream.Read
// and reconnects whenever the connection ends, until the test ends or the
// returned stop is called. It reads the video only (no Options.OnAudio):
// superviseBatched reads audio too.
func supervise(t testing.TB, url string, f tap) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = stream.Read(ctx, stream.Options{
				URL:         url,
				ReadTimeout: 5 * time.Second,
				OnInfo:      f.Info,
				OnFrame:     f.Frame,
			})
			f.Disconnected()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// rtpReader is an independent RTSP reader (a gortsplib client) that checks
// what it receives: frames (marker bits), RTP sequence gaps and timestamp
// jumps, and, for H.264, which pictures it got (see clipFrames).
type rtpReader struct {
	rd      *rtspread.Reader
	desc    *description.Session
	frames  atomic.Int64
	packets atomic.Int64 // video
	audio   atomic.Int64 // audio packets
	seqGaps atomic.Int64
	// tsBad counts frames whose timestamp went back or jumped by more than
	// a second from the previous frame.
	tsBad atomic.Int64
	// resumes counts packets that arrived after a pause of more than half
	// a second.
	resumes atomic.Int64

	mu       sync.Mutex
	lastRecv time.Time
	haveSeq  bool
	lastSeq  uint16
	haveTS   bool
	lastTS   uint32
	maxStep  int64 // largest timestamp step between frames
	dec      *rtph264.Decoder
	// tails holds the last 8 bytes of each access unit received whole:
	// enough to tell which picture of a clip it is.
	tails []uint64
	// arrivals holds, for each frame (marker bit), when it came and its
	// RTP timestamp.
	arrivals []arrival
	// firstAU is the first access unit received whole (H.264).
	firstAU [][]byte
	// srs holds the RTCP sender reports received for the video.
	srs []senderReport
}

type arrival struct {
	at time.Time
	ts uint32
}

type senderReport struct {
	at  time.Time
	ntp time.Time
	rtp uint32
}

// startReader connects, describes, sets up (TCP) and plays url.
func startReader(t testing.TB, url string) (*rtpReader, error) {
	t.Helper()
	return startReaderWith(t, url, gortsplib.ProtocolTCP)
}

// startReaderWith is startReader over the given transport.
func startReaderWith(t testing.TB, url string, proto gortsplib.Protocol) (*rtpReader, error) {
	t.Helper()
	r := &rtpReader{}
	rd, err := rtspread.Play(url, rtspread.Options{
		UDP: proto == gortsplib.ProtocolUDP,
		Setup: func(desc *description.Session) ([]*description.Media, error) {
			r.desc = desc
			var h264f *format.H264
			if desc.FindFormat(&h264f) != nil {
				var err error
				if r.dec, err = h264f.CreateDecoder(); err != nil {
					return nil, fmt.Errorf("H.264 depacketizer: %w", err)
				}
			}
			return desc.Medias, nil
		},
		OnRTP: func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
			if m.Type == description.MediaTypeAudio {
				r.audio.Add(1)
				return
			}
			r.packet(pkt)
		},
		OnRTCP: func(m *description.Media, pkt rtcp.Packet) {
			if sr, ok := pkt.(*rtcp.SenderReport); ok && m.Type == description.MediaTypeVideo {
				r.mu.Lock()
				r.srs = append(r.srs, senderReport{at: time.Now(), ntp: ntp.Decode(sr.NTPTime), rtp: sr.RTPTime})
				r.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	r.rd = rd
	t.Cleanup(r.close)
	return r, nil
}

func (r *rtpReader) close() { r.rd.Close() }

func (r *rtpReader) packet(pkt *rtp.Packet) {
	r.packets.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.haveSeq && pkt.SequenceNumber != r.lastSeq+1 {
		r.seqGaps.Add(1)
	}
	r.haveSeq, r.lastSeq = true, pkt.SequenceNumber
	if r.dec != nil {
		if au, err := r.dec.Decode(pkt); err == nil && len(au) > 0 {
			var tail uint64
			if last := au[len(au)-1]; len(last) >= 8 {
				tail = binary.BigEndian.Uint64(last[len(last)-8:])
			}
			r.tails = append(r.tails, tail)
			if r.firstAU == nil {
				for _, nalu := range au {
					r.firstAU = append(r.firstAU, bytes.Clone(nalu))
				}
			}
		}
	}
	now := time.Now()
	if !r.lastRecv.IsZero() && now.Sub(r.lastRecv) > 500*time.Millisecond {
		r.resumes.Add(1)
	}
	r.lastRecv = now
	if !pkt.Marker {
		return
	}
	r.frames.Add(1)
	r.arrivals = append(r.arrivals, arrival{now, pkt.Timestamp})
	if r.haveTS {
		step := int64(int32(pkt.Timestamp - r.lastTS))
		if step < 0 || step > videoClockRate {
			r.tsBad.Add(1)
		}
		r.maxStep = max(r.maxStep, step)
	}
	r.haveTS, r.lastTS = true, pkt.Timestamp
}

// realTimeErrors checks the reader's timeline against the wall clock: a
// timestamp that goes back, or a timeline that drifts from the wall clock
// by more than tol between the start and the end of the recording (an
// outage left out of the timestamps, or a jump put into them). The drift
// of a stretch of frames is the least of theirs, so that frames a loaded
// machine delivered late, in a burst, do not count as drift: the promptest
// frame of each stretch says where the timeline is.
func (r *rtpReader) realTimeErrors(tol time.Duration) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var bad []string
	const stretch = 25 // a second of frames
	if len(r.arrivals) < 2*stretch {
		return []string{fmt.Sprintf("only %d frames: too few to check the timeline", len(r.arrivals))}
	}
	a0 := r.arrivals[0]
	var elapsed time.Duration // timestamp time since the first frame, unwrapped
	drift := make([]time.Duration, len(r.arrivals))
	for i := 1; i < len(r.arrivals); i++ {
		step := time.Duration(int64(int32(r.arrivals[i].ts-r.arrivals[i-1].ts)) * int64(time.Second) / videoClockRate)
		if step < 0 {
			bad = append(bad, fmt.Sprintf("frame %d: timestamp went back by %s", i, -step))
		}
		elapsed += step
		drift[i] = r.arrivals[i].at.Sub(a0.at) - elapsed
	}
	head, tail := slices.Min(drift[:stretch]), slices.Min(drift[len(drift)-stretch:])
	if d := tail - head; d > tol || d < -tol {
		bad = append(bad, fmt.Sprintf("the timeline drifted %s from the wall clock over %d frames (%s of timestamps, %s of arrivals)",
			d, len(r.arrivals), elapsed, r.arrivals[len(r.arrivals)-1].at.Sub(a0.at)))
	}
	return bad
}

// senderReports returns the RTCP sender reports received so far.
func (r *rtpReader) senderReports() []senderReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]senderReport(nil), r.srs...)
}

// firstFrame returns the first access unit received whole and when the
// first frame arrived.
func (r *rtpReader) firstFrame() ([][]byte, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	if len(r.arrivals) > 0 {
		at = r.arrivals[0].at
	}
	return r.firstAU, at
}

// maxTSStep returns the largest timestamp step seen between frames.
func (r *rtpReader) maxTSStep() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxStep
}

// clipFrames returns, in the order received, which picture of c each whole
// access unit the reader got is: its index in c.aus, or -1 if it is not one
// of c's.
func (r *rtpReader) clipFrames(t testing.TB, c *clip) []int {
	t.Helper()
	byTail := make(map[uint64]int, len(c.aus))
	for i, au := range c.aus {
		last := au[len(au)-1]
		if len(last) < 8 {
			t.Fatalf("picture %d of the clip is too short to identify", i)
		}
		tail := binary.BigEndian.Uint64(last[len(last)-8:])
		if _, dup := byTail[tail]; dup {
			t.Fatalf("pictures of the clip cannot be told apart (%d)", i)
		}
		byTail[tail] = i
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := make([]int, len(r.tails))
	for i, tail := range r.tails {
		if k, ok := byTail[tail]; ok {
			idx[i] = k
		} else {
			idx[i] = -1
		}
	}
	return idx
}

// checkFrames checks the pictures a reader got (clipFrames) as a decoder
// needs them: each is the picture after the previous one (the clip loops),
// and wherever that does not hold (a camera reconnect) the stream resumes at
// a keyframe. It returns the position in idx of the first keyframe (a
// reader that joins a playing camera may get the rest of a GOP first, which
// decoders skip) and the positions where the stream resumed.
func checkFrames(t testing.TB, who string, c *clip, idx []int) (start int, resumes []int) {
	t.Helper()
	start = -1
	bad := 0
	for i, k := range idx {
		if k < 0 {
			t.Errorf("%s: frame %d is not a picture of the clip", who, i)
			return start, resumes
		}
		if start < 0 && c.keys[k] {
			start = i
		}
		if i == 0 || k == (idx[i-1]+1)%len(c.aus) {
			continue
		}
		resumes = append(resumes, i)
		if !c.keys[k] {
			if bad++; bad <= 5 {
				t.Errorf("%s: frame %d is picture %d, after picture %d, and not a keyframe", who, i, k, idx[i-1])
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d frames in all did not follow the previous one and were not keyframes", who, bad)
	}
	if start < 0 {
		t.Errorf("%s: no keyframe in %d frames", who, len(idx))
	}
	return start, resumes
}

// ended reports whether the reader's session has ended.
func (r *rtpReader) ended() bool { return !r.rd.Alive() }

// statusCode returns the RTSP status of a failed request, or 0.
func statusCode(err error) base.StatusCode {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code
	}
	return 0
}

// ffmpegProgress runs ffmpeg with -progress pipe:1 and reports its frame
// count as it goes.
type ffmpegProc struct {
	cmd    *exec.Cmd
	frames atomic.Int64
	stderr testutil.LogBuffer
	done   chan struct{}
	err    error

	mu sync.Mutex
	// progress holds, for each progress report, when it came and the
	// output timestamp it gave (out_time_us).
	progress []progressPoint
}

type progressPoint struct {
	at  time.Time
	out time.Duration
}

// lastProgress returns the latest progress report.
func (p *ffmpegProc) lastProgress() (progressPoint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.progress) == 0 {
		return progressPoint{}, false
	}
	return p.progress[len(p.progress)-1], true
}

// startFFmpeg starts ffmpeg reading url over TCP with the given output
// arguments.
func startFFmpeg(t testing.TB, url string, out ...string) *ffmpegProc {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1",
		"-stats_period", "0.1", "-rtsp_transport", "tcp", "-i", url}
	args = append(args, out...)
	p := &ffmpegProc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "frame="); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					p.frames.Store(n)
				}
			}
			if v, ok := strings.CutPrefix(sc.Text(), "out_time_us="); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
					p.mu.Lock()
					p.progress = append(p.progress, progressPoint{time.Now(), time.Duration(n) * time.Microsecond})
					p.mu.Unlock()
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// stop asks ffmpeg to finish (SIGINT: it writes the file's trailer) and
// waits.
func (p *ffmpegProc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("ffmpeg did not stop on SIGINT")
	}
}

func (p *ffmpegProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// clip is a video file split into access units.
type clip struct {
	codec         string // "" means H.264
	vps, sps, pps []byte
	width, height int
	aus           [][][]byte
	keys          []bool
}

// loadClip reads an Annex B H.264 file with one slice per picture.
func loadClip(t testing.TB, path string) *clip {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &clip{}
	var cur [][]byte
	key := false
	for _, nalu := range sim.SplitAnnexB(b) {
		typ := h264.NALUType(nalu[0] & 0x1f)
		switch typ {
		case h264.NALUTypeSPS:
			if c.sps == nil {
				c.sps = nalu
				var s h264.SPS
				if err := s.Unmarshal(nalu); err != nil {
					t.Fatal(err)
				}
				c.width, c.height = s.Width(), s.Height()
			}
		case h264.NALUTypePPS:
			if c.pps == nil {
				c.pps = nalu
			}
		case h264.NALUTypeIDR:
			key = true
		}
		if typ == h264.NALUTypeSEI || typ == h264.NALUTypeAccessUnitDelimiter {
			continue
		}
		cur = append(cur, nalu)
		if typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			c.aus = append(c.aus, cur)
			c.keys = append(c.keys, key)
			cur, key = nil, false
		}
	}
	if len(c.aus) == 0 || c.sps == nil {
		t.Fatalf("%s: no access units", path)
	}
	return c
}

func (c *clip) info() stream.Info {
	var fm format.Format
	codec := c.codec
	switch codec {
	case "", stream.CodecH264:
		codec = stream.CodecH264
		fm = &format.H264{PayloadTyp: 96, SPS: c.sps, PPS: c.pps, PacketizationMode: 1}
	case stream.CodecH265:
		fm = &format.H265{PayloadTyp: 96, VPS: c.vps, SPS: c.sps, PPS: c.pps}
	case stream.CodecMJPEG:
		fm = &format.MJPEG{}
	}
	return stream.Info{
		Codec: codec, Width: c.width, Height: c.height, Transport: "tcp",
		Media:  &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{fm}},
		Format: fm,
	}
}

// play feeds the clip to f at 25 fps as one camera connection, from
// frame first, with PTS starting at pts0, until ctx is done or n frames
// were sent (n <= 0: loop forever). It returns the frames sent.
func (c *clip) play(ctx context.Context, f tap, first int, pts0 int64, n int) int {
	f.Info(c.info())
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for i := first; n <= 0 || sent < n; i++ {
		select {
		case <-ctx.Done():
			return sent
		case <-tick.C:
		}
		k := i % len(c.aus)
		f.Frame(stream.Frame{
			Time: time.Now(), PTS: pts0 + int64(sent)*3600, ClockRate: videoClockRate,
			AU: c.aus[k], Size: auSize(c.aus[k]), Key: c.keys[k],
		})
		sent++
	}
	return sent
}

func auSize(au [][]byte) int {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	return n
}
