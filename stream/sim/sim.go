// Package sim serves simulated RTSP cameras that misbehave on command.
//
// Every camera, rtsp://ADDR/cam1 … camN, loops the same small H.264 clip
// (embedded in the binary, see makeclip.sh) plus a silent G.711 audio track,
// over TCP and UDP, with continuous RTP sequence numbers and timestamps. A
// fault (stall, drop, refuse, garbage, no-video) can be switched on per
// camera at run time, from Go with SetFault or over HTTP from the control
// endpoint, and the simulator counts the sessions that reach each camera so
// that tests can check how a client reconnects.
//
// The simulator is meant to cost little so that benchmarks of a client are
// not measuring it: the clip is packetized once at start-up, and a single
// pacing goroutine writes every camera's packets on each frame tick.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/bluenviron/gortsplib/v5/pkg/ntp"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Fault is a misbehaviour a simulated camera can be told to show.
type Fault string

// Faults.
const (
	// FaultNone is normal operation; setting it clears any fault.
	FaultNone Fault = ""
	// FaultStall keeps connections open but sends nothing at all: no RTP and
	// no RTCP on any track. RTSP requests (keep-alives) are still answered,
	// as a camera whose encoder froze would.
	FaultStall Fault = "stall"
	// FaultDrop closes every session of the camera (and its connections)
	// at once. Without a duration that is all it does: it is an action, and
	// the camera keeps whatever fault it had (none, or say FaultRefuse).
	// With a duration it is a fault like the others: until it ends, every
	// session that reaches the camera is closed as soon as it is set up,
	// like a camera that accepts and then hangs up.
	FaultDrop Fault = "drop"
	// FaultRefuse answers DESCRIBE and SETUP of new sessions with 503
	// Service Unavailable; sessions already playing keep playing.
	FaultRefuse Fault = "refuse"
	// FaultGarbage replaces the video with malformed H.264 RTP payloads, so
	// that a client's depacketizer and decoder report errors. Audio and
	// the RTSP connection carry on normally.
	FaultGarbage Fault = "garbage"
	// FaultNoVideo keeps the session playing but sends no video: the audio
	// track keeps flowing and the video track gets RTCP sender reports only.
	FaultNoVideo Fault = "no-video"
)

// ParseFault parses a fault name; "clear" and "none" mean FaultNone.
func ParseFault(s string) (Fault, error) {
	switch f := Fault(strings.ToLower(strings.TrimSpace(s))); f {
	case "clear", "none", FaultNone:
		return FaultNone, nil
	case FaultStall, FaultDrop, FaultRefuse, FaultGarbage, FaultNoVideo:
		return f, nil
	}
	return FaultNone, fmt.Errorf("unknown fault %q (want stall, drop, refuse, garbage, no-video or clear)", s)
}

// Config configures a Server.
type Config struct {
	// Cameras is how many cameras to serve, as /cam1 … /camN.
	// It defaults to 1.
	Cameras int
	// Listen is the RTSP (TCP) address.
	// It defaults to "127.0.0.1:0", a free port; Addr reports the one bound.
	Listen string
	// UDPRTPAddress is where RTP of the UDP transport is sent from and
	// RTCP uses the next port, as RTSP servers do; its port must be even.
	// It defaults to a free even/odd port pair on Listen's host; UDPAddr
	// reports the one bound.
	UDPRTPAddress string
	// NoUDP turns the UDP transport off, so that only TCP is offered.
	NoUDP bool
	// ControlListen is the address of the HTTP control endpoint.
	// It defaults to "", which disables it.
	ControlListen string
	// User and Pass, when User is set, are the credentials every DESCRIBE,
	// SETUP and PLAY must carry (basic or digest). They default to none.
	User, Pass string
	// Logger receives connection and fault events.
	// It defaults to discarding them.
	Logger *slog.Logger
	// Stamp inserts into every video frame, just before its first slice,
	// an SEI NAL unit carrying the time the frame is sent (AppendStampSEI),
	// in an RTP packet of its own, so that a reader behind a relay can
	// measure the latency end to end. It defaults to false.
	Stamp bool
}

