package relay

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// rawClient is a hand-written RTSP client: it can stop reading its socket
// after PLAY, as a hung reader does.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	tp   *textproto.Reader
	cseq int
}

// dialRaw connects with a small receive buffer, so that a client that stops
// reading fills the kernel's buffers in well under a second instead of
// after megabytes.
func dialRaw(t testing.TB, addr string, rcvbuf int) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = testutil.RcvBufControl(rcvbuf)
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return newRawClient(conn)
}

func newRawClient(conn net.Conn) *rawClient {
	br := bufio.NewReader(conn)
	return &rawClient{conn: conn, br: br, tp: textproto.NewReader(br)}
}

// do sends one request and reads its response.
func (c *rawClient) do(method, url string, hdr map[string]string) (int, textproto.MIMEHeader, string, error) {
	c.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, url, c.cseq)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	_ = c.conn.SetDeadline(time.Now().Add(20 * time.Second))
	defer func() { _ = c.conn.SetDeadline(time.Time{}) }()
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return 0, nil, "", err
	}
	line, err := c.tp.ReadLine()
	if err != nil {
		return 0, nil, "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "RTSP/1.0" {
		return 0, nil, "", fmt.Errorf("bad status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	h, err := c.tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, "", err
	}
	body := ""
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			return 0, nil, "", err
		}
		body = string(buf)
	}
	return code, h, body, nil
}

// play does DESCRIBE, SETUP (TCP) and PLAY and returns the status of the
// first request that failed, or 200.
func (c *rawClient) play(url string, hdr map[string]string) (int, error) {
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range hdr {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	code, h, body, err := c.do("DESCRIBE", url, with(map[string]string{"Accept": "application/sdp"}))
	if err != nil || code != 200 {
		return code, err
	}
	base := h.Get("Content-Base")
	if base == "" {
		base = url + "/"
	}
	control := ""
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=control:"); ok && v != "*" {
			control = v
		}
	}
	setupURL := control
	if !strings.HasPrefix(control, "rtsp://") {
		setupURL = strings.TrimSuffix(base, "/") + "/" + control
	}
	code, h, _, err = c.do("SETUP", setupURL, with(map[string]string{"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}))
	if err != nil || code != 200 {
		return code, err
	}
	session, _, _ := strings.Cut(h.Get("Session"), ";")
	code, _, _, err = c.do("PLAY", url, with(map[string]string{"Session": session}))
	return code, err
}

// rawSetup sends a lone SETUP (no DESCRIBE, no credentials) for path and
// returns its status.
func rawSetup(t *testing.T, addr, path string) int {
	t.Helper()
	c := dialRaw(t, addr, 0)
	code, _, _, err := c.do("SETUP", "rtsp://"+addr+path+"/trackID=0",
		map[string]string{"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestStuckReaderDropped: a reader that stops reading its socket is dropped
// within seconds (counted and logged), while another reader of the same
// camera loses nothing and keeps 25 fps.
func TestStuckReaderDropped(t *testing.T) {
	t.Parallel()
	c := loadClip(t, "../sim/clip.h264")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{})
	supervise(t, sm.URL(1), s.Feed("cam1"))
	url := "rtsp://" + s.Addr() + "/cam1"
	good, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the good reader's frames", func() bool { return good.frames.Load() >= 25 })

	stuck := dialRaw(t, s.Addr(), 4096)
	if code, err := stuck.play(url, nil); err != nil || code != 200 {
		t.Fatalf("stuck reader's PLAY: %d %v", code, err)
	}
	// From here on it never reads.
	start := time.Now()
	f0 := good.frames.Load()
	testutil.WaitFor(t, 20*time.Second, "the stuck reader to be dropped", func() bool { return s.Stats("cam1").ReadersDropped == 1 })
	took := time.Since(start)
	fps := float64(good.frames.Load()-f0) / took.Seconds()
	t.Logf("stuck reader dropped after %s; the other reader meanwhile: %.1f fps", took.Round(10*time.Millisecond), fps)
	if took > 12*time.Second {
		t.Errorf("stuck reader dropped after %s, want a few seconds", took)
	}
	if !fpsWithin(fps) {
		t.Errorf("other reader got %.1f fps while a reader was stuck", fps)
	}
	if g := good.seqGaps.Load(); g != 0 {
		t.Errorf("other reader lost packets: %d sequence gaps", g)
	}
	// Every picture, in order: the relay skipped no frame either.
	if _, res := checkFrames(t, "other reader", c, good.clipFrames(t, c)); len(res) != 0 {
		t.Errorf("other reader: the stream skipped to a keyframe %d times", len(res))
	}
	testutil.WaitFor(t, 10*time.Second, "one reader left", func() bool { return s.Stats("cam1").Readers == 1 })
	if good.ended() {
		t.Fatalf("the good reader ended: %v", good.rd.Err())
	}
	// The relay closed the stuck reader's connection: draining it ends in
	// EOF (or a reset).
	_ = stuck.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		if _, err := stuck.br.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the stuck reader's connection is still open")
			}
			break
		}
	}
	if st := s.Stats("cam1"); st.ReadersDropped != 1 || st.ReadersTotal != 2 {
		t.Errorf("stats %+v", st)
	}
}
