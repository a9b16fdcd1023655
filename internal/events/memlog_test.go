package events

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemLog(t *testing.T) {
	l := NewMemLog(3)
	ch := l.Changed()
	for i := 1; i <= 5; i++ {
		e, err := l.Append(Event{Camera: "door", Kind: CameraDown})
		if err != nil || e.ID != uint64(i) || e.Time.IsZero() {
			t.Fatalf("append %d: %+v %v", i, e, err)
		}
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by Append")
	}
	evs, _ := l.After(0, Filter{}, 0)
	if len(evs) != 3 || evs[0].ID != 3 || evs[2].ID != 5 {
		t.Fatalf("kept %+v, want ids 3 to 5", evs)
	}
	_, _ = l.Append(Event{Camera: "yard", Kind: CameraUp})
	if evs, _ := l.After(3, Filter{Camera: "yard"}, 10); len(evs) != 1 || evs[0].ID != 6 {
		t.Fatalf("filtered %+v", evs)
	}
	if evs, _ := l.After(0, Filter{Kinds: []Kind{CameraDown}}, 1); len(evs) != 1 || evs[0].ID != 4 {
		t.Fatalf("limited %+v", evs)
	}
	if c, _ := l.Cursor("x"); c != 0 {
		t.Fatal("unknown cursor not 0")
	}
	_ = l.SetCursor("x", 4)
	if c, _ := l.Cursor("x"); c != 4 {
		t.Fatalf("cursor %d", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, l, 6); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with nothing new: %v", err)
	}
	if err := Wait(context.Background(), l, 5); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Append(Event{Kind: CameraUp}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v", err)
	}
}
