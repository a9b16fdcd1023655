package stream

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Packets written one at a time arrive intact and in order, and a cancel
// is not held back by a batch.
func TestReadBatched(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264})
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.ReadBatch = 100 * time.Millisecond
	r := startRead(t, o)
	checkStream(t, rec, CodecH264, 640, 480, "tcp")
	if _, _, decodeErr := rec.snapshot(); decodeErr != 0 {
		t.Errorf("%d decode errors on a clean stream", decodeErr)
	}
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
	t.Parallel()
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

// A playing connection is read in batches: frames come in bunches.
func TestReadBatchesOncePlaying(t *testing.T) {
	t.Parallel()
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

// Under TransportAuto a camera whose UDP never arrives is read over TCP
// by camd's own session, in batches.
func TestReadAutoSwitchThenBatched(t *testing.T) {
	t.Parallel()
	cam := newTestCamera(t, cameraConfig{codec: CodecH264, udp: true})
	cam.muted.Store(true)
	rec := newRecorder()
	o := rec.options(cam.URL())
	o.Transport = TransportAuto
	o.ReadTimeout = 5 * time.Second
	o.ReadBatch = time.Second
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
	cam.muted.Store(false)
	frames := rec.waitFrames(t, 50, 30*time.Second)[10:50]
	if tr := rec.lastInfo().Transport; tr != "tcp" {
		t.Fatalf("frames over %q, want tcp", tr)
	}
	if g := spreadGaps(frames); g > 20 {
		t.Errorf("%d of %d frames arrived more than 20 ms after the one before: the new connection is not batched", g, len(frames)-1)
	}
}

// Over TCP the video's packets give the clip's access units, every one and
// in order, with keepalives answered in the middle of the stream: for
// H.264 and for H.265, whose depacketizers join fragmented NAL units into
// the arena on this path.
func TestReadTakesFrames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ codec, clip string }{{CodecH264, clipH264}, {CodecH265, clipH265}} {
		for _, batch := range []time.Duration{0, 100 * time.Millisecond} {
			t.Run(c.codec+"/batch="+batch.String(), func(t *testing.T) {
				t.Parallel()
				aus := loadAnnexB(t, c.clip, c.codec == CodecH265)
				index := map[[32]byte]int{}
				for i, au := range aus {
					index[auDigest(au)] = i
				}
				// The server announces a 1 s session timeout: keepalives
				// every half second, answered in the middle of the stream.
				cam := newTestCamera(t, cameraConfig{codec: c.codec, idleTimeout: 2 * time.Second})
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
				o.ReadBatch = batch
				o.ReadTimeout = 2 * time.Second
				startRead(t, o)
				rec.waitFrames(t, 100, 60*time.Second) // 4 s: past the server's 2 s idle timeout
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
				if n := cam.keepalives.Load(); n < 2 {
					t.Errorf("%d keepalives answered while playing, want one every half second", n)
				}
			})
		}
	}
}

// A camera that goes silent over a batched connection is ended by the
// session's own check: after frames came, and from PLAY on.
func TestReadBatchedStallTimesOut(t *testing.T) {
	t.Parallel()
	for _, fromPlay := range []bool{false, true} {
		name := "after frames"
		if fromPlay {
			name = "from PLAY"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
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
		})
	}
}

// Cancelling a Read while a batch is being handled ends it with the
// cancellation, not a panic or a hang: OnFrame holds the reader in a batch
// while the context is cancelled.
func TestReadCancelWhileTaking(t *testing.T) {
	t.Parallel()
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
		if n >= 40 {
			once.Do(func() {
				<-ready
				r.cancel()
				time.Sleep(300 * time.Millisecond)
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
