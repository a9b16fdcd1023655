package rtsp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// Frames written one at a time arrive intact and in order, in far fewer
// reads than frames when batched.
func TestPlayBatches(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	p, c := play(t, f, Config{Batch: 100 * time.Millisecond})
	const n, size = 150, 700 // 1.5 s of a ~0.5 Mbit/s camera
	go func() {
		for i := range n {
			if _, err := c.Write(frame(0, bytes.Repeat([]byte{byte(i)}, size))); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	p.waitFrames(t, n, 30*time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	bunches := 1
	for i, fr := range p.frames {
		if len(fr) != size+1 || fr[0] != 0 || fr[1] != byte(i) || fr[size] != byte(i) {
			t.Fatalf("frame %d: %d bytes, channel %d, content %d", i, len(fr), fr[0], fr[1])
		}
		if i > 0 && p.at[i] != p.at[i-1] {
			bunches++
		}
	}
	// About 15 at 100 ms; unbatched it would be about one per frame. Order
	// of magnitude only: a loaded machine wakes late, not often.
	if bunches > n/4 {
		t.Errorf("%d frames read in %d reads, want batches", n, bunches)
	}
	t.Logf("%d frames over 1.5 s read in %d reads", n, bunches)
}

// Unbatched, frames arrive as they are written.
func TestPlayUnbatched(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	p, c := play(t, f, Config{})
	for i := range 20 {
		if _, err := c.Write(frame(0, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
		p.waitFrames(t, i+1, 10*time.Second)
	}
}

// A burst over the low-water mark wakes the session before its tick (an
// hour away here).
func TestPlayBurstWakesBeforeTick(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	p, c := play(t, f, Config{Batch: time.Hour, Timeout: time.Hour})
	payload := make([]byte, 60000)
	var burst []byte
	for range 4 {
		burst = append(burst, frame(0, payload)...)
	}
	go c.Write(burst)
	p.waitFrames(t, 2, 10*time.Second)
}

// A small frame, below the mark, waits for the tick and not longer.
func TestPlaySmallFrameArrivesByTheTick(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	p, c := play(t, f, Config{Batch: 50 * time.Millisecond})
	start := time.Now()
	c.Write(frame(0, []byte("b")))
	p.waitFrames(t, 1, 10*time.Second)
	// The tick is at most 50 ms away; a generous bound for a loaded box.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a small frame took %v to arrive with 50 ms batches", d)
	}
}

// A playing session ends with ErrReadTimeout once the connection has
// brought no data for the timeout, and not while data keeps coming a
// little at a time: batched, with ticks further apart than the timeout,
// and unbatched.
func TestPlayTimesOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		batch time.Duration
	}{
		{"batched", 50 * time.Millisecond},
		{"hour-long ticks", time.Hour},
		{"unbatched", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const timeout = time.Second
			f := newFakeServer(t)
			p, c := play(t, f, Config{Batch: tc.batch, Timeout: timeout})
			// A frame every 100 ms for 2 s: well past the timeout in all,
			// never near it between two.
			const n = 20
			for i := range n {
				if _, err := c.Write(frame(0, []byte{byte(i)})); err != nil {
					t.Fatal(err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			p.waitFrames(t, n, 10*time.Second)
			silent := time.Now()
			err := p.wait(t, 10*timeout)
			d := time.Since(silent)
			if !errors.Is(err, ErrReadTimeout) || !strings.HasPrefix(err.Error(), "read: ") {
				t.Fatalf("a silent connection: %v after %v, want ErrReadTimeout", err, d)
			}
			if d < timeout/2 {
				t.Errorf("timed out %v after the last byte, want about %v", d, timeout)
			}
		})
	}
}

// A LiveTimeout, read at every check, overrides Timeout while playing.
func TestPlayLiveTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	p, _ := play(t, f, Config{Batch: 50 * time.Millisecond, Timeout: time.Hour,
		LiveTimeout: func() time.Duration { return time.Second }})
	if err := p.wait(t, 20*time.Second); !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("err = %v, want ErrReadTimeout after the live second", err)
	}
}

// End of stream, a reset and a stop are not held back by the batch,
// whether they come while the session sleeps or between two reads.
func TestPlayEndsPromptly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		end   func(p *played, c *net.TCPConn)
		check func(error) bool
	}{
		{"peer closes", func(_ *played, c *net.TCPConn) { c.Close() },
			func(err error) bool { return errors.Is(err, io.EOF) }},
		{"peer resets", func(_ *played, c *net.TCPConn) { c.SetLinger(0); c.Close() },
			func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"cancelled", func(p *played, _ *net.TCPConn) { p.cancel() },
			func(err error) bool { return errors.Is(err, context.Canceled) }},
	} {
		for _, between := range []bool{false, true} {
			name := tc.name + "/while sleeping"
			if between {
				name = tc.name + "/between reads"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFakeServer(t)
				p, c := play(t, f, Config{Batch: time.Hour, Timeout: time.Hour})
				c.Write(frame(0, bytes.Repeat([]byte("x"), 70000-4)))
				p.waitFrames(t, 1, 10*time.Second)
				if !between {
					time.Sleep(50 * time.Millisecond) // let it sleep
				}
				tc.end(p, c)
				err := p.wait(t, 5*time.Second)
				if !tc.check(err) {
					t.Errorf("err = %v (%T)", err, err)
				}
			})
		}
	}
}

