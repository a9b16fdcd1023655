package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

func TestClip(t *testing.T) {
	c, err := loadClip()
	if err != nil {
		t.Fatal(err)
	}
	if c.width != 640 || c.height != 360 || c.fps != 25 {
		t.Fatalf("clip is %dx%d@%d, want 640x360@25", c.width, c.height, c.fps)
	}
	if len(clipH264) > 600<<10 {
		t.Errorf("clip is %d bytes, want well under 1 MB", len(clipH264))
	}
	// Keyframes every 1-2 s, and the clip must loop onto a keyframe.
	var keys []int
	bytes := 0
	for i, f := range c.frames {
		for _, p := range f {
			bytes += len(p.data)
		}
		// An IDR access unit starts with SPS (7) here (repeat-headers).
		if f[0].data[0]&0x1f == 7 || f[0].data[0]&0x1f == 24 && f[0].data[3]&0x1f == 7 {
			keys = append(keys, i)
		}
	}
	if len(keys) == 0 || keys[0] != 0 {
		t.Fatalf("keyframes at %v, want the first frame to be one", keys)
	}
	for i := 1; i < len(keys); i++ {
		if gap := keys[i] - keys[i-1]; gap < 25 || gap > 50 {
			t.Errorf("keyframe gap %d frames, want 25-50", gap)
		}
	}
	if gap := len(c.frames) - keys[len(keys)-1]; gap < 25 || gap > 50 {
		t.Errorf("keyframe gap over the loop point %d frames, want 25-50", gap)
	}
	mbps := float64(bytes*8) / (float64(len(c.frames)) / float64(c.fps)) / 1e6
	t.Logf("clip: %d frames, keyframes at %v, %.2f Mbit/s, %d bytes", len(c.frames), keys, mbps, len(clipH264))
	if mbps < 0.8 || mbps > 2.2 {
		t.Errorf("clip bitrate %.2f Mbit/s, want about 1-2", mbps)
	}
}

// TestCloseLeaks checks that Close leaves no goroutine and no file
// descriptor behind. It is not parallel, so nothing else runs meanwhile.
func TestCloseLeaks(t *testing.T) {
	fds := func() int {
		es, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return -1
		}
		return len(es)
	}
	g0, fd0 := runtime.NumGoroutine(), fds()

	s, err := New(Config{Cameras: 3, ControlListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: waitTimeout}
	res, err := hc.Get("http://" + s.ControlAddr() + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	func() {
		tcp, desc, err := dial(s.URL(1), false)
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		udp, _, err := dial(s.URL(2), true)
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		if err := tcp.SetupAll(desc.BaseURL, desc.Medias); err != nil {
			t.Fatal(err)
		}
		if _, err := tcp.Play(nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFault(3, FaultStall, time.Hour); err != nil {
			t.Fatal(err)
		}
		if runtime.NumGoroutine() <= g0 || fds() <= fd0 {
			t.Fatal("the server's goroutines and FDs do not show in the counts")
		}
		// Close the server under its clients.
		s.Close()
		s.Close() // twice is harmless
	}()
	hc.CloseIdleConnections()

	eventually(t, "goroutines and FDs back to their count before New", func() bool {
		return runtime.NumGoroutine() <= g0 && fds() <= fd0
	})
}

func TestParseFault(t *testing.T) {
	for in, want := range map[string]Fault{
		"stall": FaultStall, "drop": FaultDrop, "refuse": FaultRefuse, "garbage": FaultGarbage,
		"no-video": FaultNoVideo, "clear": FaultNone, "": FaultNone, "none": FaultNone, " Stall ": FaultStall,
	} {
		got, err := ParseFault(in)
		if err != nil || got != want {
			t.Errorf("ParseFault(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFault("explode"); err == nil {
		t.Error("ParseFault(explode) succeeded")
	}
}

func TestFFprobe(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	s := newSim(t, Config{Cameras: 2})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-select_streams", "v", "-show_streams", "-of", "json", s.URL(2)).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var res struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			RFrameRate string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	if len(res.Streams) != 1 {
		t.Fatalf("ffprobe found %d video streams, want 1:\n%s", len(res.Streams), out)
	}
	w, h, fps := s.Info()
	st := res.Streams[0]
	if st.CodecName != "h264" || st.Width != w || st.Height != h || st.RFrameRate != fmt.Sprintf("%d/1", fps) {
		t.Fatalf("ffprobe: %+v, want h264 %dx%d %d/1", st, w, h, fps)
	}
}

// TestFFmpegFrameCount decodes 5 s with ffmpeg over each transport.
func TestFFmpegFrameCount(t *testing.T) {
	t.Parallel()
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	s := newSim(t, Config{Cameras: 2})
	for i, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout+10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-nostats",
				"-rtsp_transport", tr, "-i", s.URL(i+1),
				"-t", "5", "-map", "0:v", "-f", "null", "-").CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`frame=\s*(\d+)`).FindAllSubmatch(out, -1)
			if m == nil {
				t.Fatalf("no frame count in ffmpeg output:\n%s", out)
			}
			n, _ := strconv.Atoi(string(m[len(m)-1][1]))
			t.Logf("ffmpeg decoded %d frames in 5 s over %s", n, tr)
			if n < 100 || n > 150 {
				t.Fatalf("ffmpeg decoded %d frames in 5 s, want about 125", n)
			}
		})
	}
}

