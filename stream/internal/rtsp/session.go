// Package rtsp is camd's own RTSP client session over TCP and TLS: it
// connects, describes, sets up interleaved tracks, plays, and then reads
// the connection in batches, handing each interleaved frame to its caller.
// Requests and answers are written and parsed with gortsplib's public
// packages (pkg/base, pkg/headers, pkg/auth, pkg/description); the session
// owns its socket, its reads, its keepalives and its deadlines.
//
// Why not gortsplib's Client: it wakes once per packet and once a second
// per camera, allocates for every packet, and has no way to read in
// batches; those were most of what ingest cost (bench/RESULTS.md). The
// Client is still used for UDP, which this package does not speak.
//
// A Session is used by one goroutine, except Stop, which any goroutine may
// call to interrupt whatever the session is blocked in.
//
// Caveats: no SRTP (a described stream with keys is the caller's to hand
// to another client), no RECORD, and a server's ANNOUNCE during play is
// acknowledged but the new description is not followed.
package rtsp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/bluenviron/gortsplib/v5/pkg/sdpunmarshaler"
)

// StatusError is returned when the server answers a request with a status
// other than 2xx (after authentication and redirects were followed).
type StatusError struct {
	Code    base.StatusCode
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("bad status code: %d (%s)", e.Code, e.Message)
}

// ErrReadTimeout is returned (wrapped) by Play's reading when the
// connection brought no data for the read timeout.
var ErrReadTimeout = errors.New("read timeout")

// ErrStopped is returned by a call that Stop interrupted.
var ErrStopped = errors.New("session stopped")

// maxRedirects bounds how many 3xx answers DESCRIBE follows.
const maxRedirects = 5

// teardownTimeout bounds the TEARDOWN written on Close: a camera that no
// longer reads its socket must not hold camd's shutdown.
const teardownTimeout = 500 * time.Millisecond

// Config configures a Session.
type Config struct {
	// URL is the rtsp:// or rtsps:// URL, credentials included. Required.
	URL *base.URL
	// TLS is used for rtsps://. Required for it.
	TLS *tls.Config
	// Timeout bounds connecting, each request's answer and, while playing,
	// how long the connection may bring no data. Required.
	Timeout time.Duration
	// LiveTimeout, when set and returning more than 0, overrides Timeout
	// while playing; it is read at every check.
	LiveTimeout func() time.Duration
	// OnRead, when set, is called on the session's goroutine after each
	// read of a playing connection has been handed to the Frame callback:
	// the end of a batch.
	OnRead func()
	// Batch, when positive, has the playing connection read at most every
	// Batch (on ticks shared by every session) or once 64 KiB are queued,
	// on systems that can (Linux). 0 reads data as soon as it arrives.
	Batch time.Duration
}

// Frame receives the payload of each interleaved frame, on the goroutine
// that runs the session. payload is valid only during the call; at is
// when its batch was read.
type Frame func(channel uint8, payload []byte, at time.Time)

// Session is one RTSP connection. Dial makes it; Close ends it.
type Session struct {
	cfg  Config
	url  *base.URL // the URL being described (after redirects)
	bc   *batchConn
	conn net.Conn // bc, or TLS over it

	// mu guards nc, which Stop reaches from other goroutines, and unhook.
	mu      sync.Mutex
	nc      net.Conn // the TCP connection
	unhook  func() bool
	stopped atomic.Bool
	stopErr atomic.Pointer[error]

	cseq    int
	sender  *auth.Sender
	public  string // the OPTIONS answer's Public header
	session string // the Session id, once SETUP gave one
	// kaEvery is how often a playing session sends a keepalive: half the
	// server's session timeout.
	kaEvery time.Duration
	baseURL *base.URL
	nextCh  int // the next interleaved channel pair to ask for

	rd      reader
	onFrame Frame
	// waitCSeq is the CSeq whose answer a request waits for; answer is
	// set when it comes.
	waitCSeq string
	answer   *base.Response
	// lastData is when the connection last brought data.
	lastData time.Time
}