// senderReportFrames is how often, in frames, each track gets an RTCP sender
// report while it is not stalled. Cameras send one every few seconds; it also
// keeps a UDP session that receives no video (FaultNoVideo) alive.
const senderReportFrames = 50

// maxCatchUp bounds how many late frames one tick sends; if the pacer falls
// further behind (a suspended machine), it skips ahead instead of bursting.
const maxCatchUp = 25

// Server serves the simulated cameras. Create it with New and stop it with
// Close.
type Server struct {
	cfg      Config
	log      *slog.Logger
	clip     *clip
	rtsp     *gortsplib.Server
	rtspAddr string
	udpAddr  string
	ctlLn    net.Listener
	ctlSrv   *http.Server
	cams     []*camera
	period   time.Duration
	// handlerCams is cams as gortsplib's callbacks see it: nil until New has
	// built every camera, which it can only do after the server started.
	handlerCams atomic.Pointer[[]*camera]

	ctx       context.Context
	ctxCancel context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	// mu guards the bookkeeping fields of every camera. It is never held
	// while calling into gortsplib, so gortsplib's own locks cannot deadlock
	// against it.
	mu sync.Mutex
}

// camera is one simulated camera.
type camera struct {
	n      int
	path   string
	stream *gortsplib.ServerStream
	video  *description.Media
	audio  *description.Media

	// Owned by the pacing goroutine.
	videoSSRC, audioSSRC   uint32
	videoSeq, audioSeq     uint16
	videoTSBase, audioTS0  uint32
	videoPkt, audioPkt     rtp.Packet
	videoCount, audioCount uint32 // packets sent, for sender reports
	videoBytes, audioBytes uint32
	// stamp is the buffer of the send-time SEI (Config.Stamp); gortsplib
	// marshals a packet before WritePacketRTP returns, so it is reused.
	stamp []byte
	// phase is the frame index at which the clip (last) started from its
	// first IDR; resync asks for the next video frame to start it again, and
	// wasPlaying records whether anyone played on the previous tick.
	// The clip restarts when the first reader arrives and when video resumes
	// after a fault, so that the reader gets a keyframe at once rather than
	// after up to a GOP, and never a frame whose references it missed.
	// Sequence numbers and timestamps run on regardless.
	phase      int64
	resync     bool
	wasPlaying bool

	// Guarded by Server.mu.
	fault     Fault
	until     time.Time // zero: until cleared
	total     int
	describes int
	sessions  map[*gortsplib.ServerSession]struct{}
}

// activeFault returns the camera's fault at now, clearing it if it expired.
// The caller holds Server.mu.
func (c *camera) activeFault(now time.Time, log *slog.Logger) Fault {
	if c.fault != FaultNone && !c.until.IsZero() && !now.Before(c.until) {
		log.Info("sim: fault expired", "cam", c.n, "fault", string(c.fault))
		c.fault, c.until = FaultNone, time.Time{}
	}
	return c.fault
}

var loadClipOnce = sync.OnceValues(loadClip)

// New binds the RTSP (and UDP and control) listeners, so that an address in
// use is reported here, and starts serving.
func New(cfg Config) (*Server, error) {
	if cfg.Cameras == 0 {
		cfg.Cameras = 1
	}
	if cfg.Cameras < 0 {
		return nil, fmt.Errorf("sim: cameras must be positive, not %d", cfg.Cameras)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Pass != "" && cfg.User == "" {
		return nil, errors.New("sim: a password needs a user")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := loadClipOnce()
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}

	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		clip:   c,
		period: time.Second / time.Duration(c.fps),
	}
	s.ctx, s.ctxCancel = context.WithCancel(context.Background())

	// The control listener first: it is the cheapest to undo.
	if cfg.ControlListen != "" {
		s.ctlLn, err = net.Listen("tcp", cfg.ControlListen)
		if err != nil {
			return nil, fmt.Errorf("sim: control listener: %w", err)
		}
	}

	if err := s.startRTSP(); err != nil {
		if s.ctlLn != nil {
			s.ctlLn.Close()
		}
		return nil, err
	}

	for i := 1; i <= cfg.Cameras; i++ {
		cam, err := s.newCamera(i)
		if err != nil {
			for _, c := range s.cams {
				c.stream.Close()
			}
			s.rtsp.Close()
			if s.ctlLn != nil {
				s.ctlLn.Close()
			}
			return nil, err
		}
		s.cams = append(s.cams, cam)
	}

	s.handlerCams.Store(&s.cams)

	if s.ctlLn != nil {
		s.ctlSrv = &http.Server{
			Handler:           s.controlHandler(),
			ReadHeaderTimeout: 10 * time.Second,
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			// Serve returns ErrServerClosed on Close; nothing else to report.
			if err := s.ctlSrv.Serve(s.ctlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("sim: control endpoint stopped", "err", err)
			}
		}()
	}

	s.wg.Add(1)
	go s.pace()

	s.log.Info("sim: serving", "rtsp", s.rtspAddr, "udp", s.udpAddr,
		"control", s.ControlAddr(), "cameras", cfg.Cameras)
	return s, nil
}

