package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns a batchConn on the reading end of a loopback TCP
// connection, not yet enabled, and the writing end; both close at the
// test's end.
func tcpPair(t *testing.T, interval time.Duration) (*batchConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	rc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wc := <-accepted
	if wc == nil {
		t.Fatal("accept failed")
	}
	b := newBatchConn(rc, interval, 0, nil)
	if b == nil {
		t.Fatal("newBatchConn returned nil for a TCP connection")
	}
	t.Cleanup(func() { b.Close(); wc.Close() })
	return b, wc.(*net.TCPConn)
}

// readAll reads n bytes from c through a small buffer, as bufio.Reader does.
func readAll(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	p := make([]byte, 4096)
	for len(got) < n {
		k, err := c.Read(p)
		got = append(got, p[:k]...)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), n, err)
		}
	}
	return got
}

// Packets written one at a time arrive intact and in order, in far fewer
// reads than writes.
func TestBatchConnBatchesPackets(t *testing.T) {
	b, w := tcpPair(t, 100*time.Millisecond)
	b.enable(-1)
	const writes, size = 150, 700 // 1.5 s of a ~0.5 Mbit/s camera
	var want bytes.Buffer
	go func() {
		for i := range writes {
			p := bytes.Repeat([]byte{byte(i)}, size)
			if _, err := w.Write(p); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for i := range writes {
		want.Write(bytes.Repeat([]byte{byte(i)}, size))
	}
	got := readAll(t, b, writes*size)
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes differ from what was written")
	}
	// About 15 at 100 ms; unbatched it would be about one per write.
	// Order of magnitude only: a loaded machine wakes late, not often.
	if b.reads > writes/4 {
		t.Errorf("%d reads for %d writes, want batches", b.reads, writes)
	}
	t.Logf("%d writes over 1.5 s read in %d reads", writes, b.reads)
}

// A burst over the low-water mark wakes the reader before the tick, and
// is read in full buffers, intact. (What is left below the mark waits for
// the tick, an hour here.)
func TestBatchConnBurstWakesBeforeTick(t *testing.T) {
	b, w := tcpPair(t, time.Hour)
	b.enable(-1)
	// A first read, so that the next one sleeps.
	w.Write([]byte("x"))
	readAll(t, b, 1)

	burst := make([]byte, 3*batchBufSize+123)
	for i := range burst {
		burst[i] = byte(i * 7)
	}
	go w.Write(burst)
	const want = 2 * batchBufSize
	done := make(chan []byte, 1)
	go func() { done <- readAll(t, b, want) }()
	select {
	case got := <-done:
		if !bytes.Equal(got[:want], burst[:want]) {
			t.Fatal("burst corrupted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a burst over the low-water mark did not wake the reader")
	}
}

// A few bytes, below the mark, wait for the tick and not longer.
func TestBatchConnSmallWriteArrivesByTheTick(t *testing.T) {
	b, w := tcpPair(t, 50*time.Millisecond)
	b.enable(-1)
	w.Write([]byte("a"))
	readAll(t, b, 1)
	start := time.Now()
	w.Write([]byte("b"))
	if got := readAll(t, b, 1); string(got) != "b" {
		t.Fatalf("got %q", got)
	}
	// The tick is at most 50 ms away; a generous bound for a loaded box.
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a small write took %v to arrive with 50 ms batches", d)
	}
}

// A batched connection with a timeout fails with ErrReadTimeout once it
// has brought no data for that long, and not while data keeps coming, a
// little at a time: batched (also with ticks further apart than the
// timeout) or, where batching could not be turned on, read as it is.
func TestBatchConnTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
		plain    bool
	}{
		{"batched", 50 * time.Millisecond, false},
		{"hour-long ticks", time.Hour, false},
		{"unbatchable", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 2 * time.Second
			b, w := tcpPair(t, tc.interval)
			b.timeout = timeout
			b.enable(-1)
			b.plain = tc.plain
			// A byte every 100 ms for 3 s: well past the timeout in
			// all, never near it between two bytes.
			const n = 30
			go func() {
				for i := range n {
					if _, err := w.Write([]byte{byte(i)}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			readAll(t, b, n)
			silent := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := b.Read(make([]byte, 16))
				done <- err
			}()
			select {
			case err := <-done:
				d := time.Since(silent)
				if !errors.Is(err, ErrReadTimeout) {
					t.Fatalf("a silent connection's read: %v after %v, want ErrReadTimeout", err, d)
				}
				// Order of magnitude: the check runs at ticks.
				if d < timeout/2 {
					t.Errorf("timed out %v after the last byte, want about %v", d, timeout)
				}
				t.Logf("%v after the last byte: %v", d.Round(time.Millisecond), err)
			case <-time.After(10 * timeout):
				t.Fatalf("a connection silent for %v has not timed out", 10*timeout)
			}
		})
	}
}

