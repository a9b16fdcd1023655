package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/stream"
)

// superviseBatched is supervise with the connection read in batches of
// batch (0: every packet as it arrives), as camd reads cameras.
func superviseBatched(t testing.TB, url string, batch time.Duration, f tap) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = stream.Read(ctx, stream.Options{
				URL: url, ReadTimeout: 5 * time.Second, ReadBatch: batch,
				OnInfo: f.Info, OnFrame: f.Frame, OnAudio: f.Audio,
			})
			f.Disconnected()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

type probedStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Frames    string `json:"nb_read_frames"`
	StartTime string `json:"start_time"`
}

// probe runs ffprobe on what (a URL or a file) with args and returns the
// streams it lists.
func probe(t testing.TB, what string, args ...string) []probedStream {
	t.Helper()
	ffprobe := needTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(append([]string{"-v", "error"}, args...),
		"-show_entries", "stream=codec_type,codec_name,nb_read_frames,start_time", "-of", "json", what)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobe, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", what, err, stderr.String())
	}
	var res struct {
		Streams []probedStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe %s: %q: %v", what, out, err)
	}
	return res.Streams
}

// TestAudioRelayedBesideVideo: a GStreamer camera with H.264 and Opus,
// G.711 (µ-law, A-law) or AAC audio is relayed with both: ffprobe on the
// relay lists both streams, and ffmpeg copies five seconds of the relay
// into Matroska that then decodes without an error, with frames of both
// streams starting together. The Opus and AAC cameras are read in 100 ms
// batches (camd's default), the G.711 ones packet by packet.
func TestAudioRelayedBesideVideo(t *testing.T) {
	ffmpeg := needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	cases := []struct {
		audio, codec string
		batch        time.Duration
		perSecond    int // audio packets a second, at least
	}{
		{"opus", "opus", 100 * time.Millisecond, 25},
		{"pcmu", "pcm_mulaw", 0, 5},
		{"pcma", "pcm_alaw", 100 * time.Millisecond, 5},
		{"aac", "aac", 100 * time.Millisecond, 10},
	}
	for _, tc := range cases {
		t.Run(tc.audio, func(t *testing.T) {
			cam := gstcam.Start(t, gstcam.Options{Audio: tc.audio})
			s := newRelay(t, Config{})
			f := s.Feed("cam")
			superviseBatched(t, cam.URL("rtsp", "", "", ""), tc.batch, f)
			url := "rtsp://" + s.Addr() + "/cam"

			got := probe(t, url, "-rtsp_transport", "tcp")
			if len(got) != 2 || got[0].CodecName != "h264" || got[1].CodecName != tc.codec {
				t.Fatalf("ffprobe on the relay: %+v, want h264 and %s", got, tc.codec)
			}

			out := filepath.Join(t.TempDir(), "out.mkv")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if b, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-v", "error",
				"-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-t", "5", out).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg -c copy: %v\n%s", err, b)
			}
			b, err := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-nostdin", "-v", "error",
				"-i", out, "-f", "null", "-").CombinedOutput()
			if err != nil || len(decodeErrors(b)) > 0 {
				t.Fatalf("decoding the copy: %v\n%s", err, b)
			}
			got = probe(t, out, "-count_frames")
			if len(got) != 2 {
				t.Fatalf("the copy has %d streams, want 2: %+v", len(got), got)
			}
			var n [2]int
			for i, st := range got {
				var err error
				if n[i], err = atoi(st.Frames); err != nil {
					t.Fatalf("stream %d frames %q", i, st.Frames)
				}
			}
			t.Logf("%s: %+v", tc.audio, got)
			if n[0] < 75 || n[1] < 4*tc.perSecond {
				t.Fatalf("the copy decodes to %d video and %d audio frames, want 75 and %d or more",
					n[0], n[1], 4*tc.perSecond)
			}
			// Both streams cover the same stretch of time, give or take
			// the batching and the wait for the first keyframe.
			span := spans(t, out)
			v, a := span[0], span[1]
			if a[1]-a[0] < 4 || v[1]-v[0] < 4 || a[0]-v[0] > 1 || v[0]-a[0] > 1 || a[1]-v[1] > 1 || v[1]-a[1] > 1 {
				t.Fatalf("video from %.2f to %.2f s, audio from %.2f to %.2f s", v[0], v[1], a[0], a[1])
			}
			t.Logf("video from %.2f to %.2f s, audio from %.2f to %.2f s", v[0], v[1], a[0], a[1])
		})
	}
}

// spans returns the first and last packet time of the file's two streams,
// in seconds.
func spans(t testing.TB, file string) [2][2]float64 {
	t.Helper()
	out, err := exec.Command(needTool(t, "ffprobe"), "-v", "error", "-show_entries", "packet=stream_index,pts_time",
		"-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var span [2][2]float64
	var seen [2]bool
	for _, l := range strings.Fields(string(out)) {
		idx, ts, ok := strings.Cut(l, ",")
		i, err1 := atoi(idx)
		v, err2 := atof(ts)
		if !ok || err1 != nil || err2 != nil || i < 0 || i > 1 {
			continue
		}
		if !seen[i] || v < span[i][0] {
			span[i][0] = v
		}
		if !seen[i] || v > span[i][1] {
			span[i][1] = v
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("ffprobe found packets of streams %v:\n%s", seen, out)
	}
	return span
}

// decodeErrors is what ffmpeg said decoding a file to the null muxer,
// but for that muxer's complaint about the camera's video timestamps: the
// GStreamer camera's H.264 gives it when copied straight from the camera
// too.
func decodeErrors(out []byte) []string {
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Last message repeated") ||
			(strings.HasPrefix(l, "[null @") && strings.Contains(l, "non monotonically increasing dts to muxer in stream 0")) {
			continue
		}
		errs = append(errs, l)
	}
	return errs
}

func atoi(s string) (int, error) {
	var n int
	err := json.Unmarshal([]byte(strings.TrimSpace(s)), &n)
	return n, err
}

func atof(s string) (float64, error) {
	var n float64
	err := json.Unmarshal([]byte(strings.TrimSpace(s)), &n)
	return n, err
}
