// Package relay serves every camera again over RTSP: one camera connection,
// many readers.
//
// Each camera is fed to the Server through a Feed (the device.Tap of that
// camera) and served at rtsp://HOST:PORT/NAME. The Feed packetizes what
// the camera's reader hands it in one batch into one buffer of RTP packets,
// framed for RTSP over TCP and shared by every reader, and each reader gets
// it with one write (see session): readers cost little more than the
// socket writes themselves. camd serves plain RTSP and RTSPS readers, over
// TCP or the configured UDP ports, with its own RTSP sessions (rconn.go);
// RTSP tunnelled over HTTP or WebSocket (Config.AllowTunnel) is handed to a
// gortsplib Server.
//
// The relay re-packetizes the camera's access units onto its own RTP
// timeline, so that when the camera reconnects with the same codec
// parameters, readers keep their session and see continuous RTP sequence
// numbers, with timestamps that advance by the outage's wall-clock length,
// starting again at a start point. A start point is a keyframe, an SEI
// recovery point, or, for a stream that has had neither for
// Config.StartPointTimeout, any frame; a new reader starts at one. DESCRIBE
// is answered as soon as the camera's parameters are known (from its SDP or
// in band). When the parameters change (codec, resolution, SPS/PPS), the
// stream is closed so that readers get an end of stream and can reconnect
// to the new description. Sender reports map each track's RTP time to
// wall-clock time through the stream's timeline.
//
// A slow reader never slows the camera or the other readers: each reader
// has a bounded write queue (Config.QueueSize packets); a reader whose queue
// overflows, or whose socket stays blocked for longer than writeTimeout, is
// dropped with one log line and counted in Stats.ReadersDropped.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/camd/camd/internal/authguard"
)

// Defaults.
const (
	// DefaultListen is the default RTSP address: loopback only, so that
	// exposing cameras on the network is a deliberate setting.
	DefaultListen = "127.0.0.1:8554"
	// DefaultDescribeWait is how long DESCRIBE waits by default for a
	// camera that is not streaming yet.
	DefaultDescribeWait = 5 * time.Second
	// DefaultStartPointTimeout is how long a stream may go without a
	// keyframe or recovery point, by default, before Stats says so and
	// readers start at any frame: several GOPs of any ordinary camera.
	DefaultStartPointTimeout = 30 * time.Second
	// DefaultQueueSize is the default per-reader write queue, in packets.
	DefaultQueueSize = 512
)

// writeTimeout bounds each write to a reader's socket (and each RTSP
// response). A TCP reader that stops reading first fills the kernel's socket
// buffers (kept small, see unsentLimit), then the relay's writes to it
// block; after writeTimeout, or as soon as its queue overflows, whichever
// comes first, it is dropped.
const writeTimeout = 5 * time.Second

// unsentLimit is the most a reader's socket holds that the network has not
// taken yet (TCP_NOTSENT_LOWAT, on Linux and macOS): about a second of a
// 1 Mbit/s camera.
const unsentLimit = 128 << 10

