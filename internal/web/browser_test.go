package web_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/daemon"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// chromium finds the system Chromium. In CI (CI=true) it must be there.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CAMD_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	testutil.SkipMissing(t, "chromium", "apt-get install chromium, or set CAMD_CHROMIUM")
	return ""
}

// artifactDir is where screenshots go: $CAMD_ARTIFACTS, else a test dir.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CAMD_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// camd is a real daemon (package daemon, what camd run runs) with the
// status page at "/", in this process.
type camd struct {
	base string
	m    *device.Manager
	logs *testutil.LogBuffer
}

func startDaemon(t *testing.T, s *sim.Server, cams int, requireToken bool, token string) *camd {
	t.Helper()
	dir := t.TempDir()
	if token != "" {
		if err := os.WriteFile(api.TokenPath(dir), []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &camd{logs: &testutil.LogBuffer{}}
	sec := func(d time.Duration) daemon.Duration { return daemon.Duration(d) }
	d, err := daemon.New(context.Background(), daemon.Options{
		Config: daemon.Config{
			DataDir: dir,
			Log:     daemon.LogConfig{Level: "info"},
			API:     daemon.APIConfig{Listen: "127.0.0.1:0", RequireToken: &requireToken},
			Relay:   daemon.RelayConfig{Listen: "127.0.0.1:0"},
			Super: daemon.SupervisionConfig{
				StallTimeout: sec(5 * time.Second), FlapDebounce: sec(4 * time.Second), CrashedAfter: sec(4 * time.Second),
				ForceRestartAfter: sec(8 * time.Second), BackoffMin: sec(100 * time.Millisecond), BackoffMax: sec(time.Second),
			},
			FD: daemon.FDConfig{Interval: sec(time.Second)},
		},
		Version: "test-1.0",
		Stderr:  c.logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.m = d.Manager()
	c.base = "http://" + d.APIAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	})
	for i := 1; i <= cams; i++ {
		url := s.URL(i)
		if i == 2 {
			url = strings.Replace(url, "rtsp://", "rtsp://admin:hunter2@", 1) // shown redacted
		}
		if _, err := c.m.Add(context.Background(), device.Spec{Name: fmt.Sprintf("cam%d", i), URL: url}, true); err != nil {
			t.Fatal(err)
		}
	}
	// A camera that cannot connect, so that the page shows a failing one.
	if _, err := c.m.Add(context.Background(), device.Spec{Name: "dead", URL: "rtsp://127.0.0.1:1/user=admin&password=hunter3&x=1?token=hunter4"}, true); err != nil {
		t.Fatal(err)
	}
	return c
}

// browser starts headless Chromium with a fresh profile. It records every
// request the page makes and every script error.
type browser struct {
	ctx      context.Context
	mu       sync.Mutex
	requests []string
	errs     []string
}

func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	exe := chromium(t)
	// Not t.TempDir: Chromium's helper processes can still be writing to
	// the profile for a moment after the browser exits, and TempDir's
	// cleanup fails the test on the first "directory not empty".
	profile, err := os.MkdirTemp("", "camd-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// Under load (2 cores, the race detector, a simulator) Chromium can be
	// slow; bound the whole browser session generously.
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc() // waits for Chromium to exit
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for err = os.RemoveAll(profile); err != nil && time.Now().Before(deadline); err = os.RemoveAll(profile) {
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("remove the Chromium profile: %v", err)
		}
	})
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
		case *cdplog.EventEntryAdded:
			// CSP violations and failed loads are reported here.
			if e.Entry.Level == cdplog.LevelError {
				b.errs = append(b.errs, "log: "+e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			b.errs = append(b.errs, "exception: "+e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				b.errs = append(b.errs, "console.error: "+strings.Join(parts, " "))
			}
		}
	})
	if err := chromedp.Run(ctx, network.Enable(), cdplog.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// check fails on script errors and on requests to anywhere but base.
// Errors containing one of expected (say, the 400 of an invalid input the
// test submitted on purpose) are fine.
func (b *browser) check(t *testing.T, base string, expected ...string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for _, e := range b.errs {
		for _, x := range expected {
			if strings.Contains(e, x) {
				continue next
			}
		}
		t.Errorf("page error: %s", e)
	}
	for _, u := range b.requests {
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("page requested %s", u)
		}
	}
}

