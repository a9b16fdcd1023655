package stream_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// rawCam is a fake camera that speaks RTSP over TCP (or TLS) by hand, so
// that each quirk of real cameras can be switched on alone: no RTSP
// library decides its answers. It serves one H.264 track (the test clip,
// 25 fps, as interleaved frames) and optionally a PCMU one, and records
// every request it is sent and every answer to the requests it sends.
type rawCam struct {
	t    testing.TB
	cfg  rawCamConfig
	ln   net.Listener
	root string // scheme://host:port

	sps, pps []byte
	aus      [][]*rtp.Packet
	nonce    string

	mu       sync.Mutex
	reqs     []rawReq
	answers  map[string]int // CSeq of a request the camera sent → status of the client's answer
	conns    map[net.Conn]*rawConn
	nconns   int
	authFail int

	videoSent  atomic.Int64 // access units sent
	audioSent  atomic.Int64 // audio packets sent
	serverReqs atomic.Int64 // requests sent to the client
	expired    atomic.Int64 // sessions closed for want of a request within the timeout
	paused     atomic.Bool
	resume     chan struct{} // closed to end a pause; guarded by mu

	closed chan struct{}
	wg     sync.WaitGroup
}

// rawCamConfig holds the knobs. Strings that are URLs may use "{root}"
// for the camera's scheme://host:port.
type rawCamConfig struct {
	// Auth is "" (none), "basic", "digest" (MD5, no qop), "digest-qop"
	// (MD5, qop=auth) or "sha256" (RFC 7616: a SHA-256 challenge, then an
	// MD5 one; only an answer to the SHA-256 one is accepted). Every
	// request but OPTIONS needs it.
	Auth       string
	User, Pass string
	TLS        *tls.Config

	// Path is the path DESCRIBE is answered on (default "/cam").
	Path string
	// ContentBase and ContentLocation are sent in the DESCRIBE answer
	// when set.
	ContentBase, ContentLocation string
	// SessionControl is the session-level a=control, none when empty.
	SessionControl string
	// VideoControl and AudioControl are the media-level a=control
	// (default trackID=1 and trackID=2).
	VideoControl, AudioControl string
	// VideoURL and AudioURL are the only URLs the camera accepts a SETUP
	// of the track on (default {root}/cam/trackID=1 and =2); other SETUPs
	// are answered 404.
	VideoURL, AudioURL string
	// Public is the OPTIONS answer's Public header.
	Public string

	// Timeout, when positive, is sent in the Session header
	// (";timeout=N"), and the camera closes a connection that sends no
	// request for that many seconds once SETUP has been answered.
	Timeout int
	// Channel, when positive, is the interleaved RTP channel the camera
	// answers the video's SETUP with, whatever the client asked (RTCP is
	// the next one).
	Channel int
	// SenderReports has the camera send an RTCP sender report on the
	// video's RTCP channel every 25 frames.
	SenderReports bool
	// Junk has the camera send, before its first RTP packet, frames on an
	// unknown channel (20) and a sender report on the RTCP channel.
	Junk bool

	// Redirects maps a path to the Location that DESCRIBE of it is
	// answered with (status RedirectStatus, default 302).
	Redirects      map[string]string
	RedirectStatus int

	// Audio adds a PCMU track (AudioFirst: before the video in the SDP).
	Audio, AudioFirst bool
	// Frames, when positive, is how many access units the camera sends
	// before it falls silent (it keeps answering requests).
	Frames int
	// ServerRequests are the methods of requests the camera sends the
	// client during PLAY, one every 5 frames from the 10th, each once.
	ServerRequests []base.Method
	// RcvBuf, when positive, is the SO_RCVBUF of the camera's sockets.
	RcvBuf int
}

// rawReq is a request the camera received.
type rawReq struct {
	Conn   int // which connection, from 1
	Method base.Method
	URL    string // as sent, credentials removed
	Header base.Header
	At     time.Time
}

const rawSession = "5E55A1D0"

