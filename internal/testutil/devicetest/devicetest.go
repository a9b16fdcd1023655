// Package devicetest runs a device.Manager on a store in a test's
// temporary directory, for the tests of the packages built on device (api,
// observe). device's own tests cannot import it: it imports device. It is
// imported by _test.go files only.
package devicetest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
)

// Options configures Start.
type Options struct {
	// Logs receives the Manager's log at debug level; nil discards it.
	Logs *testutil.LogBuffer
	// Events puts an events.Queue in front of the store as the Manager's
	// OnEvent, as the daemon does.
	Events bool
	// Config, if set, changes the Config before the Manager starts: its
	// Store is set, and Settings are testutil.FastSettings.
	Config func(*device.Config)
}

// Env is a started Manager and what it runs on.
type Env struct {
	Store   *store.Store
	Manager *device.Manager
	Queue   *events.Queue // nil without Options.Events
}

// Start opens a store in a temporary directory and starts a Manager on it.
// At cleanup it stops the Manager, drains the queue and closes the store,
// in that order.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Logs == nil {
		o.Logs = &testutil.LogBuffer{}
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Store: st}
	cfg := device.Config{
		Store:        st,
		Settings:     testutil.FastSettings[device.Settings](),
		Logger:       testutil.Logger(o.Logs),
		LoopInterval: 100 * time.Millisecond,
	}
	if o.Events {
		e.Queue = events.NewQueue(st, cfg.Logger)
		cfg.OnEvent = e.Queue.Emit
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	m, err := device.NewManager(cfg)
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	e.Manager = m
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("manager close: %v", err)
		}
		if e.Queue != nil {
			e.Queue.Close(5 * time.Second)
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

// WaitState waits until camera name is in state want, or fails the test
// after d.
func WaitState(t testing.TB, m *device.Manager, name string, want device.State, d time.Duration) device.View {
	t.Helper()
	var v device.View
	var err error
	if !testutil.Poll(d, func() bool { v, err = m.Get(name); return err == nil && v.State == want }) {
		t.Fatalf("camera %s: %s after %s, want %s (get: %v, last error %q)", name, v.State, d, want, err, v.LastError)
	}
	return v
}

// WaitAll waits until every camera is in state want, or fails the test
// after d.
func WaitAll(t testing.TB, m *device.Manager, want device.State, d time.Duration) {
	t.Helper()
	testutil.WaitEvery(t, d, "every camera "+want.String(), m.List,
		func(v device.View) bool { return v.State == want },
		func(v device.View) string { return fmt.Sprintf("%s=%s", v.Name, v.State) })
}
