package events

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// memLog is a Log in memory whose Append fails while fail is set.
type memLog struct {
	mu   sync.Mutex
	evs  []Event
	fail bool
	ch   chan struct{}
}

func (m *memLog) Append(e Event) (Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return Event{}, errors.New("disk full")
	}
	e.ID = uint64(len(m.evs) + 1)
	m.evs = append(m.evs, e)
	if m.ch != nil {
		close(m.ch)
		m.ch = nil
	}
	return e, nil
}

func (m *memLog) After(after uint64, f Filter, limit int) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.evs {
		if e.ID > after && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memLog) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ch == nil {
		m.ch = make(chan struct{})
	}
	return m.ch
}

func (m *memLog) Cursor(string) (uint64, error)  { return 0, nil }
func (m *memLog) SetCursor(string, uint64) error { return nil }

func (m *memLog) setFail(f bool) { m.mu.Lock(); m.fail = f; m.mu.Unlock() }

func (m *memLog) kinds() []Kind {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ks []Kind
	for _, e := range m.evs {
		ks = append(ks, e.Kind)
	}
	return ks
}

func TestQueueKeepsOrderThroughFailures(t *testing.T) {
	l := &memLog{fail: true}
	q := NewQueue(l, nil)
	q.retry = 20 * time.Millisecond
	q.Emit(Event{Kind: CameraDown, Camera: "a"})
	q.Emit(Event{Kind: StoreWriteFailing})
	time.Sleep(100 * time.Millisecond)
	if n := len(l.kinds()); n != 0 {
		t.Fatalf("%d events appended while the log fails", n)
	}
	l.setFail(false)
	q.Emit(Event{Kind: StoreRecovered})
	deadline := time.Now().Add(10 * time.Second)
	for len(l.kinds()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	q.Close(time.Second)
	ks := l.kinds()
	if len(ks) != 3 || ks[0] != CameraDown || ks[1] != StoreWriteFailing || ks[2] != StoreRecovered {
		t.Fatalf("appended %v; want down, store_write_failing, store_recovered", ks)
	}
	q.Emit(Event{Kind: CameraUp})
	if len(l.kinds()) != 3 || q.Pending() != 0 {
		t.Fatal("an event emitted after Close was kept")
	}
}

func TestQueueIsBounded(t *testing.T) {
	l := &memLog{fail: true}
	q := NewQueue(l, nil)
	for range QueueMax + 10 {
		q.Emit(Event{Kind: CameraStalled})
	}
	if n := q.Pending(); n != QueueMax {
		t.Fatalf("%d pending, want the bound %d", n, QueueMax)
	}
	l.setFail(false)
	q.Close(10 * time.Second)
	if n := len(l.kinds()); n != QueueMax {
		t.Fatalf("Close wrote %d, want %d", n, QueueMax)
	}
}
