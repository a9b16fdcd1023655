package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// fpsWithin is the order-of-magnitude check on a rate measured on a loaded
// machine: 25 fps means anything from 15 to 35.
func fpsWithin(fps float64) bool { return fps >= 15 && fps <= 35 }

// TestTenReadersOneCameraSession: ten independent readers (seven gortsplib
// clients, three ffmpeg) on one camera cost the camera one session, and each
// gets about 25 fps.
func TestTenReadersOneCameraSession(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	url := "rtsp://" + s.Addr() + "/cam1"

	var readers []*rtpReader
	for range 7 {
		r, err := startReader(t, url)
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	var ffs []*ffmpegProc
	for range 3 {
		ffs = append(ffs, startFFmpeg(t, url, "-c", "copy", "-f", "null", "-"))
	}
	testutil.WaitFor(t, 30*time.Second, "all readers playing", func() bool {
		for _, r := range readers {
			if r.frames.Load() < 10 {
				return false
			}
		}
		for _, p := range ffs {
			if p.frames.Load() < 10 {
				return false
			}
		}
		return true
	})
	if got := s.Stats("cam1").Readers; got != 10 {
		t.Errorf("Stats.Readers = %d, want 10", got)
	}

	const window = 4 * time.Second
	r0 := make([]int64, len(readers))
	f0 := make([]int64, len(ffs))
	for i, r := range readers {
		r0[i] = r.frames.Load()
	}
	for i, p := range ffs {
		f0[i] = p.frames.Load()
	}
	start := time.Now()
	time.Sleep(window)
	el := time.Since(start).Seconds()
	for i, r := range readers {
		fps := float64(r.frames.Load()-r0[i]) / el
		if !fpsWithin(fps) {
			t.Errorf("gortsplib reader %d: %.1f fps", i, fps)
		}
		if g := r.seqGaps.Load(); g != 0 {
			t.Errorf("gortsplib reader %d: %d sequence gaps", i, g)
		}
		// Every picture, in order: no frame skipped either.
		if _, res := checkFrames(t, fmt.Sprintf("gortsplib reader %d", i), c, r.clipFrames(t, c)); len(res) != 0 {
			t.Errorf("gortsplib reader %d: the stream skipped to a keyframe %d times", i, len(res))
		}
		t.Logf("gortsplib reader %d: %.1f fps", i, fps)
	}
	for i, p := range ffs {
		// ffmpeg reports progress every 0.5 s: allow for that.
		fps := float64(p.frames.Load()-f0[i]) / el
		if fps < 10 || fps > 40 {
			t.Errorf("ffmpeg reader %d: %.1f fps\n%s", i, fps, p.stderr.String())
		}
		t.Logf("ffmpeg reader %d: %.1f fps", i, fps)
	}
	if n := sm.Sessions(1); n != 1 {
		t.Errorf("camera saw %d sessions, want 1", n)
	}
	st := s.Stats("cam1")
	if st.ReadersTotal != 10 || st.PacketsSent == 0 || st.BytesSent < st.PacketsSent*100 || st.ReadersDropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestReadersSurviveCameraDrop: a gortsplib reader and a long-running
// ffmpeg keep their sessions across a camera drop; the gortsplib reader sees
// continuous sequence numbers, timestamps that keep real time (they advance
// by the drop's length) and resumes at a keyframe, and ffmpeg's frame count
// keeps rising once the camera is back.
func TestReadersSurviveCameraDrop(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	url := "rtsp://" + s.Addr() + "/cam1"

	r, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	p := startFFmpeg(t, url, "-c", "copy", "-f", "null", "-")
	testutil.WaitFor(t, 30*time.Second, "frames before the drop", func() bool {
		return r.frames.Load() >= 50 && p.frames.Load() >= 25
	})

	// Drop the camera; for 2 s it also hangs up on every new session.
	if err := sm.SetFault(1, sim.FaultDrop, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	testutil.WaitFor(t, 10*time.Second, "the camera to be down", func() bool { return sm.Sessions(1) >= 2 })
	testutil.WaitFor(t, 30*time.Second, "the camera to be back", func() bool { return sm.ActiveSessions(1) == 1 && time.Since(dropped) > 2*time.Second })
	rBack, pBack := r.frames.Load(), p.frames.Load()
	testutil.WaitFor(t, 30*time.Second, "frames after the camera is back", func() bool {
		if r.ended() {
			t.Fatalf("gortsplib reader's session ended: %v", r.rd.Err())
		}
		if !p.running() {
			t.Fatalf("ffmpeg stopped: %v\n%s", p.err, p.stderr.String())
		}
		return r.frames.Load() >= rBack+50 && p.frames.Load() >= pBack+50
	})
	if g := r.seqGaps.Load(); g != 0 {
		t.Errorf("%d RTP sequence gaps across the drop", g)
	}
	// Timestamps advance by the wall-clock length of the drop, and jump
	// nowhere else.
	for _, e := range r.realTimeErrors(time.Second) {
		t.Error(e)
	}
	if step := time.Duration(r.maxTSStep() * int64(time.Second) / videoClockRate); step < 2*time.Second {
		t.Errorf("timestamps advanced at most %s between two frames, want the drop's 2 s at least", step)
	}
	if r.resumes.Load() == 0 {
		t.Errorf("the reader saw no pause: was the camera really dropped? (sessions %d)", sm.Sessions(1))
	}
	_, resumes := checkFrames(t, "gortsplib reader", c, r.clipFrames(t, c))
	if st := s.Stats("cam1"); st.Readers != 2 || st.ReadersTotal != 2 {
		t.Errorf("stats %+v, want the same 2 readers", st)
	}
	t.Logf("camera sessions %d; reader frames %d (resumed at a keyframe at %v), ffmpeg frames %d; max timestamp step %d",
		sm.Sessions(1), r.frames.Load(), resumes, p.frames.Load(), r.maxTSStep())
}

// TestMP4AcrossCameraDrop: ffmpeg writes the relay into an .mp4 with -c copy
// across a short camera drop; the file decodes end to end without an error
// and keeps real time (see recordAcrossDrop).
func TestMP4AcrossCameraDrop(t *testing.T) {
	t.Parallel()
	recordAcrossDrop(t, 2*time.Second)
}

// TestMP4KeepsOutage: an 11 s outage while ffmpeg records the relay leaves
// an 11 s gap in the file, whose duration is the wall-clock recording
// time.
func TestMP4KeepsOutage(t *testing.T) {
	t.Parallel()
	recordAcrossDrop(t, 11*time.Second)
}

// recordAcrossDrop has ffmpeg record the relay into an .mp4 (-c copy) while
// the camera is down for about down, beside a gortsplib reader. The file
// decodes end to end without an error; its duration is within a second of
// the wall-clock recording time and its packets jump by the outage; the
// reader's RTP timestamps advance by the wall-clock length of each pause,
// its sequence numbers stay continuous, and the RTCP sender reports before
// and after the outage map RTP time to NTP time consistently.
func recordAcrossDrop(t *testing.T, down time.Duration) {
	ffprobe := testutil.NeedTool(t, "ffprobe")
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	url := "rtsp://" + s.Addr() + "/cam1"
	r, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.mp4")
	p := startFFmpeg(t, url, "-c", "copy", "-f", "mp4", "-y", out)
	testutil.WaitFor(t, 30*time.Second, "frames before the drop", func() bool {
		_, ok := p.lastProgress()
		return ok && p.frames.Load() >= 50 && r.frames.Load() >= 50
	})
	// The file's start in wall-clock time, from ffmpeg's progress once
	// it streams: the time of a report less the output time it gives.
	before, _ := p.lastProgress()
	fileStart := before.at.Add(-before.out)
	if err := sm.SetFault(1, sim.FaultDrop, down); err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	testutil.WaitFor(t, 10*time.Second, "the camera to be down", func() bool { return sm.Sessions(1) >= 2 })
	testutil.WaitFor(t, down+30*time.Second, "the camera to be back", func() bool {
		return sm.ActiveSessions(1) == 1 && time.Since(dropped) > down
	})
	backAt := time.Now()
	back := p.frames.Load()
	testutil.WaitFor(t, 30*time.Second, "frames after the drop", func() bool { return p.frames.Load() >= back+75 })
	// A sender report made after the camera came back (they come every
	// 10 s).
	testutil.WaitFor(t, 30*time.Second, "a sender report after the outage", func() bool {
		srs := r.senderReports()
		return len(srs) > 0 && srs[len(srs)-1].at.After(backAt.Add(time.Second))
	})
	stopAt := time.Now()
	p.stop(t)
	if p.err != nil && !strings.Contains(p.err.Error(), "exit status 255") {
		t.Fatalf("ffmpeg: %v\n%s", p.err, p.stderr.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dec, err := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(dec))) != 0 {
		t.Errorf("decoding the mp4: %v\n%s", err, dec)
	}
	probe, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,duration,width,height", "-of", "json", out).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	var res struct {
		Streams []struct {
			Frames   string `json:"nb_read_frames"`
			Duration string `json:"duration"`
			Width    int    `json:"width"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(probe, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe output %q: %v", probe, err)
	}
	frames, _ := strconv.Atoi(res.Streams[0].Frames)
	dur, _ := strconv.ParseFloat(res.Streams[0].Duration, 64)
	if int64(frames) < back+75 {
		t.Errorf("mp4 has %d frames, want at least %d", frames, back+75)
	}
	// The outage is a gap between two packets of the file, as long as the
	// pause the gortsplib reader saw.
	pkts, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var first, gap, prev float64
	for i, l := range strings.Fields(string(pkts)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe packet %q: %v", l, err)
		}
		if i == 0 {
			first = v
		} else {
			gap = max(gap, v-prev)
		}
		prev = v
	}
	// ffmpeg's output time counts from the first packet it got, the file
	// from the first keyframe it kept.
	wall := stopAt.Sub(fileStart).Seconds() - first
	t.Logf("mp4: %d frames, %.2f s; recorded for %.2f s of wall-clock time; ffmpeg counted %d",
		frames, dur, wall, p.frames.Load())
	if dur < wall-1 || dur > wall+1 {
		t.Errorf("mp4 lasts %.2f s, recorded for %.2f s of wall-clock time", dur, wall)
	}
	// The file's gap is the relay's largest timestamp step (ffmpeg copies
	// the timeline), and at least the outage.
	step := time.Duration(r.maxTSStep() * int64(time.Second) / videoClockRate)
	t.Logf("largest gap between packets of the file %.2f s; the relay's largest timestamp step %s", gap, step.Round(time.Millisecond))
	if gap < down.Seconds()-0.5 || gap < step.Seconds()-0.5 || gap > step.Seconds()+0.5 {
		t.Errorf("largest gap between packets %.2f s, want the outage: at least %s, and the relay's largest step %s", gap, down, step)
	}

	if g := r.seqGaps.Load(); g != 0 {
		t.Errorf("%d RTP sequence gaps across the drop", g)
	}
	for _, e := range r.realTimeErrors(time.Second) {
		t.Error(e)
	}
	srs := r.senderReports()
	if len(srs) < 2 || !srs[0].at.Before(dropped) {
		t.Fatalf("%d sender reports, want one before the drop and one after", len(srs))
	}
	a, b := srs[0], srs[len(srs)-1]
	ntpSpan := b.ntp.Sub(a.ntp)
	rtpSpan := time.Duration(int64(b.rtp-a.rtp) * int64(time.Second) / videoClockRate)
	t.Logf("sender reports %s apart in NTP time, %s in RTP time", ntpSpan.Round(time.Millisecond), rtpSpan.Round(time.Millisecond))
	if d := ntpSpan - rtpSpan; d > time.Second/2 || d < -time.Second/2 {
		t.Errorf("sender reports %s apart in NTP time but %s in RTP time", ntpSpan, rtpSpan)
	}
}

// TestSameParametersKeepReaders feeds the relay directly: a second camera
// connection with the same parameters, a different PTS origin and a start in
// the middle of a GOP continues the readers' stream seamlessly, in real
// time.
func TestSameParametersKeepReaders(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	s := newRelay(t, Config{})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		c.play(ctx, f, 0, 0, 1)
		close(started)
		c.play(ctx, f, 1, 3600, 49)
		f.Disconnected()
		time.Sleep(300 * time.Millisecond)
		c.play(ctx, f, 13, 987654321, 75) // new connection, mid-GOP
		f.Disconnected()
	}()
	defer wg.Wait()
	<-started
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// The second connection's last frame is picture 87 of the clip.
	last := (13 + 75 - 1) % len(c.aus)
	testutil.WaitFor(t, 10*time.Second, "the last frame", func() bool {
		idx := r.clipFrames(t, c)
		return len(idx) > 0 && idx[len(idx)-1] == last
	})
	if r.ended() {
		t.Fatalf("session ended: %v", r.rd.Err())
	}
	if g := r.seqGaps.Load(); g != 0 {
		t.Errorf("%d sequence gaps", g)
	}
	// The reconnect (300 ms, then the second connection's pictures up to
	// its first keyframe) advances the timestamps by as much.
	for _, e := range r.realTimeErrors(time.Second) {
		t.Error(e)
	}
	if step := time.Duration(r.maxTSStep() * int64(time.Second) / videoClockRate); step < 300*time.Millisecond {
		t.Errorf("timestamps advanced at most %s between two frames, want the reconnect's 300ms at least", step)
	}
	// From its first keyframe on, the reader gets the first connection to
	// its end (picture 49), then the second connection from its first
	// keyframe (picture 25: pictures 13 to 24 cannot be decoded without
	// what came before them) to its end.
	all := r.clipFrames(t, c)
	start, res := checkFrames(t, "reader", c, all)
	if start < 0 {
		return
	}
	idx := all[start:]
	var resumes []int
	for _, i := range res {
		if i > start {
			resumes = append(resumes, i-start)
		}
	}
	for _, i := range resumes {
		t.Logf("frame %d: picture %d after picture %d", i, idx[i], idx[i-1])
	}
	t.Logf("reader got %d frames, pictures %d to %d", len(idx), idx[0], idx[len(idx)-1])
	want := last - 25 + 1
	switch {
	case len(idx) < want:
		t.Errorf("reader got %d frames, want at least the second connection's %d", len(idx), want)
	case len(resumes) > 1:
		t.Errorf("the stream resumed %d times, want once", len(resumes))
	case len(resumes) == 1 && (resumes[0] != len(idx)-want || idx[resumes[0]-1] != 49):
		t.Errorf("the second connection starts at frame %d after picture %d, want frame %d after picture 49",
			resumes[0], idx[resumes[0]-1], len(idx)-want)
	case len(resumes) == 0 && idx[0] != 25:
		// Only possible if the reader started playing after the first
		// connection ended.
		t.Errorf("reader got only pictures %d..%d", idx[0], idx[len(idx)-1])
	}
}

// TestParameterChangeEndsStream: when the camera comes back with another
// resolution, readers get an end of stream (an ffmpeg recording it finishes
// a file that decodes without an error), and a new reader gets the new
// description.
func TestParameterChangeEndsStream(t *testing.T) {
	t.Parallel()
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	ffprobe := testutil.NeedTool(t, "ffprobe")
	a := loadClip(t, "../sim/clip.h264")
	b := loadClip(t, "../testdata/h264_640x480_25fps.h264")
	if a.width == b.width && a.height == b.height {
		t.Fatal("clips have the same size")
	}
	s := newRelay(t, Config{})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	switchNow := make(chan struct{})
	go func() {
		defer wg.Done()
		pctx, pcancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-switchNow:
			case <-ctx.Done():
			}
			pcancel()
		}()
		a.play(pctx, f, 0, 0, 0)
		f.Disconnected()
		b.play(ctx, f, 0, 0, 0)
	}()
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	if w, h := descSize(t, r); w != a.width || h != a.height {
		t.Fatalf("first description %dx%d, want %dx%d", w, h, a.width, a.height)
	}
	// ffmpeg recording the stream sees the end of stream as the end of its
	// input: it finishes the file and exits by itself.
	out := filepath.Join(t.TempDir(), "before.mp4")
	p := startFFmpeg(t, "rtsp://"+s.Addr()+"/cam1", "-c", "copy", "-f", "mp4", "-y", out)
	testutil.WaitFor(t, 20*time.Second, "frames", func() bool { return r.frames.Load() >= 10 && p.frames.Load() >= 25 })
	close(switchNow)
	testutil.WaitFor(t, 10*time.Second, "the reader's end of stream", r.ended)
	t.Logf("first reader ended with: %v", r.rd.Err())
	testutil.WaitFor(t, 30*time.Second, "ffmpeg to finish by itself", func() bool { return !p.running() })
	if p.err != nil {
		t.Errorf("ffmpeg at the end of stream: %v\n%s", p.err, p.stderr.String())
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	dec, err := exec.CommandContext(pctx, ffmpeg, "-v", "error", "-i", out, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(dec))) != 0 {
		t.Errorf("decoding the recording: %v\n%s", err, dec)
	}
	probe, err := exec.CommandContext(pctx, ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0", out).CombinedOutput()
	var w, h, n int
	if _, serr := fmt.Sscanf(strings.TrimSpace(string(probe)), "%d,%d,%d", &w, &h, &n); err != nil || serr != nil {
		t.Fatalf("ffprobe of the recording: %v %v %q", err, serr, probe)
	}
	t.Logf("recording before the change: %dx%d, %d frames (ffmpeg counted %d)", w, h, n, p.frames.Load())
	if w != a.width || h != a.height || int64(n) < 25 {
		t.Errorf("recording before the change: %dx%d, %d frames; want %dx%d, at least 25 frames", w, h, n, a.width, a.height)
	}

	r2, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	if w, h := descSize(t, r2); w != b.width || h != b.height {
		t.Fatalf("new description %dx%d, want %dx%d", w, h, b.width, b.height)
	}
	testutil.WaitFor(t, 10*time.Second, "frames of the new stream", func() bool { return r2.frames.Load() >= 10 })
	cancel()
}

func descSize(t *testing.T, r *rtpReader) (int, int) {
	t.Helper()
	var fm *format.H264
	if r.desc.FindFormat(&fm) == nil || fm.SPS == nil {
		t.Fatalf("no H.264 SPS in the description")
	}
	var sps h264.SPS
	if err := sps.Unmarshal(fm.SPS); err != nil {
		t.Fatal(err)
	}
	return sps.Width(), sps.Height()
}

// TestFeedCloseEndsReaders: removing the camera ends its readers and its
// name is unknown afterwards.
func TestFeedCloseEndsReaders(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	s := newRelay(t, Config{})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.play(ctx, f, 0, 0, 0) }()
	defer func() { cancel(); <-done }()
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "frames", func() bool { return r.frames.Load() >= 5 })
	f.Close()
	f.Close()
	testutil.WaitFor(t, 10*time.Second, "the reader's end", r.ended)
	if _, err := startReader(t, "rtsp://"+s.Addr()+"/cam1"); statusCode(err) != 404 {
		t.Errorf("after Close: %v, want 404", err)
	}
	if st := s.Stats("cam1"); st != (Stats{}) {
		t.Errorf("stats of a removed camera: %+v", st)
	}
	// Methods of a closed Feed are no-ops.
	f.Info(c.info())
	f.Disconnected()
	c.play(context.Background(), f, 0, 0, 2)
}
