package device

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/stream/relay"
)

// audioCamera is an RTSP server that describes H.264 video, G.726 audio
// (which the relay does not pass on) and G.711 audio, and sends nothing:
// what a camera offers is known from DESCRIBE.
type audioCamera struct {
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	plays  atomic.Int32
	// refuseAudio has SETUP of the audio tracks answered 461, as by a
	// camera whose audio is switched off.
	refuseAudio bool
	setups      atomic.Int32 // SETUP requests seen
}

func newAudioCamera(t *testing.T) *audioCamera {
	t.Helper()
	c := &audioCamera{}
	c.srv = &gortsplib.Server{Handler: c, RTSPAddress: "127.0.0.1:0"}
	if err := c.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.srv.Close)
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G726{PayloadTyp: 97, BitRate: 32}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}}},
	}}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stream.Close)
	return c
}

func (c *audioCamera) url() string { return "rtsp://" + c.srv.NetListener().Addr().String() + "/cam" }

func (c *audioCamera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *audioCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c.setups.Add(1)
	if c.refuseAudio && !strings.HasSuffix(ctx.Request.URL.String(), "trackID=0") {
		return &base.Response{StatusCode: base.StatusUnsupportedTransport}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *audioCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.plays.Add(1)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// relayHarness is a harness whose cameras are fed to a relay, as camd
// does.
func relayHarness(t *testing.T, set Settings) (*harness, *relay.Server) {
	var rl *relay.Server
	h := newHarness(t, set, func(c *Config) {
		var err error
		rl, err = relay.New(relay.Config{Listen: "127.0.0.1:0", Logger: c.Logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rl.Close) // after the Manager's close, which closes the feeds
		c.NewTap = func(name string) Tap { return rl.Feed(name) }
	})
	return h, rl
}

// TestAudioRelayedThroughSupervisor: a GStreamer camera's Opus audio goes
// from the supervisor to the relay's readers, says so in the view, and
// never counts as frames: the camera reads 25 fps, not the 75 packets a
// second of video and audio.
func TestAudioRelayedThroughSupervisor(t *testing.T) {
	t.Parallel()
	cam := gstcam.Start(t, gstcam.Options{Audio: "opus"})
	h, rl := relayHarness(t, testutil.FastSettings[Settings]())
	h.add("cam", cam.URL("rtsp", "", "", ""), true)
	h.waitState("cam", StateRunning, 30*time.Second)

	u, err := base.ParseURL("rtsp://" + rl.Addr() + "/cam")
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var audio, video atomic.Int64
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, _ *rtp.Packet) {
		if m.Type == description.MediaTypeAudio {
			audio.Add(1)
		} else {
			video.Add(1)
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the relay's Opus packets", func() bool { return audio.Load() >= 100 })
	v := h.get("cam")
	if v.Audio != "opus (relayed)" || v.FPS < 15 || v.FPS > 35 {
		t.Fatalf("view: audio %q, %.1f fps; want opus (relayed) at about 25 fps", v.Audio, v.FPS)
	}
	t.Logf("relay reader: %d video and %d audio packets; camera %.1f fps", video.Load(), audio.Load(), v.FPS)
}

// TestAudioNotRelayedShownAndLoggedOnce: a camera whose audio the relay
// does not pass on says so in its view, with the track that is relayed,
// and the relay logs it once, not once per connection.
func TestAudioNotRelayedShownAndLoggedOnce(t *testing.T) {
	t.Parallel()
	cam := newAudioCamera(t)
	set := testutil.FastSettings[Settings]()
	set.ReadTimeout = time.Second // the camera sends nothing: reconnect often
	h, _ := relayHarness(t, set)
	h.add("cam", cam.url(), true)
	const want = "g726-32 (not relayed: the relay does not pass this codec on), pcmu (relayed)"
	deadline := time.Now().Add(60 * time.Second)
	for cam.plays.Load() < 3 || h.get("cam").Audio != want {
		if time.Now().After(deadline) {
			t.Fatalf("after %d connections the view says audio %q, want %q", cam.plays.Load(), h.get("cam").Audio, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := h.logs.Lines("audio not relayed")
	if len(lines) != 1 || !strings.Contains(lines[0], "g726-32") || !strings.Contains(lines[0], "camera=cam") {
		t.Fatalf("log lines about audio not relayed after %d connections: %q", cam.plays.Load(), lines)
	}
}

// TestAudioSetupRefusedStillPlays: a camera that refuses to set up its
// audio track still has its video read, and the view says why the audio
// is not relayed.
func TestAudioSetupRefusedStillPlays(t *testing.T) {
	t.Parallel()
	cam := newAudioCamera(t)
	cam.refuseAudio = true
	set := testutil.FastSettings[Settings]()
	set.ReadTimeout = time.Second
	h, _ := relayHarness(t, set)
	h.add("cam", cam.url(), true)
	deadline := time.Now().Add(60 * time.Second)
	for cam.plays.Load() < 2 || !strings.Contains(h.get("cam").Audio, "pcmu (not relayed: SETUP failed: ") {
		if time.Now().After(deadline) {
			t.Fatalf("after %d PLAYs (%d SETUPs) the view says audio %q", cam.plays.Load(), cam.setups.Load(), h.get("cam").Audio)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("audio: %s", h.get("cam").Audio)
}
