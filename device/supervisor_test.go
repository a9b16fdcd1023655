package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

// A camera that stops sending frames is restarted StallTimeout after its
// last frame, and runs again once frames come.
func TestStallRestartsWithinThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		h, fc := fakeHarness(t, set)
		h.add("cam1", fakeURL(1), true)
		h.waitState("cam1", StateRunning, time.Second)

		const faultFor = 5 * time.Second
		fc.set(fakeURL(1), fakeStall, faultFor)
		stalledAt := time.Now()
		ok := testutil.Poll(set.StallTimeout+10*time.Second, func() bool { return h.get("cam1").Stalls > 0 })
		detect := time.Since(stalledAt)
		if !ok {
			t.Fatalf("stall not detected; transitions %v", h.trans.of("cam1"))
		}
		// The clock is exact: the last frame came at most a frame interval
		// before the fault, and Poll looks every 20 ms.
		if detect < set.StallTimeout-fc.every || detect > set.StallTimeout+20*time.Millisecond {
			t.Errorf("stall detected %s after the fault began, want %s after the last frame", detect, set.StallTimeout)
		}
		// Time is fake, goroutines are not: let the supervisor finish
		// handling the stall it has counted.
		synctest.Wait()
		v := h.waitState("cam1", StateRunning, faultFor+20*time.Second)
		if !strings.Contains(v.LastError, "no video frame") {
			t.Errorf("last error %q, want it to name the stall", v.LastError)
		}
		if !h.trans.seen("cam1", StateRunning, StateReconnecting, StateRunning) {
			t.Errorf("transitions %v, want RUNNING → RECONNECTING → RUNNING", h.trans.of("cam1"))
		}
	})
}

func TestShortDropWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fc := fakeHarness(t, testutil.FastSettings[Settings]())
		h.add("cam1", fakeURL(1), true)
		h.waitState("cam1", StateRunning, time.Second)
		// Let the initial "running" (written by Add) settle.
		synctest.Wait()
		before := h.st.WriteCount()
		writesBefore := h.get("cam1").StatusWrites
		recBefore := h.record("cam1")

		fc.drop(fakeURL(1))
		if !testutil.Poll(10*time.Second, func() bool { return h.trans.seen("cam1", StateRunning, StateReconnecting, StateRunning) }) {
			t.Fatalf("transitions %v, want RUNNING → RECONNECTING → RUNNING", h.trans.of("cam1"))
		}
		// Wait past the debounce to be sure nothing is written late either.
		time.Sleep(testutil.FastSettings[Settings]().FlapDebounce + 500*time.Millisecond)
		if d := h.st.WriteCount() - before; d != 0 {
			t.Errorf("store write transactions during a short flap: %d, want 0", d)
		}
		v := h.get("cam1")
		if v.StatusWrites != writesBefore {
			t.Errorf("status writes for cam1: %d → %d, want unchanged", writesBefore, v.StatusWrites)
		}
		if rec := h.record("cam1"); rec.Status != store.StatusRunning || !rec.StatusUpdatedAt.Equal(recBefore.StatusUpdatedAt) {
			t.Errorf("record changed: %+v → %+v", recBefore.Status, rec.Status)
		}
		if v.Reconnects == 0 || v.ReconnectsLastHour == 0 {
			t.Errorf("reconnects not counted: %+v", v)
		}
	})
}

func TestLongRefuseIsPersistedOnceEachWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		h, fc := fakeHarness(t, set)
		h.add("cam1", fakeURL(1), true)
		h.waitState("cam1", StateRunning, time.Second)
		synctest.Wait()
		before := h.get("cam1").StatusWrites

		// The live session drops, and new ones are refused for longer than
		// CrashedAfter.
		faultFor := set.CrashedAfter + 3*time.Second
		fc.set(fakeURL(1), fakeDown, faultFor)
		fc.drop(fakeURL(1))
		droppedAt := time.Now()
		h.waitState("cam1", StateCrashed, set.CrashedAfter+15*time.Second)
		// The write is batched, so it lands a moment after the state changes.
		if !testutil.Poll(5*time.Second, func() bool { return h.record("cam1").Status == store.StatusCrashed }) {
			t.Fatalf("persisted %q, want crashed", h.record("cam1").Status)
		}
		rec := h.record("cam1")
		// On the exact clock, CRASHED comes when the debounce ends.
		due := droppedAt.Add(max(set.CrashedAfter, set.FlapDebounce))
		if rec.StatusUpdatedAt.Before(due) || rec.StatusUpdatedAt.After(due.Add(100*time.Millisecond)) {
			t.Errorf("status_updated_at %v after the drop, want %v", rec.StatusUpdatedAt.Sub(droppedAt), due.Sub(droppedAt))
		}
		if rec.LastError == "" {
			t.Errorf("no last error persisted")
		}
		writes := func() uint64 { synctest.Wait(); return h.get("cam1").StatusWrites - before }
		if w := writes(); w != 1 {
			t.Errorf("status writes while down: %d, want exactly 1", w)
		}
		h.waitState("cam1", StateRunning, faultFor+20*time.Second)
		if !testutil.Poll(5*time.Second, func() bool { return h.record("cam1").Status == store.StatusRunning }) {
			t.Fatalf("recovery not persisted")
		}
		if w := writes(); w != 2 {
			t.Errorf("status writes across the outage: %d, want exactly 2 (crashed, running)", w)
		}
	})
}

