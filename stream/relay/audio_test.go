package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/stream"

	"github.com/camd/camd/internal/testutil"
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
	ffprobe := testutil.NeedTool(t, "ffprobe")
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
	t.Parallel()
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
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
			t.Parallel()
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
	out, err := exec.Command(testutil.NeedTool(t, "ffprobe"), "-v", "error", "-show_entries", "packet=stream_index,pts_time",
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

// avReader records the relay's packets with their arrival times.
type avReader struct {
	mu    sync.Mutex
	video []avPacket
	audio []avPacket
}

type avPacket struct {
	seq uint16
	ts  uint32
	at  time.Time
}

func startAVReader(t *testing.T, url string) *avReader {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 20 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if len(desc.Medias) != 2 || desc.Medias[1].Type != description.MediaTypeAudio {
		t.Fatalf("the relay describes %d medias, want video and audio", len(desc.Medias))
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	r := &avReader{}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		p := avPacket{seq: pkt.SequenceNumber, ts: pkt.Timestamp, at: time.Now()}
		r.mu.Lock()
		defer r.mu.Unlock()
		if m.Type == description.MediaTypeAudio {
			r.audio = append(r.audio, p)
		} else if pkt.Marker {
			r.video = append(r.video, p)
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAudioTimelineAcrossReconnect feeds a Feed video and G.711 audio over
// two camera connections, the second with other timestamps and sequence
// numbers (about to wrap) after a 2 s outage. A reader's audio keeps its
// sequence numbers continuous, its timestamps advance with the camera's
// clock within a connection, and audio and video timestamps agree on the
// time before the outage and after it, however the video's timeline joins
// the two connections.
func TestAudioTimelineAcrossReconnect(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../testdata/h264_640x480_25fps.h264")
	s := newRelay(t, Config{})
	f := s.Feed("cam")
	pcmu := &format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}
	info := c.info()
	info.Audio = []stream.AudioTrack{{Codec: stream.CodecPCMU, Format: pcmu,
		Media: &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{pcmu}}}}
	payload := make([]byte, 320) // 40 ms at 8 kHz

	// play sends n frames and n audio packets, one pair every 40 ms.
	play := func(first, n int, seq uint16, ts uint32) {
		f.Info(info)
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			k := (first + i) % len(c.aus)
			now := time.Now()
			f.Frame(stream.Frame{Time: now, PTS: int64(i) * 3600, ClockRate: videoClockRate,
				AU: c.aus[k], Size: auSize(c.aus[k]), Key: c.keys[k]})
			f.Audio(0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0,
				SequenceNumber: seq + uint16(i), Timestamp: ts + uint32(i)*320}, Payload: payload}, now)
		}
	}
	played := make(chan struct{})
	go func() { defer close(played); play(0, 100, 100, 12345) }()
	r := startAVReader(t, "rtsp://"+s.Addr()+"/cam") // once the first keyframe opened the stream
	<-played
	f.Disconnected()
	outage := time.Now()
	time.Sleep(2 * time.Second)
	resumed := time.Now()
	play(100, 50, 65500, 4294960000)
	testutil.WaitFor(t, 10*time.Second, "the last audio packets", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.audio) > 0 && time.Since(r.audio[len(r.audio)-1].at) > 300*time.Millisecond
	})

	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.audio) < 80 {
		t.Fatalf("%d audio packets", len(r.audio))
	}
	// The second connection's 50 packets are the last ones.
	across := len(r.audio) - 50
	for i := 1; i < len(r.audio); i++ {
		p, q := r.audio[i-1], r.audio[i]
		if q.seq != p.seq+1 {
			t.Fatalf("audio sequence number %d after %d", q.seq, p.seq)
		}
		if step := int32(q.ts - p.ts); i != across && step != 320 {
			t.Errorf("audio timestamp step %d within a connection, want 320", step)
		}
	}
	// The audio sent with each frame has the same time on both clocks,
	// before the outage and after it: the audio joins the new connection
	// where the video does.
	var worst float64
	var gap float64 // the audio's step across the outage, in seconds
	for i, a := range r.audio {
		if i == across {
			gap = float64(int32(a.ts-r.audio[i-1].ts)) / 8000
		}
		for _, v := range r.video {
			if d := v.at.Sub(a.at); d > -15*time.Millisecond && d < 15*time.Millisecond {
				diff := float64(int32(uint32(uint64(a.ts)*videoClockRate/8000)-v.ts)) / videoClockRate
				if diff = max(diff, -diff); diff > worst {
					worst = diff
				}
				break
			}
		}
	}
	if worst > 0.1 {
		t.Fatalf("audio and video timestamps differ by up to %.3f s", worst)
	}
	t.Logf("%d audio and %d video packets; A/V differ by up to %.3f s; audio step across the %v outage %.3f s",
		len(r.audio), len(r.video), worst, resumed.Sub(outage), gap)
}