// startRTSP starts the gortsplib server. Its Listen and ListenPacket hooks
// hand it listeners bound here, so that port 0 works for TCP and the UDP
// pair and the bound addresses are known.
func (s *Server) startRTSP() error {
	var udpRTP, udpRTCP net.PacketConn
	var rtpAddr, rtcpAddr string
	if !s.cfg.NoUDP {
		var err error
		udpRTP, udpRTCP, err = listenUDPPair(s.cfg.Listen, s.cfg.UDPRTPAddress)
		if err != nil {
			return fmt.Errorf("sim: UDP listeners: %w", err)
		}
		rtpAddr, rtcpAddr = udpRTP.LocalAddr().String(), udpRTCP.LocalAddr().String()
	}

	var tcpLn net.Listener
	s.rtsp = &gortsplib.Server{
		Handler:        &handler{s: s},
		RTSPAddress:    s.cfg.Listen,
		UDPRTPAddress:  rtpAddr,
		UDPRTCPAddress: rtcpAddr,
		// The pacer sends sender reports itself, so that a stalled camera
		// sends nothing at all.
		DisableRTCPSenderReports: true,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			tcpLn = ln
			return ln, err
		},
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			// Hand over each pre-bound socket once; gortsplib owns and
			// closes it from then on.
			switch {
			case udpRTP != nil && address == rtpAddr:
				pc := udpRTP
				udpRTP = nil
				return pc, nil
			case udpRTCP != nil && address == rtcpAddr:
				pc := udpRTCP
				udpRTCP = nil
				return pc, nil
			}
			return nil, fmt.Errorf("unexpected UDP listener %s %s", network, address)
		},
	}
	err := s.rtsp.Start()
	// Whatever gortsplib did not take is still ours to close.
	if udpRTP != nil {
		udpRTP.Close()
	}
	if udpRTCP != nil {
		udpRTCP.Close()
	}
	if err != nil {
		return fmt.Errorf("sim: RTSP listener: %w", err)
	}
	s.rtspAddr = tcpLn.Addr().String()
	s.udpAddr = rtpAddr
	return nil
}

// listenUDPPair binds an even RTP port and the odd RTCP port after it. With
// no port given it searches for a free pair on rtspAddr's host, since the
// kernel cannot be asked for two consecutive ports.
func listenUDPPair(rtspAddr, rtpAddr string) (net.PacketConn, net.PacketConn, error) {
	if rtpAddr != "" {
		host, port, err := splitPort(rtpAddr)
		if err != nil {
			return nil, nil, err
		}
		if port == 0 {
			return findUDPPair(host)
		}
		if port%2 != 0 {
			return nil, nil, fmt.Errorf("RTP port %d must be even", port)
		}
		return bindPair(host, port)
	}
	host, _, err := net.SplitHostPort(rtspAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", rtspAddr, err)
	}
	return findUDPPair(host)
}

func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65534 {
		return "", 0, fmt.Errorf("address %q: bad port", addr)
	}
	return host, port, nil
}

func bindPair(host string, rtpPort int) (net.PacketConn, net.PacketConn, error) {
	rtpC, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(rtpPort)))
	if err != nil {
		return nil, nil, err
	}
	rtcpC, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(rtpPort+1)))
	if err != nil {
		rtpC.Close()
		return nil, nil, err
	}
	return rtpC, rtcpC, nil
}