// Before batching is enabled the timeout applies too, as a deadline on
// each read: the client's read after PLAY's answer can start before
// enable, and the client's own check is off. The deadline goes once
// batching starts.
func TestBatchConnTimesOutBeforeEnable(t *testing.T) {
	const timeout = time.Second
	b, _ := tcpPair(t, 50*time.Millisecond)
	b.timeout = timeout
	start := time.Now()
	if _, err := b.Read(make([]byte, 16)); !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("a silent read before enable: %v, want ErrReadTimeout", err)
	}
	if d := time.Since(start); d < timeout/2 || d > 10*timeout {
		t.Errorf("timed out after %v, want about %v", d, timeout)
	}

	// A read before enable leaves a deadline a second away; batched reads
	// after it must not fail at it. Here the socket never runs dry (more
	// than a buffer queued), so no wait sets a deadline of its own between
	// them.
	b2, w2 := tcpPair(t, 50*time.Millisecond)
	b2.timeout = timeout
	w2.Write([]byte("a"))
	readAll(t, b2, 1)
	b2.enable(-1)
	const queued = 4 * batchBufSize
	go w2.Write(make([]byte, queued))
	time.Sleep(200 * time.Millisecond) // all of it queued
	got := len(readAll(t, b2, 1))      // a buffer's worth is read
	time.Sleep(timeout + timeout/2)    // past the old deadline
	got += len(readAll(t, b2, queued-got))
	if got != queued {
		t.Fatalf("read %d of %d bytes", got, queued)
	}
}

