package rtsp

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// fakeServer is a camera written for these tests: it answers OPTIONS,
// DESCRIBE, SETUP and PLAY on one connection, then leaves the connection to
// the test, which writes frames and messages on it while a goroutine keeps
// reading (and recording) what the session sends.
type fakeServer struct {
	t  *testing.T
	ln net.Listener
	// timeout is the session timeout the SETUP answer gives (0: none).
	timeout int
	// public is the OPTIONS answer's Public header.
	public string
	// noRead stops the server reading after PLAY (a camera that stopped
	// reading its socket).
	noRead bool

	mu   sync.Mutex
	reqs []*base.Request

	conn    chan *net.TCPConn // the connection, once PLAY is answered
	stopped chan struct{}
}

const testSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n"

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{t: t, ln: ln, public: "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
		conn: make(chan *net.TCPConn, 1), stopped: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		<-f.stopped
	})
	return f
}

func (f *fakeServer) start() {
	go f.serve()
}

func (f *fakeServer) url() *base.URL {
	u, err := base.ParseURL("rtsp://" + f.ln.Addr().String() + "/cam")
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fakeServer) requests(m base.Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reqs {
		if r.Method == m {
			n++
		}
	}
	return n
}

func (f *fakeServer) serve() {
	defer close(f.stopped)
	nc, err := f.ln.Accept()
	if err != nil {
		return
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var req base.Request
		if err := req.Unmarshal(br); err != nil {
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, &req)
		f.mu.Unlock()
		res := base.Response{StatusCode: base.StatusOK, StatusMessage: "OK", Header: base.Header{"CSeq": req.Header["CSeq"]}}
		switch req.Method {
		case base.Options:
			res.Header["Public"] = base.HeaderValue{f.public}
		case base.Describe:
			res.Header["Content-Type"] = base.HeaderValue{"application/sdp"}
			res.Body = []byte(testSDP)
		case base.Setup:
			res.Header["Transport"] = req.Header["Transport"]
			sess := "12345678"
			if f.timeout > 0 {
				sess += ";timeout=" + strconv.Itoa(f.timeout)
			}
			res.Header["Session"] = base.HeaderValue{sess}
		}
		b, _ := res.Marshal()
		if _, err := c.Write(b); err != nil {
			return
		}
		if req.Method == base.Play {
			break
		}
	}
	f.conn <- c
	if f.noRead {
		<-f.t.Context().Done()
		return
	}
	for {
		var req base.Request
		if err := req.Unmarshal(br); err != nil {
			return
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, &req)
		f.mu.Unlock()
	}
}

// frame is an interleaved frame on ch.
func frame(ch byte, payload []byte) []byte {
	return append([]byte{'$', ch, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// played is a session that plays against f on its own goroutine, with
// the frames it gets.
type played struct {
	s      *Session
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	frames [][]byte
	at     []time.Time
}

func (p *played) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.frames)
}

// play connects to f with cfg (URL and a timeout filled in when unset),
// sets up the video and plays, and returns the camera's end of the
// connection.
func play(t *testing.T, f *fakeServer, cfg Config) (*played, *net.TCPConn) {
	t.Helper()
	f.start()
	if cfg.URL == nil {
		cfg.URL = f.url()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Dial(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &played{s: s, cancel: cancel, done: make(chan error, 1)}
	desc, err := s.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Setup(desc.Medias[0]); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := s.Play(func(ch uint8, payload []byte, at time.Time) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.frames = append(p.frames, append([]byte{ch}, payload...))
			p.at = append(p.at, at)
		})
		s.Close()
		p.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("the session did not end 10 s after its cancellation")
		}
	})
	select {
	case c := <-f.conn:
		return p, c
	case <-time.After(10 * time.Second):
		t.Fatal("no PLAY within 10 s")
	}
	return nil, nil
}

// wait waits for Play to end.
func (p *played) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("Play still running after %v", d)
	}
	return nil
}

// waitFrames waits for n frames.
func (p *played) waitFrames(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for p.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames after %v", p.count(), n, d)
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("Play ended after %d of %d frames: %v", p.count(), n, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
