package relay

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
)

// sessionTimeout is what the relay announces in the Session header; a
// reader that plays over TCP is kept as long as its connection lives.
const sessionTimeout = 60

// authRealm is the realm of the relay's challenges.
const authRealm = "camd"

// authMethods are what the relay accepts: Basic and Digest with MD5. A
// challenge that offers SHA-256 too is one ffmpeg fails to answer.
var authMethods = []auth.VerifyMethod{auth.VerifyMethodBasic, auth.VerifyMethodDigestMD5}

// errAuthFailed ends a connection whose credentials were wrong.
var errAuthFailed = errors.New("wrong credentials")

// rconn is one reader connection served by camd's own RTSP code: its
// goroutine reads requests (and the reader's RTCP, which it ignores) and
// answers them; a playing session writes media on it from its own
// goroutine, and wmu keeps the two writers' messages whole.
type rconn struct {
	s      *Server
	nc     net.Conn // the door connection (plaintext under TLS)
	media  net.Conn // what media is written to: the TCP connection itself when plain, for writev
	br     *bufio.Reader
	remote string
	host   string // the Host the reader asked for, for Content-Base
	nonce  string

	wmu sync.Mutex

	sess *session // owned by the connection's goroutine

	quit      chan struct{}
	closeOnce sync.Once
}

func newRConn(s *Server, nc net.Conn, media net.Conn, br *bufio.Reader) *rconn {
	nonce, _ := auth.GenerateNonce()
	return &rconn{s: s, nc: nc, media: media, br: br, remote: nc.RemoteAddr().String(),
		nonce: nonce, quit: make(chan struct{})}
}

// close ends the connection (and with it the session); safe from any
// goroutine, more than once.
func (c *rconn) close() {
	c.closeOnce.Do(func() {
		close(c.quit)
		_ = c.nc.Close()
	})
}

// drop closes a reader that fell behind, once.
func (c *rconn) drop(s *session, why string, err error) {
	if s.feed.droppedOnce(s) {
		s.feed.log.Warn("relay: dropping slow reader", "remote", c.remote, "reason", why, "err", err)
	}
	c.close()
}

// run serves the connection until it ends.
func (c *rconn) run() {
	defer c.s.own.wg.Done()
	defer c.end()
	for {
		if c.sess == nil || !c.sess.playing() {
			_ = c.nc.SetReadDeadline(time.Now().Add(sessionTimeout * time.Second))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		b, err := c.br.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' {
			// The reader's RTCP (receiver reports): not used.
			h, err := c.br.Peek(4)
			if err != nil {
				return
			}
			if _, err := c.br.Discard(4 + int(h[2])<<8 | int(h[3])); err != nil {
				return
			}
			continue
		}
		var req base.Request
		if err := req.Unmarshal(c.br); err != nil {
			return
		}
		res, err := c.handle(&req)
		if res.Header == nil {
			res.Header = base.Header{}
		}
		if cs, ok := req.Header["CSeq"]; ok {
			res.Header["CSeq"] = cs
		}
		res.Header["Server"] = base.HeaderValue{"camd"}
		if res.StatusMessage == "" {
			res.StatusMessage = base.StatusMessages[res.StatusCode]
		}
		if werr := c.writeResponse(res); werr != nil || err != nil {
			return
		}
	}
}

// end tidies up after the connection's goroutine.
func (c *rconn) end() {
	c.close()
	if s := c.sess; s != nil {
		c.sess = nil
		s.stop()
	}
}

// writeResponse writes an answer within writeTimeout.
func (c *rconn) writeResponse(res *base.Response) error {
	b, err := res.Marshal()
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.nc.Write(b)
	return err
}

// writeMedia writes a session's batch within writeTimeout.
func (c *rconn) writeMedia(bufs *net.Buffers) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.media.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := bufs.WriteTo(c.media)
	return err
}

func answer(code base.StatusCode) *base.Response {
	return &base.Response{StatusCode: code, Header: base.Header{}}
}