// Messages in the stream are handled between frames: answers to the
// session's keepalives are taken, a server's requests are answered with
// their CSeq, stray line ends are skipped, and frames on other channels
// still reach the caller.
func TestPlayMessagesBetweenFrames(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.noRead = true // the test reads the answers
	p, c := play(t, f, Config{Batch: 50 * time.Millisecond})
	var b []byte
	b = append(b, frame(0, []byte("a"))...)
	b = append(b, "RTSP/1.0 200 OK\r\nCSeq: 99\r\nContent-Length: 5\r\n\r\n$$$$$"...)
	b = append(b, frame(1, []byte("rtcp"))...)
	b = append(b, "\r\n"...)
	b = append(b, "GET_PARAMETER rtsp://x/cam RTSP/1.0\r\nCSeq: 7\r\n\r\n"...)
	b = append(b, "SET_PARAMETER rtsp://x/cam RTSP/1.0\r\nCSeq: 8\r\nContent-Length: 3\r\n\r\na=b"...)
	b = append(b, frame(20, []byte("odd"))...)
	// Written a byte at a time: every unit is split across reads.
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	p.waitFrames(t, 3, 10*time.Second)
	p.mu.Lock()
	got := []string{string(p.frames[0]), string(p.frames[1]), string(p.frames[2])}
	p.mu.Unlock()
	if want := []string{"\x00a", "\x01rtcp", "\x14odd"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q, want %q", got, want)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var answers string
	buf := make([]byte, 4096)
	for strings.Count(answers, "RTSP/1.0 200 OK") < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("answers so far %q: %v", answers, err)
		}
		answers += string(buf[:n])
	}
	if !strings.Contains(answers, "CSeq: 7\r\n") || !strings.Contains(answers, "CSeq: 8\r\n") {
		t.Fatalf("answers %q: want CSeq 7 and 8", answers)
	}
}

// A session timeout has keepalives sent before it expires: GET_PARAMETER
// where the server offers it, OPTIONS otherwise.
func TestPlayKeepalives(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		public string
		want   base.Method
	}{
		{"OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER", base.GetParameter},
		{"OPTIONS, DESCRIBE, SETUP, PLAY", base.Options},
	} {
		t.Run(string(tc.want), func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t)
			f.timeout, f.public = 2, tc.public
			p, c := play(t, f, Config{Batch: 50 * time.Millisecond})
			before := f.requests(tc.want)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(40 * time.Millisecond):
						c.Write(frame(0, []byte("v")))
					}
				}
			}()
			p.waitFrames(t, 60, 30*time.Second) // about 2.4 s: past the timeout
			deadline := time.Now().Add(10 * time.Second)
			for f.requests(tc.want)-before < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("%d %s keepalives in 10 s with a 2 s session timeout", f.requests(tc.want)-before, tc.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TEARDOWN goes out on Close, and Close is bounded when the camera no
// longer reads its socket (the socket's buffers full).
func TestCloseBoundedWhenCameraStopsReading(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.noRead = true
	p, c := play(t, f, Config{Batch: 50 * time.Millisecond})
	c.SetReadBuffer(4096)
	nc := p.s.nc.(*net.TCPConn)
	nc.SetWriteBuffer(4096)
	// Fill the way to the camera until a write blocks.
	junk := make([]byte, 64<<10)
	for {
		nc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := nc.Write(junk); err != nil {
			break
		}
	}
	start := time.Now()
	p.cancel()
	if err := p.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stop took %v with a camera that does not read", d)
	}
}
