package device

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/internal/testutil/perlcam"
	"github.com/camd/camd/stream/relay"
)

// A real camera is to be RUNNING within startTarget of its add. The test
// fails only past startBound, so that a loaded machine does not make it
// flaky; it logs the figures, and says when the target was missed.
const (
	startTarget = 2 * time.Second
	startBound  = 10 * time.Second
)

// TestRealCameras runs camd against a camera its authors did not write,
// the GStreamer RTSP server, in the forms cameras come in: H.264 and H.265,
// Basic and Digest auth, audio beside the video. Each is RUNNING within
// moments of its add and runs at about 25 fps, the relay serves it to
// ffprobe with its audio, and the same camera with a wrong password is
// REFUSED with the reason in its error and tried again on the refusal
// schedule, one login per attempt. It is the net under any change to the
// ingest path.
func TestRealCameras(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	cases := []struct {
		name string
		o    gstcam.Options
		want string // ffprobe's codecs on the relay
	}{
		{"h264-basic", gstcam.Options{User: "admin", Pass: "right"}, "h264"},
		{"h264-digest-pcmu", gstcam.Options{User: "admin", Pass: "right", Digest: true, Audio: "pcmu"}, "h264,pcm_mulaw"},
		{"h265-basic-opus", gstcam.Options{Codec: "h265", User: "admin", Pass: "right", Audio: "opus"}, "hevc,opus"},
		{"h265-digest-aac", gstcam.Options{Codec: "h265", User: "admin", Pass: "right", Digest: true, Audio: "aac"}, "hevc,aac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := gstcam.Start(t, tc.o)
			set := refusedSettings()
			// Three tries of the wrong password are watched: on this
			// schedule they come within 1.5 s.
			set.RefusedRetry = 500 * time.Millisecond
			h, rl := relayHarness(t, set)
			added := time.Now()
			h.add("cam", cam.URL("rtsp", "admin", "right", ""), true)
			checkStarts(t, h, "cam", added)
			if cam.AuthFailures() != 0 {
				t.Fatalf("%d failed logins with the right password", cam.AuthFailures())
			}
			// The wrong password's attempts are watched while the relay
			// is read.
			h.add("wrong", cam.URL("rtsp", "admin", "wrong", ""), true)
			checkRelay(t, ffprobe, rl, "cam", tc.want)
			checkRefusal(t, h, cam, "wrong", set)
			checkSteady(t, h, "cam")
		})
	}
}

// TestRealCameraPerl runs camd against a second server implementation,
// Debian's rtsp-server-perl, fed by ffmpeg. It serves readers over UDP
// only, so the camera's transport is udp. It has no authentication, so
// there is no wrong password to refuse.
func TestRealCameraPerl(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	cases := []struct{ name, clip, want string }{
		{"h264", "../stream/sim/clip.h264", "h264"},
		{"h265", "../stream/testdata/h265_320x240_25fps.h265", "hevc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := perlcam.Start(t, perlcam.Options{Clip: tc.clip})
			h, rl := relayHarness(t, refusedSettings())
			added := time.Now()
			if _, err := h.m.Add(context.Background(), Spec{Name: "cam", URL: cam.URL("", "", ""), Transport: "udp"}, true); err != nil {
				t.Fatal(err)
			}
			checkStarts(t, h, "cam", added)
			if v := h.get("cam"); v.TransportActive != "udp" {
				t.Fatalf("transport %q, want udp", v.TransportActive)
			}
			checkRelay(t, ffprobe, rl, "cam", tc.want)
			checkSteady(t, h, "cam")
		})
	}
}

// checkStarts waits for the camera added at added to be RUNNING, within
// startBound, and then at about 25 fps.
func checkStarts(t *testing.T, h *harness, name string, added time.Time) {
	t.Helper()
	var v View
	if !testutil.Poll(startBound, func() bool { v = h.get(name); return v.State == StateRunning }) {
		t.Fatalf("camera %s: %s %v after the add, want RUNNING (last error %q)", name, v.State, startBound, v.LastError)
	}
	running := time.Since(added)
	if !testutil.Poll(20*time.Second, func() bool { v = h.get(name); return v.FPS >= 20 && v.FPS <= 30 }) {
		t.Fatalf("camera %s at %.1f fps, want about 25", name, v.FPS)
	}
	t.Logf("RUNNING %v after the add, %.1f fps %v after it",
		running.Round(time.Millisecond), v.FPS, time.Since(added).Round(time.Millisecond))
	if running > startTarget {
		t.Logf("RUNNING later than the %v target: a loaded machine?", startTarget)
	}
}

// checkSteady checks that a camera that has run for some seconds is
// still RUNNING at 25 fps, give or take a frame or two of the window.
func checkSteady(t *testing.T, h *harness, name string) {
	t.Helper()
	var v View
	if !testutil.Poll(10*time.Second, func() bool {
		v = h.get(name)
		return v.State == StateRunning && v.FPS >= 23 && v.FPS <= 27
	}) {
		t.Fatalf("camera %s: %s at %.1f fps, want RUNNING at 25", name, v.State, v.FPS)
	}
}

// checkRelay has ffprobe read the camera from the relay and compares the
// codecs it finds with want ("h264,pcm_mulaw").
func checkRelay(t *testing.T, ffprobe string, rl *relay.Server, name, want string) {
	t.Helper()
	out, err := exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "20000000",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", "rtsp://"+rl.Addr()+"/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe on the relay: %v\n%s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), ","); got != want {
		t.Fatalf("the relay serves %q, want %q", got, want)
	}
}

// checkRefusal watches a camera with a wrong password until it has tried
// three times: it is REFUSED, its last error names the 401 and not the
// password, each attempt is one login, and the gaps between them follow
// the refusal schedule (RefusedRetry doubling, each jittered down to at
// most half): no attempt early, none long overdue.
func checkRefusal(t *testing.T, h *harness, cam *gstcam.Camera, name string, set Settings) {
	t.Helper()
	v := h.waitState(name, StateRefused, 20*time.Second)
	if !strings.Contains(v.LastError, "401") || strings.Contains(v.LastError, "wrong") {
		t.Fatalf("a wrong password's last error is %q, want the 401 and no password", v.LastError)
	}
	const attempts = 3
	var at []time.Time
	if !testutil.Poll(3*set.RefusedRetry+10*time.Second, func() bool { at = cam.AuthFailureTimes(); return len(at) >= attempts }) {
		t.Fatalf("%d failed logins, want %d: a refused camera is tried again", len(at), attempts)
	}
	var tries uint64
	if !testutil.Poll(5*time.Second, func() bool { tries = h.get(name).Reconnects; return tries >= attempts }) || tries != uint64(len(cam.AuthFailureTimes())) {
		t.Fatalf("%d failed logins in %d attempts; want one login per attempt", len(cam.AuthFailureTimes()), tries)
	}
	// The gaps are measured where the server prints a login, so they
	// include a connection's setup on top of the delay; a little slack
	// below covers the test's reading of those prints.
	step := set.RefusedRetry
	var gaps []time.Duration
	for k := 1; k < attempts; k++ {
		gap := at[k].Sub(at[k-1])
		gaps = append(gaps, gap.Round(time.Millisecond))
		if gap < step/2-100*time.Millisecond || gap > step+5*time.Second {
			t.Fatalf("attempt %d came %v after the one before; the schedule says %v to %v", k+1, gap, step/2, step)
		}
		step *= 2
	}
	t.Logf("wrong password: last error %q, attempts %v apart", v.LastError, gaps)
}