func newRawCam(t testing.TB, cfg rawCamConfig) *rawCam {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = "/cam"
	}
	if cfg.VideoControl == "" {
		cfg.VideoControl = "trackID=1"
	}
	if cfg.AudioControl == "" {
		cfg.AudioControl = "trackID=2"
	}
	if cfg.VideoURL == "" {
		cfg.VideoURL = "{root}/cam/trackID=1"
	}
	if cfg.AudioURL == "" {
		cfg.AudioURL = "{root}/cam/trackID=2"
	}
	if cfg.Public == "" {
		cfg.Public = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
	}
	if cfg.RedirectStatus == 0 {
		cfg.RedirectStatus = 302
	}
	c := &rawCam{t: t, cfg: cfg, answers: map[string]int{}, conns: map[net.Conn]*rawConn{},
		closed: make(chan struct{}), resume: make(chan struct{})}
	c.sps, c.pps, c.aus = stream.H264Clip(t)
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	c.nonce = hex.EncodeToString(nonce)

	lc := net.ListenConfig{}
	if cfg.RcvBuf > 0 {
		// Set on the listener so that accepted sockets have it from the
		// handshake on (the window is fixed then).
		lc.Control = testutil.RcvBufControl(cfg.RcvBuf)
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "rtsp"
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		scheme = "rtsps"
	}
	c.ln = ln
	c.root = scheme + "://" + ln.Addr().String()
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(c.Close)
	return c
}

// expand replaces {root} in s.
func (c *rawCam) expand(s string) string { return strings.ReplaceAll(s, "{root}", c.root) }

// URL is the camera's URL for path with the given credentials (none when
// user is empty).
func (c *rawCam) URL(path, user, pass string) string {
	if user == "" {
		return c.root + path
	}
	scheme, host, _ := strings.Cut(c.root, "://")
	return scheme + "://" + user + ":" + pass + "@" + host + path
}

// Close stops the camera and waits for its goroutines; safe to call twice.
func (c *rawCam) Close() {
	select {
	case <-c.closed:
		return
	default:
	}
	close(c.closed)
	c.ln.Close()
	c.mu.Lock()
	for nc := range c.conns {
		nc.Close()
	}
	if c.paused.Load() {
		c.paused.Store(false)
		close(c.resume)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Requests returns what the camera was sent so far.
func (c *rawCam) Requests() []rawReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rawReq(nil), c.reqs...)
}

// Methods returns the methods of the requests received, in order.
func (c *rawCam) Methods() []string {
	var out []string
	for _, r := range c.Requests() {
		out = append(out, string(r.Method))
	}
	return out
}

// Answers returns the statuses of the client's answers by CSeq.
func (c *rawCam) Answers() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.answers))
	for k, v := range c.answers {
		out[k] = v
	}
	return out
}

// Pause stops the camera reading its sockets (and sending media), as a
// camera whose RTSP task hangs: what the client writes stays in the
// socket buffers.
func (c *rawCam) Pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused.Load() {
		return
	}
	c.resume = make(chan struct{})
	c.paused.Store(true)
	for nc, cc := range c.conns {
		if !cc.parsing {
			_ = nc.SetReadDeadline(time.Now()) // wakes the reader, which then waits
		}
	}
}

// Resume has the camera read its sockets again.
func (c *rawCam) Resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused.Load() {
		c.paused.Store(false)
		close(c.resume)
	}
}

func (c *rawCam) accept() {
	defer c.wg.Done()
	for {
		nc, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		select {
		case <-c.closed:
			c.mu.Unlock()
			nc.Close()
			return
		default:
		}
		c.nconns++
		cc := &rawConn{cam: c, nc: nc, id: c.nconns, done: make(chan struct{})}
		c.conns[nc] = cc
		c.mu.Unlock()
		c.wg.Add(1)
		go cc.serve()
	}
}

// rawConn is one client connection.
type rawConn struct {
	cam  *rawCam
	nc   net.Conn
	id   int
	done chan struct{} // closed when serve returns

	wmu sync.Mutex // one writer at a time

	// Owned by serve until PLAY, read by the media goroutine after.
	videoCh, audioCh int // RTP channels; -1 when not set up
	session          bool
	lastReq          time.Time
	playing          bool

	// parsing is set, under cam.mu, while serve reads one message: Pause
	// must not cut a message in half with its read deadline.
	parsing bool
}

func (cc *rawConn) write(b []byte) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	_ = cc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := cc.nc.Write(b)
	return err
}

