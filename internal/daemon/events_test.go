package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
)

// The daemon records its own start and stop in the event history, and the
// stop is on disk once Run has returned; ids go on across restarts.
func TestDaemonEventsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		cfg := testConfig(dir)
		cfg.Events.MaxCount = 100
		d, err := New(context.Background(), Options{Config: cfg, Stderr: &testutil.LogBuffer{}, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		testutil.WaitFor(t, 10*time.Second, "daemon_started in the history", func() bool {
			evs, err := d.Events().After(0, events.Filter{Kinds: []events.Kind{events.DaemonStarted}}, 0)
			return err == nil && len(evs) == round+1
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(dir, StoreFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.After(0, events.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []events.Kind
	for i, e := range evs {
		got = append(got, e.Kind)
		if e.ID != uint64(i)+1 || e.Camera != "" {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	want := []events.Kind{events.DaemonStarted, events.DaemonStopping, events.DaemonStarted, events.DaemonStopping}
	if len(got) != len(want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("history %v, want %v", got, want)
		}
	}
	if evs[0].Details["version"] != "test" {
		t.Errorf("daemon_started details %v", evs[0].Details)
	}
}

func TestEventsMaxCountOutOfRange(t *testing.T) {
	for _, body := range []string{"events:\n  max_count: 5\n", "events:\n  max_count: 2000000\n", "events:\n  max_age: 10m\n"} {
		if _, err := ParseConfig([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
	c, err := ParseConfig([]byte("events:\n  max_count: 500\n  max_age: 48h\n"))
	if err != nil || c.Events.MaxCount != 500 || c.Events.MaxAge.D() != 48*time.Hour {
		t.Fatalf("%+v %v", c.Events, err)
	}
}