// handle answers one request. An error ends the connection after the
// answer.
func (c *rconn) handle(req *base.Request) (*base.Response, error) {
	if req.URL != nil && c.host == "" {
		c.host = req.URL.Host
	}
	switch req.Method {
	case base.Options:
		res := answer(base.StatusOK)
		res.Header["Public"] = base.HeaderValue{"OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"}
		return res, nil
	case base.Describe:
		return c.describe(req)
	case base.Setup:
		return c.setup(req)
	case base.Play:
		return c.play(req)
	case base.Teardown:
		if s := c.sess; s != nil && c.sameSession(req) {
			c.sess = nil
			s.stop()
		}
		return answer(base.StatusOK), nil
	case base.GetParameter, base.SetParameter:
		return answer(base.StatusOK), nil
	case base.Announce, base.Record:
		// Cameras are fed through Feed, never published to the relay.
		return answer(base.StatusMethodNotAllowed), nil
	}
	return answer(base.StatusNotImplemented), nil
}

// pathOf splits a request's path into the camera's name and the track a
// SETUP names (-1 for none).
func pathOf(req *base.Request) (name string, trackID int) {
	if req.URL == nil {
		return "", -1
	}
	p := strings.Trim(req.URL.Path, "/")
	trackID = -1
	if i := strings.LastIndex(p, "/trackID="); i >= 0 {
		if n, err := strconv.Atoi(p[i+len("/trackID="):]); err == nil && n >= 0 {
			p, trackID = p[:i], n
		}
	}
	return p, trackID
}

// authorize checks req against what camera name needs. Without credentials
// the answer is a challenge; with wrong ones the reader waits (longer at
// every failure from its address) and the connection ends.
func (c *rconn) authorize(req *base.Request, name string) (*base.Response, error) {
	user, pass := c.s.credentials(name)
	if user == "" {
		return nil, nil
	}
	if auth.Verify(req, user, pass, authMethods, authRealm, c.nonce) == nil {
		c.s.guard.Succeeded(c.remote)
		return nil, nil
	}
	res := answer(base.StatusUnauthorized)
	if !credentialsGiven(req) {
		res.Header["WWW-Authenticate"] = auth.GenerateWWWAuthenticate(authMethods, authRealm, c.nonce)
		return res, nil
	}
	c.s.guard.Wait(c.s.ctx, c.remote)
	return res, errAuthFailed
}

// lookup authorizes a DESCRIBE or SETUP and waits for the camera's stream.
func (c *rconn) lookup(req *base.Request, name string) (*base.Response, *Feed, *outStream, error) {
	if res, err := c.authorize(req, name); res != nil {
		return res, nil, nil, err
	}
	f := c.s.feed(name)
	if f == nil {
		return answer(base.StatusNotFound), nil, nil, nil
	}
	st := f.waitStream(c.s.cfg.DescribeWait, c.s.done)
	if st == nil {
		f.log.Info("relay: camera not streaming; reader refused", "remote", c.remote, "waited", c.s.cfg.DescribeWait)
		return answer(base.StatusServiceUnavailable), nil, nil, nil
	}
	return nil, f, st, nil
}

func (c *rconn) describe(req *base.Request) (*base.Response, error) {
	name, _ := pathOf(req)
	res, _, st, err := c.lookup(req, name)
	if res != nil {
		return res, err
	}
	body, err := st.sdp()
	if err != nil {
		return answer(base.StatusInternalServerError), nil
	}
	res = answer(base.StatusOK)
	res.Header["Content-Base"] = base.HeaderValue{c.s.Scheme() + "://" + c.host + "/" + name + "/"}
	res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
	res.Body = body
	return res, nil
}

// sameSession reports whether req names the connection's session.
func (c *rconn) sameSession(req *base.Request) bool {
	var sh headers.Session
	return c.sess != nil && sh.Unmarshal(req.Header["Session"]) == nil && sh.Session == c.sess.id
}

