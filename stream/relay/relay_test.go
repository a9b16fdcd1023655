package relay

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

func TestNewBusyPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = New(Config{Listen: ln.Addr().String(), Logger: testLogger(t)})
	if err == nil {
		t.Fatal("New on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q should name the address and say it is in use", err)
	}
}

func TestNewBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{QueueSize: 100},
		{Pass: "x"},
		{UDPRTCPAddress: "127.0.0.1:9001"},
	} {
		cfg.Listen = "127.0.0.1:0"
		cfg.Logger = testLogger(t)
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	s := newRelay(t, Config{})
	if s.cfg.DescribeWait != 5*time.Second || s.cfg.QueueSize != 512 {
		t.Errorf("defaults: %+v", s.cfg)
	}
	if _, port, _ := net.SplitHostPort(s.Addr()); port == "0" || port == "" {
		t.Errorf("Addr() = %q", s.Addr())
	}
	s.Close()
	s.Close() // twice is fine
}

func TestUnknownCamera404(t *testing.T) {
	t.Parallel()
	s := newRelay(t, Config{})
	s.Feed("cam1")
	_, err := startReader(t, "rtsp://"+s.Addr()+"/nosuch")
	if statusCode(err) != base.StatusNotFound {
		t.Fatalf("got %v, want 404", err)
	}
}

func TestDescribeWaitsThen503(t *testing.T) {
	t.Parallel()
	s := newRelay(t, Config{DescribeWait: 500 * time.Millisecond})
	s.Feed("cam1")
	start := time.Now()
	_, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	took := time.Since(start)
	if statusCode(err) != base.StatusServiceUnavailable {
		t.Fatalf("got %v, want 503", err)
	}
	if took < 400*time.Millisecond || took > 10*time.Second {
		t.Errorf("503 after %s, want about 500ms", took)
	}
}

// TestDescribeWaitsForFirstKeyframe: a reader that arrives before the
// camera is answered as soon as the camera's parameters are in, and gets
// its frames from the first keyframe on.
func TestDescribeWaitsForFirstKeyframe(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	s := newRelay(t, Config{DescribeWait: 20 * time.Second})
	f := s.Feed("cam1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(time.Second)
		// Start mid-GOP: the relay must wait for the keyframe.
		c.play(ctx, f, 10, 0, 0)
	}()
	defer func() { cancel(); <-done }()
	start := time.Now()
	r, err := startReader(t, "rtsp://"+s.Addr()+"/cam1")
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("DESCRIBE answered after %s, before the camera started", took)
	}
	testutil.WaitFor(t, 20*time.Second, "frames", func() bool { return r.frames.Load() >= 30 })
	if g := r.seqGaps.Load(); g != 0 {
		t.Errorf("%d sequence gaps", g)
	}
}

func TestFFprobeReadsSimResolution(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
		"-of", "json", "rtsp://"+s.Addr()+"/cam1").CombinedOutput()
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
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	w, h, _ := sm.Info()
	if len(res.Streams) != 1 || res.Streams[0].CodecName != "h264" || res.Streams[0].Width != w || res.Streams[0].Height != h {
		t.Fatalf("ffprobe saw %+v, want h264 %dx%d", res.Streams, w, h)
	}
	t.Logf("ffprobe saw %s %dx%d", res.Streams[0].CodecName, res.Streams[0].Width, res.Streams[0].Height)
}
