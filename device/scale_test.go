package device

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// TestManyCamerasStableWriteNothingAndRecoverTogether runs 256 simulator
// cameras: none reconnects or stalls while they are stable, nothing is
// written, and when the switch blinks (all drop at once) each comes back
// with exactly one session and no write. TestManyCamerasStayQuietForLong
// watches the same on a fake clock for longer than the stall timeout.
func TestManyCamerasStableWriteNothingAndRecoverTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("256 cameras: not in -short")
	}
	const n = 256
	sm := simtest.Start(t, sim.Config{Cameras: n})
	set := testutil.FastSettings[Settings]()
	// Under the race detector on two loaded cores 256 streams are slow to
	// decode; a generous stall timeout keeps "stable" stable.
	set.StallTimeout = 15 * time.Second
	set.FlapDebounce = 20 * time.Second
	set.CrashedAfter = 20 * time.Second
	set.ForceRestartAfter = 40 * time.Second
	h := newHarness(t, set)
	for i := 1; i <= n; i++ {
		h.add(fmt.Sprintf("cam%d", i), sm.URL(i), true)
	}
	h.waitAll(StateRunning, 120*time.Second)

	before := h.st.WriteCount()
	const stable = 3 * time.Second
	time.Sleep(stable)
	if d := h.st.WriteCount() - before; d != 0 {
		t.Errorf("%d cameras stable for %s: %d write transactions, want 0", n, stable, d)
	}
	for _, v := range h.m.List() {
		if v.State != StateRunning || v.Reconnects != 0 || v.Stalls != 0 {
			t.Errorf("%s not stable: %s, %d reconnects, %d stalls (%s)", v.Name, v.State, v.Reconnects, v.Stalls, v.LastError)
		}
	}

	// The switch blinks: every camera drops at once.
	for i := 1; i <= n; i++ {
		if err := sm.SetFault(i, sim.FaultDrop, 0); err != nil {
			t.Fatal(err)
		}
	}
	dropped := time.Now()
	// A flap shorter than FlapDebounce leaves every camera RUNNING, so the
	// states alone say nothing about the reconnection: the simulator's
	// sessions do. Each camera must come back with exactly one.
	var bad []string
	back := testutil.Poll(120*time.Second, func() bool {
		bad = bad[:0]
		for _, v := range h.m.List() {
			if v.Reconnects != 1 {
				bad = append(bad, fmt.Sprintf("%s reconnects=%d", v.Name, v.Reconnects))
			}
		}
		for i := 1; i <= n; i++ {
			if s := sm.ActiveSessions(i); s != 1 {
				bad = append(bad, fmt.Sprintf("cam%d=%d", i, s))
			}
		}
		return len(bad) == 0
	})
	if !back {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("… %d more", len(bad)-10))
		}
		t.Fatalf("after the drop, cameras without exactly 1 reconnect and 1 active session at the simulator: %v", bad)
	}
	t.Logf("%d cameras reconnected (1 session each) %s after all dropped", n, time.Since(dropped).Round(time.Millisecond))
	h.waitAll(StateRunning, 120*time.Second)
	if d := h.st.WriteCount() - before; d != 0 {
		t.Errorf("a short flap of all cameras wrote %d transactions, want 0", d)
	}
}

func TestConnectDropCyclesLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 cycles: not in -short")
	}
	// 1,000 connect/drop cycles in all; many cameras and few rounds, as a
	// round takes a reconnect's time whatever the number of cameras.
	const cams, cycles = 40, 25
	set := testutil.FastSettings[Settings]()
	set.BackoffMin = 10 * time.Millisecond
	set.BackoffMax = 50 * time.Millisecond
	sm := simtest.Start(t, sim.Config{Cameras: cams})

	// Measure the baseline with the simulator up and the store open.
	h := newHarness(t, set)
	runtime.GC()
	fdBefore, err := procfd.Count()
	if err != nil {
		t.Fatal(err)
	}
	gBefore := runtime.NumGoroutine()

	for i := 1; i <= cams; i++ {
		h.add(fmt.Sprintf("cam%d", i), sm.URL(i), true)
	}
	h.waitAll(StateRunning, 60*time.Second)
	for c := 0; c < cycles; c++ {
		for i := 1; i <= cams; i++ {
			if err := sm.SetFault(i, sim.FaultDrop, 0); err != nil {
				t.Fatal(err)
			}
		}
		// Each camera must reconnect and read a frame before the next drop.
		want := uint64(c + 1)
		if !testutil.Poll(60*time.Second, func() bool {
			for _, v := range h.m.List() {
				if v.Reconnects < want || v.State != StateRunning {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("cycle %d: cameras did not come back", c)
		}
	}
	total := uint64(0)
	for _, v := range h.m.List() {
		total += v.Reconnects
	}
	t.Logf("%d connect/drop cycles", total)

	for i := 1; i <= cams; i++ {
		if err := h.m.Remove(t.Context(), fmt.Sprintf("cam%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var fdAfter procfd.Counts
	ok := testutil.Poll(20*time.Second, func() bool {
		fdAfter, _ = procfd.Count()
		return fdAfter.Sockets <= fdBefore.Sockets && fdAfter.Files <= fdBefore.Files &&
			fdAfter.Pipes <= fdBefore.Pipes && fdAfter.Events <= fdBefore.Events
	})
	if !ok {
		t.Errorf("FDs not back after %d cycles: before %v, after %v", total, fdBefore, fdAfter)
	}
	if g, ok := goroutinesSettle(gBefore, 20*time.Second); !ok {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d, want ≤ %d\n%s", g, gBefore, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("FDs before %v, after %v; goroutines before %d", fdBefore, fdAfter, gBefore)
}

// TestManyCamerasStayQuietForLong runs 256 fake cameras for five minutes
// of the fake clock, longer than every threshold: none leaves RUNNING and
// nothing is written; when all drop at once each comes back with exactly
// one session, and nothing is written either.
func TestManyCamerasStayQuietForLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 256
		set := testutil.FastSettings[Settings]()
		set.StallTimeout = 15 * time.Second
		h, fc := fakeHarness(t, set)
		fc.every = time.Second // a frame a second is plenty for a 15 s stall timeout
		for i := 1; i <= n; i++ {
			h.add(fmt.Sprintf("cam%d", i), fakeURL(i), true)
		}
		h.waitAll(StateRunning, 2*time.Second)
		synctest.Wait()
		before := h.st.WriteCount()
		time.Sleep(5 * time.Minute)
		if d := h.st.WriteCount() - before; d != 0 {
			t.Errorf("%d cameras stable for 5 min: %d write transactions, want 0", n, d)
		}
		for _, v := range h.m.List() {
			if v.State != StateRunning || v.Reconnects != 0 || v.Stalls != 0 {
				t.Errorf("%s not stable: %s, %d reconnects, %d stalls (%s)", v.Name, v.State, v.Reconnects, v.Stalls, v.LastError)
			}
		}
		for i := 1; i <= n; i++ {
			fc.drop(fakeURL(i))
		}
		h.waitAll(StateRunning, 2*time.Second)
		time.Sleep(set.BackoffMax + 2*fc.every)
		for i := 1; i <= n; i++ {
			if s := fc.active(fakeURL(i)); s != 1 {
				t.Errorf("cam%d: %d sessions after the drop, want 1", i, s)
			}
		}
		for _, v := range h.m.List() {
			if v.Reconnects != 1 {
				t.Errorf("%s: %d reconnects after one drop", v.Name, v.Reconnects)
			}
		}
		if d := h.st.WriteCount() - before; d != 0 {
			t.Errorf("a short flap of all cameras wrote %d transactions, want 0", d)
		}
	})
}
