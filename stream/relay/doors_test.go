package relay

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// dial opens a raw TCP connection to the relay.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (reading
// whatever it sends first), and what it sent.
func closedWithin(c net.Conn, d time.Duration) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}

// TestSilentConnClosed: a connection that sends nothing, or half a request,
// is closed once the first-request timeout passes; one that has sent a
// request is not.
func TestSilentConnClosed(t *testing.T) {
	t.Parallel()
	const first = time.Second
	s := newRelay(t, Config{firstTimeout: first})
	silent := dial(t, s.Addr())
	half := dial(t, s.Addr())
	if _, err := half.Write([]byte("OPTIONS rtsp://" + s.Addr() + "/ RTSP/1.0\r\nCSeq: 1\r\n")); err != nil {
		t.Fatal(err)
	}
	talked := dial(t, s.Addr())
	if _, err := talked.Write([]byte("OPTIONS rtsp://" + s.Addr() + "/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for name, c := range map[string]net.Conn{"silent": silent, "half a request": half} {
		if ok, _ := closedWithin(c, 15*time.Second); !ok {
			t.Errorf("%s connection still open after %s", name, time.Since(start).Round(time.Millisecond))
		}
	}
	if took := time.Since(start); took < first/2 {
		t.Errorf("closed after %s, before the timeout of %s", took, first)
	}
	// The one that sent a request is answered and kept (gortsplib's idle
	// timeout, 60 s, applies to it).
	br := bufio.NewReader(talked)
	_ = talked.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "RTSP/1.0 200") {
		t.Fatalf("OPTIONS answered %q, %v", line, err)
	}
	_ = talked.SetReadDeadline(time.Now().Add(3 * first))
	for err == nil {
		_, err = br.ReadByte() // the rest of the answer, then nothing
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("a connection that sent a request was closed: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "open connections back to 1", func() bool { return s.OpenConns() == 1 })
}

// TestTunnellingRefusedByDefault: HTTP and WebSocket tunnelling is answered
// 403 unless allowed; when allowed, a cross-origin WebSocket upgrade still
// is, and an HTTP tunnel works.
func TestTunnellingRefusedByDefault(t *testing.T) {
	t.Parallel()
	httpTunnel := "GET /cam1 HTTP/1.1\r\nHost: %s\r\nAccept: application/x-rtsp-tunnelled\r\nX-Sessioncookie: abc\r\n\r\n"
	wsUpgrade := "GET /cam1 HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: rtsp.onvif.org\r\nOrigin: %s\r\n\r\n"
	answer := func(addr, req string) string {
		c := dial(t, addr)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}

	off := newRelay(t, Config{})
	for _, req := range []string{
		fmt.Sprintf(httpTunnel, off.Addr()),
		"POST /cam1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-rtsp-tunnelled\r\nX-Sessioncookie: abc\r\nContent-Length: 0\r\n\r\n",
		fmt.Sprintf(wsUpgrade, off.Addr(), "http://"+off.Addr()),
	} {
		if got := answer(off.Addr(), req); !strings.HasPrefix(got, "HTTP/1.1 403") {
			t.Errorf("tunnelling off: %q answered %q, want 403", strings.SplitN(req, "\r\n", 2)[0], got)
		}
	}
	// RTSP is still served.
	if got := answer(off.Addr(), "OPTIONS rtsp://"+off.Addr()+"/ RTSP/1.0\r\nCSeq: 1\r\n\r\n"); !strings.HasPrefix(got, "RTSP/1.0 200") {
		t.Errorf("OPTIONS answered %q", got)
	}

	on := newRelay(t, Config{AllowTunnel: true})
	if got := answer(on.Addr(), fmt.Sprintf(wsUpgrade, on.Addr(), "http://evil.example")); !strings.HasPrefix(got, "HTTP/1.1 403") {
		t.Errorf("cross-origin WebSocket upgrade answered %q, want 403", got)
	}
	if got := answer(on.Addr(), fmt.Sprintf(wsUpgrade, on.Addr(), "http://"+on.Addr())); !strings.HasPrefix(got, "HTTP/1.1 101") {
		t.Errorf("same-origin WebSocket upgrade answered %q, want 101", got)
	}
	if got := answer(on.Addr(), fmt.Sprintf(httpTunnel, on.Addr())); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Errorf("HTTP tunnel answered %q, want 200", got)
	}
}

// TestMaxConns: connections over the cap are closed at once; closed ones
// stop counting.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	logs := &testutil.LogBuffer{}
	s := newRelay(t, Config{MaxConns: 5, Logger: testutil.Logger(logs)})
	var conns []net.Conn
	for range 5 {
		conns = append(conns, dial(t, s.Addr()))
	}
	testutil.WaitFor(t, 10*time.Second, "5 open connections", func() bool { return s.OpenConns() == 5 })
	for i := range 3 {
		over := dial(t, s.Addr())
		if ok, _ := closedWithin(over, 5*time.Second); !ok {
			t.Fatalf("connection %d over the cap still open after 5 s", i+1)
		}
	}
	if n := len(logs.Lines("too many open connections")); n != 1 {
		t.Errorf("%d lines about the cap, want 1:\n%s", n, logs)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "no open connections", func() bool { return s.OpenConns() == 0 })
	c := dial(t, s.Addr())
	if _, err := c.Write([]byte("OPTIONS rtsp://" + s.Addr() + "/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "RTSP/1.0 200") {
		t.Fatalf("after the others closed: %q, %v", line, err)
	}
}

// failingListener fails Accept with err while fail is above 0 (counting
// down), then accepts for real.
type failingListener struct {
	net.Listener
	fail atomic.Int64
	err  error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fail.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// TestAcceptSurvivesEMFILE: the relay waits out running out of descriptors
// with backoff and one log line, then serves again.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	logs := &testutil.LogBuffer{}
	const fails = 10 // about 3.3 s of backoff: 5 ms doubling to 1 s
	s := newRelay(t, Config{Logger: testutil.Logger(logs), listen: func(n, a string) (net.Listener, error) {
		ln, err := net.Listen(n, a)
		if err != nil {
			return nil, err
		}
		fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}}
		fl.fail.Store(fails)
		return fl, nil
	}})
	start := time.Now()
	c := dial(t, s.Addr())
	if _, err := c.Write([]byte("OPTIONS rtsp://" + s.Addr() + "/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "RTSP/1.0 200") {
		t.Fatalf("after %d EMFILE: %q, %v\n%s", fails, line, err, logs)
	}
	took := time.Since(start)
	t.Logf("served %s after the failures began", took.Round(time.Millisecond))
	if took < time.Second {
		t.Errorf("served after %s: %d failures cannot have backed off", took, fails)
	}
	if n := len(logs.Lines("cannot accept connections")); n != 1 {
		t.Errorf("%d lines about accept failures, want 1:\n%s", n, logs)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// TestDeathIsReported: when the accept loop ends on an error that cannot
// be waited out, the relay says so at ERROR and Err reports it.
func TestDeathIsReported(t *testing.T) {
	t.Parallel()
	logs := &testutil.LogBuffer{}
	var fl *failingListener
	s := newRelay(t, Config{Logger: testutil.Logger(logs), listen: func(n, a string) (net.Listener, error) {
		ln, err := net.Listen(n, a)
		if err != nil {
			return nil, err
		}
		fl = &failingListener{Listener: ln, err: errors.New("accept: the listener broke")}
		return fl, nil
	}})
	if s.Err() != nil {
		t.Fatalf("Err() = %v while serving", s.Err())
	}
	fl.fail.Store(1 << 30)
	if c, err := net.Dial("tcp", s.Addr()); err == nil { // wakes the waiting Accept
		defer c.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "Err() set", func() bool { return s.Err() != nil })
	if !strings.Contains(s.Err().Error(), "the listener broke") {
		t.Errorf("Err() = %v", s.Err())
	}
	if n := len(logs.Lines("level=ERROR", "relay: stopped serving")); n != 1 {
		t.Errorf("%d ERROR lines about the relay stopping, want 1:\n%s", n, logs)
	}
	s.Close()
	if n := len(logs.Lines("level=ERROR")); n != 1 {
		t.Errorf("Close logged more errors:\n%s", logs)
	}
}

// TestWrongPasswordsSlowedAndLoggedRarely: 100 wrong passwords from one
// address are logged at most once a second, and the last is answered much
// later than the first; a request without credentials (the challenge) is
// not a failure.
func TestWrongPasswordsSlowedAndLoggedRarely(t *testing.T) {
	t.Parallel()
	logs := &testutil.LogBuffer{}
	s := newRelay(t, Config{User: "viewer", Pass: "right-pass", Logger: testutil.Logger(logs)})
	s.Feed("cam1")
	describe := func(auth string) (string, time.Duration) {
		c, err := net.DialTimeout("tcp", s.Addr(), 10*time.Second)
		if err != nil {
			return err.Error(), 0
		}
		defer c.Close()
		req := "DESCRIBE rtsp://" + s.Addr() + "/cam1 RTSP/1.0\r\nCSeq: 1\r\n"
		if auth != "" {
			req += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n"
		}
		start := time.Now()
		if _, err := c.Write([]byte(req + "\r\n")); err != nil {
			return err.Error(), 0
		}
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err.Error(), 0
		}
		return strings.TrimSpace(line), time.Since(start)
	}
	for range 20 {
		if got, _ := describe(""); got != "RTSP/1.0 401 Unauthorized" {
			t.Fatalf("no credentials: %q", got)
		}
	}
	if strings.Contains(logs.String(), "authentication failed") {
		t.Fatalf("challenges logged as failures:\n%s", logs)
	}
	start := time.Now()
	got, first := describe("viewer:wr0ng-pass")
	if got != "RTSP/1.0 401 Unauthorized" {
		t.Fatalf("wrong password: %q", got)
	}
	// 98 more, in parallel so that the test does not take minutes.
	var wg sync.WaitGroup
	for range 98 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, _ := describe("viewer:wr0ng-pass"); got != "RTSP/1.0 401 Unauthorized" {
				t.Errorf("wrong password: %q", got)
			}
		}()
	}
	wg.Wait()
	got, last := describe("viewer:wr0ng-pass")
	if got != "RTSP/1.0 401 Unauthorized" {
		t.Fatalf("100th wrong password: %q", got)
	}
	elapsed := time.Since(start)
	t.Logf("first answered in %s, 100th in %s; all in %s", first, last, elapsed.Round(time.Millisecond))
	if last < time.Second || last < 10*first {
		t.Errorf("100th wrong password answered in %s, first in %s: not slowed", last, first)
	}
	lines := logs.Lines("relay: authentication failed")
	if len(lines) == 0 || len(lines) > int(elapsed/time.Second)+1 {
		t.Errorf("%d log lines about failures in %s, want 1 to one a second:\n%s", len(lines), elapsed, logs)
	}
	if strings.Contains(logs.String(), "wr0ng-pass") {
		t.Errorf("a password reached the log:\n%s", logs)
	}
	// The right password still works from the same address, at once after
	// the delay it is given.
	if got, _ := describe("viewer:right-pass"); strings.HasPrefix(got, "RTSP/1.0 401") {
		t.Errorf("right password: %q", got)
	}
}