func TestNoVideoNeverCountsAsRunning(t *testing.T) {
	t.Parallel()
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	set := testutil.FastSettings[Settings]()
	set.StallTimeout = time.Second
	h := newHarness(t, set)
	if err := sm.SetFault(1, sim.FaultNoVideo, 0); err != nil {
		t.Fatal(err)
	}
	h.add("cam1", sm.URL(1), true)
	// Sessions are opened, but no video frame arrives: the stall logic
	// restarts it, and it never reaches RUNNING.
	ok := testutil.Poll(3*set.StallTimeout+10*time.Second, func() bool { return h.get("cam1").Stalls >= 2 })
	v := h.get("cam1")
	if !ok {
		t.Fatalf("stalls %d, want ≥ 2; transitions %v, last error %q", v.Stalls, h.trans.of("cam1"), v.LastError)
	}
	for _, st := range h.trans.of("cam1") {
		if st == StateRunning {
			t.Fatalf("camera with no video became RUNNING: %v", h.trans.of("cam1"))
		}
	}
	if v.Frames != 0 {
		t.Errorf("frames counted from a camera with no video: %d", v.Frames)
	}
	if sm.Sessions(1) < 2 {
		t.Errorf("simulator sessions %d, want reconnects", sm.Sessions(1))
	}
	if err := sm.SetFault(1, sim.FaultNone, 0); err != nil {
		t.Fatal(err)
	}
	h.waitState("cam1", StateRunning, set.StallTimeout+set.BackoffMax+20*time.Second)
}

func TestUnreachableAtStartupKeepsRetrying(t *testing.T) {
	t.Parallel()
	// Reserve a port, then free it so nothing listens there yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	set := testutil.FastSettings[Settings]()
	set.BackoffMin, set.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	var attempts atomic.Int64
	var mu sync.Mutex
	var times []time.Time
	h := newHarness(t, set, func(c *Config) {
		c.Read = func(ctx context.Context, o stream.Options) error {
			attempts.Add(1)
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
			return stream.Read(ctx, o)
		}
	})
	h.add("cam1", "rtsp://user:secret@"+addr+"/cam1", true)
	if !testutil.Poll(20*time.Second, func() bool { return attempts.Load() >= 5 }) {
		t.Fatalf("only %d attempts", attempts.Load())
	}
	v := h.get("cam1")
	// Connection refused is a camera that is down (rebooting, say), not
	// one that refused us: it is not REFUSED.
	if v.State == StateRunning || v.State == StateStopped || v.State == StateRefused {
		t.Fatalf("state %s with nothing listening", v.State)
	}
	mu.Lock()
	gaps := make([]time.Duration, 0, len(times))
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	mu.Unlock()
	// Backoff grows: with jitter in [d/2, d], the 4th gap (≥ 80 ms) is
	// longer than the 1st (≤ 20 ms).
	if len(gaps) >= 4 && gaps[3] <= gaps[0] {
		t.Errorf("backoff does not grow: gaps %v", gaps)
	}
	if strings.Contains(v.LastError, "secret") {
		t.Errorf("password in last error: %q", v.LastError)
	}

	simtest.Start(t, sim.Config{Cameras: 1, Listen: addr})
	h.waitState("cam1", StateRunning, set.BackoffMax+20*time.Second)
	if !strings.Contains(h.logs.String(), "camera recovered") {
		t.Errorf("no recovery log line")
	}
	if strings.Contains(h.logs.String(), "secret") {
		t.Errorf("password in logs")
	}
}

func TestReaderPanicRestartsAndBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		set.BackoffMin = 200 * time.Millisecond
		set.BackoffMax = 2 * time.Second
		h, fc := fakeHarness(t, set)
		fc.set(fakeURL(1), fakePanic, 0)
		panics := func() int { return len(fc.attempts(fakeURL(1))) }
		start := time.Now()
		h.add("cam1", fakeURL(1), true)
		// The first panic is restarted at once.
		synctest.Wait()
		if n := panics(); n < 2 {
			t.Fatalf("reader not restarted at once after a panic (panics %d)", n)
		}
		if v := h.get("cam1"); v.State != StateCrashed || v.Crashes == 0 {
			t.Fatalf("after a panic: state %s crashes %d, want CRASHED", v.State, v.Crashes)
		}
		if !testutil.Poll(60*time.Second, func() bool { return panics() >= 10 }) {
			t.Fatalf("only %d panics", panics())
		}
		took := time.Since(start)
		// Backed off, ten crashes take seconds (the delays are at least
		// half of 0.2+0.4+0.8+1.6+2+2+2+2 s); a spinning loop would take
		// no time at all and run the reader thousands of times.
		if took < 5500*time.Millisecond {
			t.Errorf("ten panics in %s: the crash loop does not back off", took)
		}
		if n := panics(); n > 10 {
			t.Errorf("%d panics by the time 10 were expected: crash loop", n)
		}
		v := h.get("cam1")
		if !strings.Contains(v.LastError, "panic") {
			t.Errorf("last error %q does not say it panicked", v.LastError)
		}
		if v.Persisted != string(store.StatusCrashed) {
			t.Errorf("persisted %s, want crashed", v.Persisted)
		}
		fc.set(fakeURL(1), fakeOK, 0)
		h.waitState("cam1", StateRunning, set.BackoffMax+time.Second)
	})
}

func TestPanicInFrameCallbackIsACrashNotAnExit(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	var once atomic.Bool
	h := newHarness(t, testutil.FastSettings[Settings](), func(c *Config) {
		c.Read = func(ctx context.Context, o stream.Options) error {
			inner := o.OnFrame
			o.OnFrame = func(f stream.Frame) {
				inner(f)
				if once.CompareAndSwap(false, true) {
					panic("test hook: panic on the client's goroutine")
				}
			}
			return stream.Read(ctx, o)
		}
	})
	h.add("cam1", sm.URL(1), true)
	if !testutil.Poll(20*time.Second, func() bool { return h.get("cam1").Crashes == 1 }) {
		t.Fatalf("callback panic not recorded: %+v", h.get("cam1"))
	}
	h.waitState("cam1", StateRunning, 20*time.Second)
}

func TestRestartSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fc := fakeHarness(t, testutil.FastSettings[Settings]())
		h.add("run1", fakeURL(1), true)
		h.add("run2", fakeURL(2), true)
		h.add("stopme", fakeURL(3), true)
		h.add("never", fakeURL(4), false)
		h.waitState("run1", StateRunning, time.Second)
		h.waitState("run2", StateRunning, time.Second)
		h.waitState("stopme", StateRunning, time.Second)
		if _, err := h.m.StopCamera(context.Background(), "stopme"); err != nil {
			t.Fatal(err)
		}
		// A camera that has crashed comes back too.
		fc.set(fakeURL(2), fakeDown, 0)
		fc.drop(fakeURL(2))
		h.waitState("run2", StateCrashed, 30*time.Second)
		if !testutil.Poll(5*time.Second, func() bool { return h.record("run2").Status == store.StatusCrashed }) {
			t.Fatal("crash not persisted")
		}
		fc.set(fakeURL(2), fakeOK, 0)

		h.restart()

		if got := h.get("stopme").State; got != StateStopped {
			t.Errorf("stopme after restart: %s, want STOPPED", got)
		}
		if got := h.get("never").State; got != StateStopped {
			t.Errorf("never after restart: %s, want STOPPED", got)
		}
		h.waitState("run1", StateRunning, time.Second)
		h.waitState("run2", StateRunning, time.Second)
		// Stopped cameras stay stopped: no session reached them after restart.
		time.Sleep(time.Minute)
		if got := h.get("stopme").State; got != StateStopped {
			t.Errorf("stopme: %s", got)
		}
		if n := fc.active(fakeURL(3)); n != 0 {
			t.Errorf("stopped camera has %d sessions", n)
		}
		if n := len(fc.attempts(fakeURL(4))); n != 0 {
			t.Errorf("never-started camera had %d sessions", n)
		}

		// A camera added while the daemon ran survives the next restart.
		h.add("late", fakeURL(4), true)
		h.waitState("late", StateRunning, time.Second)
		h.restart()
		h.waitState("late", StateRunning, time.Second)
		if len(h.m.List()) != 5 {
			t.Errorf("cameras after restart: %d, want 5", len(h.m.List()))
		}
	})
}

