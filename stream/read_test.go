package stream

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/internal/procfd"
)

// recorder collects what Read reports.
type recorder struct {
	mu        sync.Mutex
	infos     []Info
	frames    []Frame // AU not kept: it is only valid during the callback
	decodeErr int
	gotFrame  chan struct{} // closed at the first frame
	gotInfo   chan struct{} // closed at the first Info
	meter     *Meter
}

func newRecorder() *recorder {
	return &recorder{gotFrame: make(chan struct{}), gotInfo: make(chan struct{}), meter: NewMeter()}
}

func (r *recorder) options(url string) Options {
	return Options{
		URL: url,
		OnInfo: func(i Info) {
			r.meter.SetInfo(i)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.infos = append(r.infos, i)
			if len(r.infos) == 1 {
				close(r.gotInfo)
			}
		},
		OnFrame: func(f Frame) {
			r.meter.Observe(f)
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.infos) == 0 {
				panic("frame before info")
			}
			f.AU = nil
			r.frames = append(r.frames, f)
			if len(r.frames) == 1 {
				close(r.gotFrame)
			}
		},
		OnDecodeError: func(err error) {
			r.meter.DecodeError(err)
			r.mu.Lock()
			r.decodeErr++
			r.mu.Unlock()
		},
	}
}

func (r *recorder) snapshot() (infos []Info, frames []Frame, decodeErr int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Info(nil), r.infos...), append([]Frame(nil), r.frames...), r.decodeErr
}

func (r *recorder) lastInfo() Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.infos) == 0 {
		return Info{}
	}
	return r.infos[len(r.infos)-1]
}

// waitFrames polls until n frames arrived; generous deadline for a loaded
// machine.
func (r *recorder) waitFrames(t *testing.T, n int, within time.Duration) []Frame {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, frames, _ := r.snapshot()
		if len(frames) >= n {
			return frames
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d frames in %v, want %d", len(frames), within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reading runs Read in a goroutine; stop cancels it and returns its error.
type reading struct {
	cancel context.CancelFunc
	done   chan error
}

func startRead(t *testing.T, o Options) *reading {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &reading{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Read(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Read did not return after cancel")
		}
	})
	return r
}

// wait returns Read's error or fails after within.
func (r *reading) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // keep it for Cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Read still running after %v", within)
		return nil
	}
}

func checkStream(t *testing.T, rec *recorder, codec string, w, h int, transport string) {
	t.Helper()
	frames := rec.waitFrames(t, 60, 30*time.Second)
	info := rec.lastInfo()
	if info.Codec != codec || info.Width != w || info.Height != h || info.Transport != transport {
		t.Errorf("info = %s %dx%d %s, want %s %dx%d %s", info.Codec, info.Width, info.Height,
			info.Transport, codec, w, h, transport)
	}
	if info.Media == nil || info.Format == nil {
		t.Errorf("info lacks Media/Format")
	}

	// Frame rate from the arrival times of frames 10..n, skipping the
	// start-up burst. Order of magnitude only: the machine is shared.
	first, last := frames[10], frames[len(frames)-1]
	fps := float64(len(frames)-11) / last.Time.Sub(first.Time).Seconds()
	if fps < 10 || fps > 60 {
		t.Errorf("fps = %.1f, want about 25", fps)
	}
	// PTS is 0 up to the first keyframe (a reader that joins the camera
	// late, as on a loaded machine, gets the rest of a GOP first), and
	// rises from there.
	keys, firstKey := 0, -1
	for i, f := range frames {
		if f.Key {
			keys++
			if firstKey < 0 {
				firstKey = i
			}
		}
		if f.Size <= 0 || f.ClockRate != 90000 {
			t.Fatalf("frame %d: size %d clock rate %d", i, f.Size, f.ClockRate)
		}
		if firstKey < 0 && f.PTS != 0 {
			t.Fatalf("frame %d: PTS %d before the first keyframe", i, f.PTS)
		}
		if firstKey >= 0 && i > firstKey && f.PTS <= frames[i-1].PTS {
			t.Fatalf("frame %d: PTS %d after %d", i, f.PTS, frames[i-1].PTS)
		}
	}
	if firstKey < 0 || firstKey > 25 {
		t.Fatalf("first keyframe at frame %d, want within the first second", firstKey)
	}
	wantKeys := len(frames) / 25
	if codec == CodecMJPEG {
		wantKeys = len(frames)
	}
	if keys < wantKeys/2 || keys > wantKeys+2 {
		t.Errorf("%d keyframes in %d frames, want about %d", keys, len(frames), wantKeys)
	}
	snap := rec.meter.Snapshot(time.Now())
	if snap.Frames < uint64(len(frames)) || snap.Codec != codec || snap.Width != w {
		t.Errorf("meter snapshot %+v", snap)
	}
}

