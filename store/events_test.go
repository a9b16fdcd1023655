package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

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

// Removing a camera rewrites the data file (scrub). The history has a file
// of its own, so the rewrite costs the same and leaves the data file the
// same size whether the history is empty or full.
func TestScrubDoesNotCopyTheHistory(t *testing.T) {
	s, path := openTemp(t)
	for i := range 64 {
		if err := s.PutCamera(cam(fmt.Sprint(i), fmt.Sprintf("cam%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	addRemove := func() {
		n++
		c := cam(fmt.Sprintf("x%d", n), fmt.Sprintf("x%d", n))
		if err := s.PutCamera(c); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCamera(c.ID); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	empty := testing.AllocsPerRun(5, addRemove)
	emptySize := size()
	for i := range 500 {
		_, err := s.Append(events.Event{Camera: fmt.Sprintf("cam%d", i%64), Kind: events.CameraDown,
			Details: map[string]string{"error": "read tcp 127.0.0.1:40000->127.0.0.1:8554: i/o timeout", "since": time.Now().Format(time.RFC3339Nano)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	full := testing.AllocsPerRun(5, addRemove)
	t.Logf("removing a camera: %.0f allocations with no events kept, %.0f with 500; data file %d / %d bytes", empty, full, emptySize, size())
	if full > 1.5*empty {
		t.Errorf("removing a camera costs %.0f allocations with 500 events kept, %.0f with none: the rewrite copies the history", full, empty)
	}
	if size() > emptySize {
		t.Errorf("the data file grew from %d to %d bytes with the history", emptySize, size())
	}
	if all, _ := s.After(0, events.Filter{}, 0); len(all) != 500 {
		t.Errorf("%d events kept after the rewrites, want 500", len(all))
	}
}

// A data file in which an earlier camd kept the history: Open moves the
// events, the id sequence and the cursors to the history's own file.
func TestOldHistoryInDataFileIsMoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "camd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCamera(cam("1", "door")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Remove(EventsPath(path)); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketEvents)
		if err != nil {
			return err
		}
		for id := uint64(4); id <= 5; id++ {
			v, _ := json.Marshal(events.Event{ID: id, Time: time.Now().UTC(), Camera: "door", Kind: events.CameraDown})
			if err := b.Put(eventKey(id), v); err != nil {
				return err
			}
		}
		if err := b.SetSequence(5); err != nil {
			return err
		}
		c, err := tx.CreateBucket(bucketCursors)
		if err != nil {
			return err
		}
		return c.Put([]byte("webhook:a"), eventKey(4))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, _ := s.After(0, events.Filter{}, 0)
	cur, _ := s.Cursor("webhook:a")
	e, err := s.Append(events.Event{Camera: "door", Kind: events.CameraUp})
	s.Close()
	if err != nil || len(all) != 2 || all[0].ID != 4 || cur != 4 || e.ID != 6 {
		t.Fatalf("after the move: events %+v, cursor %d, next id %d (%v); want ids 4, 5, cursor 4, next 6", all, cur, e.ID, err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEvents) != nil || tx.Bucket(bucketCursors) != nil {
			t.Error("the data file still has the old history's buckets")
		}
		return nil
	})
}

// The history's file gets the data file's checks: no link is followed, and
// a file that is not a camd history is refused and left as it was.
func TestEventsFileChecked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "camd.db")
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, EventsPath(path)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("history file a link: Open = %v, want ErrNotRegular", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was created (%v)", err)
	}
	if err := os.Remove(EventsPath(path)); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("not a database "), 1000)
	if err := os.WriteFile(EventsPath(path), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("history file of junk: Open = %v, want ErrDamaged", err)
	}
	if b, _ := os.ReadFile(EventsPath(path)); !bytes.Equal(b, junk) {
		t.Fatal("Open changed the refused history file")
	}
}