func findUDPPair(host string) (net.PacketConn, net.PacketConn, error) {
	var lastErr error
	for range 100 {
		probe, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, err
		}
		port := probe.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 0 && port < 65535 {
			// Keep the even port, add the odd one after it.
			rtcpC, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
			if err == nil {
				return probe, rtcpC, nil
			}
			lastErr = err
			probe.Close()
			continue
		}
		// An odd port is the RTCP half of the pair below it.
		rtpC, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port-1)))
		if err == nil {
			return rtpC, probe, nil
		}
		lastErr = err
		probe.Close()
	}
	return nil, nil, fmt.Errorf("no free UDP port pair on %s: %w", host, lastErr)
}

func (s *Server) newCamera(n int) (*camera, error) {
	c := &camera{
		n:        n,
		path:     "cam" + strconv.Itoa(n),
		sessions: make(map[*gortsplib.ServerSession]struct{}),
		video: &description.Media{
			Type: description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{
				PayloadTyp:        96,
				PacketizationMode: 1,
				// In the SDP, so that a reader knows the resolution before
				// the first keyframe.
				SPS: s.clip.sps,
				PPS: s.clip.pps,
			}},
		},
		audio: &description.Media{
			Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.G711{
				PayloadTyp:   0,
				MULaw:        true,
				SampleRate:   audioClockRate,
				ChannelCount: 1,
			}},
		},
	}
	c.stream = &gortsplib.ServerStream{
		Server: s.rtsp,
		Desc:   &description.Session{Title: "camd sim " + c.path, Medias: []*description.Media{c.video, c.audio}},
	}
	if err := c.stream.Initialize(); err != nil {
		return nil, fmt.Errorf("sim: stream %s: %w", c.path, err)
	}
	st := c.stream.Stats()
	c.videoSSRC = st.Medias[c.video].Formats[c.video.Formats[0]].LocalSSRC
	c.audioSSRC = st.Medias[c.audio].Formats[c.audio.Formats[0]].LocalSSRC
	// Random starting points as a real camera has; derived from the SSRCs,
	// which gortsplib drew at random.
	c.videoSeq = uint16(c.videoSSRC >> 7)
	c.audioSeq = uint16(c.audioSSRC >> 5)
	c.videoTSBase = c.videoSSRC * 7
	c.audioTS0 = c.audioSSRC * 3
	c.videoPkt.Header = rtp.Header{Version: 2, PayloadType: 96}
	c.audioPkt.Header = rtp.Header{Version: 2, PayloadType: 0}
	return c, nil
}

// Close stops serving, closes every connection and listener, and waits for
// every goroutine of the server to end.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.ctxCancel()
		if s.ctlSrv != nil {
			// Close, not Shutdown: control requests are short, and Close
			// must not wait on a client that keeps a connection open.
			s.ctlSrv.Close()
		}
		s.wg.Wait() // the pacer no longer writes to the streams
		for _, c := range s.cams {
			c.stream.Close()
		}
		s.rtsp.Close()
		s.log.Info("sim: closed")
	})
}

// Addr returns the RTSP address actually bound, such as "127.0.0.1:8554".
func (s *Server) Addr() string { return s.rtspAddr }

// UDPAddr returns the UDP address RTP is sent from (RTCP uses the next
// port), or "" with NoUDP.
func (s *Server) UDPAddr() string { return s.udpAddr }

// ControlAddr returns the HTTP control address actually bound, or "" if the
// control endpoint is disabled.
func (s *Server) ControlAddr() string {
	if s.ctlLn == nil {
		return ""
	}
	return s.ctlLn.Addr().String()
}

// Cameras returns how many cameras are served.
func (s *Server) Cameras() int { return len(s.cams) }

// URL returns the URL of camera cam (1-based), without credentials.
func (s *Server) URL(cam int) string {
	return "rtsp://" + s.rtspAddr + "/cam" + strconv.Itoa(cam)
}

// Info returns the clip's width, height and frame rate.
func (s *Server) Info() (width, height, fps int) {
	return s.clip.width, s.clip.height, s.clip.fps
}