// TestContinuity plays past the loop point and checks that RTP sequence
// numbers and timestamps never jump.
func TestContinuity(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	r := startReader(t, s.URL(1), readerOpts{videoOnly: true})
	// The clip is 100 frames; 130 frames cross the loop point.
	eventually(t, "130 frames", func() bool { return r.stats().videoAUs >= 130 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 1; i < len(r.seqs); i++ {
		if d := r.seqs[i] - r.seqs[i-1]; d != 1 {
			t.Fatalf("sequence number jumps by %d at packet %d", d, i)
		}
		if d := r.tss[i] - r.tss[i-1]; d != 0 && d != 3600 {
			t.Fatalf("timestamp jumps by %d at packet %d, want 0 or 3600", d, i)
		}
	}
	if r.keyAUs < 4 {
		t.Errorf("%d keyframes in %d frames, want one a second", r.keyAUs, r.videoAUs)
	}
	if len(r.decodeErrs) > 0 {
		t.Errorf("decode errors: %v", r.decodeErrs)
	}
}

func TestUDP(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	if s.UDPAddr() == "" {
		t.Fatal("no UDP address")
	}
	r := startReader(t, s.URL(1), readerOpts{udp: true})
	r.waitFrames(t, 25)
	if st := r.stats(); st.keyAUs == 0 || st.audioPkts == 0 {
		t.Fatalf("over UDP: %+v, want keyframes and audio", st)
	}
}

func TestNoUDP(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{NoUDP: true})
	if s.UDPAddr() != "" {
		t.Fatalf("UDPAddr = %q with NoUDP", s.UDPAddr())
	}
	c, _, err := dial(s.URL(1), false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestSessionCounting(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Cameras: 4})

	// A DESCRIBE-only probe is not a session.
	c, _, err := dial(s.URL(3), false)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	r := startReader(t, s.URL(3), readerOpts{})
	r.waitFrames(t, 5)
	if got := s.Sessions(3); got != 1 {
		t.Fatalf("Sessions(3) = %d, want exactly 1", got)
	}
	if got := s.ActiveSessions(3); got != 1 {
		t.Fatalf("ActiveSessions(3) = %d, want 1", got)
	}
	if got := s.Describes(3); got != 2 {
		t.Fatalf("Describes(3) = %d, want 2", got)
	}
	for _, cam := range []int{1, 2, 4} {
		if s.Sessions(cam) != 0 || s.Describes(cam) != 0 {
			t.Fatalf("camera %d saw traffic", cam)
		}
	}
	r.rd.Close()
	eventually(t, "the session to close", func() bool { return s.ActiveSessions(3) == 0 })
	if got := s.Sessions(3); got != 1 {
		t.Fatalf("Sessions(3) = %d after close, want 1", got)
	}
	if s.Sessions(0) != 0 || s.Sessions(5) != 0 {
		t.Fatal("out-of-range cameras report sessions")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Cameras: 2})
	for _, path := range []string{"cam3", "cam0", "cam01", "foo"} {
		_, _, err := dial("rtsp://"+s.Addr()+"/"+path, false)
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("%s: err = %v, want 404", path, err)
		}
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{User: "admin", Pass: "s3cret"})
	authURL := strings.Replace(s.URL(1), "rtsp://", "rtsp://admin:s3cret@", 1)

	for _, u := range []string{s.URL(1), strings.Replace(authURL, "s3cret", "wrong", 1)} {
		_, _, err := dial(u, false)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("without the right credentials: err = %v, want 401", err)
		}
	}
	r := startReader(t, authURL, readerOpts{})
	r.waitFrames(t, 5)

	if _, err := New(Config{Pass: "x"}); err == nil {
		t.Error("New accepted a password without a user")
	}
}

