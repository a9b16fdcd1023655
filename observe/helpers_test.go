package observe

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/sim"
)

// syncBuffer is a log sink that tests read while others write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines returns the log lines that contain every one of subs.
func (b *syncBuffer) lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func newLogger(b *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

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
	logs *syncBuffer
}

func newEnv(t testing.TB, mod ...func(*device.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}}
	st, err := store.Open(filepath.Join(t.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	cfg := device.Config{
		Store:        st,
		Settings:     fastSettings(),
		Logger:       newLogger(e.logs),
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
	ok := poll(d, func() bool {
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
	if !poll(d, func() bool { return e.state(name) == want }) {
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

// poll calls cond every 20 ms until it is true or d has passed.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
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