func (s *Server) camera(cam int) (*camera, error) {
	if cam < 1 || cam > len(s.cams) {
		return nil, fmt.Errorf("sim: no camera %d (have 1..%d)", cam, len(s.cams))
	}
	return s.cams[cam-1], nil
}

// SetFault switches camera cam (1-based) to fault f. With d > 0 the fault
// clears itself after d; with d == 0 it lasts until changed. FaultNone
// clears any fault. See FaultDrop for how it differs.
func (s *Server) SetFault(cam int, f Fault, d time.Duration) error {
	if _, err := ParseFault(string(f)); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if d < 0 {
		return fmt.Errorf("sim: negative fault duration %v", d)
	}
	c, err := s.camera(cam)
	if err != nil {
		return err
	}

	s.mu.Lock()
	// A drop with no duration is a one-shot action, not a state: it leaves
	// the camera's fault (say, refuse) as it was.
	if f != FaultDrop || d > 0 {
		c.fault, c.until = f, time.Time{}
		if f != FaultNone && d > 0 {
			c.until = time.Now().Add(d)
		}
	}
	var toClose []*gortsplib.ServerSession
	if f == FaultDrop {
		toClose = c.sessionList()
	}
	s.mu.Unlock()

	s.log.Info("sim: fault set", "cam", cam, "fault", faultName(f), "duration", d)
	for _, ss := range toClose {
		ss.Close()
	}
	return nil
}

// sessionList returns the camera's sessions. The caller holds Server.mu.
func (c *camera) sessionList() []*gortsplib.ServerSession {
	l := make([]*gortsplib.ServerSession, 0, len(c.sessions))
	for ss := range c.sessions {
		l = append(l, ss)
	}
	return l
}

func faultName(f Fault) string {
	if f == FaultNone {
		return "none"
	}
	return string(f)
}

// Fault returns camera cam's current fault (FaultNone for a bad cam).
func (s *Server) Fault(cam int) Fault {
	c, err := s.camera(cam)
	if err != nil {
		return FaultNone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.activeFault(time.Now(), s.log)
}

// Sessions returns how many RTSP sessions ever reached camera cam: each
// session is counted once, at its first SETUP. A DESCRIBE-only probe is not
// a session (see Describes).
func (s *Server) Sessions(cam int) int {
	c, err := s.camera(cam)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.total
}

// ActiveSessions returns how many sessions of camera cam are open now.
func (s *Server) ActiveSessions(cam int) int {
	c, err := s.camera(cam)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(c.sessions)
}

// Describes returns how many DESCRIBE requests for camera cam were answered
// (refused ones included, rejected credentials not).
func (s *Server) Describes(cam int) int {
	c, err := s.camera(cam)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.describes
}

// CameraStatus is one camera's state, as GET /cameras reports it.
type CameraStatus struct {
	Cam   int    `json:"cam"`
	URL   string `json:"url"`
	Fault Fault  `json:"fault"`
	// Until is when a timed fault clears itself; nil for none or untimed.
	Until          *time.Time `json:"until,omitempty"`
	Sessions       int        `json:"sessions"`
	ActiveSessions int        `json:"active_sessions"`
	Describes      int        `json:"describes"`
}

// Status returns every camera's state.
func (s *Server) Status() []CameraStatus {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CameraStatus, len(s.cams))
	for i, c := range s.cams {
		st := CameraStatus{
			Cam:            c.n,
			URL:            s.URL(c.n),
			Fault:          c.activeFault(now, s.log),
			Sessions:       c.total,
			ActiveSessions: len(c.sessions),
			Describes:      c.describes,
		}
		if st.Fault != FaultNone && !c.until.IsZero() {
			u := c.until
			st.Until = &u
		}
		out[i] = st
	}
	return out
}

// camPlan is what the pacer does for one camera on one tick, decided under
// Server.mu and carried out without it.
type camPlan struct {
	fault   Fault
	readers bool // someone has set up a session
	playing bool // someone is playing
	drop    []*gortsplib.ServerSession
}

