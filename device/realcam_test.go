package device

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
)

// TestRealCameras runs camd against a camera its authors did not write,
// the GStreamer RTSP server, in the forms cameras come in: H.264 and H.265,
// Basic and Digest auth, audio beside the video. Each runs at about 25 fps,
// the relay serves it to ffprobe with its audio, and the same camera with a
// wrong password is REFUSED after one login, with the reason in its error.
// It is the net under any change to the ingest path.
func TestRealCameras(t *testing.T) {
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
			cam := gstcam.Start(t, tc.o)
			h, rl := relayHarness(t, refusedSettings())
			added := time.Now()
			h.add("cam", cam.URL("rtsp", "admin", "right", ""), true)
			h.waitState("cam", StateRunning, 30*time.Second)
			t.Logf("RUNNING %v after the add", time.Since(added).Round(time.Millisecond))
			var v View
			if !testutil.Poll(20*time.Second, func() bool { v = h.get("cam"); return v.FPS >= 20 && v.FPS <= 30 }) {
				t.Fatalf("camera at %.1f fps, want about 25", v.FPS)
			}
			out, err := exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "20000000",
				"-show_entries", "stream=codec_name", "-of", "csv=p=0", "rtsp://"+rl.Addr()+"/cam").CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe on the relay: %v\n%s", err, out)
			}
			if got := strings.Join(strings.Fields(string(out)), ","); got != tc.want {
				t.Fatalf("the relay serves %q, want %q", got, tc.want)
			}
			if cam.AuthFailures() != 0 {
				t.Fatalf("%d failed logins with the right password", cam.AuthFailures())
			}

			h.add("wrong", cam.URL("rtsp", "admin", "wrong", ""), true)
			v = h.waitState("wrong", StateRefused, 30*time.Second)
			if !strings.Contains(v.LastError, "401") || strings.Contains(v.LastError, "wrong") {
				t.Fatalf("a wrong password's last error is %q, want the 401 and no password", v.LastError)
			}
			// One login per attempt, and attempts on the refusal schedule
			// (2 s, then 4 s, each jittered down to half): in 3 s at most
			// three.
			time.Sleep(3 * time.Second)
			var logins int
			var tries uint64
			ok := testutil.Poll(5*time.Second, func() bool {
				logins, tries = cam.AuthFailures(), h.get("wrong").Reconnects
				return uint64(logins) == tries
			})
			if !ok || logins > 3 {
				t.Fatalf("%d failed logins in %d attempts over 3 s; want one login per attempt, at most 3", logins, tries)
			}
		})
	}
}
