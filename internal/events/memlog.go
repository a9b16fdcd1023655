package events

import (
	"errors"
	"sync"
	"time"
)

// ErrClosed is returned by a closed MemLog.
var ErrClosed = errors.New("events: log closed")

// MemLog is a Log kept in memory: for tests, and for consumers that run
// without a store. It keeps at most Max events (0: no bound), dropping the
// oldest first, as the store's history does.
type MemLog struct {
	// Max bounds the events kept; 0 keeps all. Set it before first use.
	Max int

	mu      sync.Mutex
	next    uint64
	evs     []Event
	changed chan struct{}
	cursors map[string]uint64
	closed  bool
}

// NewMemLog returns an empty log keeping at most max events (0: all).
func NewMemLog(max int) *MemLog { return &MemLog{Max: max} }

func (l *MemLog) init() {
	if l.changed == nil {
		l.changed = make(chan struct{})
		l.cursors = map[string]uint64{}
	}
}

// Append assigns e the next ID (and a time, if it has none) and keeps it.
func (l *MemLog) Append(e Event) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if l.closed {
		return Event{}, ErrClosed
	}
	l.next++
	e.ID = l.next
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Details = cloneDetails(e.Details)
	l.evs = append(l.evs, e)
	if l.Max > 0 && len(l.evs) > l.Max {
		l.evs = append(l.evs[:0:0], l.evs[len(l.evs)-l.Max:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return e, nil
}

// After returns up to limit events with ID > after that match f.
func (l *MemLog) After(after uint64, f Filter, limit int) ([]Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	var out []Event
	for _, e := range l.evs {
		if limit > 0 && len(out) >= limit {
			break
		}
		if e.ID <= after || !memMatch(f, e) {
			continue
		}
		e.Details = cloneDetails(e.Details)
		out = append(out, e)
	}
	return out, nil
}

// Changed returns a channel closed at the next Append.
func (l *MemLog) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	return l.changed
}

// Cursor returns the named consumer's last delivered ID (0: none).
func (l *MemLog) Cursor(name string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.cursors[name], nil
}

// SetCursor records the named consumer's last delivered ID.
func (l *MemLog) SetCursor(name string, id uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if l.closed {
		return ErrClosed
	}
	l.cursors[name] = id
	return nil
}

// Close makes every later call fail with ErrClosed, as a closed store
// does.
func (l *MemLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}

// memMatch reports whether e is selected by f.
func memMatch(f Filter, e Event) bool {
	if f.Camera != "" && e.Camera != f.Camera {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if len(f.Kinds) == 0 {
		return true
	}
	for _, k := range f.Kinds {
		if e.Kind == k {
			return true
		}
	}
	return false
}

func cloneDetails(d map[string]string) map[string]string {
	if d == nil {
		return nil
	}
	c := make(map[string]string, len(d))
	for k, v := range d {
		c[k] = v
	}
	return c
}
