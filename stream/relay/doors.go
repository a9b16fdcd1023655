package relay

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The relay's doors: what every accepted connection goes through before
// gortsplib sees it.
const (
	// DefaultMaxConns is the default cap on open reader connections.
	DefaultMaxConns = 256
	// firstRequestTimeout bounds the wait for a connection's first complete
	// request. gortsplib reads the first bytes of a connection (to detect
	// HTTP tunnelling) with no deadline, so without it a silent connection
	// holds a descriptor for ever.
	firstRequestTimeout = 10 * time.Second
	// acceptBackoffMin and acceptBackoffMax bound the pause after a failed
	// Accept, as net/http does: long enough not to spin while descriptors
	// are exhausted, short enough to serve again soon after.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// doorLogEvery is the least time between two log lines about the same
	// door event (descriptors exhausted, cap reached).
	doorLogEvery = time.Minute
	// maxTunnelHeader bounds the HTTP request head kept to check a
	// WebSocket upgrade's Origin.
	maxTunnelHeader = 16 << 10
)

// errTunnelRefused ends a connection that starts with an HTTP request
// while tunnelling is off, or a cross-origin WebSocket upgrade.
var errTunnelRefused = errors.New("relay: RTSP over HTTP or WebSocket refused")

// doors is the state shared by the relay's listener and its connections.
type doors struct {
	log          *slog.Logger
	maxConns     int
	allowTunnel  bool
	firstTimeout time.Duration
	done         <-chan struct{} // closed when the Server's Close begins

	open atomic.Int64

	mu        sync.Mutex
	exhausted logEvery // failed accepts
	capped    logEvery // connections refused for the cap
}

// temporaryAccept reports whether an Accept error is one to wait out:
// descriptors or kernel memory running out, or a connection reset before
// it was accepted.
func temporaryAccept(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// logEvery counts an event that is logged at most once per doorLogEvery.
type logEvery struct {
	last time.Time
	n    int // events since the last line
}

// add counts one event at now and returns how many to report in a line,
// or 0 while the last line is too recent.
func (e *logEvery) add(now time.Time) int {
	e.n++
	if !e.last.IsZero() && now.Sub(e.last) < doorLogEvery {
		return 0
	}
	n := e.n
	e.last, e.n = now, 0
	return n
}

// acceptFailed logs a temporary Accept error at most once per doorLogEvery.
func (d *doors) acceptFailed(err error) {
	d.mu.Lock()
	n := d.exhausted.add(time.Now())
	d.mu.Unlock()
	if n > 0 {
		d.log.Error("relay: cannot accept connections (out of file descriptors?); retrying with backoff until some close",
			"err", err, "failed_accepts", n, "open_conns", d.open.Load())
	}
}

// overCap logs a connection refused for the cap at most once per
// doorLogEvery.
func (d *doors) overCap(remote net.Addr) {
	d.mu.Lock()
	n := d.capped.add(time.Now())
	d.mu.Unlock()
	if n > 0 {
		d.log.Warn("relay: too many open connections; closing new ones (relay.max_conns)",
			"max_conns", d.maxConns, "remote", remote.String(), "refused", n)
	}
}

// doorListener is gortsplib's listener. It survives temporary Accept
// errors (gortsplib's accept loop ends the server on any error), caps the
// open connections, limits each one's unsent bytes, and wraps each in a
// doorConn. Under TLS it wraps the TLS listener, so that its connections
// see the plaintext.
type doorListener struct {
	net.Listener
	d *doors
}

func (l doorListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporaryAccept(err) {
				return nil, err
			}
			l.d.acceptFailed(err)
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.d.done:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if l.d.maxConns > 0 && l.d.open.Load() >= int64(l.d.maxConns) {
			_ = raw.Close()
			l.d.overCap(raw.RemoteAddr())
			continue
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			limitUnsent(tc, unsentLimit)
		}
		l.d.open.Add(1)
		return newDoorConn(c, l.d), nil
	}
}

