package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/stream"
)

func TestRecoveryPoint(t *testing.T) {
	t.Parallel()
	userData := append([]byte{5, 20}, make([]byte, 20)...) // user data unregistered
	long := append([]byte{5, 0xFF, 3}, make([]byte, 258)...)
	cases := []struct {
		name  string
		codec string
		nalu  []byte
		want  bool
	}{
		{"x264 recovery point", stream.CodecH264, []byte{0x06, 0x06, 0x02, 0x09, 0xC4, 0x80}, true},
		{"user data only", stream.CodecH264, append(append([]byte{0x06}, userData...), 0x80), false},
		{"after user data", stream.CodecH264, append(append([]byte{0x06}, userData...), 0x06, 0x01, 0x84, 0x80), true},
		// A payload size of 255+3 bytes, whose zeros need emulation
		// prevention bytes to be skipped.
		{"after a long message", stream.CodecH264, append(append([]byte{0x06}, escape(long)...), 0x06, 0x01, 0x84, 0x80), true},
		{"truncated", stream.CodecH264, []byte{0x06, 0xFF, 0xFF}, false},
		{"size beyond the end", stream.CodecH264, []byte{0x06, 0x05, 0x40, 0x00, 0x80}, false},
		{"not an SEI", stream.CodecH264, []byte{0x65, 0x06, 0x06}, false},
		{"H.265 prefix SEI", stream.CodecH265, []byte{39 << 1, 0x01, 0x06, 0x01, 0x84, 0x80}, true},
		{"H.265 suffix SEI", stream.CodecH265, []byte{40 << 1, 0x01, 0x06, 0x01, 0x84, 0x80}, false},
		{"MJPEG", stream.CodecMJPEG, []byte{0x06, 0x06, 0x02, 0x09, 0xC4, 0x80}, false},
	}
	for _, tc := range cases {
		if got := recoveryPoint(tc.codec, [][]byte{{0x41, 0x9a}, tc.nalu}); got != tc.want {
			t.Errorf("%s: recoveryPoint = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// escape adds H.264 emulation prevention bytes.
func escape(b []byte) []byte {
	var out []byte
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// lateTap hands the Feed camd's ingest of a camera from its skip+1th
// frame on (Info at once): the relay joins a running camera after its IDR,
// which it would otherwise get first, because the GStreamer RTSP server
// has its encoder make a keyframe for each new client.
type lateTap struct {
	*Feed
	skip   int64
	frames atomic.Int64
}

func (c *lateTap) Frame(fr stream.Frame) {
	if c.frames.Add(1) > c.skip {
		c.Feed.Frame(fr)
	}
}

// runningMidGOP starts a GStreamer camera and reads it through camd's
// ingest into a relay Feed that misses the first 2 s, and waits for camd's
// first frame: the camera is RUNNING.
func runningMidGOP(t *testing.T, o gstcam.Options) (*Server, *lateTap) {
	t.Helper()
	cam := gstcam.Start(t, o)
	s := newRelay(t, Config{})
	tap := &lateTap{Feed: s.Feed("cam"), skip: 50}
	supervise(t, cam.URL("rtsp", "", "", ""), tap)
	testutil.WaitFor(t, 30*time.Second, "camd's first frame", func() bool { return tap.frames.Load() > 0 })
	return s, tap
}

// TestIntraRefreshRelayed: an intra-refresh camera (one IDR, then
// recovery points only) whose IDR the relay missed is relayed: ffprobe
// reports the stream and ffmpeg -c copy reads 250 frames.
func TestIntraRefreshRelayed(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	// x264's intra refresh sends one IDR, then a recovery point every GOP
	// frames: every 2 s here, as intra-refresh cameras do.
	s, tap := runningMidGOP(t, gstcam.Options{IntraRefresh: true, GOP: 50})
	testutil.WaitFor(t, 30*time.Second, "the relay's first frame", func() bool { return tap.frames.Load() > tap.skip })
	url := "rtsp://" + s.Addr() + "/cam"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
		"-of", "json", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	if st := res.Streams[0]; st.CodecName != "h264" || st.Width != 320 || st.Height != 240 {
		t.Fatalf("ffprobe saw %+v, want h264 320x240", st)
	}
	t.Logf("ffprobe: %+v after %s", res.Streams[0], time.Since(start).Round(time.Millisecond))
	// It needs a picture: the next recovery point, at most 2 s away.
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("ffprobe took %s", took)
	}

	start = time.Now()
	p := startFFmpeg(t, url, "-c", "copy", "-frames:v", "250", "-f", "null", "-")
	testutil.WaitFor(t, 60*time.Second, "ffmpeg to read 250 frames and exit", func() bool { return !p.running() })
	took := time.Since(start)
	if p.err != nil || p.frames.Load() != 250 {
		t.Fatalf("ffmpeg: %v, %d frames\n%s", p.err, p.frames.Load(), p.stderr.String())
	}
	t.Logf("ffmpeg -c copy read 250 frames in %s (camd had %d frames)", took.Round(time.Millisecond), tap.frames.Load())
	// A recovery point comes every 2 s: 250 frames (10 s) take about 12 s;
	// waiting for the start-point timeout (30 s) instead would not pass.
	if took > 25*time.Second {
		t.Errorf("250 frames took %s", took)
	}
	if st := s.Stats("cam"); st.NoStartPointSince != nil {
		t.Errorf("stats say no start point since %s, but recovery points came", st.NoStartPointSince)
	}
}

// TestLongGOPReaderJoins: with a 10 s GOP, a reader that joins mid-GOP is
// answered at once and gets its first frame, a keyframe, within the GOP;
// DESCRIBE never answers 503 while the camera is RUNNING.
func TestLongGOPReaderJoins(t *testing.T) {
	t.Parallel()
	s, tap := runningMidGOP(t, gstcam.Options{GOP: 250})
	url := "rtsp://" + s.Addr() + "/cam"
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	describes := 0
	describe := func() {
		t.Helper()
		c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 20 * time.Second}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_, _, err := c.Describe(u)
		c.Close()
		if err != nil {
			t.Fatalf("DESCRIBE %d while the camera is RUNNING: %v", describes+1, err)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("DESCRIBE took %s", d)
		}
		describes++
		time.Sleep(200 * time.Millisecond)
	}
	for tap.frames.Load() <= tap.skip {
		describe()
	}
	joined := time.Now()
	r, err := startReader(t, url)
	if err != nil {
		t.Fatalf("reader joining mid-GOP: %v (after %s)", err, time.Since(joined))
	}
	answered := time.Since(joined)
	// While the reader waits for the keyframe, DESCRIBE keeps answering.
	for r.frames.Load() == 0 && time.Since(joined) < 15*time.Second {
		describe()
	}
	testutil.WaitFor(t, 15*time.Second, "the reader's first frame", func() bool { return r.frames.Load() > 0 })
	au, at := r.firstFrame()
	first := at.Sub(joined)
	t.Logf("reader answered after %s, first frame after %s; %d DESCRIBEs answered since camd's first frame; stats %+v",
		answered.Round(time.Millisecond), first.Round(time.Millisecond), describes, s.Stats("cam"))
	if first > 10*time.Second {
		t.Errorf("first frame after %s, want within the 10 s GOP", first)
	}
	if !h264.IsRandomAccess(au) {
		t.Errorf("the first frame is not a keyframe (%d NAL units)", len(au))
	}
	testutil.WaitFor(t, 20*time.Second, "frames", func() bool { return r.frames.Load() >= 25 })
}

// TestNoStartPointStartsAnyway: a stream that never has a keyframe or a
// recovery point shows it in its stats after StartPointTimeout, logs it
// once, and its readers then start at any frame, carrying the parameter
// sets.
func TestNoStartPointStartsAnyway(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	var logs testutil.LogBuffer
	s := newRelay(t, Config{StartPointTimeout: 2 * time.Second, Logger: testutil.Logger(&logs)})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Info(c.info())
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		// From picture 1 on, with every keyframe flag cleared: an
		// intra-refresh stream that marks no start point.
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			k := n % len(c.aus)
			f.Frame(stream.Frame{Time: time.Now(), PTS: int64(n) * 3600, ClockRate: videoClockRate,
				AU: c.aus[k], Size: auSize(c.aus[k])})
		}
	}()
	defer func() { cancel(); <-done }()
	began := time.Now()
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	sawWaiting := false
	testutil.WaitFor(t, 20*time.Second, "frames", func() bool {
		if r.frames.Load() == 0 {
			st := s.Stats("cam1")
			sawWaiting = sawWaiting || st.WaitingForStartPoint
			if st.NoStartPointSince != nil && time.Since(began) < 2*time.Second {
				t.Errorf("stats before the timeout: %+v", st)
			}
		}
		return r.frames.Load() >= 25
	})
	if !sawWaiting {
		t.Error("the stats never said the reader waited for a start point")
	}
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("the reader got frames after %s, before the timeout", took)
	}
	st := s.Stats("cam1")
	if st.NoStartPointSince == nil || st.WaitingForStartPoint {
		t.Errorf("stats after the timeout: %+v", st)
	}
	b, _ := json.Marshal(st)
	t.Logf("stats: %s", b)
	if !strings.Contains(string(b), `"no_start_point_since":"`) {
		t.Errorf("stats JSON %s lacks no_start_point_since", b)
	}
	au, _ := r.firstFrame()
	if len(au) == 0 || h264.NALUType(au[0][0]&0x1F) != h264.NALUTypeSPS {
		t.Errorf("the first frame does not start with the SPS")
	}
	if n := len(logs.Lines("no keyframe or recovery point")); n != 1 {
		t.Errorf("%d log lines about it, want 1:\n%s", n, logs.String())
	}
}