// TestTLSFFprobe: with a certificate and key the relay serves RTSPS, which
// ffprobe reads; plain RTSP to it fails cleanly.
func TestTLSFFprobe(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	tc := testutil.NewCert(t, t.TempDir())
	cert, key := tc.CertFile, tc.KeyFile
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{TLSCert: cert, TLSKey: key, User: "viewer", Pass: "tls-pass"})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height",
		"-of", "json", "rtsps://viewer:tls-pass@"+s.Addr()+"/cam1").CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe rtsps: %v\n%s", err, out)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 || res.Streams[0].CodecName != "h264" {
		t.Fatalf("ffprobe rtsps saw %q (%v)", out, err)
	}
	if s.Scheme() != "rtsps" {
		t.Errorf("Scheme() = %q", s.Scheme())
	}
	// Plain RTSP gets no RTSP answer and the connection ends.
	c := dial(t, s.Addr())
	if _, err := c.Write([]byte("OPTIONS rtsp://" + s.Addr() + "/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	ok, got := closedWithin(c, 15*time.Second)
	if !ok || strings.Contains(got, "RTSP/1.0") {
		t.Errorf("plain RTSP to the TLS port: closed %v, answered %q", ok, got)
	}
}

// TestDoorsNoLeaks: connections ended at the doors (timed out, refused
// tunnels, over the cap, wrong passwords, TLS handshakes that fail) leave
// no goroutine or descriptor behind, and the count of open connections
// comes back to zero.
func TestDoorsNoLeaks(t *testing.T) {
	tc := testutil.NewCert(t, t.TempDir())
	cert, key := tc.CertFile, tc.KeyFile
	start := takeSnapshot(t)
	for _, tlsOn := range []bool{false, true} {
		cfg := Config{Listen: "127.0.0.1:0", MaxConns: 4, firstTimeout: 300 * time.Millisecond,
			User: "viewer", Pass: "leak-pass", Logger: testLogger(t)}
		if tlsOn {
			cfg.TLSCert, cfg.TLSKey = cert, key
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.Feed("cam1")
		var conns []net.Conn
		for _, msg := range []string{
			"",
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			"DESCRIBE rtsp://x/cam1 RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic " + base64.StdEncoding.EncodeToString([]byte("viewer:bad")) + "\r\n\r\n",
			"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n",
			"", "", "", // over the cap
		} {
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if msg != "" {
				_, _ = c.Write([]byte(msg))
			}
		}
		testutil.WaitFor(t, 20*time.Second, "the doors to close every connection", func() bool { return s.OpenConns() == 0 })
		for _, c := range conns {
			_ = c.Close()
		}
		s.Close()
	}
	waitBack(t, start, "after the doors' connections and two relays")
}
