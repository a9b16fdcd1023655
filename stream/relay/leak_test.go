package relay

import (
	"runtime"
	"testing"
	"time"

	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// snapshot is what must come back to where it was.
type snapshot struct {
	goroutines int
	fds        procfd.Counts
}

func takeSnapshot(t *testing.T) snapshot {
	t.Helper()
	c, err := procfd.Count()
	if err != nil {
		t.Skipf("cannot count FDs here: %v", err)
	}
	return snapshot{goroutines: runtime.NumGoroutine(), fds: c}
}

// waitBack polls until goroutines and sockets are no more than at base.
func waitBack(t *testing.T, base snapshot, what string) snapshot {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		now := takeSnapshot(t)
		if now.goroutines <= base.goroutines && now.fds.Sockets <= base.fds.Sockets && now.fds.Total <= base.fds.Total {
			return now
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%s: goroutines %d (was %d), fds %v (was %v)\n%s",
				what, now.goroutines, base.goroutines, now.fds, base.fds, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNoLeaks: readers that come and go in every way (played and closed,
// refused, dropped for being stuck, ended by a camera removal) leave no
// goroutine or FD behind, and closing the relay returns to the start.
func TestNoLeaks(t *testing.T) {
	start := takeSnapshot(t)
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	s := newRelay(t, Config{DescribeWait: 200 * time.Millisecond})
	stop := supervise(t, sm.URL(1), s.Feed("cam1"))
	url := "rtsp://" + s.Addr() + "/cam1"
	r, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "frames", func() bool { return r.frames.Load() >= 10 })
	r.close()
	idle := s.Feed("idle") // a camera that never streams
	time.Sleep(500 * time.Millisecond)
	base := takeSnapshot(t)
	t.Logf("base: goroutines %d, fds %v", base.goroutines, base.fds)

	for round := range 3 {
		var rs []*rtpReader
		for range 5 {
			r, err := startReader(t, url)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		p := startFFmpeg(t, url, "-c", "copy", "-f", "null", "-")
		testutil.WaitFor(t, 30*time.Second, "readers playing", func() bool {
			for _, r := range rs {
				if r.frames.Load() < 5 {
					return false
				}
			}
			return p.frames.Load() >= 5
		})
		mid := takeSnapshot(t)
		if round == 0 {
			t.Logf("with 6 readers: goroutines %d, fds %v", mid.goroutines, mid.fds)
		}
		for _, r := range rs {
			r.close()
		}
		p.stop(t)
		if _, err := startReader(t, "rtsp://"+s.Addr()+"/nosuch"); statusCode(err) != 404 {
			t.Fatalf("unknown camera: %v", err)
		}
		if _, err := startReader(t, "rtsp://"+s.Addr()+"/idle"); statusCode(err) != 503 {
			t.Fatalf("idle camera: %v", err)
		}
		waitBack(t, base, "after readers left")
	}

	// A stuck reader, dropped by the relay.
	stuck := dialRaw(t, s.Addr(), 4096)
	if code, err := stuck.play(url, nil); err != nil || code != 200 {
		t.Fatalf("stuck PLAY: %d %v", code, err)
	}
	testutil.WaitFor(t, 60*time.Second, "the stuck reader dropped", func() bool { return s.Stats("cam1").ReadersDropped == 1 })
	stuck.conn.Close()
	waitBack(t, base, "after the stuck reader")

	// Readers of a camera that is removed.
	r2, err := startReader(t, url)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "frames", func() bool { return r2.frames.Load() >= 5 })
	idle.Close()
	stop()
	s.Feed("cam1").Close() // replaces the fed one, which ends its reader
	testutil.WaitFor(t, 10*time.Second, "the reader's end", r2.ended)
	r2.close()

	s.Close()
	sm.Close()
	end := waitBack(t, start, "after Close")
	t.Logf("start: goroutines %d, fds %v; end: goroutines %d, fds %v", start.goroutines, start.fds, end.goroutines, end.fds)
}
