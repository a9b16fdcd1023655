package relay

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/camd/camd/internal/testutil"
)

// TestAuth: with credentials required, a reader without them or with wrong
// ones gets 401 and nothing else; per-camera credentials override the
// server's; no password reaches the log.
func TestAuth(t *testing.T) {
	t.Parallel()
	const pass, camPass = "s3cret-pass", "cam2-secret"
	var logBuf testutil.LogBuffer
	logger := testutil.Logger(&logBuf)
	s := newRelay(t, Config{
		User: "viewer", Pass: pass, Logger: logger,
		Credentials: func(name string) (string, string, bool) {
			switch name {
			case "cam2":
				return "cam2user", camPass, true
			case "open":
				return "", "", true
			}
			return "", "", false
		},
	})
	c := loadClip(t, "../sim/clip.h264")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, name := range []string{"cam1", "cam2", "open"} {
		f := s.Feed(name)
		wg.Add(1)
		go func() { defer wg.Done(); c.play(ctx, f, 0, 0, 0) }()
	}
	defer func() { cancel(); wg.Wait() }()

	addr := s.Addr()
	for _, tc := range []struct {
		url  string
		want base.StatusCode
	}{
		{"rtsp://" + addr + "/cam1", base.StatusUnauthorized},
		{"rtsp://viewer:wrong@" + addr + "/cam1", base.StatusUnauthorized},
		{"rtsp://nobody:" + pass + "@" + addr + "/cam1", base.StatusUnauthorized},
		{"rtsp://viewer:" + pass + "@" + addr + "/cam2", base.StatusUnauthorized},
		{"rtsp://cam2user:" + camPass + "@" + addr + "/cam1", base.StatusUnauthorized},
		// Unknown cameras are not revealed to strangers.
		{"rtsp://" + addr + "/nosuch", base.StatusUnauthorized},
		{"rtsp://viewer:" + pass + "@" + addr + "/nosuch", base.StatusNotFound},
	} {
		r, err := startReader(t, tc.url)
		if err == nil {
			r.close()
		}
		if got := statusCode(err); got != tc.want {
			t.Errorf("%s: %v, want %d", strings.Replace(tc.url, pass, "***", 1), err, tc.want)
		}
	}
	for _, name := range []string{"cam1", "cam2"} {
		if st := s.Stats(name); st.ReadersTotal != 0 || st.PacketsSent != 0 {
			t.Errorf("%s: unauthorized readers got something: %+v", name, st)
		}
	}

	// A raw client that skips DESCRIBE and goes straight to SETUP is refused
	// too.
	if code := rawSetup(t, addr, "/cam1"); code != 401 {
		t.Errorf("SETUP without credentials: %d, want 401", code)
	}

	// ffmpeg with a wrong password gets nothing and says 401.
	if ffmpeg, err := exec.LookPath("ffmpeg"); err == nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(cctx, ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp",
			"-i", "rtsp://viewer:wrong@"+addr+"/cam1", "-t", "1", "-c", "copy", "-f", "null", "-").CombinedOutput()
		ccancel()
		if err == nil || !strings.Contains(string(out), "401") {
			t.Errorf("ffmpeg with a wrong password: %v\n%s", err, out)
		}
	} else {
		testutil.NeedTool(t, "ffmpeg")
	}

	for _, url := range []string{
		"rtsp://viewer:" + pass + "@" + addr + "/cam1",
		"rtsp://cam2user:" + camPass + "@" + addr + "/cam2",
		"rtsp://" + addr + "/open",
	} {
		r, err := startReader(t, url)
		if err != nil {
			t.Fatalf("with the right credentials: %v", err)
		}
		testutil.WaitFor(t, 10*time.Second, "frames", func() bool { return r.frames.Load() >= 5 })
	}

	if l := logBuf.String(); strings.Contains(l, pass) || strings.Contains(l, camPass) || strings.Contains(l, "wrong") {
		t.Errorf("a password reached the log:\n%s", l)
	}
}