// TestInBandParamsReplaceSDP: a camera whose SDP parameter sets differ
// from those it sends in band. Readers are answered from the SDP before
// the first frame; the in-band ones then become the description's without
// ending those readers, who get them in band before the first picture.
func TestInBandParamsReplaceSDP(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	sdp := *c
	sdp.sps = append(bytes.Clone(c.sps), 0) // same picture, other bytes
	s := newRelay(t, Config{})
	f := s.Feed("cam1")
	f.Info(sdp.info())
	url := "rtsp://" + s.Addr() + "/cam1"
	r, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if got := descSPS(t, r); !bytes.Equal(got, sdp.sps) {
		t.Fatalf("description before the first frame has SPS %x, want the SDP's %x", got, sdp.sps)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			k := n % len(c.aus)
			f.Frame(stream.Frame{Time: time.Now(), PTS: int64(n) * 3600, ClockRate: videoClockRate,
				AU: c.aus[k], Size: auSize(c.aus[k]), Key: c.keys[k]})
		}
	}()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, 20*time.Second, "frames", func() bool { return r.frames.Load() >= 25 })
	if r.ended() {
		t.Fatalf("the reader's session ended: %v", r.rd.Err())
	}
	if au, _ := r.firstFrame(); len(au) == 0 || !bytes.Equal(au[0], c.sps) {
		t.Errorf("the first frame does not start with the in-band SPS")
	}
	r2, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if got := descSPS(t, r2); !bytes.Equal(got, c.sps) {
		t.Errorf("description after the first frame has SPS %x, want the in-band %x", got, c.sps)
	}
}