// Config configures a Server.
type Config struct {
	// Listen is the RTSP (TCP) address readers connect to.
	// It defaults to "127.0.0.1:8554". Port 0 picks a free port (see Addr).
	Listen string
	// UDPRTPAddress and UDPRTCPAddress, when set, also serve readers over
	// UDP: RTP from UDPRTPAddress (even port) and RTCP from UDPRTCPAddress
	// (the next port). When only UDPRTPAddress is set, RTCP uses the next
	// port on the same host. They default to "", which disables UDP: readers
	// must use TCP (interleaved), which is what crosses NAT and loses nothing.
	UDPRTPAddress, UDPRTCPAddress string
	// User and Pass, when User is set, are the credentials every reader must
	// present (basic or digest); a reader without them, or with wrong ones,
	// gets 401 Unauthorized and no media. They default to none: anyone who
	// can reach Listen may read.
	User, Pass string
	// Credentials, if set, overrides User and Pass per camera: it returns
	// the credentials for the camera called name, and ok false to fall back
	// to User and Pass. A returned user "" means that camera needs none.
	Credentials func(name string) (user, pass string, ok bool)
	// DescribeWait is how long DESCRIBE (and SETUP) waits for the codec
	// parameters of a camera that has a Feed but is not streaming yet,
	// before answering 503 Service Unavailable. It defaults to 5 seconds.
	DescribeWait time.Duration
	// StartPointTimeout is how long a camera's stream may go without a
	// keyframe or SEI recovery point (from its connection's first frame
	// or its last one) before it is taken for an intra-refresh stream that
	// marks none: Stats.NoStartPointSince shows it, one line is logged,
	// and readers then start at any frame instead of waiting. It defaults
	// to 30 seconds.
	StartPointTimeout time.Duration
	// QueueSize is each reader's write queue, in RTP packets; it must be a
	// power of two. A reader whose queue overflows is dropped. It defaults
	// to 512 (several seconds of a typical camera stream).
	QueueSize int
	// MaxConns caps the open reader connections; one over the cap is
	// closed as soon as it is accepted. It defaults to 256; negative means
	// no cap.
	MaxConns int
	// AllowTunnel accepts RTSP over HTTP and over WebSocket (a WebSocket
	// upgrade from a web page of another origin is still refused). It
	// defaults to false: a connection that starts with an HTTP request is
	// answered 403 and closed.
	AllowTunnel bool
	// TLSCert and TLSKey, when set, are the PEM certificate (chain) and key
	// files: the relay then serves RTSPS only (rtsps://). They default to
	// "" (plain RTSP).
	TLSCert, TLSKey string
	// Logger receives reader and stream events. It defaults to
	// slog.Default().
	Logger *slog.Logger

	// listen replaces net.Listen; tests set it.
	listen func(network, address string) (net.Listener, error)
	// firstTimeout replaces firstRequestTimeout; tests set it.
	firstTimeout time.Duration
}

// Stats are one camera's relay counters.
type Stats struct {
	// Readers is how many readers are playing now.
	Readers int `json:"readers"`
	// ReadersTotal is how many readers have started playing since the Feed
	// was created.
	ReadersTotal uint64 `json:"readers_total"`
	// BytesSent and PacketsSent count RTP sent to readers, summed over
	// readers.
	BytesSent   uint64 `json:"bytes_sent"`
	PacketsSent uint64 `json:"packets_sent"`
	// ReadersDropped counts readers closed for falling behind.
	ReadersDropped uint64 `json:"readers_dropped"`
	// WaitingForStartPoint is true while readers are connected but get
	// nothing because the relay waits for a keyframe or recovery point.
	WaitingForStartPoint bool `json:"waiting_for_start_point,omitempty"`
	// NoStartPointSince, when set, is since when the stream has had no
	// keyframe or recovery point (for at least StartPointTimeout):
	// readers start at any frame and may see a broken picture at first.
	NoStartPointSince *time.Time `json:"no_start_point_since,omitempty"`
}

// Server is the relay's RTSP server. Create it with New, feed it with Feed
// and stop it with Close.
type Server struct {
	cfg       Config
	log       *slog.Logger
	own       ownServer
	tlsConfig *tls.Config
	// rtsp serves the tunnelled readers (nil unless AllowTunnel).
	rtsp *gortsplib.Server
	addr string

	doors  *doors
	guard  *authguard.Guard
	ctx    context.Context // done when Close begins
	cancel context.CancelFunc
	dead   atomic.Pointer[error] // why the server stopped by itself

	done      chan struct{} // closed when Close begins
	closeOnce sync.Once

	mu     sync.Mutex
	feeds  map[string]*Feed
	closed bool
}