// waitJS polls a JavaScript predicate.
func waitJS(expr string, d time.Duration) chromedp.Action {
	return chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))
}

func stateOf(name string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-camera=%q] .state-badge') || {}).textContent`, name)
}

func TestBrowserStatusPage(t *testing.T) {
	t.Parallel()
	const cams = 4
	s := simtest.Start(t, sim.Config{Cameras: cams})
	d := startDaemon(t, s, cams, false, "")
	b := newBrowser(t)

	// Every camera's row appears with its state; the simulator's are RUNNING.
	b.run(t, "load the page", chromedp.Navigate(d.base+"/"))
	var allRunning string
	for i := 1; i <= cams; i++ {
		allRunning += fmt.Sprintf(` && %s === "RUNNING"`, stateOf(fmt.Sprintf("cam%d", i)))
	}
	b.run(t, "see every camera RUNNING", waitJS(`document.querySelectorAll("#rows tr").length === `+fmt.Sprint(cams+1)+allRunning, 90*time.Second))
	b.run(t, "see the dead camera failing", waitJS(`["RECONNECTING","CRASHED","STARTING"].includes(`+stateOf("dead")+`)`, 30*time.Second))

	var names []string
	var page string
	b.run(t, "read the rows",
		chromedp.Evaluate(`[...document.querySelectorAll("#rows tr")].map(r => r.dataset.camera)`, &names),
		chromedp.Text("body", &page, chromedp.ByQuery))
	if want := []string{"cam1", "cam2", "cam3", "cam4", "dead"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("rows %v, want %v", names, want)
	}
	for _, want := range []string{"test-1.0", "up for", "good", "bit/s", "open fds", "down", "640x360"} {
		if !strings.Contains(strings.ToLower(page), strings.ToLower(want)) {
			t.Errorf("page text lacks %q", want)
		}
	}
	for _, pw := range []string{"hunter2", "hunter3", "hunter4"} {
		if strings.Contains(page, pw) {
			t.Errorf("page shows a camera password (%s)", pw)
		}
	}
	if !strings.Contains(page, "password=xxxxx") {
		t.Error("page does not show the dead camera's URL, redacted")
	}
	// The inline CSS is applied (a CSP hash mismatch would leave the page bare).
	var styled bool
	b.run(t, "styles applied", chromedp.Evaluate(`getComputedStyle(document.querySelector("#rows .s-RUNNING")).backgroundColor !== "rgba(0, 0, 0, 0)"`, &styled))
	if !styled {
		t.Error("the page's CSS is not applied")
	}
	var fds string
	b.run(t, "FDs observed / expected", waitJS(`/^\d+ \/ \d+$/.test(document.getElementById("st-fds").textContent)`, 30*time.Second),
		chromedp.Text("#st-fds", &fds, chromedp.ByID))
	t.Logf("FDs shown: %s", fds)

	// Stop cam3 with its button.
	b.run(t, "click Stop on cam3",
		chromedp.Click(`tr[data-camera="cam3"] button[data-action="stop"]`, chromedp.ByQuery, chromedp.NodeEnabled),
		waitJS(stateOf("cam3")+` === "STOPPED"`, 30*time.Second))
	if v, err := d.m.Get("cam3"); err != nil || v.State != device.StateStopped {
		t.Errorf("the Manager says cam3 is %v (%v)", v.State, err)
	}
	var stoppedText string
	b.run(t, "stopped row", chromedp.Text(`tr[data-camera="cam3"]`, &stoppedText, chromedp.ByQuery))
	if !strings.Contains(stoppedText, "stopped for") {
		t.Errorf("cam3 row: %q", stoppedText)
	}

	var wide bool
	b.run(t, "no sideways scrolling on a laptop", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &wide))
	if wide {
		t.Error("the page is wider than a 1280-pixel window")
	}

	dir := artifactDir(t)
	var shot []byte
	b.run(t, "desktop screenshot", chromedp.FullScreenshot(&shot, 100))
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Start it again, add and remove a camera.
	b.run(t, "click Start on cam3",
		chromedp.Click(`tr[data-camera="cam3"] button[data-action="start"]`, chromedp.ByQuery, chromedp.NodeEnabled),
		waitJS(stateOf("cam3")+` === "RUNNING"`, 60*time.Second))
	b.run(t, "add a camera",
		chromedp.SendKeys(`#add-form input[name="name"]`, "porch", chromedp.ByQuery),
		chromedp.SendKeys(`#add-form input[name="url"]`, s.URL(1), chromedp.ByQuery),
		chromedp.Click(`#add-form button`, chromedp.ByQuery),
		waitJS(stateOf("porch")+` === "RUNNING"`, 60*time.Second))
	b.run(t, "add an invalid camera",
		chromedp.SendKeys(`#add-form input[name="name"]`, "bad name!", chromedp.ByQuery),
		chromedp.SendKeys(`#add-form input[name="url"]`, "http://example.com/", chromedp.ByQuery),
		chromedp.Click(`#add-form button`, chromedp.ByQuery),
		waitJS(`document.getElementById("msg").className === "err" && document.getElementById("msg").textContent.includes("Add failed")`, 30*time.Second))
	b.run(t, "remove the camera (two clicks)",
		chromedp.Click(`tr[data-camera="porch"] button[data-action="remove"]`, chromedp.ByQuery),
		waitJS(`document.querySelector('tr[data-camera="porch"] button[data-action="remove"]').textContent === "Remove?"`, 10*time.Second),
		chromedp.Click(`tr[data-camera="porch"] button[data-action="remove"]`, chromedp.ByQuery),
		waitJS(`!document.querySelector('tr[data-camera="porch"]')`, 30*time.Second))
	if _, err := d.m.Get("porch"); !errors.Is(err, device.ErrNotFound) {
		t.Errorf("porch still in the Manager: %v", err)
	}

	// A phone.
	b.run(t, "phone screenshot",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Sleep(300*time.Millisecond),
		chromedp.FullScreenshot(&shot, 100))
	phone := filepath.Join(dir, "status-page-phone.png")
	if err := os.WriteFile(phone, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("phone screenshot: %s", phone)
	var overflow bool
	b.run(t, "no sideways scrolling on a phone", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow))
	if overflow {
		t.Error("the page is wider than a phone's screen")
	}
	b.check(t, d.base, "status of 400 (Bad Request)") // the invalid camera
}

