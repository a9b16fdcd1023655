package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
)

func appendN(t *testing.T, s *Store, n int, cam string, kind events.Kind, at time.Time) []events.Event {
	t.Helper()
	var out []events.Event
	for range n {
		e, err := s.Append(events.Event{Camera: cam, Kind: kind, Time: at})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestEventsKeepGrowingIDsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "camd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs := appendN(t, s, 3, "door", events.CameraDown, time.Time{})
	if evs[0].ID != 1 || evs[2].ID != 3 || evs[0].Time.IsZero() {
		t.Fatalf("appended %+v", evs)
	}
	if err := s.SetCursor("webhook:a", 2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopened with a count bound of 2: the next append drops the oldest
	// two, and ids still go on from 3.
	s, err = Open(path, Options{EventsMaxCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err := s.Cursor("webhook:a"); err != nil || c != 2 {
		t.Fatalf("cursor after restart = %d, %v; want 2", c, err)
	}
	if c, err := s.Cursor("nobody"); err != nil || c != 0 {
		t.Fatalf("unknown cursor = %d, %v; want 0", c, err)
	}
	e := appendN(t, s, 1, "door", events.CameraUp, time.Time{})[0]
	if e.ID != 4 {
		t.Fatalf("id after restart = %d, want 4", e.ID)
	}
	all, err := s.After(0, events.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != 3 || all[1].ID != 4 || all[1].Kind != events.CameraUp {
		t.Fatalf("history %+v, want ids 3 and 4", all)
	}
	if last, _ := s.LastEventID(); last != 4 {
		t.Fatalf("LastEventID = %d, want 4", last)
	}
}

func TestEventsBoundedByCountAndAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "camd.db")
	s, err := Open(path, Options{EventsMaxCount: 50, EventsMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-2 * time.Hour)
	appendN(t, s, 5, "a", events.CameraDown, old)
	// The age bound drops the five old ones at the next append.
	appendN(t, s, 1, "a", events.CameraUp, time.Time{})
	all, _ := s.After(0, events.Filter{}, 0)
	if len(all) != 1 || all[0].ID != 6 {
		t.Fatalf("after an append past the age bound: %+v", all)
	}
	appendN(t, s, 120, "b", events.CameraStalled, time.Time{})
	all, _ = s.After(0, events.Filter{}, 0)
	if len(all) != 50 || all[0].ID != 77 || all[49].ID != 126 {
		t.Fatalf("count bound: %d events, ids %d..%d; want 50, 77..126", len(all), all[0].ID, all[len(all)-1].ID)
	}
}

func TestEventsFilterAndPage(t *testing.T) {
	s, _ := openTemp(t)
	t0 := time.Now().Add(-time.Minute)
	appendN(t, s, 2, "a", events.CameraDown, t0)
	appendN(t, s, 2, "b", events.CameraUp, t0.Add(30*time.Second))
	appendN(t, s, 2, "", events.DaemonStarted, time.Time{})
	got, _ := s.After(0, events.Filter{Camera: "b"}, 0)
	if len(got) != 2 || got[0].ID != 3 {
		t.Fatalf("camera b: %+v", got)
	}
	got, _ = s.After(0, events.Filter{Kinds: []events.Kind{events.CameraDown, events.DaemonStarted}}, 3)
	if len(got) != 3 || got[0].ID != 1 || got[2].ID != 5 {
		t.Fatalf("kinds, limit 3: %+v", got)
	}
	got, _ = s.After(4, events.Filter{Since: t0.Add(10 * time.Second)}, 0)
	if len(got) != 2 || got[0].ID != 5 {
		t.Fatalf("after 4, since: %+v", got)
	}
}

func TestEventsWriteOnlyOnAppendAndWake(t *testing.T) {
	s, _ := openTemp(t)
	w0 := s.WriteCount()
	ch := s.Changed()
	if _, err := s.After(0, events.Filter{}, 0); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Cursor("x")
	if s.WriteCount() != w0 {
		t.Fatal("reading events wrote to the store")
	}
	select {
	case <-ch:
		t.Fatal("Changed closed before any append")
	default:
	}
	appendN(t, s, 1, "a", events.CameraDown, time.Time{})
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed by Append")
	}
	if s.WriteCount() != w0+1 || s.EventWriteCount() != 1 {
		t.Fatalf("writes %d (was %d), event writes %d; want one", s.WriteCount(), w0, s.EventWriteCount())
	}
	if err := s.SetCursor("x", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor("x", 1); err != nil {
		t.Fatal(err)
	}
	if s.WriteCount() != w0+2 {
		t.Fatalf("writes %d; a cursor set twice to the same id is one write", s.WriteCount()-w0)
	}
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := events.Wait(ctx, s, 0); err != nil {
		t.Fatal(err)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// DeleteCamera rewrites the file (scrub); the history and its id sequence
// survive the rewrite.
func TestEventsSurviveScrub(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.PutCamera(cam("1", "door")); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 2, "door", events.CameraAdded, time.Time{})
	if err := s.SetCursor("mqtt", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCamera("1"); err != nil {
		t.Fatal(err)
	}
	e := appendN(t, s, 1, "door", events.CameraRemoved, time.Time{})[0]
	if e.ID != 3 {
		t.Fatalf("id after the rewrite = %d, want 3", e.ID)
	}
	all, _ := s.After(0, events.Filter{}, 0)
	if c, _ := s.Cursor("mqtt"); len(all) != 3 || c != 2 {
		t.Fatalf("after the rewrite: %d events, cursor %d; want 3 and 2", len(all), c)
	}
}