// pace is the single goroutine that sends every camera's packets. It wakes
// once per frame period and sends the frames that are due, computed from the
// start time so that a late wake-up does not slow the stream down.
func (s *Server) pace() {
	defer s.wg.Done()

	start := time.Now()
	ticker := time.NewTicker(s.period)
	defer ticker.Stop()
	plans := make([]camPlan, len(s.cams))
	var next int64 // index of the next frame to send

	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ticker.C:
		}
		due := int64(time.Since(start)/s.period) + 1
		if due-next > maxCatchUp {
			next = due - 1
		}
		for ; next < due; next++ {
			s.plan(plans)
			for i, c := range s.cams {
				s.sendFrame(c, &plans[i], next, start.Add(time.Duration(next)*s.period))
			}
		}
	}
}

// plan snapshots every camera's fault and readers.
func (s *Server) plan(plans []camPlan) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.cams {
		p := &plans[i]
		p.fault = c.activeFault(now, s.log)
		p.readers = len(c.sessions) > 0
		p.playing = false
		for ss := range c.sessions {
			if ss.State() == gortsplib.ServerSessionStatePlay {
				p.playing = true
				break
			}
		}
		p.drop = p.drop[:0]
		if p.fault == FaultDrop {
			p.drop = append(p.drop, c.sessionList()...)
		}
	}
}

// sendFrame sends frame n of camera c, as the fault allows. Nothing is
// written for a camera nobody has set up: it saves the marshalling, and the
// sequence numbers then still continue without a gap for the next reader.
func (s *Server) sendFrame(c *camera, p *camPlan, n int64, ntpTime time.Time) {
	for _, ss := range p.drop {
		ss.Close()
	}
	// When the first reader starts playing, skip this tick's video and
	// start the clip on the next one: gortsplib marks a session as playing
	// a moment before it delivers packets to it, and the keyframe must not
	// fall in that gap.
	restart := p.playing && !c.wasPlaying
	c.wasPlaying = p.playing
	if restart {
		c.resync = true
	}
	if !p.readers || p.fault == FaultStall || p.fault == FaultDrop {
		c.resync = true
		return
	}
	fps := int64(s.clip.fps)
	videoTS := c.videoTSBase + uint32(n*videoClockRate/fps)
	audioTS := c.audioTS0 + uint32(n*audioClockRate/fps)

	switch {
	case p.fault == FaultNoVideo || restart:
		c.resync = true
	case p.fault == FaultGarbage:
		s.writeVideo(c, s.clip.garbage, -1, videoTS, ntpTime)
		c.resync = true
	default:
		if c.resync {
			c.phase, c.resync = n, false
		}
		l := int64(len(s.clip.frames))
		i := ((n-c.phase)%l + l) % l
		s.writeVideo(c, s.clip.frames[i], s.clip.picAt[i], videoTS, ntpTime)
	}

	c.audioPkt.SequenceNumber = c.audioSeq
	c.audioPkt.Timestamp = audioTS
	c.audioPkt.Payload = s.clip.silence
	// Errors only mean the stream is closing; the next tick sees ctx done.
	if c.stream.WritePacketRTPWithNTP(c.audio, &c.audioPkt, ntpTime) == nil {
		c.audioSeq++
		c.audioCount++
		c.audioBytes += uint32(len(s.clip.silence))
	}

	if n%senderReportFrames == 0 {
		// As above, an error only means the stream is closing.
		ntpv := ntp.Encode(ntpTime)
		_ = c.stream.WritePacketRTCP(c.video, &rtcp.SenderReport{
			SSRC: c.videoSSRC, NTPTime: ntpv, RTPTime: videoTS,
			PacketCount: c.videoCount, OctetCount: c.videoBytes,
		})
		_ = c.stream.WritePacketRTCP(c.audio, &rtcp.SenderReport{
			SSRC: c.audioSSRC, NTPTime: ntpv, RTPTime: audioTS,
			PacketCount: c.audioCount, OctetCount: c.audioBytes,
		})
	}
}

// writeVideo writes one frame's packets; with Config.Stamp, a send-time
// SEI goes in its own packet before packet stampAt (-1: no stamp).
func (s *Server) writeVideo(c *camera, pkts []rtpPayload, stampAt int, ts uint32, ntpTime time.Time) {
	for i, pl := range pkts {
		if i == stampAt && s.cfg.Stamp {
			c.stamp = AppendStampSEI(c.stamp[:0], time.Now())
			if !s.writeVideoPacket(c, rtpPayload{data: c.stamp}, ts, ntpTime) {
				return
			}
		}
		if !s.writeVideoPacket(c, pl, ts, ntpTime) {
			return
		}
	}
}