func (cc *rawConn) writeFrame(ch int, payload []byte) error {
	b := make([]byte, 4+len(payload))
	b[0], b[1] = '$', byte(ch)
	b[2], b[3] = byte(len(payload)>>8), byte(len(payload))
	copy(b[4:], payload)
	return cc.write(b)
}

func (cc *rawConn) serve() {
	c := cc.cam
	defer c.wg.Done()
	defer close(cc.done)
	defer func() {
		cc.nc.Close()
		c.mu.Lock()
		delete(c.conns, cc.nc)
		c.mu.Unlock()
	}()
	cc.videoCh, cc.audioCh = -1, -1
	br := bufio.NewReaderSize(cc.nc, 4096)
	for {
		var deadline time.Time
		if c.cfg.Timeout > 0 && cc.session {
			deadline = cc.lastReq.Add(time.Duration(c.cfg.Timeout) * time.Second)
		}
		if c.paused.Load() {
			deadline = time.Now()
		}
		_ = cc.nc.SetReadDeadline(deadline)
		b, err := br.Peek(1)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			c.mu.Lock()
			paused, resume := c.paused.Load(), c.resume
			c.mu.Unlock()
			if paused {
				select {
				case <-resume:
					continue
				case <-c.closed:
					return
				}
			}
			if c.cfg.Timeout > 0 && cc.session && time.Since(cc.lastReq) >= time.Duration(c.cfg.Timeout)*time.Second {
				c.expired.Add(1)
				c.t.Logf("raw camera: session timed out after %v without a request", time.Since(cc.lastReq))
				return
			}
			continue
		}
		c.mu.Lock()
		cc.parsing = true
		c.mu.Unlock()
		// A Pause from now on takes effect at the next message.
		_ = cc.nc.SetReadDeadline(time.Time{})
		ok := cc.message(br, b[0])
		c.mu.Lock()
		cc.parsing = false
		c.mu.Unlock()
		if !ok {
			return
		}
	}
}

// message reads and handles the client's next message, which starts with
// first; false ends the connection.
func (cc *rawConn) message(br *bufio.Reader, first byte) bool {
	c := cc.cam
	switch first {
	case '$':
		var f base.InterleavedFrame
		return f.Unmarshal(br) == nil
	case 'R':
		if p, _ := br.Peek(5); string(p) != "RTSP/" {
			var req base.Request
			return req.Unmarshal(br) == nil && cc.handle(&req)
		}
		var res base.Response
		if err := res.Unmarshal(br); err != nil {
			c.t.Logf("raw camera: bad response from the client: %v", err)
			return false
		}
		c.mu.Lock()
		if cs := res.Header["CSeq"]; len(cs) == 1 {
			c.answers[strings.TrimSpace(cs[0])] = int(res.StatusCode)
		} else {
			c.answers[""] = int(res.StatusCode)
		}
		c.mu.Unlock()
	default:
		var req base.Request
		if err := req.Unmarshal(br); err != nil {
			c.t.Logf("raw camera: bad request from the client: %v", err)
			return false
		}
		return cc.handle(&req)
	}
	return true
}

