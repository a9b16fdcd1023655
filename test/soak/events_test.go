package soak

// The event history under the soak: a client follows the event stream from
// start-up to the end, and the history is checked against what it saw.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/events"
)

// eventsMaxCount is the soak's events.max_count: small, so that the
// history reaches its bound and drops its oldest events many times over.
const eventsMaxCount = 500

// withEventBound adds the soak's event bound to the config file at path.
func withEventBound(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "events:\n  max_count: %d\n", eventsMaxCount); err != nil {
		t.Fatal(err)
	}
}

// eventWatch follows camd's event stream, reconnecting with the last id
// it saw, and keeps every event.
type eventWatch struct {
	cl   *api.Client
	stop context.CancelFunc
	done chan struct{}

	mu         sync.Mutex
	evs        []events.Event
	reconnects int
	err        error
}

func watchEvents(t *testing.T, addr string) *eventWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &eventWatch{cl: api.NewClient(addr, ""), stop: cancel, done: make(chan struct{})}
	// What happened before the stream opens comes from the history. camd
	// appends its daemon_started off its own goroutine: a history read
	// before it would open the stream after it, and miss it.
	var first api.EventsPage
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		first, err = w.cl.Events(ctx, api.EventQuery{Limit: api.MaxEventLimit})
		if err != nil {
			t.Fatalf("read the event history: %v", err)
		}
		if first.LastID > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.evs = append(w.evs, first.Events...)
	last := first.LastID
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			err := w.cl.StreamEvents(ctx, api.EventQuery{}, last, func(e events.Event) error {
				w.mu.Lock()
				w.evs = append(w.evs, e)
				w.mu.Unlock()
				last = e.ID
				return nil
			})
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.reconnects++
			w.err = err
			w.mu.Unlock()
			time.Sleep(time.Second)
		}
	}()
	return w
}

func (w *eventWatch) close() {
	w.stop()
	<-w.done
	w.cl.CloseIdleConnections()
}

// eventWrites reads camd_event_writes_total from /metrics.
func eventWrites(addr string) (uint64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "camd_event_writes_total" {
			v, err := strconv.ParseFloat(f[1], 64)
			return uint64(v), err
		}
	}
	return 0, fmt.Errorf("/metrics has no camd_event_writes_total")
}

// checkEvents compares the stream, the history and the write count once
// the soak is over: every event was written once and streamed once, in
// id order; the history holds only the newest eventsMaxCount; and each
// camera's down and up alternate, so an outage costs at most two writes.
func checkEvents(t *testing.T, addr string, w *eventWatch) {
	t.Helper()
	// Let the last events reach the stream.
	time.Sleep(2 * time.Second)
	w.close()
	w.mu.Lock()
	seen, reconnects, lastErr := w.evs, w.reconnects, w.err
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := api.NewClient(addr, "")
	defer cl.CloseIdleConnections()
	var hist []events.Event
	var lastID uint64
	for after := uint64(0); ; {
		p, err := cl.Events(ctx, api.EventQuery{After: after, Limit: api.MaxEventLimit})
		if err != nil {
			t.Fatalf("read the event history: %v", err)
		}
		hist = append(hist, p.Events...)
		lastID = p.LastID
		if len(p.Events) < api.MaxEventLimit {
			break
		}
		after = p.NextAfter
	}
	writes, err := eventWrites(addr)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[events.Kind]int{}
	for _, e := range seen {
		kinds[e.Kind]++
	}
	t.Logf("events: %d written (newest id %d), %d seen on the stream (reconnected %d times; last error %v), %d kept (bound %d); by kind: %v",
		writes, lastID, len(seen), reconnects, lastErr, len(hist), eventsMaxCount, kinds)

	if uint64(len(seen)) != lastID {
		t.Errorf("the stream and the first page showed %d events, the newest id is %d", len(seen), lastID)
	}
	for i, e := range seen {
		if e.ID != uint64(i)+1 {
			t.Errorf("event %d on the stream has id %d: ids must come 1, 2, 3, … with none missed or repeated", i+1, e.ID)
			break
		}
	}
	if writes != lastID {
		t.Errorf("camd wrote %d events and assigned %d ids: every write is one event, and only events are written this way", writes, lastID)
	}
	if len(hist) > eventsMaxCount {
		t.Errorf("the history holds %d events, over its bound %d", len(hist), eventsMaxCount)
	}
	if len(hist) > 0 && (hist[len(hist)-1].ID != lastID || hist[0].ID != lastID-uint64(len(hist))+1) {
		t.Errorf("the history holds ids %d..%d of %d: the oldest must go first", hist[0].ID, hist[len(hist)-1].ID, lastID)
	}

	down := map[string]bool{}
	outages, bad := 0, 0
	for _, e := range seen {
		switch e.Kind {
		case events.CameraDown:
			outages++
			if down[e.Camera] {
				bad++
				if bad <= 5 {
					t.Errorf("%s: down (id %d) while already down", e.Camera, e.ID)
				}
			}
			down[e.Camera] = true
		case events.CameraUp:
			if !down[e.Camera] {
				bad++
				if bad <= 5 {
					t.Errorf("%s: up (id %d) without a down before it", e.Camera, e.ID)
				}
			}
			down[e.Camera] = false
		case events.CameraStopped, events.CameraRemoved:
			down[e.Camera] = false
		}
	}
	if outages > 0 {
		t.Logf("outages past the debounce: %d; down and up events per outage: %.2f (at most 2)",
			outages, float64(kinds[events.CameraDown]+kinds[events.CameraUp])/float64(outages))
	}
}
