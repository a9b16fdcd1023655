package device

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// A full disk that refuses the status write: the cameras' down events and
// store_write_failing reach the history (small events may still fit in the
// file's free pages; when they do not, events.Queue holds them until there
// is room), and store_recovered follows once the status write succeeds,
// all in order.
func TestDiskFullEventsArriveAfterRecovery(t *testing.T) {
	t.Parallel()
	dir := testutil.MountTmpfs(t, "256k")
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	set := hostileSettings()
	h := openHarness(t, dir, true, set)
	fleet := addFleet(h, sm, 1)
	last := h.settle()

	filler := testutil.FillDisk(t, dir)
	crashFleet(h, sm, 1, fleet)
	if !testutil.Poll(15*time.Second, func() bool { return strings.Contains(h.logs.String(), "cannot persist camera statuses") }) {
		t.Skip("the fill did not bite: the status write fitted in free pages")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if !testutil.Poll(30*time.Second, func() bool {
		evs := h.history(last)
		return len(evs) > 0 && evs[len(evs)-1].Kind == events.StoreRecovered
	}) {
		t.Fatalf("after space came back: history %v, want it to end with store_recovered", kindsOf(h.history(last)))
	}
	evs := h.history(last)
	downs := map[string]bool{}
	failing := -1
	for i, e := range evs {
		switch e.Kind {
		case events.CameraDown:
			downs[e.Camera] = true
		case events.StoreWriteFailing:
			failing = i
		}
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Errorf("event %d (%s) is older than the one before it: order lost", e.ID, e.Kind)
		}
	}
	if len(downs) != len(fleet) || failing < 0 || failing == len(evs)-1 {
		t.Fatalf("history after recovery: %v; want a down per fleet camera, store_write_failing, then store_recovered", kindsOf(evs))
	}
	t.Logf("history after recovery: %v", kindsOf(evs))
}
