package observe

import (
	"context"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/devicetest"
	"github.com/camd/camd/store"
)

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
	d := devicetest.Start(t, devicetest.Options{Logs: e.logs, Config: func(c *device.Config) {
		for _, f := range mod {
			f(c)
		}
	}})
	e.st, e.m = d.Store, d.Manager
	return e
}

func (e *env) add(name, url, transport string) {
	e.t.Helper()
	if _, err := e.m.Add(context.Background(), device.Spec{Name: name, URL: url, Transport: transport}, true); err != nil {
		e.t.Fatalf("add %s: %v", name, err)
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