// writeVideoPacket writes one video packet and reports whether it could.
func (s *Server) writeVideoPacket(c *camera, pl rtpPayload, ts uint32, ntpTime time.Time) bool {
	c.videoPkt.SequenceNumber = c.videoSeq
	c.videoPkt.Timestamp = ts
	c.videoPkt.Marker = pl.marker
	c.videoPkt.Payload = pl.data
	if c.stream.WritePacketRTPWithNTP(c.video, &c.videoPkt, ntpTime) != nil {
		return false
	}
	c.videoSeq++
	c.videoCount++
	c.videoBytes += uint32(len(pl.data))
	return true
}

// handler answers gortsplib's callbacks, from its connection and session
// goroutines.
type handler struct{ s *Server }

func (h *handler) cameraFor(path string) *camera {
	cams := h.s.handlerCams.Load()
	if cams == nil {
		return nil // still starting
	}
	name := strings.Trim(path, "/")
	if !strings.HasPrefix(name, "cam") {
		return nil
	}
	n, err := strconv.Atoi(name[3:])
	if err != nil || n < 1 || n > len(*cams) || name != "cam"+strconv.Itoa(n) {
		return nil
	}
	return (*cams)[n-1]
}

// authorize reports whether the request carries the configured credentials.
func (h *handler) authorize(sc *gortsplib.ServerConn, req *base.Request) bool {
	if h.s.cfg.User == "" {
		return true
	}
	return sc.VerifyCredentials(req, h.s.cfg.User, h.s.cfg.Pass)
}

// res returns a fresh response: gortsplib adds headers to the one it is
// given, so responses cannot be shared between requests.
func res(code base.StatusCode) *base.Response {
	return &base.Response{StatusCode: code}
}

// OnConnOpen implements gortsplib.ServerHandlerOnConnOpen.
func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.s.log.Debug("sim: connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("sim: connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	c, ok := ctx.Session.UserData().(*camera)
	if !ok {
		return
	}
	h.s.mu.Lock()
	delete(c.sessions, ctx.Session)
	h.s.mu.Unlock()
	h.s.log.Info("sim: session closed", "cam", c.n, "err", ctx.Error)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorize(ctx.Conn, ctx.Request) {
		return res(base.StatusUnauthorized), nil, liberrors.ErrServerAuth{}
	}
	c := h.cameraFor(ctx.Path)
	if c == nil {
		return res(base.StatusNotFound), nil, nil
	}
	h.s.mu.Lock()
	c.describes++
	refused := c.activeFault(time.Now(), h.s.log) == FaultRefuse
	h.s.mu.Unlock()
	if refused {
		return res(base.StatusServiceUnavailable), nil, nil
	}
	return res(base.StatusOK), c.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorize(ctx.Conn, ctx.Request) {
		return res(base.StatusUnauthorized), nil, liberrors.ErrServerAuth{}
	}
	c := h.cameraFor(ctx.Path)
	if c == nil {
		return res(base.StatusNotFound), nil, nil
	}
	h.s.mu.Lock()
	refused := false
	if prev, ok := ctx.Session.UserData().(*camera); ok {
		if prev != c {
			h.s.mu.Unlock()
			return res(base.StatusBadRequest), nil, nil
		}
	} else {
		// A new session: refuse it or count it.
		if c.activeFault(time.Now(), h.s.log) == FaultRefuse {
			refused = true
		} else {
			c.total++
			c.sessions[ctx.Session] = struct{}{}
			ctx.Session.SetUserData(c)
		}
	}
	h.s.mu.Unlock()
	if refused {
		return res(base.StatusServiceUnavailable), nil, nil
	}
	h.s.log.Info("sim: session set up", "cam", c.n, "transport", ctx.Transport.Protocol.String())
	return res(base.StatusOK), c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if !h.authorize(ctx.Conn, ctx.Request) {
		return res(base.StatusUnauthorized), liberrors.ErrServerAuth{}
	}
	return res(base.StatusOK), nil
}