// Dial connects to cfg.URL and asks for its OPTIONS. ctx bounds the whole
// session: when it is done, whatever the session is blocked in returns.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.Timeout <= 0 {
		return nil, errors.New("rtsp: a timeout is required")
	}
	s := &Session{cfg: cfg, url: cfg.URL, kaEvery: 30 * time.Second}
	s.unhook = context.AfterFunc(ctx, func() { s.Stop(ctx.Err()) })
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connect dials s.url and says OPTIONS.
func (s *Session) connect(ctx context.Context) error {
	host := s.url.Host
	if s.url.Port() == "" {
		port := "554"
		if s.url.Scheme == "rtsps" {
			port = "322"
		}
		host = net.JoinHostPort(s.url.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
	if err != nil {
		return s.stoppedOr(err)
	}
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	s.bc = newBatchConn(nc)
	s.conn = s.bc
	// Stop may have come before nc was there to wake.
	if err := s.setDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
		return err
	}
	if s.url.Scheme == "rtsps" {
		if s.cfg.TLS == nil {
			return errors.New("rtsp: rtsps:// needs a TLS configuration")
		}
		tc := tls.Client(s.bc, s.cfg.TLS.Clone())
		if err := tc.Handshake(); err != nil {
			return s.stoppedOr(err)
		}
		s.conn = tc
	}
	res, err := s.do(&base.Request{Method: base.Options, URL: s.url})
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) {
			return fmt.Errorf("options: %w", err)
		}
		// A camera that does not answer OPTIONS may still play.
		return nil
	}
	s.public = strings.Join(res.Header["Public"], ",")
	return nil
}

// Stop interrupts whatever the session is blocked in; that call and every
// later one return ErrStopped, or err when it is not nil (the caller's
// cancellation). Safe from any goroutine.
func (s *Session) Stop(err error) {
	if err == nil {
		err = ErrStopped
	}
	s.stopErr.CompareAndSwap(nil, &err)
	s.stopped.Store(true)
	// A deadline in the past wakes a blocked read or write; the session's
	// own deadlines are checked against stopped after they are set.
	s.mu.Lock()
	if s.nc != nil {
		s.nc.SetDeadline(time.Unix(1, 0)) //nolint:errcheck // closed is fine
	}
	s.mu.Unlock()
}

// stoppedOr returns the stop's error once Stop was called, else err.
func (s *Session) stoppedOr(err error) error {
	if s.stopped.Load() {
		return *s.stopErr.Load()
	}
	return err
}

// setDeadline sets both deadlines unless the session was stopped: Stop's
// deadline in the past must not be overwritten.
func (s *Session) setDeadline(t time.Time) error {
	if err := s.nc.SetDeadline(t); err != nil {
		return err
	}
	if s.stopped.Load() {
		return *s.stopErr.Load()
	}
	return nil
}

func (s *Session) setReadDeadline(t time.Time) error {
	if err := s.nc.SetReadDeadline(t); err != nil {
		return err
	}
	if s.stopped.Load() {
		return *s.stopErr.Load()
	}
	return nil
}

func (s *Session) setWriteDeadline(t time.Time) error {
	if err := s.nc.SetWriteDeadline(t); err != nil {
		return err
	}
	if s.stopped.Load() {
		return *s.stopErr.Load()
	}
	return nil
}

// Close sends TEARDOWN when a session was set up (not waiting for its
// answer, and for at most a short while) and closes the connection.
func (s *Session) Close() {
	if s.unhook != nil {
		s.unhook()
	}
	if s.nc == nil {
		return
	}
	if s.session != "" {
		// Write even after Stop: that is when TEARDOWN matters.
		s.nc.SetWriteDeadline(time.Now().Add(teardownTimeout)) //nolint:errcheck // the write fails if so
		req := &base.Request{Method: base.Teardown, URL: s.baseURL, Header: base.Header{}}
		if b, err := s.marshal(req); err == nil {
			s.conn.Write(b) //nolint:errcheck // best effort: the camera may be gone
		}
	}
	s.nc.Close()
	s.rd.release()
}

