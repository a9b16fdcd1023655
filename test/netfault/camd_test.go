package netfault

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
)

// waitTimeout bounds waits whose length the issue does not fix. It is
// generous: the tests share two cores with many other builds and tests.
const waitTimeout = 30 * time.Second

// camName is the one camera of every test.
const camName = "cam1"

// event is one change of the camera's live state.
type event struct {
	at       time.Time
	from, to device.State
}

func (e event) String() string { return fmt.Sprintf("%s->%s", e.from, e.to) }

// recorder keeps every state change with its time.
type recorder struct {
	mu  sync.Mutex
	evs []event
}

func (r *recorder) record(name string, from, to device.State) {
	if name != camName {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, event{at: now, from: from, to: to})
}

// since returns the changes at or after t.
func (r *recorder) since(t time.Time) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []event
	for _, e := range r.evs {
		if !e.at.Before(t) {
			evs = append(evs, e)
		}
	}
	return evs
}

// camd is the supervision core running in the test process.
type camd struct {
	t    *testing.T
	lab  *lab
	m    *device.Manager
	set  device.Settings
	rec  *recorder
	logs *testutil.LogBuffer
}

// startCamd starts a Manager with settings set and adds the lab's camera.
// Failure escalation (CRASHED, forced restarts) is pushed out of the way
// unless set says otherwise, so that the states seen are the fault's.
func startCamd(t *testing.T, l *lab, set device.Settings) *camd {
	t.Helper()
	if set.FlapDebounce == 0 {
		set.FlapDebounce = time.Minute
	}
	if set.CrashedAfter == 0 {
		set.CrashedAfter = time.Minute
	}
	if set.ForceRestartAfter == 0 {
		set.ForceRestartAfter = 2 * time.Minute
	}
	if set.BackoffMin == 0 {
		set.BackoffMin = 200 * time.Millisecond
	}
	if set.BackoffMax == 0 {
		set.BackoffMax = time.Second
	}
	c := &camd{t: t, lab: l, set: set, rec: &recorder{}, logs: &testutil.LogBuffer{}}
	st, err := store.Open(filepath.Join(t.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	m, err := device.NewManager(device.Config{
		Store:         st,
		Settings:      set,
		Logger:        slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnStateChange: c.rec.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("manager close: %v", err)
		}
		if t.Failed() {
			t.Logf("camd log:\n%s", c.logs.String())
		}
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.m = m
	start := time.Now()
	if _, err := m.Add(context.Background(), device.Spec{Name: camName, URL: l.url()}, true); err != nil {
		t.Fatal(err)
	}
	c.waitState(device.StateRunning, waitTimeout)
	t.Logf("camera RUNNING %s after Add", since(start))
	return c
}

func (c *camd) view() device.View {
	c.t.Helper()
	v, err := c.m.Get(camName)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// waitState polls until the camera is in state want.
func (c *camd) waitState(want device.State, d time.Duration) device.View {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := c.view()
		if v.State == want {
			return v
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("camera %s after %s, want %s (changes %v, last error %q)", v.State, d, want, c.rec.since(time.Time{}), v.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvent waits for the first state change at or after t0 that matches
// ok, and fails the test after d.
func (c *camd) waitEvent(t0 time.Time, d time.Duration, what string, ok func(event) bool) event {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, e := range c.rec.since(t0) {
			if ok(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			v := c.view()
			c.t.Fatalf("no %s within %s (state %s, changes since %v, last error %q)", what, d, v.State, c.rec.since(t0), v.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flowing waits until frames arrive: the count grows over a short while.
func (c *camd) flowing() {
	c.t.Helper()
	n := c.view().Frames
	deadline := time.Now().Add(waitTimeout)
	for c.view().Frames < n+5 {
		if time.Now().After(deadline) {
			c.t.Fatalf("camera RUNNING but no frames arrive (state %s)", c.view().State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leftRunning(e event) bool { return e.from == device.StateRunning }
func toState(s device.State) func(event) bool {
	return func(e event) bool { return e.to == s }
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

// states lists the states of changes, for messages.
func states(evs []event) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.to.String()
	}
	return strings.Join(s, " ")
}
