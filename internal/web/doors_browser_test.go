package web_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// A real browser on a page of another site cannot drive the loopback API:
// its form posts, no-cors fetches and beacons to stop a camera are refused
// (403) and the camera keeps running; and a page whose name resolves to
// 127.0.0.1 (DNS rebinding, simulated with Chromium's resolver rules) gets
// 421 on the API's port.
func TestBrowserOtherSiteCannotDriveTheAPI(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 1})
	d := startDaemon(t, s, 1, false, "")
	apiAddr := strings.TrimPrefix(d.base, "http://")
	_, apiPort, _ := net.SplitHostPort(apiAddr)
	stop := d.base + "/api/v1/cameras/cam1/stop"
	restart := d.base + "/api/v1/cameras/cam1/restart"

	// The other site: localhost is not the same site as 127.0.0.1.
	page := fmt.Sprintf(`<!doctype html><html><body>
<iframe name="f1"></iframe><iframe name="f2"></iframe><iframe name="f3"></iframe>
<form id="a" method="post" action=%[1]q target="f1" enctype="text/plain"><input name="x" value="y"></form>
<form id="b" method="post" action=%[1]q target="f2" enctype="application/x-www-form-urlencoded"><input name="x" value="y"></form>
<form id="c" method="post" action=%[2]q target="f3" enctype="multipart/form-data"><input name="x" value="y"></form>
<script>
(async () => {
  for (const f of ["a", "b", "c"]) document.getElementById(f).submit();
  const tries = [
    fetch(%[1]q, {method: "POST", mode: "no-cors"}),
    fetch(%[1]q, {method: "POST", mode: "no-cors", body: "x", headers: {"Content-Type": "text/plain"}}),
    fetch(%[2]q, {method: "POST", mode: "no-cors", body: new URLSearchParams({a: "b"})}),
    fetch(%[1]q, {method: "POST", mode: "no-cors", body: new FormData(document.getElementById("c"))}),
  ];
  navigator.sendBeacon(%[1]q, "x");
  await Promise.allSettled(tries);
  document.title = "sent";
})();
</script></body></html>`, stop, restart)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, pagePort, _ := net.SplitHostPort(ln.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.m.Get("cam1"); err != nil {
		t.Fatal(err)
	}
	running := func() bool { v, _ := d.m.Get("cam1"); return v.State.String() == "RUNNING" }
	for !running() {
		if ctx.Err() != nil {
			t.Fatal("cam1 never ran")
		}
		time.Sleep(100 * time.Millisecond)
	}

	b := newBrowser(t, chromedp.Flag("host-resolver-rules", "MAP evil.example 127.0.0.1"))
	var mu sync.Mutex
	statuses := map[string][]int64{}
	chromedp.ListenTarget(b.ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceived); ok {
			mu.Lock()
			statuses[e.Response.URL] = append(statuses[e.Response.URL], e.Response.Status)
			mu.Unlock()
		}
	})
	b.run(t, "load the other site's page", chromedp.Navigate("http://localhost:"+pagePort+"/"),
		waitJS(`document.title === "sent"`, 60*time.Second))
	// The form posts answer in their frames; give them time to.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(statuses[stop]) + len(statuses[restart])
		mu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	got := map[string][]int64{stop: statuses[stop], restart: statuses[restart]}
	mu.Unlock()
	if len(got[stop]) < 4 || len(got[restart]) < 1 {
		t.Errorf("the page's posts were not all seen: %v", got)
	}
	for u, codes := range got {
		for _, c := range codes {
			if c != http.StatusForbidden {
				t.Errorf("%s from another site: %d, want 403", u, c)
			}
		}
	}
	time.Sleep(time.Second) // a beacon is sent in the background
	v, err := d.m.Get("cam1")
	if err != nil {
		t.Fatal(err)
	}
	if v.State.String() != "RUNNING" || v.Restarts != 0 {
		t.Errorf("cam1 after the other site's posts: %s, %d restarts", v.State, v.Restarts)
	}

	// DNS rebinding: the API's port under another name.
	var body string
	b.run(t, "rebound name", chromedp.Navigate("http://evil.example:"+apiPort+"/"),
		chromedp.Text("body", &body, chromedp.ByQuery))
	mu.Lock()
	codes := statuses["http://evil.example:"+apiPort+"/"]
	mu.Unlock()
	if len(codes) == 0 || codes[len(codes)-1] != http.StatusMisdirectedRequest || !strings.Contains(body, "DNS rebinding") {
		t.Errorf("the status page under a rebound name: %v %q", codes, body)
	}
	v, _ = d.m.Get("cam1")
	if v.State.String() != "RUNNING" {
		t.Errorf("cam1 is %s", v.State)
	}
}
