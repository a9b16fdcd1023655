package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

// loadH265Clip reads an Annex B H.265 file with one slice per picture.
func loadH265Clip(t *testing.T, path string) *clip {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &clip{codec: stream.CodecH265}
	var cur [][]byte
	key := false
	for _, nalu := range sim.SplitAnnexB(b) {
		typ := h265.NALUType((nalu[0] >> 1) & 0x3f)
		switch {
		case typ == h265.NALUType_VPS_NUT:
			c.vps = nalu
		case typ == h265.NALUType_SPS_NUT:
			c.sps = nalu
			var s h265.SPS
			if err := s.Unmarshal(nalu); err != nil {
				t.Fatal(err)
			}
			c.width, c.height = s.Width(), s.Height()
		case typ == h265.NALUType_PPS_NUT:
			c.pps = nalu
		case typ == h265.NALUType_PREFIX_SEI_NUT:
			continue
		case typ >= 16 && typ <= 23:
			key = true
		}
		cur = append(cur, nalu)
		if typ < 32 { // a slice ends the picture
			c.aus = append(c.aus, cur)
			c.keys = append(c.keys, key)
			cur, key = nil, false
		}
	}
	return c
}

// loadMJPEGClip reads concatenated JPEG images.
func loadMJPEGClip(t *testing.T, path string, w, h int) *clip {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &clip{codec: stream.CodecMJPEG, width: w, height: h}
	soi := []byte{0xff, 0xd8, 0xff}
	for len(b) > 0 {
		next := bytes.Index(b[3:], soi)
		img := b
		if next >= 0 {
			img, b = b[:next+3], b[next+3:]
		} else {
			b = nil
		}
		c.aus = append(c.aus, [][]byte{img})
		c.keys = append(c.keys, true)
	}
	return c
}

// TestCodecsReadByFFprobe relays H.265 and MJPEG as well as H.264, and
// ffprobe reads each with its codec and size.
func TestCodecsReadByFFprobe(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	clips := map[string]*clip{
		"h264":  loadClip(t, "../testdata/h264_640x480_25fps.h264"),
		"hevc":  loadH265Clip(t, "../testdata/h265_320x240_25fps.h265"),
		"mjpeg": loadMJPEGClip(t, "../testdata/mjpeg_320x240_25fps.mjpeg", 320, 240),
	}
	s := newRelay(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for name, c := range clips {
		f := s.Feed(name)
		wg.Add(1)
		go func() { defer wg.Done(); c.play(ctx, f, 0, 0, 0) }()
	}
	for name, c := range clips {
		t.Run(name, func(t *testing.T) {
			pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer pcancel()
			cmd := exec.CommandContext(pctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
				"-show_entries", "stream=codec_name,width,height", "-of", "json",
				"rtsp://"+s.Addr()+"/"+name)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
			}
			if stderr.Len() > 0 {
				// The MJPEG clip has one quantization table for all
				// components; ffmpeg's RTP/JPEG depacketizer expects two
				// and says so, then reads it all the same.
				t.Logf("ffprobe said: %s", stderr.String())
			}
			var res struct {
				Streams []struct {
					CodecName string `json:"codec_name"`
					Width     int    `json:"width"`
					Height    int    `json:"height"`
				} `json:"streams"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%q: %v", out, err)
			}
			if len(res.Streams) != 1 || res.Streams[0].CodecName != name ||
				res.Streams[0].Width != c.width || res.Streams[0].Height != c.height {
				t.Fatalf("ffprobe saw %+v, want %s %dx%d", res.Streams, name, c.width, c.height)
			}
		})
	}
}