// End of stream, a reset and Close are not held back by the batch, whether
// they come while the reader sleeps or between two reads (then the
// poller's edge has passed before the reader asks).
func TestBatchConnEndsPromptly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		end   func(b *batchConn, w *net.TCPConn)
		check func(error) bool
	}{
		{"peer closes", func(_ *batchConn, w *net.TCPConn) { w.Close() },
			func(err error) bool { return err == io.EOF }},
		{"peer resets", func(_ *batchConn, w *net.TCPConn) { w.SetLinger(0); w.Close() },
			func(err error) bool {
				var op *net.OpError
				return errors.As(err, &op) && errors.Is(err, syscall.ECONNRESET)
			}},
		{"local close", func(b *batchConn, _ *net.TCPConn) { b.Close() },
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
	} {
		for _, between := range []bool{false, true} {
			name := tc.name + "/while sleeping"
			if between {
				name = tc.name + "/between reads"
			}
			t.Run(name, func(t *testing.T) {
				b, w := tcpPair(t, time.Hour)
				b.enable(-1)
				w.Write([]byte("x"))
				readAll(t, b, 1)
				if between {
					tc.end(b, w)
					time.Sleep(50 * time.Millisecond) // the FIN or RST is in
				}
				errc := make(chan error, 1)
				go func() {
					_, err := b.Read(make([]byte, 10))
					errc <- err
				}()
				if !between {
					time.Sleep(50 * time.Millisecond) // let it sleep
					tc.end(b, w)
				}
				select {
				case err := <-errc:
					if !tc.check(err) {
						t.Errorf("err = %v (%T)", err, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Read still sleeping 5 s after the end, with hour-long batches")
				}
			})
		}
	}
}

// Until enable (during the RTSP requests), reads are not delayed.
func TestBatchConnUnbatchedUntilEnabled(t *testing.T) {
	b, w := tcpPair(t, time.Hour)
	for range 3 {
		w.Write([]byte("RTSP"))
		readAll(t, b, 4)
	}
	if b.reads != 0 {
		t.Errorf("%d batched reads before enable", b.reads)
	}
}

// A camera read with batches gives the same frames as without.
func TestReadBatched(t *testing.T) {
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadBatch = 100 * time.Millisecond
	r := startRead(t, o)
	checkStream(t, rec, CodecH264, 640, 480, "tcp")
	if _, _, decodeErr := rec.snapshot(); decodeErr != 0 {
		t.Errorf("%d decode errors on a clean stream", decodeErr)
	}

	// Cancel is not held back by a batch.
	start := time.Now()
	r.cancel()
	if err := r.wait(t, 10*time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read returned %v after cancel, want well under a second", d)
	}
}

// A dropped camera ends a batched Read at once, not at the next batch.
func TestReadBatchedDropIsPrompt(t *testing.T) {
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadBatch = time.Hour // frames still come: 64 KiB wake the reader
	r := startRead(t, o)
	rec.waitFrames(t, 5, 30*time.Second)
	start := time.Now()
	cam.Drop()
	err := r.wait(t, 20*time.Second)
	if err == nil || errors.Is(err, context.Canceled) || !bytes.HasPrefix([]byte(err.Error()), []byte("read: ")) {
		t.Fatalf("err = %v, want a read error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("drop noticed after %v with hour-long batches: %v", d, err)
	}
}

// A reader slower than the camera (more than a tick between reads, with
// full buffers queued) still gets every byte and no error.
func TestBatchConnSlowReader(t *testing.T) {
	b, w := tcpPair(t, 20*time.Millisecond)
	b.enable(-1)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 13)
	}
	go w.Write(data)
	got := make([]byte, 0, len(data))
	p := make([]byte, 48<<10)
	for len(got) < len(data) {
		n, err := b.Read(p)
		got = append(got, p[:n]...)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), len(data), err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("bytes differ from what was written")
	}
}

// spreadGaps counts the gaps of more than 20 ms between the arrival of
// consecutive frames. A camera at 25 fps read packet by packet has one at
// nearly every frame; read in batches, most frames of a batch arrive
// together.
func spreadGaps(frames []Frame) int {
	n := 0
	for i := 1; i < len(frames); i++ {
		if frames[i].Time.Sub(frames[i-1].Time) > 20*time.Millisecond {
			n++
		}
	}
	return n
}

// Read does batch the connection once it plays: frames arrive in clumps.
func TestReadBatchesOncePlaying(t *testing.T) {
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadBatch = 500 * time.Millisecond
	startRead(t, o)
	frames := rec.waitFrames(t, 60, 30*time.Second)[10:60]
	// About 12 frames a batch: some 4 of the 49 gaps are spread out, where
	// reading packet by packet spreads all 49.
	if g := spreadGaps(frames); g > 25 {
		t.Errorf("%d of %d frames arrived more than 20 ms after the one before: not batched", g, len(frames)-1)
	}
}

