package api

import (
	"runtime"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
)

// Event streams opened and dropped by their clients, again and again,
// leave the server's goroutines and descriptors where they were.
func TestEventStreamsLeakNothing(t *testing.T) {
	if _, err := procfd.Count(); err != nil {
		t.Skipf("cannot count FDs here: %v", err)
	}
	e := newEventEnv(t, eventSettings())
	settle := func() (int, int) {
		testutil.Poll(10*time.Second, func() bool { return e.srv.OpenConns() == 0 })
		time.Sleep(200 * time.Millisecond)
		c, _ := procfd.Count()
		return c.Total, runtime.NumGoroutine()
	}
	// Streams start after this event, whenever they get to it.
	first, err := e.st.Append(eventForTest())
	if err != nil {
		t.Fatal(err)
	}
	fd0, g0 := settle()
	for round := range 5 {
		var streams []*sseClient
		for range 20 {
			cl := NewClient(e.srv.Addr(), "")
			streams = append(streams, follow(t, cl, EventQuery{}, first.ID+uint64(round)))
		}
		if !testutil.Poll(10*time.Second, func() bool { return e.srv.OpenConns() == 20 }) {
			t.Fatalf("round %d: %d connections open, want the 20 streams", round, e.srv.OpenConns())
		}
		// One event reaches every stream.
		if _, err := e.st.Append(eventForTest()); err != nil {
			t.Fatal(err)
		}
		for _, s := range streams {
			s.wait(t, 1, 10*time.Second)
			s.close()
		}
	}
	var fd1, g1 int
	ok := testutil.Poll(30*time.Second, func() bool { fd1, g1 = settle(); return fd1 <= fd0 && g1 <= g0 })
	if !ok {
		t.Fatalf("after 100 streams: FDs %d → %d, goroutines %d → %d", fd0, fd1, g0, g1)
	}
	t.Logf("after 100 streams: FDs %d → %d, goroutines %d → %d", fd0, fd1, g0, g1)
}

func eventForTest() events.Event {
	return events.Event{Kind: events.DaemonStarted, Details: map[string]string{"version": "test"}}
}
