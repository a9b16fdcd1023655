package device

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream"
)

// The two behaviours of the state table that only reading the supervisor
// used to show, end to end through a real supervisor, on fake cameras and
// synctest's clock.

// TestStallTimerRunsInStarting: a camera that connects but never sends a
// video frame (and whose read does not time out first) is restarted
// StallTimeout after its attempt began, while still STARTING, and shows
// RECONNECTING; without the stall timer in STARTING it would sit there
// until counted CRASHED.
func TestStallTimerRunsInStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := testutil.FastSettings[Settings]()
		h, fc := fakeHarness(t, set)
		fc.set(fakeURL(1), fakeStall, 0)
		added := time.Now()
		h.add("cam1", fakeURL(1), true)
		if !testutil.Poll(set.CrashedAfter+10*time.Second, func() bool { return h.get("cam1").Stalls >= 1 }) {
			t.Fatalf("no stall; transitions %v", h.trans.of("cam1"))
		}
		if at := time.Since(added); at > set.StallTimeout+20*time.Millisecond {
			t.Errorf("stall %v after the attempt began, want StallTimeout %v", at, set.StallTimeout)
		}
		synctest.Wait()
		tr := h.trans.of("cam1")
		if len(tr) < 2 || tr[0] != StateStarting || tr[1] != StateReconnecting {
			t.Errorf("transitions %v, want STARTING then RECONNECTING (the stall), before any CRASHED", tr)
		}
	})
}

// TestCrashedStaysCrashedAcrossReconnects: after a reader crash, failed
// reconnects leave the camera CRASHED (never RECONNECTING); only a frame
// ends it.
func TestCrashedStaysCrashedAcrossReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int64
		fc := newFakeCams()
		h := newHarness(t, testutil.FastSettings[Settings](), func(c *Config) {
			c.Read = func(ctx context.Context, o stream.Options) error {
				switch attempts.Add(1) {
				case 1:
					panic("test hook: reader panic")
				case 2, 3, 4:
					return errors.New("test hook: connection refused")
				}
				return fc.read(ctx, o)
			}
		})
		h.add("cam1", fakeURL(1), true)
		h.waitState("cam1", StateRunning, 20*time.Second)
		if n := attempts.Load(); n < 5 {
			t.Fatalf("%d attempts, want the failed reconnects too", n)
		}
		want := []State{StateStarting, StateCrashed, StateRunning}
		if tr := h.trans.of("cam1"); !slices.Equal(tr, want) {
			t.Errorf("transitions %v, want %v", tr, want)
		}
	})
}