// handle answers one request; false ends the connection.
func (cc *rawConn) handle(req *base.Request) bool {
	c := cc.cam
	now := time.Now()
	// Only a request in the session keeps it alive (RFC 2326 §12.37).
	if !cc.session || hasSession(req) {
		cc.lastReq = now
	}
	u := req.URL.CloneWithoutCredentials().String()
	c.mu.Lock()
	c.reqs = append(c.reqs, rawReq{Conn: cc.id, Method: req.Method, URL: u, Header: req.Header, At: now})
	c.mu.Unlock()

	res := &base.Response{StatusCode: base.StatusOK, Header: base.Header{}}
	if cs, ok := req.Header["CSeq"]; ok {
		res.Header["CSeq"] = cs
	}
	if cc.session {
		res.Header["Session"] = base.HeaderValue{rawSession}
	}
	teardown := false

	switch {
	case req.Method != base.Options && !cc.authorized(req):
		res.StatusCode = base.StatusUnauthorized
		res.Header["WWW-Authenticate"] = cc.challenges()
	default:
		switch req.Method {
		case base.Options:
			res.Header["Public"] = base.HeaderValue{c.cfg.Public}
		case base.Describe:
			if loc, ok := c.cfg.Redirects[req.URL.Path]; ok {
				res.StatusCode = base.StatusCode(c.cfg.RedirectStatus)
				res.Header["Location"] = base.HeaderValue{c.expand(loc)}
				break
			}
			if req.URL.Path != c.cfg.Path {
				res.StatusCode = base.StatusNotFound
				break
			}
			res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
			if c.cfg.ContentBase != "" {
				res.Header["Content-Base"] = base.HeaderValue{c.expand(c.cfg.ContentBase)}
			}
			if c.cfg.ContentLocation != "" {
				res.Header["Content-Location"] = base.HeaderValue{c.expand(c.cfg.ContentLocation)}
			}
			res.Body = c.sdp()
		case base.Setup:
			cc.setup(req, u, res)
		case base.Play:
			if !cc.session || !hasSession(req) || cc.videoCh < 0 {
				res.StatusCode = base.StatusSessionNotFound
				break
			}
			cc.playing = true
		case base.GetParameter:
		case base.Teardown:
			teardown = true
		default:
			res.StatusCode = base.StatusNotImplemented
		}
	}

	b, err := res.Marshal()
	if err != nil {
		c.t.Errorf("raw camera: marshal answer: %v", err)
		return false
	}
	if err := cc.write(b); err != nil {
		return false
	}
	if req.Method == base.Play && cc.playing {
		c.wg.Add(1)
		go cc.media()
	}
	return !teardown
}

func hasSession(req *base.Request) bool {
	v := req.Header["Session"]
	if len(v) != 1 {
		return false
	}
	id, _, _ := strings.Cut(v[0], ";")
	return strings.TrimSpace(id) == rawSession
}

func (cc *rawConn) setup(req *base.Request, u string, res *base.Response) {
	c := cc.cam
	var th headers.Transport
	if err := th.Unmarshal(req.Header["Transport"]); err != nil || th.Protocol != headers.TransportProtocolTCP || th.InterleavedIDs == nil {
		res.StatusCode = base.StatusUnsupportedTransport
		return
	}
	if cc.session && !hasSession(req) {
		res.StatusCode = base.StatusSessionNotFound
		return
	}
	ch := th.InterleavedIDs[0]
	switch u {
	case c.expand(c.cfg.VideoURL):
		if c.cfg.Channel > 0 {
			ch = c.cfg.Channel
		}
		cc.videoCh = ch
	case c.expand(c.cfg.AudioURL):
		if !c.cfg.Audio {
			res.StatusCode = base.StatusNotFound
			return
		}
		cc.audioCh = ch
	default:
		res.StatusCode = base.StatusNotFound
		return
	}
	out := headers.Transport{
		Protocol:       headers.TransportProtocolTCP,
		Delivery:       th.Delivery,
		InterleavedIDs: &[2]int{ch, ch + 1},
	}
	res.Header["Transport"] = out.Marshal()
	sess := rawSession
	if c.cfg.Timeout > 0 {
		sess += ";timeout=" + strconv.Itoa(c.cfg.Timeout)
	}
	res.Header["Session"] = base.HeaderValue{sess}
	cc.session = true
}

// sdp is the DESCRIBE answer's body.
func (c *rawCam) sdp() []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=raw camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n")
	if c.cfg.SessionControl != "" {
		b.WriteString("a=control:" + c.expand(c.cfg.SessionControl) + "\r\n")
	}
	video := fmt.Sprintf("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"+
		"a=fmtp:96 packetization-mode=1;profile-level-id=%s;sprop-parameter-sets=%s,%s\r\na=control:%s\r\n",
		hex.EncodeToString(c.sps[1:4]), base64.StdEncoding.EncodeToString(c.sps),
		base64.StdEncoding.EncodeToString(c.pps), c.expand(c.cfg.VideoControl))
	audio := "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:" + c.expand(c.cfg.AudioControl) + "\r\n"
	switch {
	case c.cfg.Audio && c.cfg.AudioFirst:
		b.WriteString(audio + video)
	case c.cfg.Audio:
		b.WriteString(video + audio)
	default:
		b.WriteString(video)
	}
	return []byte(b.String())
}