func TestFaultStall(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Cameras: 2})
	r := startReader(t, s.URL(2), readerOpts{})
	ru := startReader(t, s.URL(2), readerOpts{udp: true})
	r.waitFrames(t, 5)
	ru.waitFrames(t, 5)

	const d = 3 * time.Second
	set := time.Now()
	if err := s.SetFault(2, FaultStall, d); err != nil {
		t.Fatal(err)
	}
	if f := s.Fault(2); f != FaultStall {
		t.Fatalf("Fault = %q", f)
	}
	// Packets already queued may still land just after SetFault; after
	// that, nothing at all until the fault expires.
	keys := r.stats().keyAUs
	r.waitFrames(t, 5)
	ru.waitFrames(t, 5)
	// Video resumes with a keyframe.
	if r.stats().keyAUs == keys {
		t.Error("no keyframe in the first frames after the stall")
	}
	for _, r := range []*reader{r, ru} {
		if n := r.packetsBetween(set.Add(500*time.Millisecond), set.Add(d)); n != 0 {
			t.Fatalf("%d packets arrived during the stall", n)
		}
		if !r.alive() {
			t.Fatal("the connection closed during the stall")
		}
	}
	if time.Since(set) < d {
		t.Fatalf("frames arrived %v after a %v stall began", time.Since(set), d)
	}
	if f := s.Fault(2); f != FaultNone {
		t.Fatalf("Fault = %q after expiry", f)
	}
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	r1 := startReader(t, s.URL(1), readerOpts{})
	r2 := startReader(t, s.URL(1), readerOpts{udp: true})
	r1.waitFrames(t, 5)
	r2.waitFrames(t, 5)

	if err := s.SetFault(1, FaultDrop, 0); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*reader{r1, r2} {
		select {
		case <-r.rd.Done():
			t.Logf("client Wait returned: %v", r.rd.Err())
		case <-time.After(waitTimeout):
			t.Fatal("client still connected after drop")
		}
	}
	eventually(t, "no active sessions", func() bool { return s.ActiveSessions(1) == 0 })
	// A drop without a duration is one-shot: the camera serves again.
	if f := s.Fault(1); f != FaultNone {
		t.Fatalf("Fault = %q after a one-shot drop", f)
	}
	r3 := startReader(t, s.URL(1), readerOpts{})
	r3.waitFrames(t, 5)
	if got := s.Sessions(1); got != 3 {
		t.Fatalf("Sessions = %d, want 3", got)
	}

	// A one-shot drop keeps a standing fault: refuse, then drop, and the
	// camera is both empty and refusing.
	if err := s.SetFault(1, FaultRefuse, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFault(1, FaultDrop, 0); err != nil {
		t.Fatal(err)
	}
	if f := s.Fault(1); f != FaultRefuse {
		t.Fatalf("Fault = %q after refuse and drop, want refuse", f)
	}
	eventually(t, "no active sessions", func() bool { return s.ActiveSessions(1) == 0 })
	if _, _, err := dial(s.URL(1), false); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Describe after refuse and drop: %v, want 503", err)
	}
}