// doorConn is one accepted connection. Until its first request is
// complete it has a read deadline of firstTimeout from the accept (a later
// deadline asked for by gortsplib waits until then), and it looks at the
// first bytes to refuse HTTP and WebSocket tunnelling unless allowed.
//
// Why sniff here: gortsplib v5's Server has no switch for tunnelling; it
// takes any connection whose first four bytes are "GET " or "POST" as an
// HTTP or WebSocket tunnel. RTSP requests never start that way (their
// methods are OPTIONS, DESCRIBE, SETUP, PLAY, …), so those four bytes decide
// it without parsing anything of gortsplib's RTSP traffic. Past the end of
// the first request head, bytes pass through untouched.
type doorConn struct {
	net.Conn
	d      *doors
	closed atomic.Bool

	// mu guards the fields below: Read runs on gortsplib's reader goroutine
	// and SetReadDeadline may be called from others.
	mu       sync.Mutex
	pending  bool      // the first request head is not complete yet
	deadline time.Time // the first-request deadline
	asked    time.Time // the read deadline gortsplib asked for meanwhile
	head     []byte    // the first bytes (all of an HTTP head, to check Origin)
	sniffed  bool      // the first four bytes have been looked at
	http     bool      // they start an HTTP request (tunnelling allowed)
	prev     [3]byte   // the last bytes seen, to find the end of the head
}

func newDoorConn(c net.Conn, d *doors) *doorConn {
	dc := &doorConn{Conn: c, d: d, pending: true, deadline: time.Now().Add(d.firstTimeout)}
	_ = c.SetReadDeadline(dc.deadline)
	return dc
}

// Close implements net.Conn; the connection stops counting once.
func (c *doorConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.d.open.Add(-1)
	}
	return c.Conn.Close()
}

// SetReadDeadline implements net.Conn: until the first request is in, the
// earlier of t and the first-request deadline applies.
func (c *doorConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending {
		c.asked = t
		if t.IsZero() || t.After(c.deadline) {
			t = c.deadline
		}
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline implements net.Conn through SetReadDeadline.
func (c *doorConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *doorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pending || n == 0 {
		return n, err
	}
	if rerr := c.sniff(p[:n]); rerr != nil {
		return 0, rerr
	}
	return n, err
}

// sniff looks at bytes b of the first request head; called with c.mu held.
func (c *doorConn) sniff(b []byte) error {
	if !c.sniffed || c.http {
		c.head = append(c.head, b...)
		if !c.sniffed && len(c.head) >= 4 {
			c.sniffed = true
			if m := string(c.head[:4]); m == "GET " || m == "POST" {
				if !c.d.allowTunnel {
					c.refuse("RTSP over HTTP/WebSocket tunnelling is off on this relay (relay.allow_tunnel)")
					return errTunnelRefused
				}
				c.http = true
			} else {
				c.head = nil
			}
		}
		if c.http && len(c.head) > maxTunnelHeader {
			c.refuse("request head too large")
			return errTunnelRefused
		}
	}
	for _, x := range b {
		if x == '\n' && (c.prev[2] == '\n' || (c.prev[2] == '\r' && c.prev[1] == '\n')) {
			return c.headDone()
		}
		c.prev = [3]byte{c.prev[1], c.prev[2], x}
	}
	return nil
}

// headDone ends the first-request phase: gortsplib's own deadlines apply
// from now on. An HTTP tunnel's WebSocket upgrade is checked first.
func (c *doorConn) headDone() error {
	if c.http {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(c.head)))
		if err == nil && crossOriginUpgrade(req) {
			c.refuse("cross-origin WebSocket upgrade")
			return errTunnelRefused
		}
	}
	c.pending = false
	c.head = nil
	return c.Conn.SetReadDeadline(c.asked)
}

// crossOriginUpgrade reports whether req is a WebSocket upgrade from a web
// page of another origin: a browser always sends Origin with an upgrade,
// other clients seldom do, and a page may only reach a server of its own
// host and port.
func crossOriginUpgrade(req *http.Request) bool {
	if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return false
	}
	origin := req.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return true
	}
	return !strings.EqualFold(u.Host, req.Host)
}

// refuse answers an HTTP request with 403 and why, best effort; the caller
// then ends the connection.
func (c *doorConn) refuse(why string) {
	body := why + "\n"
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Conn.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	c.d.log.Debug("relay: connection refused", "remote", c.Conn.RemoteAddr().String(), "reason", why)
}
