package daemon

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream/sim"
)

func testConfig(dir string) Config {
	return Config{
		DataDir: dir,
		API:     APIConfig{Listen: "127.0.0.1:0"},
		Relay:   RelayConfig{Listen: "127.0.0.1:0"},
		Super:   SupervisionConfig{BackoffMin: Duration(100 * time.Millisecond), BackoffMax: Duration(time.Second)},
		FD:      FDConfig{Interval: Duration(200 * time.Millisecond)},
	}
}

// A daemon started and stopped in-process (under the race detector) runs
// its camera, reloads settings, stops cleanly, and leaves no goroutine or
// descriptor behind.
func TestDaemonLifecycle(t *testing.T) {
	s, err := sim.New(sim.Config{Cameras: 1, NoUDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	baseG := runtime.NumGoroutine()
	baseFD, _ := procfd.Count()

	for round := 0; round < 3; round++ {
		logs := &testutil.LogBuffer{}
		exited := make(chan int, 1)
		d, err := New(context.Background(), Options{Config: testConfig(dir), Stderr: logs, Version: "test",
			Exit: func(code int) { exited <- code }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		if round == 0 {
			if _, err := d.Manager().Add(ctx, device.Spec{Name: "cam1", URL: s.URL(1)}, true); err != nil {
				t.Fatal(err)
			}
		}
		// Round 0 adds the camera; later rounds get it back from the store.
		testutil.WaitFor(t, 20*time.Second, "cam1 RUNNING", func() bool {
			v, err := d.Manager().Get("cam1")
			return err == nil && v.State == device.StateRunning
		})
		next := testConfig(dir)
		next.Super.StallTimeout = Duration(42 * time.Second)
		next.Log.Level = "debug"
		next.API.Listen = "127.0.0.1:1" // needs a restart: logged, not applied
		if err := d.Reload(next); err != nil {
			t.Fatal(err)
		}
		if got := d.Manager().Settings().StallTimeout; got != 42*time.Second {
			t.Fatalf("stall timeout after reload %v", got)
		}
		if !strings.Contains(logs.String(), `take effect at the next restart" settings=api`) {
			t.Fatalf("reload did not say what needs a restart:\n%s", logs.String())
		}
		if err := d.Reload(Config{Log: LogConfig{Level: "loud"}}); err == nil {
			t.Fatal("reload accepted a bad level")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return")
		}
		select {
		case code := <-exited:
			t.Fatalf("the backstop fired (%d) on a clean stop", code)
		default:
		}
		if d.Step() != "done" {
			t.Fatalf("step %q after Run", d.Step())
		}
	}
	testutil.WaitFor(t, 10*time.Second, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseG+2 })
	fd, _ := procfd.Count()
	if fd.Total > baseFD.Total+2 {
		t.Fatalf("descriptors %s, baseline %s", fd, baseFD)
	}
}

// The backstop calls Exit(1) at the deadline when a shutdown step hangs,
// and logs the step.
func TestDaemonBackstop(t *testing.T) {
	logs := &testutil.LogBuffer{}
	exited := make(chan int, 1)
	cfg := testConfig(t.TempDir())
	cfg.ShutdownDeadline = Duration(time.Second) // the minimum
	d, err := New(context.Background(), Options{Config: cfg, Stderr: logs,
		Exit: func(code int) { exited <- code }, onStep: hangAt("relay")})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.Run(context.Background()) }() // hangs for ever at "relay", by design
	d.Stop(nil)
	select {
	case code := <-exited:
		if code != 1 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backstop did not fire")
	}
	if !strings.Contains(logs.String(), "unfinished=relay") {
		t.Fatalf("log does not name the hung step:\n%s", logs.String())
	}
}

// hangAt returns an Options.onStep that blocks for ever at step.
func hangAt(step string) func(string) {
	return func(s string) {
		if s == step {
			select {}
		}
	}
}

// Stop with a cause makes Run return it (the FD ceiling path).
func TestDaemonStopCause(t *testing.T) {
	d, err := New(context.Background(), Options{Config: testConfig(t.TempDir()), Stderr: &testutil.LogBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	d.Stop(ErrFDCeiling)
	d.Stop(nil) // only the first counts
	if err := <-done; err != ErrFDCeiling {
		t.Fatalf("Run returned %v", err)
	}
	if s := d.summary(); s != "0 cameras" {
		t.Fatalf("summary %q", s)
	}
}