// media sends the clip at 25 fps on a playing connection, with what the
// configuration adds: audio, sender reports, junk, server requests.
func (cc *rawConn) media() {
	c := cc.cam
	defer c.wg.Done()
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	const ssrc, assrc = 0x11223344, 0x55667788
	var seq, aseq uint16
	var ts, octets, packets uint32
	reqs := c.cfg.ServerRequests
	for n := 0; ; {
		select {
		case <-c.closed:
			return
		case <-cc.done:
			return
		case <-tick.C:
		}
		if c.paused.Load() {
			continue
		}
		if c.cfg.Frames > 0 && n >= c.cfg.Frames {
			continue // silent, but the connection stays up
		}
		if n == 0 && c.cfg.Junk {
			junk := make([]byte, 37)
			_, _ = rand.Read(junk)
			for i := 0; i < 3; i++ {
				if cc.writeFrame(20, junk) != nil {
					return
				}
			}
			if cc.writeFrame(cc.videoCh+1, senderReport(ssrc, 0, 0, 0)) != nil {
				return
			}
		}
		if cc.audioCh >= 0 {
			aseq++
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: aseq,
				Timestamp: uint32(n) * 320, SSRC: assrc}, Payload: make([]byte, 320)}
			b, _ := p.Marshal()
			if cc.writeFrame(cc.audioCh, b) != nil {
				return
			}
			c.audioSent.Add(1)
		}
		for _, p := range c.aus[n%len(c.aus)] {
			seq++
			q := *p
			q.SequenceNumber, q.Timestamp, q.SSRC = seq, ts, ssrc
			b, err := q.Marshal()
			if err != nil {
				c.t.Errorf("raw camera: marshal RTP: %v", err)
				return
			}
			if cc.writeFrame(cc.videoCh, b) != nil {
				return
			}
			packets++
			octets += uint32(len(q.Payload))
		}
		c.videoSent.Add(1)
		n++
		ts += 90000 / 25
		if c.cfg.SenderReports && n%25 == 0 {
			if cc.writeFrame(cc.videoCh+1, senderReport(ssrc, ts, packets, octets)) != nil {
				return
			}
		}
		if len(reqs) > 0 && n >= 10 && n%5 == 0 {
			if cc.serverRequest(reqs[0], "") != nil {
				return
			}
			reqs = reqs[1:]
		}
	}
}

// serverRequest sends the client a request of the given method, with a
// CSeq of its own (cseq, or the next in the camera's count).
func (cc *rawConn) serverRequest(m base.Method, cseq string) error {
	c := cc.cam
	n := c.serverReqs.Add(1)
	if cseq == "" {
		cseq = strconv.FormatInt(900+n, 10)
	}
	req := base.Request{Method: m, Header: base.Header{
		"CSeq":    base.HeaderValue{cseq},
		"Session": base.HeaderValue{rawSession},
	}}
	var err error
	if req.URL, err = base.ParseURL(c.root + c.cfg.Path); err != nil {
		return err
	}
	switch m {
	case base.Announce:
		req.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
		req.Body = c.sdp()
	case base.SetParameter:
		req.Header["Content-Type"] = base.HeaderValue{"text/parameters"}
		req.Body = []byte("barparam: barstuff\r\n")
	}
	b, err := req.Marshal()
	if err != nil {
		return err
	}
	return cc.write(b)
}

// Flood has the camera stop reading, then send OPTIONS requests on every
// playing connection until its writes stall, which they do once the
// client's answers have filled the socket buffers between them and the
// client blocks writing (or stops reading). It returns once every
// connection stalled, false if that took longer than within.
func (c *rawCam) Flood(within time.Duration) bool {
	c.Pause()
	c.mu.Lock()
	var conns []*rawConn
	for _, cc := range c.conns {
		conns = append(conns, cc)
	}
	c.mu.Unlock()
	deadline := time.Now().Add(within)
	// One request, repeated: only the first line and CSeq change nothing
	// the client needs to parse differently.
	for _, cc := range conns {
		for i := 0; ; i++ {
			if time.Now().After(deadline) {
				return false
			}
			var b strings.Builder
			for k := 0; k < 100; k++ {
				fmt.Fprintf(&b, "OPTIONS %s%s RTSP/1.0\r\nCSeq: %d\r\n\r\n", c.root, c.cfg.Path, 10000+i*100+k)
			}
			cc.wmu.Lock()
			_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, err := io.WriteString(cc.nc, b.String())
			cc.wmu.Unlock()
			if err != nil {
				break // stalled: nothing moved for a second
			}
		}
	}
	return true
}

