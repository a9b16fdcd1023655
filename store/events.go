package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/camd/camd/internal/events"
)

// Event history (events.Log), kept in a bbolt file of its own next to the
// data file (EventsPath): bucket "events" maps a big-endian uint64 id to the
// event's JSON; bucket "cursors" maps a consumer's name to the last id it
// delivered. Both are written only by Append and SetCursor, so an idle camd
// writes nothing. Ids come from the events bucket's sequence, which bbolt
// keeps in the file: they keep growing across restarts, even after the
// oldest events have been dropped.
//
// The history is not in the data file because the data file is rewritten
// whole whenever a camera is removed or its URL changes (scrub): a history
// there would be copied every time, at a cost that grows with the events
// kept, and would hold up camera and status writes while it is. It holds no
// secrets, so it needs no such rewrite, and its writes do not queue behind
// the data file's.
var (
	bucketEvents  = []byte("events")
	bucketCursors = []byte("cursors")
)

// Defaults of Options.EventsMaxCount and EventsMaxAge.
const (
	DefaultEventsMaxCount = 10000
	DefaultEventsMaxAge   = 30 * 24 * time.Hour
)

var _ events.Log = (*Store)(nil)

func eventKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// EventsPath is the event history's file for the data file at path:
// "camd-events.db" for "camd.db".
func EventsPath(path string) string { return strings.TrimSuffix(path, ".db") + "-events.db" }

// openEvents opens (or creates, 0600) the event history's file, with the
// checks Open makes of the data file: no link followed, a damaged or
// foreign file refused with ErrDamaged, every record read once.
func openEvents(path string, timeout time.Duration) (*bolt.DB, error) {
	fresh := false
	if fi, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		fresh = true
	} else if err != nil {
		return nil, err
	} else if err := checkExisting(fi); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	wrap := func(err error) error {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return fmt.Errorf("%s: %w", path, ErrLocked)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
			errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
			return fmt.Errorf("%s: %w: %w", path, ErrDamaged, err)
		case errors.Is(err, syscall.ELOOP):
			return fmt.Errorf("%s: %w: it is a symbolic link", path, ErrNotRegular)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if !fresh {
		if err := precheck(path, timeout); err != nil {
			return nil, wrap(err)
		}
	}
	var file *os.File
	db, err := boltOpen(path, bolt.Options{Timeout: timeout}, func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fresh {
			if err := checkExisting(fi); err != nil {
				return err
			}
		}
		file = f
		return nil
	}, fresh)
	if err != nil {
		if fresh && file != nil {
			_ = os.Remove(path)
		}
		return nil, wrap(err)
	}
	err = verifyDB(db, path)
	if err == nil {
		err = restrictMode(file)
	}
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range [][]byte{bucketEvents, bucketCursors} {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			// Anything else is not camd's history.
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				if !bytes.Equal(name, bucketEvents) && !bytes.Equal(name, bucketCursors) {
					return fmt.Errorf("%w: not an event history: it has other buckets", ErrDamaged)
				}
				return nil
			})
		})
	}
	if err != nil {
		_ = db.Close()
		if fresh {
			_ = os.Remove(path)
		}
		return nil, wrap(err)
	}
	return db, nil
}