// Describe asks for the stream's description, following redirects (which
// reconnect), and returns it with its base URL set.
func (s *Session) Describe(ctx context.Context) (*description.Session, error) {
	for redirects := 0; ; redirects++ {
		req := &base.Request{Method: base.Describe, URL: s.url, Header: base.Header{"Accept": base.HeaderValue{"application/sdp"}}}
		res, err := s.do(req)
		var se *StatusError
		if errors.As(err, &se) && se.Code >= 300 && se.Code < 400 && redirects < maxRedirects {
			to, perr := s.redirect(res)
			if perr != nil {
				return nil, perr
			}
			s.nc.Close()
			s.rd.reset()
			s.url, s.sender, s.cseq, s.public = to, nil, 0, ""
			if err := s.connect(ctx); err != nil {
				return nil, fmt.Errorf("redirected to %s: %w", to.CloneWithoutCredentials(), err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		// gortsplib's parser, which takes the SDP quirks of real cameras
		// that a strict one refuses.
		sd, err := sdpunmarshaler.Unmarshal(res.Body)
		if err != nil {
			return nil, fmt.Errorf("invalid SDP: %w", err)
		}
		var desc description.Session
		if err := desc.Unmarshal2(sd); err != nil {
			return nil, fmt.Errorf("invalid SDP: %w", err)
		}
		desc.BaseURL = s.contentBase(res)
		s.baseURL = desc.BaseURL
		return &desc, nil
	}
}

// redirect is where a 3xx answer sends us: its Location, with the
// original URL's credentials when it names none.
func (s *Session) redirect(res *base.Response) (*base.URL, error) {
	loc := res.Header["Location"]
	if len(loc) != 1 {
		return nil, fmt.Errorf("redirect (%d) without a Location", res.StatusCode)
	}
	to, err := base.ParseURL(strings.TrimSpace(loc[0]))
	if err != nil {
		return nil, fmt.Errorf("redirect to an invalid Location: %w", err)
	}
	if to.User == nil {
		to.User = s.url.User
	}
	return to, nil
}

// contentBase is the base URL of the described stream (RFC 2326 C.1.1):
// Content-Base, else Content-Location, else the request's URL.
func (s *Session) contentBase(res *base.Response) *base.URL {
	for _, h := range []string{"Content-Base", "Content-Location"} {
		v := res.Header[h]
		if len(v) != 1 {
			continue
		}
		u, err := base.ParseURL(strings.TrimSpace(v[0]))
		if err != nil {
			continue
		}
		u.User = s.url.User
		return u
	}
	return s.url.Clone()
}

// Setup sets up m over TCP, interleaved, and returns the channel its RTP
// arrives on (RTCP is the next one).
func (s *Session) Setup(m *description.Media) (uint8, error) {
	u, err := m.URL(s.baseURL)
	if err != nil {
		return 0, err
	}
	ch := s.nextCh
	if ch > 254 {
		return 0, errors.New("too many tracks")
	}
	s.nextCh += 2
	mode := headers.TransportModePlay
	th := headers.Transport{
		Protocol:       headers.TransportProtocolTCP,
		Delivery:       ptr(headers.TransportDeliveryUnicast),
		InterleavedIDs: &[2]int{ch, ch + 1},
		Mode:           &mode,
	}
	req := &base.Request{Method: base.Setup, URL: u, Header: base.Header{"Transport": th.Marshal()}}
	res, err := s.do(req)
	if err != nil {
		return 0, err
	}
	var got headers.Transport
	if err := got.Unmarshal(res.Header["Transport"]); err != nil {
		return 0, fmt.Errorf("invalid Transport in the answer: %w", err)
	}
	if got.Protocol != headers.TransportProtocolTCP {
		return 0, errors.New("the server set up a transport other than TCP")
	}
	if got.InterleavedIDs != nil {
		// Servers may pick other channels than asked; theirs count.
		ch = got.InterleavedIDs[0]
		if ch < 0 || ch > 255 {
			return 0, fmt.Errorf("interleaved channel %d out of range", ch)
		}
	}
	if s.session == "" {
		var sh headers.Session
		if err := sh.Unmarshal(res.Header["Session"]); err != nil {
			return 0, fmt.Errorf("invalid Session in the answer: %w", err)
		}
		s.session = sh.Session
		if sh.Timeout != nil && *sh.Timeout > 0 {
			s.kaEvery = time.Duration(*sh.Timeout) * time.Second / 2
		}
	}
	return uint8(ch), nil
}

// Play starts the stream and then reads it, handing every interleaved
// frame to onFrame, until the connection fails, the read timeout passes
// or the session is stopped. It never returns nil. Errors of PLAY itself
// are wrapped as "play: ...", the rest as "read: ...".
func (s *Session) Play(onFrame Frame) error {
	s.onFrame = onFrame
	req := &base.Request{Method: base.Play, URL: s.baseURL, Header: base.Header{"Range": base.HeaderValue{"npt=0.000-"}}}
	if _, err := s.do(req); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	return fmt.Errorf("read: %w", s.read())
}

// do sends req and waits for its answer, authenticating once when asked
// to. A non-2xx answer is returned with a *StatusError.
func (s *Session) do(req *base.Request) (*base.Response, error) {
	res, err := s.roundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == base.StatusUnauthorized && s.url.User != nil {
		stale := s.sender != nil && isStale(res.Header["WWW-Authenticate"])
		if s.sender == nil || stale {
			pass, _ := s.url.User.Password()
			sn := &auth.Sender{WWWAuth: res.Header["WWW-Authenticate"], User: s.url.User.Username(), Pass: pass}
			if err := sn.Initialize(); err != nil {
				return nil, fmt.Errorf("authenticate: %w", err)
			}
			s.sender = sn
			if res, err = s.roundTrip(req); err != nil {
				return nil, err
			}
		}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res, &StatusError{Code: res.StatusCode, Message: res.StatusMessage}
	}
	return res, nil
}

// isStale reports whether a Digest challenge says only the nonce expired.
func isStale(v base.HeaderValue) bool {
	for _, h := range v {
		if strings.Contains(strings.ToLower(h), "stale=true") {
			return true
		}
	}
	return false
}

// roundTrip writes req and reads until its answer, handling what comes
// before it (frames, the server's requests).
func (s *Session) roundTrip(req *base.Request) (*base.Response, error) {
	b, err := s.marshal(req)
	if err != nil {
		return nil, err
	}
	if err := s.setDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
		return nil, err
	}
	if _, err := s.conn.Write(b); err != nil {
		return nil, s.stoppedOr(err)
	}
	s.waitCSeq, s.answer = req.Header["CSeq"][0], nil
	defer func() { s.waitCSeq = "" }()
	for s.answer == nil {
		if err := s.rd.readBlocking(s); err != nil {
			return nil, s.stoppedOr(err)
		}
	}
	return s.answer, nil
}

// marshal adds the headers every request carries and writes req out.
func (s *Session) marshal(req *base.Request) ([]byte, error) {
	if req.Header == nil {
		req.Header = base.Header{}
	}
	s.cseq++
	req.Header["CSeq"] = base.HeaderValue{strconv.Itoa(s.cseq)}
	req.Header["User-Agent"] = base.HeaderValue{"camd"}
	if s.session != "" {
		req.Header["Session"] = base.HeaderValue{s.session}
	}
	if s.sender != nil {
		s.sender.AddAuthorization(req)
	}
	return req.Marshal()
}

// handleMessage takes a whole RTSP message read from the connection.
func (s *Session) handleMessage(msg []byte) error {
	if bytes.HasPrefix(msg, []byte("RTSP/")) {
		var res base.Response
		if err := res.Unmarshal(bufReader(msg)); err != nil {
			return fmt.Errorf("invalid answer: %w", err)
		}
		cs := strings.TrimSpace(strings.Join(res.Header["CSeq"], ""))
		// An answer without a CSeq is taken as the one awaited.
		if s.waitCSeq != "" && (cs == "" || cs == s.waitCSeq) {
			s.answer = &res
		}
		return nil // an answer to a keepalive, or late
	}
	var req base.Request
	if err := req.Unmarshal(bufReader(msg)); err != nil {
		return fmt.Errorf("invalid request from the server: %w", err)
	}
	// Servers ping a playing client (GET_PARAMETER), set parameters or
	// announce a new description; each gets an answer so that the server
	// keeps the session. The description is not followed.
	res := base.Response{StatusCode: base.StatusOK, StatusMessage: "OK", Header: base.Header{}}
	switch req.Method {
	case base.Options, base.GetParameter, base.SetParameter, base.Announce:
	default:
		res.StatusCode, res.StatusMessage = base.StatusNotImplemented, "Not Implemented"
	}
	if cs, ok := req.Header["CSeq"]; ok {
		res.Header["CSeq"] = cs
	}
	if s.session != "" {
		res.Header["Session"] = base.HeaderValue{s.session}
	}
	b, err := res.Marshal()
	if err != nil {
		return err
	}
	return s.write(b)
}

// write writes b within the timeout, keeping the read deadline.
func (s *Session) write(b []byte) error {
	if err := s.setWriteDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	return s.stoppedOr(err)
}

// keepalive sends the request that keeps a playing session alive:
// GET_PARAMETER where the server offers it, OPTIONS otherwise. Its answer
// is read with the stream and not waited for.
func (s *Session) keepalive() error {
	m := base.Options
	u := s.url
	if strings.Contains(strings.ToUpper(s.public), string(base.GetParameter)) {
		m, u = base.GetParameter, s.baseURL
	}
	b, err := s.marshal(&base.Request{Method: m, URL: u})
	if err != nil {
		return err
	}
	return s.write(b)
}

func ptr[T any](v T) *T { return &v }
