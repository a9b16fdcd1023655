package device

import (
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// The view Add returns for a camera added to start is STARTING or RUNNING,
// never the STOPPED every supervisor begins in; one added stopped is STOPPED.
func TestAddAnswersStartedState(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 1})
	h := newHarness(t, testutil.FastSettings[Settings]())
	for i := range 20 {
		name := "cam" + string(rune('a'+i))
		v := h.add(name, s.URL(1), true)
		if v.State != StateStarting && v.State != StateRunning {
			t.Fatalf("add %s: state %s, want STARTING or RUNNING", name, v.State)
		}
	}
	if v := h.add("off", s.URL(1), false); v.State != StateStopped {
		t.Fatalf("add stopped: state %s", v.State)
	}
}

// A stopped camera reports no frame rate or bitrate, even though the
// meter's window still holds the seconds before the stop.
func TestStoppedCameraHasNoRate(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 1})
	h := newHarness(t, testutil.FastSettings[Settings]())
	h.add("cam", s.URL(1), true)
	h.waitState("cam", StateRunning, 30*time.Second)
	var v View
	deadline := time.Now().Add(30 * time.Second)
	for v = h.get("cam"); v.FPS == 0 || v.BitrateBPS == 0; v = h.get("cam") {
		if time.Now().After(deadline) {
			t.Fatalf("running camera shows fps %v bitrate %v", v.FPS, v.BitrateBPS)
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, err := h.m.StopCamera(t.Context(), "cam")
	if err != nil {
		t.Fatal(err)
	}
	if v.State != StateStopped || v.FPS != 0 || v.BitrateBPS != 0 {
		t.Fatalf("stopped: state %s fps %v bitrate %v, want STOPPED 0 0", v.State, v.FPS, v.BitrateBPS)
	}
	if v = h.get("cam"); v.FPS != 0 || v.BitrateBPS != 0 {
		t.Fatalf("stopped, then get: fps %v bitrate %v", v.FPS, v.BitrateBPS)
	}
}
