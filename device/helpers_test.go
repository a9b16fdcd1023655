package device

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
)

// transitions records every state change, per camera.
type transitions struct {
	mu  sync.Mutex
	seq map[string][]State
}

func (tr *transitions) record(name string, _, to State) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.seq == nil {
		tr.seq = map[string][]State{}
	}
	tr.seq[name] = append(tr.seq[name], to)
}

func (tr *transitions) of(name string) []State {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]State(nil), tr.seq[name]...)
}

// seen reports whether want occurs in order (not necessarily adjacent).
func (tr *transitions) seen(name string, want ...State) bool {
	i := 0
	for _, st := range tr.of(name) {
		if i < len(want) && st == want[i] {
			i++
		}
	}
	return i == len(want)
}

type harness struct {
	t     testing.TB
	dir   string
	st    *store.Store
	m     *Manager
	logs  *testutil.LogBuffer
	trans *transitions
	cfg   Config
	// withEvents makes open put a Queue in front of the store as the
	// Manager's OnEvent, as the daemon does.
	withEvents bool
	evq        *events.Queue
}

// newHarness opens a store in a temporary dir and starts a Manager on it;
// mod changes the Config before the Manager starts.
func newHarness(t testing.TB, set Settings, mod ...func(*Config)) *harness {
	t.Helper()
	return openHarness(t, t.TempDir(), false, set, mod...)
}

// newEventHarness is newHarness with the daemon's events.Queue as OnEvent.
func newEventHarness(t testing.TB, set Settings, mod ...func(*Config)) *harness {
	t.Helper()
	return openHarness(t, t.TempDir(), true, set, mod...)
}

// openHarness starts a Manager on a store in dir, with an events.Queue as
// OnEvent if withEvents, and stops both at cleanup.
func openHarness(t testing.TB, dir string, withEvents bool, set Settings, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, logs: &testutil.LogBuffer{}, trans: &transitions{}, withEvents: withEvents}
	h.cfg = Config{
		Settings:      set,
		Logger:        testutil.Logger(h.logs),
		OnStateChange: h.trans.record,
		LoopInterval:  100 * time.Millisecond,
	}
	for _, f := range mod {
		f(&h.cfg)
	}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	st, err := store.Open(filepath.Join(h.dir, "camd.db"), store.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	cfg := h.cfg
	cfg.Store = st
	if h.withEvents {
		h.evq = events.NewQueue(st, cfg.Logger)
		cfg.OnEvent = h.evq.Emit
	}
	m, err := NewManager(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.m = m
}

// close stops the Manager and closes the store (a daemon shutdown).
func (h *harness) close() {
	if h.m != nil {
		if err := h.m.Close(); err != nil {
			h.t.Errorf("manager close: %v", err)
		}
		h.m = nil
	}
	if h.evq != nil {
		h.evq.Close(5 * time.Second)
		h.evq = nil
	}
	if h.st != nil {
		if err := h.st.Close(); err != nil {
			h.t.Errorf("store close: %v", err)
		}
		h.st = nil
	}
}

func (h *harness) restart() {
	h.t.Helper()
	h.close()
	h.open()
}

func (h *harness) add(name, url string, start bool) View {
	h.t.Helper()
	v, err := h.m.Add(context.Background(), Spec{Name: name, URL: url}, start)
	if err != nil {
		h.t.Fatalf("add %s: %v", name, err)
	}
	return v
}

func (h *harness) get(name string) View {
	h.t.Helper()
	v, err := h.m.Get(name)
	if err != nil {
		h.t.Fatalf("get %s: %v", name, err)
	}
	return v
}

// waitState polls until the camera is in state want, and that change has
// been recorded in h.trans (OnStateChange is called just after the state is
// visible), or fails after d.
func (h *harness) waitState(name string, want State, d time.Duration) View {
	h.t.Helper()
	var v View
	ok := testutil.Poll(d, func() bool {
		v = h.get(name)
		tr := h.trans.of(name)
		return v.State == want && (want == StateStopped && len(tr) == 0 || len(tr) > 0 && tr[len(tr)-1] == want)
	})
	if !ok {
		h.t.Fatalf("camera %s: state %s after %s, want %s (transitions %v, last error %q)", name, v.State, d, want, h.trans.of(name), v.LastError)
	}
	return v
}

func (h *harness) waitAll(want State, d time.Duration) {
	h.t.Helper()
	testutil.WaitEvery(h.t, d, "every camera "+want.String(), h.m.List,
		func(v View) bool { return v.State == want },
		func(v View) string { return fmt.Sprintf("%s=%s", v.Name, v.State) })
}

func (h *harness) record(name string) store.Camera {
	h.t.Helper()
	v := h.get(name)
	rec, err := h.st.Camera(v.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// goroutinesSettle waits until the goroutine count is at most want.
func goroutinesSettle(want int, d time.Duration) (int, bool) {
	n := 0
	ok := testutil.Poll(d, func() bool { n = runtime.NumGoroutine(); return n <= want })
	return n, ok
}