func TestReadH264TCP(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	startRead(t, rec.options(cam.URL()))
	checkStream(t, rec, CodecH264, 640, 480, "tcp")

	// About 2 Mbit/s: the clip was encoded at that rate.
	snap := rec.meter.Snapshot(time.Now())
	if snap.BitrateBPS < 0.5e6 || snap.BitrateBPS > 8e6 {
		t.Errorf("bitrate %.0f bit/s, want about 2e6", snap.BitrateBPS)
	}
	infos, _, decodeErr := rec.snapshot()
	if len(infos) != 1 {
		t.Errorf("OnInfo called %d times, want 1 (nothing changed)", len(infos))
	}
	if decodeErr != 0 {
		t.Errorf("%d decode errors on a clean stream", decodeErr)
	}
}

func TestReadH264UDP(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, udp: true})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.Transport = TransportUDP
	startRead(t, o)
	checkStream(t, rec, CodecH264, 640, 480, "udp")
}

func TestReadAutoPrefersUDP(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, udp: true})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.Transport = TransportAuto
	startRead(t, o)
	rec.waitFrames(t, 5, 30*time.Second)
	if got := rec.lastInfo().Transport; got != "udp" {
		t.Errorf("auto transport with a UDP-capable camera: %q, want udp", got)
	}
}

func TestReadAutoFallsBackToTCP(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264}) // no UDP
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.Transport = TransportAuto
	startRead(t, o)
	rec.waitFrames(t, 5, 30*time.Second)
	if got := rec.lastInfo().Transport; got != "tcp" {
		t.Errorf("auto transport with a TCP-only camera: %q, want tcp", got)
	}
}

func TestReadH265(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH265})
	rec := newRecorder()
	startRead(t, rec.options(cam.URL()))
	checkStream(t, rec, CodecH265, 320, 240, "tcp")
}

func TestReadMJPEG(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecMJPEG})
	rec := newRecorder()
	startRead(t, rec.options(cam.URL()))
	checkStream(t, rec, CodecMJPEG, 320, 240, "tcp")
}

func TestReadVideoWithAudioCountsOnlyVideo(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, withAudio: true})
	rec := newRecorder()
	startRead(t, rec.options(cam.URL()))
	checkStream(t, rec, CodecH264, 640, 480, "tcp")
}

func TestReadAudioOnly(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{audioOnly: true})
	rec := newRecorder()
	r := startRead(t, rec.options(cam.URL()))
	err := r.wait(t, 20*time.Second)
	if !errors.Is(err, ErrNoVideo) || !strings.Contains(err.Error(), "audio") {
		t.Fatalf("err = %v, want no video track naming the audio track", err)
	}
	if infos, frames, _ := rec.snapshot(); len(infos)+len(frames) != 0 {
		t.Errorf("audio-only camera reported %d infos, %d frames", len(infos), len(frames))
	}
}

func TestReadDropReturnsError(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	r := startRead(t, rec.options(cam.URL()))
	rec.waitFrames(t, 5, 30*time.Second)
	cam.Drop()
	err := r.wait(t, 20*time.Second)
	if err == nil || errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "read: ") {
		t.Fatalf("err = %v, want a read error", err)
	}
}

func TestReadStallTimesOut(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadTimeout = time.Second
	r := startRead(t, o)
	rec.waitFrames(t, 5, 30*time.Second)
	cam.muted.Store(true)
	err := r.wait(t, 20*time.Second)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	t.Logf("stall: %v", err)
}

func TestReadCancelIsPrompt(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	r := startRead(t, rec.options(cam.URL()))
	rec.waitFrames(t, 5, 30*time.Second)
	start := time.Now()
	r.cancel()
	err := r.wait(t, 10*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read returned %v after cancel, want well under a second", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// A server that accepts and never answers holds Read in DESCRIBE.
func TestReadCancelDuringDescribe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if len(conns) == 0 {
				close(accepted)
			}
			conns = append(conns, c)
		}
	}()
	defer wg.Wait()
	defer ln.Close()

	rec := newRecorder()
	r := startRead(t, rec.options("rtsp://admin:hunter2@"+ln.Addr().String()+"/x"))
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not connect")
	}
	start := time.Now()
	r.cancel()
	err = r.wait(t, 10*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read returned %v after cancel, want well under a second", d)
	}
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "describe: ") {
		t.Errorf("err = %v, want describe: context canceled", err)
	}
}

