package stream_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

// simRead runs stream.Read against a simulated camera and counts what it
// reports.
type simRead struct {
	frames, keys, decodeErrs atomic.Int64
	mu                       sync.Mutex
	info                     stream.Info
	cancel                   context.CancelFunc
	done                     chan error
}

func startSimRead(t *testing.T, url string, tr stream.Transport) *simRead {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &simRead{cancel: cancel, done: make(chan error, 1)}
	o := stream.Options{
		URL:       url,
		Transport: tr,
		OnInfo: func(i stream.Info) {
			r.mu.Lock()
			r.info = i
			r.mu.Unlock()
		},
		OnFrame: func(f stream.Frame) {
			r.frames.Add(1)
			if f.Key {
				r.keys.Add(1)
			}
		},
		OnDecodeError: func(error) { r.decodeErrs.Add(1) },
	}
	go func() { r.done <- stream.Read(ctx, o) }()
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

func (r *simRead) waitFrames(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.frames.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d frames, want %d", r.frames.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *simRead) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Read still running")
		return nil
	}
}

func TestSimFramesBothTransports(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 2})
	w, h, fps := s.Info()
	for cam, tr := range map[int]stream.Transport{1: stream.TransportTCP, 2: stream.TransportUDP} {
		t.Run(tr.String(), func(t *testing.T) {
			t.Parallel()
			r := startSimRead(t, s.URL(cam), tr)
			r.waitFrames(t, 5)
			start, n0 := time.Now(), r.frames.Load()
			time.Sleep(2 * time.Second)
			rate := float64(r.frames.Load()-n0) / time.Since(start).Seconds()
			if rate < float64(fps)/3 || rate > float64(fps)*3 {
				t.Errorf("%.1f fps, sim sends %d", rate, fps)
			}
			if r.keys.Load() == 0 {
				t.Error("no keyframe")
			}
			r.mu.Lock()
			info := r.info
			r.mu.Unlock()
			if info.Codec != stream.CodecH264 || info.Width != w || info.Height != h || info.Transport != tr.String() {
				t.Errorf("info %s %dx%d %s, sim %dx%d %s", info.Codec, info.Width, info.Height, info.Transport, w, h, tr)
			}
		})
	}
}

func TestSimFaults(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 1})

	t.Run("drop", func(t *testing.T) {
		r := startSimRead(t, s.URL(1), stream.TransportTCP)
		r.waitFrames(t, 3)
		if err := s.SetFault(1, sim.FaultDrop, 0); err != nil {
			t.Fatal(err)
		}
		if err := r.wait(t); err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("after drop: %v", err)
		}
	})

	t.Run("garbage", func(t *testing.T) {
		r := startSimRead(t, s.URL(1), stream.TransportTCP)
		r.waitFrames(t, 3)
		if err := s.SetFault(1, sim.FaultGarbage, 0); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for r.decodeErrs.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no decode errors from garbage")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := s.SetFault(1, sim.FaultNone, 0); err != nil {
			t.Fatal(err)
		}
		r.waitFrames(t, r.frames.Load()+10)
		select {
		case err := <-r.done:
			t.Fatalf("garbage ended Read: %v", err)
		default:
		}
	})

	t.Run("no-video", func(t *testing.T) {
		r := startSimRead(t, s.URL(1), stream.TransportTCP)
		r.waitFrames(t, 3)
		if err := s.SetFault(1, sim.FaultNoVideo, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // frames in flight
		n := r.frames.Load()
		time.Sleep(1500 * time.Millisecond)
		if got := r.frames.Load(); got != n {
			t.Errorf("%d frames during no-video (audio must not count)", got-n)
		}
		if err := s.SetFault(1, sim.FaultNone, 0); err != nil {
			t.Fatal(err)
		}
		r.waitFrames(t, n+5)
	})

	t.Run("refuse", func(t *testing.T) {
		if err := s.SetFault(1, sim.FaultRefuse, 0); err != nil {
			t.Fatal(err)
		}
		defer s.SetFault(1, sim.FaultNone, 0) //nolint:errcheck
		r := startSimRead(t, s.URL(1), stream.TransportTCP)
		err := r.wait(t)
		if err == nil || !strings.HasPrefix(err.Error(), "describe: ") {
			t.Fatalf("refused: %v", err)
		}
	})
}

func TestSimWrongPasswordNotInError(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 1, User: "admin", Pass: "good-pass"})
	url := strings.Replace(s.URL(1), "rtsp://", "rtsp://admin:bad-pass-42@", 1)
	r := startSimRead(t, url, stream.TransportTCP)
	err := r.wait(t)
	if err == nil || strings.Contains(err.Error(), "bad-pass-42") {
		t.Fatalf("err = %v", err)
	}
	ok := startSimRead(t, strings.Replace(s.URL(1), "rtsp://", "rtsp://admin:good-pass@", 1), stream.TransportTCP)
	ok.waitFrames(t, 3)
}
