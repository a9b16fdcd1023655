package perlcam

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// TestServes checks the camera against ffprobe, so that a test failing
// against it is about camd, not about the fixture: it serves the clip's
// codec at 25 fps over UDP, and refuses to serve over TCP.
func TestServes(t *testing.T) {
	ffprobe := testutil.NeedTool(t, "ffprobe")
	cases := []struct{ name, clip, want string }{
		{"h264", "../../../stream/sim/clip.h264", "h264,25/1"},
		{"h265", "../../../stream/testdata/h265_320x240_25fps.h265", "hevc,25/1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Start(t, Options{Clip: tc.clip})
			out, err := exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "udp", "-timeout", "10000000",
				"-show_entries", "stream=codec_name,r_frame_rate", "-of", "csv=p=0", c.URL("", "", "")).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe over UDP: %v: %s\n%s", err, out, c.Log())
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Fatalf("streams %q, want %q", got, tc.want)
			}
			out, err = exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000",
				c.URL("", "", "")).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "400") {
				t.Fatalf("ffprobe over TCP: %v: %s; want 400 Bad Request", err, out)
			}
		})
	}
}
