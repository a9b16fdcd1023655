package stream

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/camd/camd/stream/sim"
	"github.com/pion/rtp"
)

// The clips under testdata were made once with ffmpeg (see testdata/README).
const (
	clipH264  = "testdata/h264_640x480_25fps.h264"
	clipH265  = "testdata/h265_320x240_25fps.h265"
	clipMJPEG = "testdata/mjpeg_320x240_25fps.mjpeg"
)

// loadAnnexB splits an Annex-B H.264 or H.265 file into access units. A
// new access unit starts at a parameter set, SEI or delimiter that follows
// picture data, or at a slice that starts a new picture.
func loadAnnexB(tb testing.TB, path string, hevc bool) [][][]byte {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	// (h264.AnnexB caps the count at one access unit's worth.)
	nalus := sim.SplitAnnexB(raw)
	if len(nalus) == 0 {
		tb.Fatalf("%s: no NAL units", path)
	}
	var aus [][][]byte
	var cur [][]byte
	hasVCL := false
	for _, n := range nalus {
		var vcl, firstSlice bool
		if hevc {
			typ := (n[0] >> 1) & 0x3f
			vcl = typ < 32
			firstSlice = vcl && len(n) > 2 && n[2]&0x80 != 0
		} else {
			typ := n[0] & 0x1f
			vcl = typ >= 1 && typ <= 5
			firstSlice = vcl && len(n) > 1 && n[1]&0x80 != 0
		}
		if hasVCL && (!vcl || firstSlice) {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		cur = append(cur, n)
		hasVCL = hasVCL || vcl
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	return aus
}

// loadMJPEG splits a concatenation of JPEG images at their SOI markers.
func loadMJPEG(tb testing.TB, path string) [][][]byte {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var aus [][][]byte
	for len(raw) > 0 {
		end := bytes.Index(raw[2:], []byte{0xff, 0xd8, 0xff})
		if end < 0 {
			aus = append(aus, [][]byte{raw})
			break
		}
		aus = append(aus, [][]byte{raw[:end+2]})
		raw = raw[end+2:]
	}
	return aus
}

// firstNALU returns the first NAL unit of type typ in aus.
func firstNALU(aus [][][]byte, match func([]byte) bool) []byte {
	for _, au := range aus {
		for _, n := range au {
			if match(n) {
				return n
			}
		}
	}
	return nil
}

// packetize turns every access unit into RTP packets with the encoder of
// forma, with timestamps 1/25 s apart.
func packetize(tb testing.TB, forma format.Format, aus [][][]byte) [][]*rtp.Packet {
	tb.Helper()
	var out [][]*rtp.Packet
	for i, au := range aus {
		var pkts []*rtp.Packet
		var err error
		switch f := forma.(type) {
		case *format.H264:
			var enc interface {
				Encode([][]byte) ([]*rtp.Packet, error)
			}
			enc, err = f.CreateEncoder()
			if err == nil {
				pkts, err = enc.Encode(au)
			}
		case *format.H265:
			var enc interface {
				Encode([][]byte) ([]*rtp.Packet, error)
			}
			enc, err = f.CreateEncoder()
			if err == nil {
				pkts, err = enc.Encode(au)
			}
		case *format.MJPEG:
			var enc interface {
				Encode([]byte) ([]*rtp.Packet, error)
			}
			enc, err = f.CreateEncoder()
			if err == nil {
				pkts, err = enc.Encode(au[0])
			}
		}
		if err != nil {
			tb.Fatalf("packetize access unit %d: %v", i, err)
		}
		out = append(out, pkts)
	}
	return out
}

// testCamera is a small RTSP server playing a clip in a loop at 25 fps: a
// stand-in for a camera with hooks for the failures tests need.
type testCamera struct {
	tb     testing.TB
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	desc   *description.Session
	video  *description.Media
	audio  *description.Media
	aus    [][]*rtp.Packet // packets of each access unit, in order

	user, pass string

	garbage atomic.Bool // send random payloads instead of the clip
	muted   atomic.Bool // send nothing (a stall)

	tcpPlays atomic.Int32 // PLAYs answered on TCP sessions
	// keepalives counts the requests after a PLAY (GET_PARAMETER or
	// OPTIONS), which the server answers in the middle of the stream.
	keepalives atomic.Int32
	playing    atomic.Bool

	mu    sync.Mutex
	conns map[*gortsplib.ServerConn]struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

type cameraConfig struct {
	codec      string // CodecH264 (default), CodecH265, CodecMJPEG, or "" with audioOnly
	audioOnly  bool
	withAudio  bool
	udp        bool
	user, pass string
	// idleTimeout, when set, is how long the server waits for a request:
	// its Session header announces a timeout 5 s shorter (at least 1 s).
	idleTimeout time.Duration
}

func newTestCamera(tb testing.TB, cfg cameraConfig) *testCamera {
	tb.Helper()
	c := &testCamera{tb: tb, user: cfg.user, pass: cfg.pass,
		conns: map[*gortsplib.ServerConn]struct{}{}, stop: make(chan struct{})}

	c.desc = &description.Session{}
	if !cfg.audioOnly {
		var forma format.Format
		var aus [][][]byte
		switch cfg.codec {
		case "", CodecH264:
			aus = loadAnnexB(tb, clipH264, false)
			f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
			f.SPS = firstNALU(aus, func(n []byte) bool { return n[0]&0x1f == 7 })
			f.PPS = firstNALU(aus, func(n []byte) bool { return n[0]&0x1f == 8 })
			forma = f
		case CodecH265:
			aus = loadAnnexB(tb, clipH265, true)
			f := &format.H265{PayloadTyp: 96}
			f.VPS = firstNALU(aus, func(n []byte) bool { return (n[0]>>1)&0x3f == 32 })
			f.SPS = firstNALU(aus, func(n []byte) bool { return (n[0]>>1)&0x3f == 33 })
			f.PPS = firstNALU(aus, func(n []byte) bool { return (n[0]>>1)&0x3f == 34 })
			forma = f
		case CodecMJPEG:
			aus = loadMJPEG(tb, clipMJPEG)
			forma = &format.MJPEG{}
		default:
			tb.Fatalf("codec %q", cfg.codec)
		}
		c.video = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
		c.desc.Medias = append(c.desc.Medias, c.video)
		c.aus = packetize(tb, forma, aus)
	}
	if cfg.audioOnly || cfg.withAudio {
		c.audio = &description.Media{Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.G711{PayloadTyp: 0, MULaw: true, SampleRate: 8000, ChannelCount: 1}}}
		c.desc.Medias = append(c.desc.Medias, c.audio)
	}

	c.start(cfg.udp, cfg.idleTimeout)
	tb.Cleanup(c.Close)
	return c
}

// start starts the server on a free port; with UDP it needs an even/odd
// pair of free UDP ports, found by trying.
func (c *testCamera) start(udp bool, idleTimeout time.Duration) {
	for attempt := 0; ; attempt++ {
		c.srv = &gortsplib.Server{Handler: c, RTSPAddress: "127.0.0.1:0", IdleTimeout: idleTimeout}
		if udp {
			n, err := rand.Int(rand.Reader, big.NewInt(10000))
			if err != nil {
				c.tb.Fatal(err)
			}
			p := 40000 + 2*int(n.Int64())
			c.srv.UDPRTPAddress = fmt.Sprintf("127.0.0.1:%d", p)
			c.srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", p+1)
		}
		err := c.srv.Start()
		if err == nil {
			break
		}
		if attempt > 50 {
			c.tb.Fatalf("start test RTSP server: %v", err)
		}
	}
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: c.desc}
	if err := c.stream.Initialize(); err != nil {
		c.srv.Close()
		c.tb.Fatal(err)
	}
	c.wg.Add(1)
	go c.run()
}

// URL is the camera's URL, with credentials when it requires them.
func (c *testCamera) URL() string {
	addr := c.srv.NetListener().Addr().String()
	if c.user != "" {
		return "rtsp://" + c.user + ":" + c.pass + "@" + addr + "/cam"
	}
	return "rtsp://" + addr + "/cam"
}

// run writes one access unit every 40 ms, looping over the clip.
func (c *testCamera) run() {
	defer c.wg.Done()
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	var ts uint32
	var seq, aseq uint16
	i := 0
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		ts += 90000 / 25
		if c.audio != nil {
			aseq++
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: aseq,
				Timestamp: ts / 90000 * 8000}, Payload: make([]byte, 320)}
			_ = c.stream.WritePacketRTP(c.audio, pkt)
		}
		if c.video == nil || c.muted.Load() {
			continue
		}
		if c.garbage.Load() {
			for k := 0; k < 5; k++ {
				payload := make([]byte, 1+k*97)
				_, _ = rand.Read(payload)
				seq++
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96,
					SequenceNumber: seq, Timestamp: ts, Marker: k%2 == 0}, Payload: payload}
				_ = c.stream.WritePacketRTP(c.video, pkt)
			}
			continue
		}
		for _, p := range c.aus[i%len(c.aus)] {
			seq++
			q := *p
			q.SequenceNumber = seq
			q.Timestamp = ts
			_ = c.stream.WritePacketRTP(c.video, &q)
		}
		i++
	}
}