func TestPasswordsNeverShown(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1, User: "user", Pass: "secret"})
	h := newHarness(t, testutil.FastSettings[Settings]())
	good := strings.Replace(sm.URL(1), "rtsp://", "rtsp://user:secret@", 1)
	bad := strings.Replace(sm.URL(1), "rtsp://", "rtsp://user:wrongsecret@", 1)
	v := h.add("good", good, true)
	if strings.Contains(v.URL, "secret") {
		t.Errorf("view URL %q", v.URL)
	}
	h.waitState("good", StateRunning, 20*time.Second)
	h.add("bad", bad, true)
	if !testutil.Poll(20*time.Second, func() bool { return h.get("bad").LastError != "" }) {
		t.Fatal("no error for wrong credentials")
	}
	_, err := h.m.Add(context.Background(), Spec{Name: "good", URL: good}, true)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("duplicate add error %v", err)
	}
	_, err = h.m.Add(context.Background(), Spec{Name: "x y", URL: good}, true)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("invalid add error %v", err)
	}
	_, err = h.m.Add(context.Background(), Spec{Name: "z", URL: "http://user:secret@host/x"}, true)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad scheme error %v", err)
	}
	for _, v := range h.m.List() {
		s := fmt.Sprintf("%+v", v)
		if strings.Contains(s, "secret") {
			t.Errorf("view shows the password: %s", s)
		}
	}
	if strings.Contains(h.logs.String(), "secret") {
		t.Errorf("password in logs:\n%s", h.logs.String())
	}
}

func TestOperatorActions(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 2})
	h := newHarness(t, testutil.FastSettings[Settings]())
	ctx := context.Background()
	v := h.add("cam1", sm.URL(1), false)
	if v.State != StateStopped || v.Persisted != "stopped" {
		t.Fatalf("added stopped: %+v", v)
	}
	if _, err := h.m.StartCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	if rec := h.record("cam1"); rec.Status != store.StatusRunning {
		t.Errorf("after start, persisted %s", rec.Status)
	}
	h.waitState("cam1", StateRunning, 20*time.Second)
	before := h.get("cam1").Restarts
	if _, err := h.m.RestartCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	if h.get("cam1").Restarts != before+1 {
		t.Errorf("restart not counted")
	}
	h.waitState("cam1", StateRunning, 20*time.Second)

	v, err := h.m.Update(ctx, "cam1", Spec{Name: "front", URL: sm.URL(2), Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "front" {
		t.Fatalf("update: %+v", v)
	}
	if _, err := h.m.Get("cam1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old name still there: %v", err)
	}
	h.waitState("front", StateRunning, 20*time.Second)
	if !testutil.Poll(10*time.Second, func() bool { return sm.ActiveSessions(1) == 0 && sm.ActiveSessions(2) == 1 }) {
		t.Errorf("sessions after URL change: cam1 %d cam2 %d", sm.ActiveSessions(1), sm.ActiveSessions(2))
	}

	if err := h.m.Remove(ctx, "front"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Get("front"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed camera still listed: %v", err)
	}
	if cams, _ := h.st.Cameras(); len(cams) != 0 {
		t.Errorf("store still has %d cameras", len(cams))
	}
	if err := h.m.Remove(ctx, "front"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if !testutil.Poll(10*time.Second, func() bool { return sm.ActiveSessions(2) == 0 }) {
		t.Errorf("removed camera still connected")
	}
	c := h.m.Counts()
	if len(c) != len(States) {
		t.Errorf("counts %v", c)
	}
}

// Every attempt's context is cancelled once the attempt has ended, whoever
// ended it. A context left uncancelled stays registered with the camera's
// own until the camera is removed: a leak of one per reconnect, which the
// soak saw as RSS creeping up.
func TestAttemptContextReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		set.BackoffMin = 10 * time.Millisecond
		set.BackoffMax = 20 * time.Millisecond
		var mu sync.Mutex
		var ended []context.Context
		h := newHarness(t, set, func(c *Config) {
			c.Read = func(ctx context.Context, o stream.Options) error {
				mu.Lock()
				ended = append(ended, ctx)
				mu.Unlock()
				return errors.New("test hook: camera refused")
			}
		})
		h.add("cam1", fakeURL(1), true)
		if !testutil.Poll(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(ended) >= 20 }) {
			t.Fatalf("only %d attempts", len(ended))
		}
		// The camera keeps retrying. Each attempt is launched only once the
		// one before it has ended and been handled, so all but the last have.
		mu.Lock()
		done := append([]context.Context(nil), ended[:len(ended)-1]...)
		mu.Unlock()
		synctest.Wait()
		for i, ctx := range done {
			if ctx.Err() == nil {
				t.Fatalf("attempt %d of %d ended but its context was never cancelled", i+1, len(done))
			}
		}
	})
}