func TestBrowserAsksForTheToken(t *testing.T) {
	t.Parallel()
	s := simtest.Start(t, sim.Config{Cameras: 1})
	const token = "s3cret-token-for-the-page"
	d := startDaemon(t, s, 1, true, token)
	b := newBrowser(t)
	b.run(t, "load the page", chromedp.Navigate(d.base+"/"),
		chromedp.WaitVisible("#token-panel", chromedp.ByID))
	var rows int
	b.run(t, "no rows without a token", chromedp.Evaluate(`document.querySelectorAll("#rows tr").length`, &rows))
	if rows != 0 {
		t.Errorf("%d rows without a token", rows)
	}
	b.run(t, "a wrong token is refused",
		chromedp.SendKeys("#token-input", "wrong", chromedp.ByID),
		chromedp.Click("#token-form button", chromedp.ByQuery),
		chromedp.WaitVisible("#token-panel", chromedp.ByID),
		waitJS(`document.getElementById("token-why").textContent.includes("refused")`, 30*time.Second))
	var stored string
	b.run(t, "enter the token",
		chromedp.SendKeys("#token-input", token, chromedp.ByID),
		chromedp.Click("#token-form button", chromedp.ByQuery),
		waitJS(stateOf("cam1")+` === "RUNNING"`, 60*time.Second),
		chromedp.Evaluate(`localStorage.getItem("camd.token")`, &stored))
	if stored != token {
		t.Errorf("token kept as %q", stored)
	}
	// A reload does not ask again.
	b.run(t, "reload", chromedp.Reload(), waitJS(stateOf("cam1")+` === "RUNNING"`, 60*time.Second))
	var asked bool
	b.run(t, "not asked again", chromedp.Evaluate(`document.getElementById("token-panel").classList.contains("show")`, &asked))
	if asked {
		t.Error("asked for the token again after a reload")
	}
	b.run(t, "stop with the token",
		chromedp.Click(`tr[data-camera="cam1"] button[data-action="stop"]`, chromedp.ByQuery, chromedp.NodeEnabled),
		waitJS(stateOf("cam1")+` === "STOPPED"`, 30*time.Second))
	b.check(t, d.base, "status of 401 (Unauthorized)")
}