// Drop closes every client connection, as a camera reboot would.
func (c *testCamera) Drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sc := range c.conns {
		sc.Close()
	}
}

// Close stops the camera; safe to call twice.
func (c *testCamera) Close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.wg.Wait()
	c.stream.Close()
	c.srv.Close()
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (c *testCamera) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	c.mu.Lock()
	c.conns[ctx.Conn] = struct{}{}
	c.mu.Unlock()
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (c *testCamera) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	c.mu.Lock()
	delete(c.conns, ctx.Conn)
	c.mu.Unlock()
}

func (c *testCamera) authorized(sc *gortsplib.ServerConn, req *base.Request) bool {
	return c.user == "" || sc.VerifyCredentials(req, c.user, c.pass)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *testCamera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *testCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *testCamera) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if t := ctx.Session.Transport(); t != nil && t.Protocol == gortsplib.ProtocolTCP {
		c.tcpPlays.Add(1)
	}
	c.playing.Store(true)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRequest implements gortsplib.ServerHandlerOnRequest.
func (c *testCamera) OnRequest(_ *gortsplib.ServerConn, req *base.Request) {
	if c.playing.Load() && (req.Method == base.GetParameter || req.Method == base.Options) {
		c.keepalives.Add(1)
	}
}

// closedPort returns a local TCP address nothing listens on.
func closedPort(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