// A reader that does not return after a stall restart cancels it (a bug in
// the RTSP client, or a Tap that blocks) is abandoned after ReadTimeout + 5 s
// and a new attempt runs, as an operator's stop already did: it must not
// hold the camera down for good. What the abandoned reader does after that
// (late frames, its end) does not touch the camera.
func TestRestartAbandonsHungReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		set.StallTimeout = 4 * time.Second
		set.ReadTimeout = time.Second
		// Only the abandon may start the second attempt, not a forced restart.
		set.ForceRestartAfter = time.Hour
		release := make(chan struct{})
		var calls atomic.Int32
		var secondAt atomic.Int64
		fc := newFakeCams()
		h := newHarness(t, set, func(c *Config) {
			c.Read = func(ctx context.Context, o stream.Options) error {
				if calls.Add(1) == 1 {
					o.OnInfo(stream.Info{Codec: stream.CodecH264})
					<-release // hung: ignores ctx
					for range 100 {
						o.OnFrame(stream.Frame{Time: time.Now(), Size: 1 << 20, Key: true})
					}
					return errors.New("test hook: late end of the abandoned reader")
				}
				secondAt.CompareAndSwap(0, time.Now().UnixNano())
				return fc.read(ctx, o)
			}
		})
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		start := time.Now()
		h.add("cam1", fakeURL(1), true)
		// Stall at 4 s, then 6 s for the reader to return.
		v := h.waitState("cam1", StateRunning, 30*time.Second)
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d attempts, want 2; log:\n%s", n, h.logs.String())
		}
		if at, want := time.Unix(0, secondAt.Load()).Sub(start), set.StallTimeout+set.ReadTimeout+5*time.Second; at != want {
			t.Errorf("second attempt %v after the add, want %v (stall, then ReadTimeout + 5 s)", at, want)
		}
		if !strings.Contains(h.logs.String(), "abandoning it and reconnecting") {
			t.Error("no log line for the abandoned reader")
		}
		close(release)
		synctest.Wait()
		time.Sleep(500 * time.Millisecond)
		after := h.get("cam1")
		if after.State != StateRunning || after.Reconnects != v.Reconnects || calls.Load() != 2 {
			t.Errorf("the abandoned reader's end counted: state %s, reconnects %d → %d, attempts %d",
				after.State, v.Reconnects, after.Reconnects, calls.Load())
		}
		if after.Bytes >= 100<<20 {
			t.Errorf("the abandoned reader's late frames counted: %d bytes", after.Bytes)
		}
	})
}

// The first frame of an attempt already cancelled for a restart does not
// make the camera RUNNING: its replacement has shown nothing yet.
func TestLateFirstFrameDuringRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		set.StallTimeout = 10 * time.Second
		var calls atomic.Int32
		h := newHarness(t, set, func(c *Config) {
			c.Read = func(ctx context.Context, o stream.Options) error {
				n := calls.Add(1)
				o.OnInfo(stream.Info{Codec: stream.CodecH264})
				<-ctx.Done()
				if n == 1 { // a frame in flight when the cancel came
					o.OnFrame(stream.Frame{Time: time.Now(), Size: 100, Key: true})
					time.Sleep(300 * time.Millisecond)
				}
				return ctx.Err()
			}
		})
		h.add("cam1", fakeURL(1), true)
		h.waitState("cam1", StateStarting, time.Second)
		if _, err := h.m.RestartCamera(context.Background(), "cam1"); err != nil {
			t.Fatal(err)
		}
		if !testutil.Poll(10*time.Second, func() bool { return calls.Load() >= 2 }) {
			t.Fatal("no second attempt")
		}
		time.Sleep(500 * time.Millisecond)
		if tr := h.trans.of("cam1"); h.trans.seen("cam1", StateRunning) {
			t.Errorf("RUNNING although only the cancelled attempt sent a frame (transitions %v)", tr)
		}
	})
}