// New starts the server. It binds its listeners before returning, so that an
// address already in use is reported here.
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.DescribeWait <= 0 {
		cfg.DescribeWait = DefaultDescribeWait
	}
	if cfg.StartPointTimeout <= 0 {
		cfg.StartPointTimeout = DefaultStartPointTimeout
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueSize < 0 || cfg.QueueSize&(cfg.QueueSize-1) != 0 {
		return nil, fmt.Errorf("relay: queue size %d is not a power of two", cfg.QueueSize)
	}
	if cfg.Pass != "" && cfg.User == "" {
		return nil, errors.New("relay: a password needs a user")
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.firstTimeout <= 0 {
		cfg.firstTimeout = firstRequestTimeout
	}
	if cfg.listen == nil {
		cfg.listen = net.Listen
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return nil, errors.New("relay: TLS needs both a certificate and a key file")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("relay: TLS certificate %s and key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UDPRTPAddress == "" && cfg.UDPRTCPAddress != "" {
		return nil, errors.New("relay: UDP RTCP address set without an RTP address")
	}
	if cfg.UDPRTPAddress != "" && cfg.UDPRTCPAddress == "" {
		host, port, err := net.SplitHostPort(cfg.UDPRTPAddress)
		if err != nil {
			return nil, fmt.Errorf("relay: UDP RTP address: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p >= 65535 {
			return nil, fmt.Errorf("relay: UDP RTP address %q: bad port", cfg.UDPRTPAddress)
		}
		cfg.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(p+1))
	}

	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		done:  make(chan struct{}),
		feeds: map[string]*Feed{},
		guard: authguard.New(authguard.Config{Door: "relay", Logger: cfg.Logger}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.doors = &doors{log: cfg.Logger, maxConns: cfg.MaxConns, allowTunnel: cfg.AllowTunnel,
		firstTimeout: cfg.firstTimeout, done: s.done}
	s.tlsConfig = tlsConfig
	s.own.conns = map[*rconn]struct{}{}
	ln, err := cfg.listen("tcp", cfg.Listen)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("relay: listen on %s: %w", cfg.Listen, err)
	}
	s.addr = ln.Addr().String()
	if tlsConfig != nil {
		// The door listener goes over the TLS one, so that it sees the
		// plaintext of each connection.
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.own.ln = doorListener{Listener: ln, d: s.doors}
	if cfg.UDPRTPAddress != "" {
		if err := s.listenUDP(); err != nil {
			_ = ln.Close()
			s.cancel()
			return nil, err
		}
	}
	if cfg.AllowTunnel {
		// RTSP over HTTP and WebSocket stay with gortsplib's server, which
		// is handed those connections (serveConn).
		s.own.tunnels = newChanListener(ln.Addr())
		s.rtsp = &gortsplib.Server{
			Handler:        &handler{s: s},
			RTSPAddress:    s.addr,
			WriteQueueSize: cfg.QueueSize,
			WriteTimeout:   writeTimeout,
			Listen: func(string, string) (net.Listener, error) {
				return s.own.tunnels, nil
			},
		}
		if err := s.rtsp.Start(); err != nil {
			_ = ln.Close()
			s.closeUDP()
			s.cancel()
			return nil, fmt.Errorf("relay: tunnel server: %w", err)
		}
	}
	s.own.wg.Add(1)
	go s.accept()
	s.log.Info("relay: serving", s.Scheme(), s.addr, "udp", cfg.UDPRTPAddress != "",
		"auth", cfg.User != "" || cfg.Credentials != nil, "max_conns", cfg.MaxConns, "tunnel", cfg.AllowTunnel)
	return s, nil
}

// listenUDP binds the UDP ports readers over UDP get RTP and RTCP from.
func (s *Server) listenUDP() error {
	for _, b := range []struct {
		addr string
		c    **net.UDPConn
	}{{s.cfg.UDPRTPAddress, &s.own.udpRTP}, {s.cfg.UDPRTCPAddress, &s.own.udpRTCP}} {
		ua, err := net.ResolveUDPAddr("udp", b.addr)
		if err != nil {
			s.closeUDP()
			return fmt.Errorf("relay: UDP address %s: %w", b.addr, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			s.closeUDP()
			return fmt.Errorf("relay: listen on UDP %s: %w", b.addr, err)
		}
		*b.c = c
	}
	s.own.wg.Add(2)
	go s.drainUDP(s.own.udpRTP)
	go s.drainUDP(s.own.udpRTCP)
	return nil
}

func (s *Server) closeUDP() {
	if s.own.udpRTP != nil {
		_ = s.own.udpRTP.Close()
	}
	if s.own.udpRTCP != nil {
		_ = s.own.udpRTCP.Close()
	}
}

// died records that the relay stopped serving by itself: readers are
// refused from then on, which Err reports.
func (s *Server) died(err error) {
	err = fmt.Errorf("relay: stopped serving: %w", err)
	s.dead.Store(&err)
	s.log.Error("relay: stopped serving; readers are refused until camd restarts", "err", err)
}

// Err returns why the relay stopped serving by itself, or nil while it
// serves (and after Close).
func (s *Server) Err() error {
	if p := s.dead.Load(); p != nil {
		return *p
	}
	return nil
}

// OpenConns returns how many reader connections are open now (counted
// from their accept to their close).
func (s *Server) OpenConns() int { return int(s.doors.open.Load()) }

// Scheme is "rtsps" when the relay serves TLS, else "rtsp".
func (s *Server) Scheme() string {
	if s.tlsConfig != nil {
		return "rtsps"
	}
	return "rtsp"
}

// Addr returns the address the RTSP listener is bound to ("host:port").
func (s *Server) Addr() string { return s.addr }

// Close ends every reader and every Feed, stops the server and waits for all
// of its goroutines. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.cancel()
		s.mu.Lock()
		s.closed = true
		feeds := make([]*Feed, 0, len(s.feeds))
		for _, f := range s.feeds {
			feeds = append(feeds, f)
		}
		s.mu.Unlock()
		for _, f := range feeds {
			f.End("relay stopped")
		}
		s.closeOwn()
		if s.rtsp != nil {
			s.rtsp.Close()
		}
		s.log.Info("relay: stopped")
	})
}

// Feed returns the Tap for the camera called name, served at
// rtsp://ADDR/name; it implements device.Tap. A Feed of the same name that is
// still open is closed first (its readers end). After Close, Feed returns a
// Feed that ignores what it is given.
func (s *Server) Feed(name string) *Feed {
	f := newFeed(s, name)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Close()
		return f
	}
	old := s.feeds[name]
	s.feeds[name] = f
	s.mu.Unlock()
	if old != nil {
		old.End("replaced by a new feed of the same name")
	}
	return f
}

