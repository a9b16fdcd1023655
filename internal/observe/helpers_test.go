package observe

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/sim"
)

// fastSettings are short thresholds so that tests run in seconds.
func fastSettings() device.Settings {
	return device.Settings{
		StallTimeout:      2 * time.Second,
		FlapDebounce:      4 * time.Second,
		CrashedAfter:      4 * time.Second,
		ForceRestartAfter: 8 * time.Second,
		BackoffMin:        100 * time.Millisecond,
		BackoffMax:        time.Second,
		ReadTimeout:       5 * time.Second,
	}
}

// env is a real Manager on a real store in a temporary dir.
type env struct {
	t    testing.TB
	st   *store.Store
	m    *device.Manager
	logs *testutil.LogBuffer
}

func newEnv(t testing.TB, mod ...func(*device.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.LogBuffer{}}
	st, err := store.Open(filepath.Join(t.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	cfg := device.Config{
		Store:        st,
		Settings:     fastSettings(),
		Logger:       testutil.Logger(e.logs),
		LoopInterval: 100 * time.Millisecond,
	}
	for _, f := range mod {
		f(&cfg)
	}
	m, err := device.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("manager close: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) add(name, url, transport string) {
	e.t.Helper()
	if _, err := e.m.Add(context.Background(), device.Spec{Name: name, URL: url, Transport: transport}, true); err != nil {
		e.t.Fatalf("add %s: %v", name, err)
	}
}

// waitAll waits until every camera is in state want.
func (e *env) waitAll(want device.State, d time.Duration) {
	e.t.Helper()
	var bad []string
	ok := testutil.Poll(d, func() bool {
		bad = bad[:0]
		for _, v := range e.m.List() {
			if v.State != want {
				bad = append(bad, v.Name+"="+v.State.String())
			}
		}
		return len(bad) == 0
	})
	if !ok {
		if len(bad) > 10 {
			bad = bad[:10]
		}
		e.t.Fatalf("not all cameras %s after %s: %v", want, d, bad)
	}
}

// waitState waits until camera name is in state want.
func (e *env) waitState(name string, want device.State, d time.Duration) {
	e.t.Helper()
	if !testutil.Poll(d, func() bool { return e.state(name) == want }) {
		e.t.Fatalf("camera %s: %s after %s, want %s", name, e.state(name), d, want)
	}
}

func (e *env) state(name string) device.State {
	e.t.Helper()
	v, err := e.m.Get(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.State
}

func newSim(t testing.TB, cams int) *sim.Server {
	t.Helper()
	s, err := sim.New(sim.Config{Cameras: cams})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// runWatch starts w.Run and stops it (waiting for it) at cleanup.
func runWatch(t testing.TB, w *FDWatch) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("FDWatch.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("FDWatch.Run did not return 10 s after cancel")
		}
	})
}