func (c *rconn) setup(req *base.Request) (*base.Response, error) {
	name, id := pathOf(req)
	res, f, st, err := c.lookup(req, name)
	if res != nil {
		return res, err
	}
	if id < 0 {
		id = 0 // a client that sets up the stream's URL means its first track
	}
	if id >= st.medias() || id > 1 {
		return answer(base.StatusNotFound), nil
	}
	s := c.sess
	if s != nil && (s.st != st || !c.sameSession(req) || s.playing()) {
		return answer(base.StatusBadRequest), nil
	}
	var th headers.Transport
	if err := th.Unmarshal(req.Header["Transport"]); err != nil {
		return answer(base.StatusBadRequest), nil
	}
	udp := th.Protocol == headers.TransportProtocolUDP
	if th.Delivery != nil && *th.Delivery == headers.TransportDeliveryMulticast ||
		udp && (c.s.own.udpRTP == nil || th.ClientPorts == nil) {
		return answer(base.StatusUnsupportedTransport), nil
	}
	if s == nil {
		s = &session{id: newSessionID(), c: c, feed: f, st: st, udp: udp,
			wake: make(chan struct{}, 1), done: make(chan struct{})}
		c.sess = s
	} else if s.udp != udp {
		return answer(base.StatusUnsupportedTransport), nil
	}
	t := &s.tracks[id]
	t.setup = true
	out := headers.Transport{Protocol: th.Protocol, Delivery: ptrTo(headers.TransportDeliveryUnicast)}
	if udp {
		ip := c.nc.RemoteAddr().(*net.TCPAddr).IP
		t.rtpAddr = &net.UDPAddr{IP: ip, Port: th.ClientPorts[0]}
		t.rtcpAddr = &net.UDPAddr{IP: ip, Port: th.ClientPorts[1]}
		t.rtpCh, t.rtcpCh = byte(2*id), byte(2*id+1)
		out.ClientPorts = th.ClientPorts
		out.ServerPorts = &[2]int{c.s.own.udpRTP.LocalAddr().(*net.UDPAddr).Port, c.s.own.udpRTCP.LocalAddr().(*net.UDPAddr).Port}
	} else {
		ids := [2]int{2 * id, 2*id + 1}
		if th.InterleavedIDs != nil {
			ids = *th.InterleavedIDs
		}
		if ids[0] < 0 || ids[0] > 255 || ids[1] < 0 || ids[1] > 255 {
			return answer(base.StatusBadRequest), nil
		}
		t.rtpCh, t.rtcpCh = byte(ids[0]), byte(ids[1])
		out.InterleavedIDs = &ids
	}
	res = answer(base.StatusOK)
	res.Header["Transport"] = out.Marshal()
	res.Header["Session"] = base.HeaderValue{s.id + ";timeout=" + strconv.Itoa(sessionTimeout)}
	return res, nil
}

func (c *rconn) play(req *base.Request) (*base.Response, error) {
	s := c.sess
	if s == nil || !c.sameSession(req) {
		return answer(base.StatusSessionNotFound), nil
	}
	if res, err := c.authorize(req, s.feed.name); res != nil {
		return res, err
	}
	res := answer(base.StatusOK)
	res.Header["Session"] = base.HeaderValue{s.id + ";timeout=" + strconv.Itoa(sessionTimeout)}
	res.Header["Range"] = base.HeaderValue{"npt=0.000-"}
	if s.playing() {
		return res, nil
	}
	hasAudio := s.st.medias() > 1
	s.fast = !s.udp && s.tracks[0].setup && s.tracks[0].rtpCh == videoChannel &&
		(!hasAudio || s.tracks[1].setup && s.tracks[1].rtpCh == audioChannel)
	if tc, ok := c.media.(*net.TCPConn); ok && s.fast && directWrite {
		s.rc, _ = tc.SyscallConn()
	}
	if !s.start() {
		return answer(base.StatusServiceUnavailable), nil
	}
	transport := "TCP"
	if s.udp {
		transport = "UDP"
	}
	s.feed.log.Info("relay: reader started", "remote", c.remote, "transport", transport)
	return res, nil
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func ptrTo[T any](v T) *T { return &v }