// Stats returns the counters of the camera called name; zero if it has no
// Feed.
func (s *Server) Stats(name string) Stats {
	s.mu.Lock()
	f := s.feeds[name]
	s.mu.Unlock()
	if f == nil {
		return Stats{}
	}
	return f.stats()
}

// feed returns the open Feed called name, or nil.
func (s *Server) feed(name string) *Feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feeds[name]
}

// remove forgets f if it is still the Feed registered under its name.
func (s *Server) remove(f *Feed) {
	s.mu.Lock()
	if s.feeds[f.name] == f {
		delete(s.feeds, f.name)
	}
	s.mu.Unlock()
}

// credentials returns what a reader of the camera called name must present;
// user "" means nothing.
func (s *Server) credentials(name string) (user, pass string) {
	if s.cfg.Credentials != nil {
		if u, p, ok := s.cfg.Credentials(name); ok {
			return u, p
		}
	}
	return s.cfg.User, s.cfg.Pass
}

// reader is one RTSP session reading a camera; it is the session's user
// data.
type reader struct {
	feed    *Feed
	remote  string
	playing atomic.Bool // counted in feed.readers
	dropped atomic.Bool // counted in feed.dropped
}

// drop closes a reader that fell behind, once.
func (r *reader) drop(ss *gortsplib.ServerSession, why string, err error) {
	if !r.dropped.CompareAndSwap(false, true) {
		return
	}
	r.feed.dropped.Add(1)
	r.feed.log.Warn("relay: dropping slow reader", "remote", r.remote, "reason", why, "err", err)
	ss.Close()
}

// handler answers RTSP requests. Its methods run on gortsplib's connection
// and session goroutines; OnStreamWriteError runs on a Feed's goroutine.
type handler struct{ s *Server }

// res returns a fresh response: gortsplib adds headers to the one it is
// given, so responses cannot be shared.
func res(code base.StatusCode) *base.Response {
	return &base.Response{StatusCode: code}
}

// cameraName turns a request path ("/cam1", "cam1/") into a camera name.
func cameraName(path string) string {
	return strings.Trim(path, "/")
}

// authorize reports whether req carries the credentials camera name needs.
// Wrong credentials are logged (rate-limited) and answered later and later
// per client address; a request with none is only challenged (gortsplib
// answers it 401 with WWW-Authenticate, which is how every client starts).
func (h *handler) authorize(sc *gortsplib.ServerConn, req *base.Request, name string) bool {
	user, pass := h.s.credentials(name)
	if user == "" {
		return true
	}
	remote := remoteAddr(sc)
	if sc.VerifyCredentials(req, user, pass) {
		h.s.guard.Succeeded(remote)
		return true
	}
	if credentialsGiven(req) {
		h.s.guard.Wait(h.s.ctx, remote)
	}
	return false
}