func descSPS(t *testing.T, r *rtpReader) []byte {
	t.Helper()
	var fm *format.H264
	if r.desc.FindFormat(&fm) == nil {
		t.Fatal("no H.264 format in the description")
	}
	return fm.SPS
}

// TestNoStartPointLoggedOnce: a camera whose keyframes are further apart
// than StartPointTimeout is logged once per connection, not once a GOP.
func TestNoStartPointLoggedOnce(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	var logs testutil.LogBuffer
	s := newRelay(t, Config{StartPointTimeout: 400 * time.Millisecond, Logger: testutil.Logger(&logs)})
	f := s.Feed("cam1")
	f.Info(c.info())
	// A keyframe every 25 frames (1 s at 25 fps), 100 frames.
	now := time.Now()
	for n := range 100 {
		k := n % len(c.aus)
		f.Frame(stream.Frame{Time: now.Add(time.Duration(n) * 40 * time.Millisecond), PTS: int64(n) * 3600,
			ClockRate: videoClockRate, AU: c.aus[k], Size: auSize(c.aus[k]), Key: n%25 == 0})
	}
	if st := s.Stats("cam1"); st.NoStartPointSince == nil {
		t.Errorf("stats %+v, want no_start_point_since", st)
	}
	testutil.WaitFor(t, 10*time.Second, "the log line", func() bool { return len(logs.Lines("no keyframe or recovery point")) > 0 })
	// Any further line was queued with the first: give the Feed's
	// goroutine a moment to handle it.
	time.Sleep(200 * time.Millisecond)
	if n := len(logs.Lines("no keyframe or recovery point")); n != 1 {
		t.Errorf("%d log lines, want 1:\n%s", n, logs.String())
	}
}
