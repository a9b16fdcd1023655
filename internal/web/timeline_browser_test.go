package web_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// The status page draws a camera's outage on its timeline, from the event
// history, and lists it among the recent events.
func TestBrowserTimelineShowsAnOutage(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 1})
	d := startDaemon(t, s, 1, false, "")
	b := newBrowser(t)
	cl := api.NewClient(d.base, "")
	defer cl.CloseIdleConnections()
	if !testutil.Poll(60*time.Second, func() bool { v, err := d.m.Get("cam1"); return err == nil && v.State.String() == "RUNNING" }) {
		t.Fatal("cam1 not RUNNING")
	}

	// An outage past the daemon's 4 s debounce.
	if err := s.SetFault(1, sim.FaultDrop, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var up events.Event
	if !testutil.Poll(90*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := cl.Events(ctx, api.EventQuery{Camera: "cam1", Kinds: []events.Kind{events.CameraUp}})
		if err != nil || len(p.Events) == 0 {
			return false
		}
		up = p.Events[0]
		return true
	}) {
		t.Fatal("no up event for cam1 after its outage")
	}
	t.Logf("cam1 up after %s", up.Details["down_for"])

	b.run(t, "load the page", chromedp.Navigate(d.base+"/"),
		waitJS(`document.getElementById("history").classList.contains("show")`, 60*time.Second),
		chromedp.Evaluate(`(() => { const s = document.getElementById("tl-range"); s.value = "10"; s.dispatchEvent(new Event("change")); })()`, nil),
		waitJS(`document.getElementById("tl-from").textContent === "−10 min"`, 30*time.Second))
	// cam1's bar: up, then down, then up again, in that order from left
	// to right.
	const order = `(() => {
	  const segs = [...document.querySelectorAll('.tl-row[data-camera="cam1"] .tl-seg')].map(s => s.dataset.state);
	  const i = segs.indexOf("down");
	  return i > 0 && segs[i-1] === "up" && segs.slice(i+1).includes("up");
	})()`
	b.run(t, "see cam1's outage on its timeline", waitJS(order, 60*time.Second))
	// Let the recovery grow to a few pixels, for the screenshot.
	b.run(t, "see cam1 up again", waitJS(`(() => {
	  const segs = [...document.querySelectorAll('.tl-row[data-camera="cam1"] .tl-seg')];
	  const last = segs[segs.length-1];
	  return last.dataset.state === "up" && last.getBoundingClientRect().width >= 10;
	})()`, 60*time.Second))
	var downWidth float64
	var recent []string
	b.run(t, "read the timeline",
		chromedp.Evaluate(`document.querySelector('.tl-row[data-camera="cam1"] .tl-down').getBoundingClientRect().width`, &downWidth),
		chromedp.Evaluate(`[...document.querySelectorAll("#recent-rows tr")].map(r => r.children[1].textContent + " " + r.dataset.kind)`, &recent))
	// A 10 s outage in a 10 min window of a bar about 1000 px wide.
	if downWidth < 5 {
		t.Errorf("cam1's down segment is %.1f px wide; want it visible", downWidth)
	}
	found := map[string]bool{}
	for _, r := range recent {
		found[r] = true
	}
	if !found["cam1 down"] || !found["cam1 up"] {
		t.Errorf("recent events %v lack cam1's down and up", recent)
	}
	// The camera that never connects is down on its own bar too.
	var deadDown bool
	b.run(t, "the dead camera", waitJS(`!!document.querySelector('.tl-row[data-camera="dead"] .tl-down')`, 30*time.Second),
		chromedp.Evaluate(`true`, &deadDown))

	var shot []byte
	b.run(t, "screenshot the history", chromedp.Screenshot("#history", &shot, chromedp.ByID))
	path := filepath.Join(artifactDir(t), "timeline.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	// CAMD_UPDATE_DOCS=1 refreshes the copy the README shows.
	if os.Getenv("CAMD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "timeline.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.check(t, d.base)
}