// credentialsGiven reports whether req carries an Authorization header
// with a user name, as gortsplib decides between a challenge and a failure.
func credentialsGiven(req *base.Request) bool {
	var a headers.Authorization
	return a.Unmarshal(req.Header["Authorization"]) == nil && a.Username != ""
}

// lookup authorizes a DESCRIBE or SETUP and waits for the camera's stream.
func (h *handler) lookup(sc *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, *Feed, *gortsplib.ServerStream, error) {
	name := cameraName(path)
	if !h.authorize(sc, req, name) {
		return res(base.StatusUnauthorized), nil, nil, liberrors.ErrServerAuth{}
	}
	f := h.s.feed(name)
	if f == nil {
		return res(base.StatusNotFound), nil, nil, nil
	}
	st := f.waitTunnel(h.s.cfg.DescribeWait, h.s.done)
	if st == nil {
		f.log.Info("relay: camera not streaming; reader refused", "remote", remoteAddr(sc),
			"waited", h.s.cfg.DescribeWait)
		return res(base.StatusServiceUnavailable), nil, nil, nil
	}
	return res(base.StatusOK), f, st, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	r, _, st, err := h.lookup(ctx.Conn, ctx.Request, ctx.Path)
	return r, st, err
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	r, f, st, err := h.lookup(ctx.Conn, ctx.Request, ctx.Path)
	if f == nil {
		return r, st, err
	}
	if prev, ok := ctx.Session.UserData().(*reader); ok {
		if prev.feed != f {
			return res(base.StatusBadRequest), nil, nil
		}
	} else {
		ctx.Session.SetUserData(&reader{feed: f, remote: remoteAddr(ctx.Conn)})
	}
	return r, st, err
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	rd, ok := ctx.Session.UserData().(*reader)
	if !ok {
		return res(base.StatusBadRequest), nil
	}
	if !h.authorize(ctx.Conn, ctx.Request, rd.feed.name) {
		return res(base.StatusUnauthorized), liberrors.ErrServerAuth{}
	}
	if rd.playing.CompareAndSwap(false, true) {
		rd.feed.readers.Add(1)
		rd.feed.tunReaders.Add(1)
		rd.feed.readersTotal.Add(1)
		transport := ""
		if t := ctx.Session.Transport(); t != nil {
			transport = t.Protocol.String()
		}
		rd.feed.log.Info("relay: reader started", "remote", rd.remote, "transport", transport)
	}
	return res(base.StatusOK), nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	rd, ok := ctx.Session.UserData().(*reader)
	if !ok {
		return
	}
	// A reader whose socket write timed out fell behind as surely as one
	// whose queue overflowed.
	var ne net.Error
	if errors.As(ctx.Error, &ne) && ne.Timeout() {
		rd.drop(ctx.Session, "write timeout", ctx.Error)
	}
	if rd.playing.CompareAndSwap(true, false) {
		rd.feed.readers.Add(-1)
		rd.feed.tunReaders.Add(-1)
		rd.feed.log.Info("relay: reader ended", "remote", rd.remote, "err", ctx.Error)
	}
}

// OnStreamWriteError implements gortsplib.ServerHandlerOnStreamWriteError:
// the reader's write queue is full.
func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	rd, ok := ctx.Session.UserData().(*reader)
	if !ok {
		ctx.Session.Close()
		return
	}
	rd.drop(ctx.Session, "write queue full", ctx.Error)
}

// OnDecodeError implements gortsplib.ServerHandlerOnDecodeError. Readers
// only send RTCP receiver reports; a broken one must not flood the log (the
// library's default is a line per packet).
func (h *handler) OnDecodeError(*gortsplib.ServerHandlerOnDecodeErrorCtx) {}

// OnPacketsLost implements gortsplib.ServerHandlerOnPacketsLost (only
// reported for incoming streams, which the relay refuses).
func (h *handler) OnPacketsLost(*gortsplib.ServerHandlerOnPacketsLostCtx) {}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: cameras are fed
// through Feed, never published to the relay.
func (h *handler) OnAnnounce(*gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	return res(base.StatusMethodNotAllowed), nil
}

func remoteAddr(sc *gortsplib.ServerConn) string {
	if sc == nil || sc.NetConn() == nil {
		return ""
	}
	return sc.NetConn().RemoteAddr().String()
}