func TestReadGarbageIsCountedNotFatal(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	r := startRead(t, rec.options(cam.URL()))
	rec.waitFrames(t, 5, 30*time.Second)
	cam.garbage.Store(true)

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, n := rec.snapshot(); n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decode errors counted from garbage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-r.done:
		t.Fatalf("garbage ended the connection: %v", err)
	default:
	}
	if snap := rec.meter.Snapshot(time.Now()); snap.DecodeErrors == 0 {
		t.Errorf("meter counted no decode errors")
	}

	// The stream recovers once the camera behaves again.
	cam.garbage.Store(false)
	_, frames, _ := rec.snapshot()
	rec.waitFrames(t, len(frames)+30, 30*time.Second)
}

func TestReadErrorsHoldNoPassword(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3tPW"
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, user: "admin", pass: "right-one"})
	camAddr := strings.TrimPrefix(strings.TrimSuffix(cam.URL(), "/cam"), "rtsp://admin:right-one@")

	for name, url := range map[string]string{
		"refused":     "rtsp://admin:" + pw + "@" + closedPort(t) + "/stream",
		"wrong creds": "rtsp://admin:" + pw + "@" + camAddr + "/cam",
		"bad url":     "rtsp://admin:" + pw + "@[::1/stream",
		"bad scheme":  "http://admin:" + pw + "@" + camAddr + "/cam",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			o := rec.options(url)
			o.ReadTimeout = 3 * time.Second
			r := startRead(t, o)
			err := r.wait(t, 20*time.Second)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error holds the password: %v", err)
			}
			t.Logf("%v", err)
		})
	}

	// And the right credentials work.
	rec := newRecorder()
	startRead(t, rec.options(cam.URL()))
	rec.waitFrames(t, 5, 30*time.Second)
}

// countGoroutines polls until the goroutine count and FD counts are back to
// the baseline (other tests' leftovers, the camera server, the runtime).
func waitForBaseline(t *testing.T, wantG int, wantFD procfd.Counts) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g := runtime.NumGoroutine()
		fd, err := procfd.Count()
		if err != nil {
			t.Fatal(err)
		}
		if g <= wantG && fd.Sockets <= wantFD.Sockets && fd.Pipes <= wantFD.Pipes &&
			fd.Events <= wantFD.Events && fd.Files <= wantFD.Files {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: goroutines %d (start %d), fds %v (start %v)\n%s", g, wantG, fd, wantFD, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReadNoLeaksAfterManyCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("200 connections")
	}
	if _, err := procfd.Count(); err != nil {
		t.Skipf("no descriptor counts on %s: %v", runtime.GOOS, err)
	}
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, udp: true})
	refused := "rtsp://u:p@" + closedPort(t) + "/x"

	// Warm up so that lazily created runtime resources (netpoll, timers)
	// are in the baseline.
	for _, tr := range []Transport{TransportTCP, TransportUDP} {
		rec := newRecorder()
		o := rec.options(cam.URL())
		o.Transport = tr
		r := startRead(t, o)
		rec.waitFrames(t, 1, 30*time.Second)
		r.cancel()
		r.wait(t, 10*time.Second)
	}
	time.Sleep(200 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	fd0, err := procfd.Count()
	if err != nil {
		t.Fatal(err)
	}

	const cycles = 200
	for i := 0; i < cycles; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var o Options
		switch i % 4 {
		case 0, 1: // connect, get going, cancel
			gotInfo := make(chan struct{}, 1)
			o = Options{URL: cam.URL(), Transport: Transport(i % 2), OnInfo: func(Info) {
				select {
				case gotInfo <- struct{}{}:
				default:
				}
			}}
			go func() { done <- Read(ctx, o) }()
			select {
			case <-gotInfo:
			case err := <-done:
				done <- err
			case <-time.After(30 * time.Second):
				t.Fatalf("cycle %d: no info", i)
			}
			cancel()
		case 2: // server drops the connection
			gotFrame := make(chan struct{}, 1)
			o = Options{URL: cam.URL(), OnFrame: func(Frame) {
				select {
				case gotFrame <- struct{}{}:
				default:
				}
			}}
			go func() { done <- Read(ctx, o) }()
			select {
			case <-gotFrame:
				cam.Drop()
			case <-time.After(30 * time.Second):
				t.Fatalf("cycle %d: no frame", i)
			}
		case 3: // refused
			o = Options{URL: refused}
			go func() { done <- Read(ctx, o) }()
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("cycle %d: Read did not return", i)
		}
		cancel()
	}
	waitForBaseline(t, g0, fd0)
	fd1, _ := procfd.Count()
	t.Logf("after %d cycles: goroutines %d (start %d), fds %v (start %v)", cycles, runtime.NumGoroutine(), g0, fd1, fd0)
}