// switchToTCP starts a Read against a camera whose UDP packets never
// arrive (a NAT or firewall in the way) and waits until the client, having
// given up on UDP about 3 s after PLAY, has dialed again and gone through
// OPTIONS to PLAY on a new TCP connection.
func switchToTCP(t *testing.T, batch time.Duration) (*testCamera, *recorder) {
	t.Helper()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, udp: true})
	cam.muted.Store(true)
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.Transport = TransportAuto
	o.ReadTimeout = 5 * time.Second
	o.ReadBatch = batch
	r := startRead(t, o)
	deadline := time.After(30 * time.Second)
	for cam.tcpPlays.Load() == 0 {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Read ended before PLAY on TCP: %v", err)
		case <-deadline:
			t.Fatal("no PLAY on TCP within 30 s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return cam, rec
}

// The answers on the connection dialed for the switch are not batched:
// with hour-long batches each would wait out ReadTimeout, the switch would
// fail at every attempt, and such a camera would never play.
func TestReadBatchedSwitchAnswersNotBatched(t *testing.T) {
	switchToTCP(t, time.Hour)
}

// Once it plays, the connection dialed for the switch is batched.
func TestReadBatchedSwitchThenBatched(t *testing.T) {
	cam, rec := switchToTCP(t, time.Second) // within a quarter of ReadTimeout
	cam.muted.Store(false)
	frames := rec.waitFrames(t, 50, 30*time.Second)[10:50]
	if tr := rec.lastInfo().Transport; tr != "tcp" {
		t.Fatalf("frames over %q, want tcp", tr)
	}
	if g := spreadGaps(frames); g > 20 {
		t.Errorf("%d of %d frames arrived more than 20 ms after the one before: the new connection is not batched", g, len(frames)-1)
	}
}

// dialedConns records the batched connections Read makes until the test
// ends.
func dialedConns(t *testing.T) func() []*batchConn {
	var mu sync.Mutex
	var conns []*batchConn
	testDialed = func(b *batchConn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, b)
	}
	t.Cleanup(func() { testDialed = nil })
	return func() []*batchConn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*batchConn(nil), conns...)
	}
}

// Over plain TCP, the video's RTP packets are taken from the connection
// (not through the client), and give the clip's access units, every one
// and in order, with the client's answers and its read timeout unharmed:
// for H.264 and for H.265, whose depacketizers join fragmented NAL units
// into the arena on this path.
func TestReadTakesFrames(t *testing.T) {
	for _, c := range []struct{ codec, clip string }{{CodecH264, clipH264}, {CodecH265, clipH265}} {
		t.Run(c.codec, func(t *testing.T) {
			conns := dialedConns(t)
			aus := loadAnnexB(t, c.clip, c.codec == CodecH265)
			index := map[[32]byte]int{}
			for i, au := range aus {
				index[auDigest(au)] = i
			}
			// Keepalives every second, answered in the middle of the stream.
			cam := newTestCamera(t, cameraConfig{codec: c.codec, idleTimeout: 6 * time.Second})
			var mu sync.Mutex
			var seq []int
			rec := newRecorder()
			o := rec.options(cam.URL())
			onFrame := o.OnFrame
			o.OnFrame = func(f Frame) {
				i, ok := index[auDigest(f.AU)]
				if !ok {
					i = -1
				}
				mu.Lock()
				seq = append(seq, i)
				mu.Unlock()
				onFrame(f)
			}
			o.ReadBatch = 100 * time.Millisecond
			o.ReadTimeout = 2 * time.Second // several timeouts' worth below
			startRead(t, o)
			rec.waitFrames(t, 150, 60*time.Second) // 6 s: past the client's timeout
			mu.Lock()
			defer mu.Unlock()
			for k := 1; k < len(seq); k++ {
				if seq[k] < 0 || seq[k-1] >= 0 && seq[k] != (seq[k-1]+1)%len(aus) {
					t.Fatalf("frame %d is access unit %d of the clip after %d (-1: none of the clip's)", k, seq[k], seq[k-1])
				}
			}
			if _, _, decodeErr := rec.snapshot(); decodeErr != 0 {
				t.Errorf("%d decode errors", decodeErr)
			}
			if n := cam.keepalives.Load(); n < 3 {
				t.Errorf("%d keepalives answered while playing, want one a second", n)
			}
			cs := conns()
			if len(cs) != 1 {
				t.Fatalf("%d connections, want 1", len(cs))
			}
			// About 7 packets a frame; the client reads those that come before
			// PLAY's answer itself.
			if n := cs[0].taken.Load(); n < uint64(len(seq)) {
				t.Errorf("%d packets taken from the connection in %d frames, want nearly all", n, len(seq))
			}
		})
	}
}