// senderReport is an RTCP sender report for ssrc.
func senderReport(ssrc, ts, packets, octets uint32) []byte {
	now := time.Now()
	ntp := uint64(now.Unix()+2208988800)<<32 | uint64(now.Nanosecond())*(1<<32)/1e9
	b, err := (&rtcp.SenderReport{SSRC: ssrc, NTPTime: ntp, RTPTime: ts, PacketCount: packets, OctetCount: octets}).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// challenges are the WWW-Authenticate values of a 401.
func (cc *rawConn) challenges() base.HeaderValue {
	c := cc.cam
	const realm = "RawCam"
	switch c.cfg.Auth {
	case "basic":
		return base.HeaderValue{`Basic realm="` + realm + `"`}
	case "digest":
		return base.HeaderValue{`Digest realm="` + realm + `", nonce="` + c.nonce + `"`}
	case "digest-qop":
		return base.HeaderValue{`Digest realm="` + realm + `", nonce="` + c.nonce + `", qop="auth"`}
	case "sha256":
		// RFC 7616 §3.7: one challenge per algorithm, the preferred first.
		return base.HeaderValue{
			`Digest realm="` + realm + `", nonce="` + c.nonce + `", algorithm=SHA-256, qop="auth"`,
			`Digest realm="` + realm + `", nonce="` + c.nonce + `", algorithm=MD5, qop="auth"`,
		}
	}
	return nil
}

// authorized checks a request's credentials, computing digests as RFC
// 2617 and RFC 7616 give them.
func (cc *rawConn) authorized(req *base.Request) (ok bool) {
	c := cc.cam
	if c.cfg.Auth == "" {
		return true
	}
	defer func() {
		if !ok && len(req.Header["Authorization"]) > 0 {
			c.mu.Lock()
			c.authFail++
			c.mu.Unlock()
		}
	}()
	v := req.Header["Authorization"]
	if len(v) != 1 {
		return false
	}
	scheme, params, _ := strings.Cut(v[0], " ")
	if c.cfg.Auth == "basic" {
		if scheme != "Basic" {
			return false
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(params))
		return err == nil && string(raw) == c.cfg.User+":"+c.cfg.Pass
	}
	if scheme != "Digest" {
		return false
	}
	p := digestParams(params)
	var h func() hash.Hash
	switch alg := strings.ToUpper(p["algorithm"]); {
	case c.cfg.Auth == "sha256" && alg == "SHA-256":
		h = sha256.New
	case c.cfg.Auth != "sha256" && (alg == "" || alg == "MD5"):
		h = md5.New
	default:
		return false
	}
	hx := func(s string) string {
		d := h()
		io.WriteString(d, s)
		return hex.EncodeToString(d.Sum(nil))
	}
	// The digest's uri must be the Request-URI (RFC 2617 §3.2.2.5).
	if p["username"] != c.cfg.User || p["realm"] != "RawCam" || p["nonce"] != c.nonce ||
		p["uri"] != req.URL.CloneWithoutCredentials().String() {
		return false
	}
	ha1 := hx(c.cfg.User + ":RawCam:" + c.cfg.Pass)
	ha2 := hx(string(req.Method) + ":" + p["uri"])
	var want string
	if c.cfg.Auth == "digest" {
		want = hx(ha1 + ":" + c.nonce + ":" + ha2)
	} else {
		if p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "" {
			return false
		}
		want = hx(ha1 + ":" + c.nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	}
	return p["response"] == want
}

// digestParams splits `k="v", k2=v2` into a map.
func digestParams(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimLeft(strings.TrimSpace(s), ",") {
		s = strings.TrimSpace(s)
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		rest = strings.TrimSpace(rest)
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				break
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, ",")
			v = strings.TrimSpace(v)
		}
		out[k] = v
	}
	return out
}
