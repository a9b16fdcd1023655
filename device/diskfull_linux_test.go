package device

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/sim"
)

// A full disk under the data dir: the failed status write is logged, the
// cameras keep running, status changes made meanwhile (a supervisor's
// CRASHED, an operator's stop) are written once there is room again, and
// nothing stored before is lost.
func TestDiskFullKeepsCamerasRunningAndPersistsLater(t *testing.T) {
	t.Parallel()
	dir := testutil.MountTmpfs(t, "256k")
	sm := simtest.Start(t, sim.Config{Cameras: 2})
	set := hostileSettings()
	h := openHarness(t, dir, false, set)
	ctx := context.Background()

	h.add("healthy", sm.URL(1), true)
	fleet := addFleet(h, sm, 2)
	before, err := h.st.Cameras()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range before {
		if c.Status != store.StatusRunning {
			t.Fatalf("before the disk fills: %s persisted %s", c.Name, c.Status)
		}
	}

	filler := testutil.FillDisk(t, dir)
	logAt := len(h.logs.String())
	healthyFrames := h.get("healthy").Frames

	crashFleet(h, sm, 2, fleet)
	if !testutil.Poll(10*time.Second, func() bool { return strings.Contains(h.logs.String()[logAt:], "cannot persist camera statuses") }) {
		t.Fatalf("no failed write logged on a full disk; the fill did not bite (store says %v)", statuses(t, h.st))
	}
	logs := h.logs.String()[logAt:]
	if !strings.Contains(logs, "no space left on device") {
		t.Errorf("the logged failure does not say why:\n%s", logs)
	}
	if strings.Contains(logs, fleetPad) {
		t.Errorf("the log holds a camera's password")
	}
	t.Logf("logged: %s", firstLine(logs, "cannot persist"))

	// An operator's stop on a full disk: the camera stops, but StopCamera
	// cannot say the status is on disk, so it returns the view with an
	// error once its context ends (Manager.command).
	stopCtx, cancel := context.WithTimeout(ctx, time.Second)
	v, err := h.m.StopCamera(stopCtx, "fleet1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not yet persisted") {
		t.Errorf("StopCamera on a full disk: %v, want a \"not yet persisted\" error wrapping the deadline", err)
	} else {
		t.Logf("StopCamera on a full disk returns: %v", err)
	}
	if v.Name != "fleet1" || v.State != StateStopped || v.Persisted != string(store.StatusStopped) {
		t.Errorf("StopCamera on a full disk returned %s/%s/%s, want fleet1 STOPPED, persisted status stopped (pending)", v.Name, v.State, v.Persisted)
	}
	// The stop joined the failing batch: it is not on disk yet. (A first
	// batch of one crash may have fitted in the pages bbolt had free, so
	// the crashes are not checked one by one.)
	if st := statuses(t, h.st)["fleet1"]; st == store.StatusStopped {
		t.Errorf("fleet1 persisted as stopped on a full disk")
	}
	// The retries stay quiet.
	if n := strings.Count(h.logs.String()[logAt:], "cannot persist camera statuses"); n != 1 {
		t.Errorf("the failing write was logged %d times, want once", n)
	}
	// The healthy camera ran on through all of it.
	if hv := h.get("healthy"); hv.State != StateRunning || hv.Frames <= healthyFrames || hv.Reconnects != 0 {
		t.Errorf("healthy camera on a full disk: %s, frames %d → %d, %d reconnects", hv.State, healthyFrames, hv.Frames, hv.Reconnects)
	}
	if tr := h.trans.of("healthy"); len(tr) != 2 {
		t.Errorf("healthy camera's transitions %v, want [STARTING RUNNING]", tr)
	}

	// Room again: the persister's retry (every 2 s) writes what is pending.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	want := map[string]store.Status{"healthy": store.StatusRunning, "fleet1": store.StatusStopped}
	for _, name := range fleet[1:] {
		want[name] = store.StatusCrashed
	}
	if !testutil.Poll(15*time.Second, func() bool { return equalStatuses(statuses(t, h.st), want) }) {
		t.Fatalf("after space came back: persisted %v, want %v", statuses(t, h.st), want)
	}
	t.Logf("pending statuses written %s after space came back", time.Since(freed).Round(time.Millisecond))
	if !strings.Contains(h.logs.String()[logAt:], "persisting camera statuses again") {
		t.Errorf("recovery not logged")
	}
	for _, c := range mustCameras(t, h.st) {
		if c.Status == store.StatusCrashed && c.LastError == "" {
			t.Errorf("%s persisted crashed without its last error", c.Name)
		}
	}

	// Nothing stored before is lost: reopen the store (and the Manager).
	h.restart()
	after := mustCameras(t, h.st)
	if len(after) != len(before) {
		t.Fatalf("%d cameras after reopening, %d before", len(after), len(before))
	}
	for i, b := range before {
		a := after[i]
		if a.ID != b.ID || a.Name != b.Name || a.URL != b.URL || a.Transport != b.Transport || !a.CreatedAt.Equal(b.CreatedAt) {
			t.Errorf("camera %s changed: %+v → %+v", b.Name, b, a)
		}
		if a.Status != want[a.Name] {
			t.Errorf("camera %s reopened with status %s, want %s", a.Name, a.Status, want[a.Name])
		}
	}
	h.waitState("healthy", StateRunning, 30*time.Second)
	if got := h.get("fleet1").State; got != StateStopped {
		t.Errorf("fleet1, stopped on the full disk, is %s after a restart", got)
	}
}

// fleetPad pads the URLs of addFleet's cameras to about 2 KB: a long
// password, never sent (the simulator asks for none).
var fleetPad = strings.Repeat("p", 1900)

// addFleet adds six cameras on simulator camera cam, to fail together, and
// waits until all of h's cameras are RUNNING. With fleetPad each record
// fills a page of its own: a status write touching them all needs more
// pages than bbolt has free in the file, and must grow it, which a full
// disk refuses. (A write that only reuses pages the file already holds
// succeeds on a full tmpfs.)
func addFleet(h *harness, sm *sim.Server, cam int) []string {
	h.t.Helper()
	var fleet []string
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("fleet%d", i)
		fleet = append(fleet, name)
		h.add(name, strings.Replace(sm.URL(cam), "rtsp://", "rtsp://u:"+fleetPad+"@", 1), true)
	}
	h.waitAll(StateRunning, 30*time.Second)
	return fleet
}

// crashFleet takes simulator camera cam away for good and waits until the
// fleet on it is CRASHED, a status change to persist.
func crashFleet(h *harness, sm *sim.Server, cam int, fleet []string) {
	h.t.Helper()
	for _, f := range []sim.Fault{sim.FaultRefuse, sim.FaultDrop} {
		if err := sm.SetFault(cam, f, 0); err != nil {
			h.t.Fatal(err)
		}
	}
	for _, name := range fleet {
		h.waitState(name, StateCrashed, h.cfg.Settings.CrashedAfter+30*time.Second)
	}
}

func mustCameras(t *testing.T, st *store.Store) []store.Camera {
	t.Helper()
	cams, err := st.Cameras()
	if err != nil {
		t.Fatal(err)
	}
	return cams
}

func statuses(t *testing.T, st *store.Store) map[string]store.Status {
	t.Helper()
	m := map[string]store.Status{}
	for _, c := range mustCameras(t, st) {
		m[c.Name] = c.Status
	}
	return m
}

func equalStatuses(a, b map[string]store.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
