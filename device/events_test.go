package device

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// eventSettings scale the seeds' 30 s debounce down to 3 s.
func eventSettings() Settings {
	set := testutil.FastSettings[Settings]()
	set.FlapDebounce, set.CrashedAfter = 3*time.Second, 3*time.Second
	set.ForceRestartAfter = 20 * time.Second
	set.BackoffMin, set.BackoffMax = 100*time.Millisecond, 500*time.Millisecond
	return set
}

// history returns the events in the store after id.
func (h *harness) history(after uint64) []events.Event {
	h.t.Helper()
	evs, err := h.st.After(after, events.Filter{}, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// settle waits until the event queue is empty and returns the last id.
func (h *harness) settle() uint64 {
	h.t.Helper()
	if !testutil.Poll(10*time.Second, func() bool { return h.evq.Pending() == 0 }) {
		h.t.Fatal("event queue did not drain")
	}
	id, err := h.st.LastEventID()
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func kindsOf(evs []events.Event) []events.Kind {
	ks := make([]events.Kind, len(evs))
	for i, e := range evs {
		ks[i] = e.Kind
	}
	return ks
}

func TestEventsOfAddStartStopRemove(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	h := newEventHarness(t, eventSettings())
	h.add("cam1", sm.URL(1), true)
	h.waitState("cam1", StateRunning, 20*time.Second)
	ctx := context.Background()
	if _, err := h.m.StopCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.StartCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	h.waitState("cam1", StateRunning, 20*time.Second)
	h.settle()
	// A restart of camd resumes the camera: started by recovery.
	h.restart()
	h.waitState("cam1", StateRunning, 20*time.Second)
	if err := h.m.Remove(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	h.settle()
	evs := h.history(0)
	want := []events.Kind{events.CameraAdded, events.CameraStarted, events.CameraStopped, events.CameraStarted, events.CameraStarted, events.CameraRemoved}
	got := kindsOf(evs)
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	bys := []string{"", "operator", "operator", "operator", "recovery", ""}
	for i := range want {
		if got[i] != want[i] || evs[i].Camera != "cam1" || evs[i].Details["by"] != bys[i] {
			t.Fatalf("event %d: %+v, want %s by %q (all: %v)", i, evs[i], want[i], bys[i], got)
		}
	}
}

// runningEventCam starts fake camera cam1 with the event history wired,
// waits until it is RUNNING and the queue has drained, and returns the
// newest event's id.
func runningEventCam(t *testing.T, set Settings) (*harness, *fakeCams, uint64) {
	t.Helper()
	h, fc := fakeHarness(t, set, withEvents)
	h.add("cam1", fakeURL(1), true)
	h.waitState("cam1", StateRunning, time.Second)
	return h, fc, h.settle()
}

func TestShortDropEmitsNoEventAndWritesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := eventSettings()
		h, fc, last := runningEventCam(t, set)
		before := h.st.WriteCount()

		fc.set(fakeURL(1), fakeDown, time.Second)
		fc.drop(fakeURL(1))
		if !testutil.Poll(10*time.Second, func() bool { return h.trans.seen("cam1", StateRunning, StateReconnecting, StateRunning) }) {
			t.Fatalf("transitions %v, want RUNNING → RECONNECTING → RUNNING", h.trans.of("cam1"))
		}
		time.Sleep(set.FlapDebounce + time.Second)
		if evs := h.history(last); len(evs) != 0 {
			t.Errorf("a drop shorter than the debounce emitted %v", kindsOf(evs))
		}
		if d := h.st.WriteCount() - before; d != 0 {
			t.Errorf("store writes during a short drop: %d, want 0", d)
		}
		if v := h.get("cam1"); v.Reconnects == 0 {
			t.Error("the drop was not counted in reconnects")
		}
	})
}

func TestOutageEmitsOneDownThenOneUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := eventSettings()
		h, fc, last := runningEventCam(t, set)

		outage := 2 * set.FlapDebounce
		began := time.Now()
		fc.set(fakeURL(1), fakeDown, outage)
		fc.drop(fakeURL(1))
		h.waitState("cam1", StateCrashed, outage)
		h.waitState("cam1", StateRunning, outage+20*time.Second)
		time.Sleep(time.Second)
		h.settle()
		evs := h.history(last)
		if got := kindsOf(evs); len(got) != 2 || got[0] != events.CameraDown || got[1] != events.CameraUp {
			t.Fatalf("events %v, want exactly [down up]", got)
		}
		down, up := evs[0], evs[1]
		// The clock is exact: down comes when the debounce ends, and up
		// with the first frame after the outage (within the last backoff,
		// BackoffMax, and a frame interval).
		if at := down.Time.Sub(began); at != set.FlapDebounce {
			t.Errorf("down %v after the outage began, want the debounce %v", at, set.FlapDebounce)
		}
		if since, err := time.Parse(time.RFC3339Nano, down.Details["since"]); err != nil || !since.Equal(began) {
			t.Errorf("down's since %q, the outage began at %v", down.Details["since"], began.UTC())
		}
		if down.Details["error"] == "" || strings.Contains(down.Details["error"], "secret") {
			t.Errorf("down's error %q", down.Details["error"])
		}
		d, err := time.ParseDuration(up.Details["down_for"])
		if err != nil {
			t.Fatalf("up's down_for %q: %v", up.Details["down_for"], err)
		}
		if d < outage || d > outage+set.BackoffMax+fc.every {
			t.Errorf("up says down for %v, the outage lasted %v", d, outage)
		}
		t.Logf("down %v after the outage began; up says down_for %v (outage %v)", down.Time.Sub(began), d, outage)
	})
}