// moveOldHistory moves an event history that an earlier camd kept in the
// data file into the history's own file, unless that already has one.
func (s *Store) moveOldHistory() error {
	var old bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		old = tx.Bucket(bucketEvents) != nil || tx.Bucket(bucketCursors) != nil
		return nil
	})
	if !old {
		return nil
	}
	err := s.db.View(func(src *bolt.Tx) error {
		return s.evDB.Update(func(dst *bolt.Tx) error {
			de, dc := dst.Bucket(bucketEvents), dst.Bucket(bucketCursors)
			if de.Sequence() > 0 {
				return nil
			}
			if b := src.Bucket(bucketEvents); b != nil {
				if err := b.ForEach(func(k, v []byte) error { return de.Put(bytes.Clone(k), bytes.Clone(v)) }); err != nil {
					return err
				}
				if err := de.SetSequence(b.Sequence()); err != nil {
					return err
				}
			}
			if b := src.Bucket(bucketCursors); b != nil {
				return b.ForEach(func(k, v []byte) error { return dc.Put(bytes.Clone(k), bytes.Clone(v)) })
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("move the event history to %s: %w", s.evPath, err)
	}
	// The next scrub leaves the old copy's pages out of the data file.
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketCursors} {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Append assigns e the next id, sets its Time if it is zero, stores it and
// drops the oldest events beyond the bounds (Options.EventsMaxCount and
// EventsMaxAge), all in one write transaction; then it wakes Changed.
func (s *Store) Append(e events.Event) (events.Event, error) {
	if e.Kind == "" {
		return events.Event{}, errors.New("append event: empty kind")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	s.evLock.RLock()
	defer s.evLock.RUnlock()
	if s.evDB == nil {
		return events.Event{}, fmt.Errorf("append event: %w", ErrClosed)
	}
	err := s.evDB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = id
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put(eventKey(id), v); err != nil {
			return err
		}
		return s.pruneEvents(b, id, time.Now())
	})
	if err != nil {
		return events.Event{}, fmt.Errorf("append event to %s: %w", s.evPath, err)
	}
	s.writes.Add(1)
	s.eventWrites.Add(1)
	s.evMu.Lock()
	if s.evCh != nil {
		close(s.evCh)
		s.evCh = nil
	}
	s.evMu.Unlock()
	return e, nil
}

// pruneEvents drops the oldest events while there are more than the
// count bound or the oldest is older than the age bound. Ids have no gaps
// except at the front (only the oldest are ever deleted), so the count is
// last - first + 1.
func (s *Store) pruneEvents(b *bolt.Bucket, last uint64, now time.Time) error {
	cut := now.Add(-s.evMaxAge)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		first := binary.BigEndian.Uint64(k)
		over := last-first+1 > uint64(s.evMaxCount)
		if !over {
			var e events.Event
			// An undecodable record is dropped as if it were too old.
			if json.Unmarshal(v, &e) == nil && !e.Time.Before(cut) {
				return nil
			}
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// After returns up to limit events (every one, for limit <= 0) with ID >
// after that match f, oldest first.
func (s *Store) After(after uint64, f events.Filter, limit int) ([]events.Event, error) {
	out := []events.Event{}
	s.evLock.RLock()
	defer s.evLock.RUnlock()
	if s.evDB == nil {
		return nil, fmt.Errorf("read events: %w", ErrClosed)
	}
	err := s.evDB.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(eventKey(after + 1)); k != nil; k, v = c.Next() {
			var e events.Event
			if err := json.Unmarshal(v, &e); err != nil {
				// A damaged record is skipped, not allowed to stop every
				// reader of the history.
				continue
			}
			if !match(e, f) {
				continue
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read events from %s: %w", s.evPath, err)
	}
	return out, nil
}

func match(e events.Event, f events.Filter) bool {
	if f.Camera != "" && e.Camera != f.Camera {
		return false
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, e.Kind) {
		return false
	}
	return f.Since.IsZero() || !e.Time.Before(f.Since)
}

// LastEventID returns the id of the newest event ever appended (0 for
// none), whether or not it has since been dropped.
func (s *Store) LastEventID() (uint64, error) {
	var id uint64
	s.evLock.RLock()
	defer s.evLock.RUnlock()
	if s.evDB == nil {
		return 0, fmt.Errorf("read events: %w", ErrClosed)
	}
	err := s.evDB.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketEvents); b != nil {
			id = b.Sequence()
		}
		return nil
	})
	return id, err
}

// Changed returns a channel that is closed at the next Append.
func (s *Store) Changed() <-chan struct{} {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if s.evCh == nil {
		s.evCh = make(chan struct{})
	}
	return s.evCh
}

// Cursor returns the last id the named consumer delivered; 0 if it has
// none.
func (s *Store) Cursor(name string) (uint64, error) {
	var id uint64
	s.evLock.RLock()
	defer s.evLock.RUnlock()
	if s.evDB == nil {
		return 0, fmt.Errorf("read cursor %q: %w", name, ErrClosed)
	}
	err := s.evDB.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(name)); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read cursor %q from %s: %w", name, s.evPath, err)
	}
	return id, nil
}

// SetCursor records the last id the named consumer delivered, in one
// write transaction (none if it is already recorded).
func (s *Store) SetCursor(name string, id uint64) error {
	if name == "" {
		return errors.New("set cursor: empty name")
	}
	s.evLock.RLock()
	defer s.evLock.RUnlock()
	if s.evDB == nil {
		return fmt.Errorf("set cursor %q: %w", name, ErrClosed)
	}
	err := s.evDB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCursors)
		v := eventKey(id)
		if cur := b.Get([]byte(name)); len(cur) == 8 && binary.BigEndian.Uint64(cur) == id {
			return errNoChange
		}
		return b.Put([]byte(name), v)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set cursor %q in %s: %w", name, s.evPath, err)
	}
	s.writes.Add(1)
	return nil
}

// EventWriteCount returns how many events Append has written since Open.
func (s *Store) EventWriteCount() uint64 { return s.eventWrites.Load() }