func TestFaultDropTimed(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	if err := s.SetFault(1, FaultDrop, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A session set up while a timed drop lasts is hung up on.
	c, desc, err := dial(s.URL(1), false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err == nil {
		c.Play(nil) //nolint:errcheck // either step may see the hang-up
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("session survived a timed drop")
	}
	if err := s.SetFault(1, FaultNone, 0); err != nil {
		t.Fatal(err)
	}
	r := startReader(t, s.URL(1), readerOpts{})
	r.waitFrames(t, 5)
}

func TestFaultRefuse(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	r := startReader(t, s.URL(1), readerOpts{})
	r.waitFrames(t, 5)

	if err := s.SetFault(1, FaultRefuse, 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := dial(s.URL(1), false)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Describe during refuse: err = %v, want 503", err)
	}
	if got := s.Sessions(1); got != 1 {
		t.Fatalf("Sessions = %d, want 1 (the refused one must not count)", got)
	}
	// The session that was already playing keeps playing.
	r.waitFrames(t, 5)

	// A timed refuse clears itself.
	if err := s.SetFault(1, FaultRefuse, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "refuse to expire", func() bool {
		c, _, err := dial(s.URL(1), false)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func TestFaultGarbage(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	r := startReader(t, s.URL(1), readerOpts{})
	r.waitFrames(t, 5)
	if n := r.stats().decodeErrs; n != 0 {
		t.Fatalf("%d decode errors before the fault", n)
	}

	if err := s.SetFault(1, FaultGarbage, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "decode errors", func() bool { return r.stats().decodeErrs >= 10 })
	r.mu.Lock()
	t.Logf("decode errors, e.g.: %v", r.decodeErrs[0])
	r.mu.Unlock()

	// The simulator stays up and recovers.
	if err := s.SetFault(1, FaultNone, 0); err != nil {
		t.Fatal(err)
	}
	keys := r.stats().keyAUs
	eventually(t, "a keyframe after garbage", func() bool { return r.stats().keyAUs > keys })
	if !r.alive() {
		t.Fatal("the connection closed")
	}
	r2 := startReader(t, s.URL(1), readerOpts{})
	r2.waitFrames(t, 5)
}

// TestFaultGarbageFFmpeg checks that a real decoder notices too.
func TestFaultGarbageFFmpeg(t *testing.T) {
	t.Parallel()
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	s := newSim(t, Config{})
	if err := s.SetFault(1, FaultGarbage, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// ffmpeg keeps reading a garbage stream, complaining as it goes; stop
	// it at the first complaint.
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-nostats",
		"-rtsp_transport", "tcp", "-i", s.URL(1), "-map", "0:v", "-f", "null", "-")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A complaint of the H.264 decoder itself, not only of the RTP
	// depacketizer (which says "Undefined type" and "nal size exceeds").
	complaint := regexp.MustCompile(`\[h264 @ [^\]]*\] .*(?i:error|conceal|too large|invalid|overflow|out of range)`)
	sc := bufio.NewScanner(stderr)
	var found string
	var lines []string
	for sc.Scan() {
		if complaint.MatchString(sc.Text()) {
			found = sc.Text()
			break
		}
		lines = append(lines, sc.Text())
	}
	cancel()
	_, _ = io.Copy(io.Discard, stderr) // let Wait finish
	_ = cmd.Wait()                     // killed on purpose
	if found == "" {
		t.Fatalf("ffmpeg reported no error on garbage:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("ffmpeg: %s", found)
}

func TestFaultNoVideo(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{})
	r := startReader(t, s.URL(1), readerOpts{})
	rv := startReader(t, s.URL(1), readerOpts{videoOnly: true, udp: true})
	r.waitFrames(t, 5)
	rv.waitFrames(t, 5)

	if err := s.SetFault(1, FaultNoVideo, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let frames already queued arrive
	before, beforeV := r.stats(), rv.stats()
	// Two sender-report periods, so that RTCP shows up on the video track.
	time.Sleep(4500 * time.Millisecond)
	after, afterV := r.stats(), rv.stats()
	if after.videoAUs != before.videoAUs || afterV.videoAUs != beforeV.videoAUs {
		t.Fatalf("video frames arrived during no-video: %d, %d", after.videoAUs-before.videoAUs, afterV.videoAUs-beforeV.videoAUs)
	}
	if after.audioPkts-before.audioPkts < 25 {
		t.Fatalf("%d audio packets in 4.5 s of no-video, want them to keep flowing", after.audioPkts-before.audioPkts)
	}
	if afterV.videoRTCP == beforeV.videoRTCP {
		t.Fatal("no RTCP on the video track during no-video")
	}
	if !r.alive() || !rv.alive() || s.ActiveSessions(1) != 2 {
		t.Fatal("a session closed during no-video")
	}
	if err := s.SetFault(1, FaultNone, 0); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(t, 5)
}

func TestSetFaultErrors(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Cameras: 2})
	if err := s.SetFault(3, FaultStall, 0); err == nil {
		t.Error("SetFault on camera 3 of 2 succeeded")
	}
	if err := s.SetFault(1, Fault("melt"), 0); err == nil {
		t.Error("SetFault with an unknown fault succeeded")
	}
	if err := s.SetFault(1, FaultStall, -time.Second); err == nil {
		t.Error("SetFault with a negative duration succeeded")
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{Cameras: 3, ControlListen: "127.0.0.1:0"})
	base := "http://" + s.ControlAddr()
	hc := &http.Client{Timeout: waitTimeout}

	post := func(path, body string) (int, CameraStatus) {
		t.Helper()
		res, err := hc.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st CameraStatus
		_ = json.NewDecoder(res.Body).Decode(&st) // errors are checked by status
		return res.StatusCode, st
	}

	code, st := post("/cameras/2/fault", `{"fault":"stall","duration":"5s"}`)
	if code != 200 || st.Fault != FaultStall || st.Until == nil || st.Cam != 2 {
		t.Fatalf("POST stall: %d %+v", code, st)
	}
	if s.Fault(2) != FaultStall {
		t.Fatal("fault not applied")
	}
	code, st = post("/cameras/3/fault?fault=refuse", "")
	if code != 200 || st.Fault != FaultRefuse || st.Until != nil {
		t.Fatalf("POST refuse: %d %+v", code, st)
	}
	code, _ = post("/cameras/2/fault", `{"fault":"clear"}`)
	if code != 200 || s.Fault(2) != FaultNone {
		t.Fatalf("POST clear: %d, fault %q", code, s.Fault(2))
	}
	for path, body := range map[string]string{
		"/cameras/9/fault": `{"fault":"stall"}`,
		"/cameras/x/fault": `{"fault":"stall"}`,
	} {
		if code, _ := post(path, body); code != 404 {
			t.Errorf("POST %s: %d, want 404", path, code)
		}
	}
	for _, body := range []string{`{"fault":"melt"}`, `{"fault":"stall","duration":"soon"}`, `not json`} {
		if code, _ := post("/cameras/1/fault", body); code != 400 {
			t.Errorf("POST %s: %d, want 400", body, code)
		}
	}

	res, err := hc.Get(base + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var all []CameraStatus
	if err := json.NewDecoder(res.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].Fault != FaultRefuse || all[0].URL != s.URL(1) {
		t.Fatalf("GET /cameras: %+v", all)
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	s := newSim(t, Config{ControlListen: "127.0.0.1:0"})
	if _, err := New(Config{Listen: s.Addr()}); err == nil {
		t.Error("New on a used RTSP port succeeded")
	}
	if _, err := New(Config{ControlListen: s.ControlAddr()}); err == nil {
		t.Error("New on a used control port succeeded")
	}
	if _, err := New(Config{UDPRTPAddress: s.UDPAddr()}); err == nil {
		t.Error("New on a used UDP port succeeded")
	}
	if _, err := New(Config{UDPRTPAddress: "127.0.0.1:1001"}); err == nil {
		t.Error("New with an odd RTP port succeeded")
	}
}