// A camera that sends only video, all of it taken, is not ended by the
// client (no keepalive answer comes in the window, so the client gets
// nothing else for several read timeouts):
//   - "client fed": with the client's own check at its period, as over a
//     connection that switched from UDP, it still sees data come (an empty
//     frame on an unused channel after each batch);
//   - "client quiet": with the client's timers turned down it is fed
//     nothing, and its check must never run.
func TestReadTakenFramesOutliveTimeout(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		name := "client fed"
		if quiet {
			name = "client quiet"
		}
		t.Run(name, func(t *testing.T) {
			testLoudClientTimers = !quiet
			t.Cleanup(func() { testLoudClientTimers = false })
			conns := dialedConns(t)
			cam := newTestCamera(t, cameraConfig{codec: CodecH264}) // keepalives every 50 s
			rec := newRecorder()
			o := rec.options(cam.URL())
			o.ReadBatch = 100 * time.Millisecond
			o.ReadTimeout = time.Second
			r := startRead(t, o)
			rec.waitFrames(t, 125, 60*time.Second) // 5 s, five timeouts
			select {
			case err := <-r.done:
				t.Fatalf("Read ended: %v", err)
			default:
			}
			if cs := conns(); len(cs) != 1 || cs[0].taken.Load() == 0 || cs[0].clientQuiet != quiet {
				t.Fatalf("%d connections (want 1), no packet taken, or the client not as set: not the path under test", len(cs))
			}
		})
	}
}

// A camera that goes silent over a batched connection is ended by the
// connection's own check, the client's being turned down: after frames
// came, and from PLAY on (the client's read after PLAY's answer usually
// starts before batching is enabled, and must be bounded too).
func TestReadBatchedStallTimesOut(t *testing.T) {
	for _, fromPlay := range []bool{false, true} {
		name := "after frames"
		if fromPlay {
			name = "from PLAY"
		}
		t.Run(name, func(t *testing.T) {
			cam := newTestCamera(t, cameraConfig{codec: CodecH264}) // keepalives every 50 s
			cam.muted.Store(fromPlay)
			rec := newRecorder()
			o := rec.options(cam.URL())
			o.ReadBatch = 100 * time.Millisecond
			o.ReadTimeout = time.Second
			r := startRead(t, o)
			if !fromPlay {
				rec.waitFrames(t, 5, 30*time.Second)
				cam.muted.Store(true)
			}
			err := r.wait(t, 20*time.Second)
			if !errors.Is(err, ErrReadTimeout) || !strings.HasPrefix(err.Error(), "read: ") {
				t.Fatalf("err = %v, want the read to end with ErrReadTimeout", err)
			}
			t.Logf("stall: %v", err)
		})
	}
}

// Cancelling a Read while a batch is being taken ends it with the
// cancellation, not a panic: the client drops its own PTS decoder as soon
// as it starts closing, while the rest of the batch is still taken, so the
// PTS come from camd's. Here OnFrame holds the reader in a batch while the
// context is cancelled.
func TestReadCancelWhileTaking(t *testing.T) {
	conns := dialedConns(t)
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadBatch = 400 * time.Millisecond // about 10 frames a batch
	var r *reading
	var once sync.Once
	ready := make(chan struct{})
	n := 0
	inner := o.OnFrame
	o.OnFrame = func(f Frame) {
		inner(f)
		n++
		if cs := conns(); n >= 40 && len(cs) == 1 && cs[0].taken.Load() > 0 {
			once.Do(func() {
				<-ready
				r.cancel()
				time.Sleep(300 * time.Millisecond) // the client closes meanwhile
			})
		}
	}
	r = startRead(t, o)
	close(ready)
	if err := r.wait(t, 30*time.Second); !errors.Is(err, context.Canceled) {
		var pe *PanicError
		if errors.As(err, &pe) {
			t.Logf("stack:\n%s", pe.Stack)
		}
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
