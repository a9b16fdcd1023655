package gstcam

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// TestServes checks each kind of camera against ffprobe, so that a test
// failing against one of them is about camd, not about the fixture.
func TestServes(t *testing.T) {
	ffprobe := testutil.NeedTool(t, "ffprobe")
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"h264", Options{}, "h264"},
		{"h265-opus", Options{Codec: "h265", Audio: "opus"}, "hevc,opus"},
		{"h264-pcmu-digest", Options{Audio: "pcmu", User: "admin", Pass: "s3cret", Digest: true}, "h264,pcm_mulaw"},
		{"intra-refresh", Options{IntraRefresh: true, GOP: 250}, "h264"},
	}
	pemFile, _ := SelfSigned(t, "camera.local")
	cases = append(cases, struct {
		name string
		o    Options
		want string
	}{"rtsps", Options{TLSPEM: pemFile}, "h264"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Start(t, tc.o)
			out, err := exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "10000000",
				"-show_entries", "stream=codec_name", "-of", "csv=p=0",
				c.URL(scheme(tc.o), tc.o.User, tc.o.Pass, "")).CombinedOutput()
			if err != nil {
				t.Fatalf("ffprobe: %v: %s\nserver: %s", err, out, c.Log())
			}
			got := strings.Join(strings.Fields(string(out)), ",")
			if got != tc.want {
				t.Fatalf("streams %q, want %q", got, tc.want)
			}
			if tc.o.User != "" && c.AuthFailures() != 0 {
				t.Fatalf("%d failed logins with the right password", c.AuthFailures())
			}
		})
	}
}

// TestCountsFailedLogins checks that a wrong password is counted once per
// try, which is what camd's backoff tests measure.
func TestCountsFailedLogins(t *testing.T) {
	ffprobe := testutil.NeedTool(t, "ffprobe")
	c := Start(t, Options{User: "admin", Pass: "right", Digest: true})
	for range 3 {
		out, err := exec.Command(ffprobe, "-v", "error", "-rtsp_transport", "tcp",
			c.URL("rtsp", "admin", "wrong", "")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "401") {
			t.Fatalf("ffprobe with a wrong password: %v: %s", err, out)
		}
	}
	testutil.WaitFor(t, 5e9, "three failed logins counted", func() bool { return c.AuthFailures() == 3 })
}

func scheme(o Options) string {
	if o.TLSPEM != "" {
		return "rtsps"
	}
	return "rtsp"
}
