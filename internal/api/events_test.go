package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/devicetest"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// eventEnv is env with the event history wired as the daemon wires it: a
// Queue in front of the store as the Manager's OnEvent, and the store as
// the API's Events.
type eventEnv struct {
	*env
	q *events.Queue
}

func newEventEnv(t *testing.T, set device.Settings, mod ...func(*Config)) *eventEnv {
	t.Helper()
	e := &env{t: t, logs: &testutil.LogBuffer{}}
	d := devicetest.Start(t, devicetest.Options{Logs: e.logs, Events: true, Config: func(c *device.Config) { c.Settings = set }})
	e.st, e.m = d.Store, d.Manager
	e.serve(Config{Events: d.Store, EventKeepalive: 200 * time.Millisecond}, mod...)
	return &eventEnv{env: e, q: d.Queue}
}

// settle waits for the queue to drain and returns the newest event id.
func (e *eventEnv) settle() uint64 {
	e.t.Helper()
	if !testutil.Poll(10*time.Second, func() bool { return e.q.Pending() == 0 }) {
		e.t.Fatal("event queue did not drain")
	}
	id, err := e.st.LastEventID()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// sseClient follows the stream in the background and collects events.
type sseClient struct {
	mu   sync.Mutex
	evs  []events.Event
	err  error
	done chan struct{}
	stop context.CancelFunc
}

func follow(t *testing.T, c *Client, q EventQuery, last uint64) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &sseClient{done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(s.done)
		err := c.StreamEvents(ctx, q, last, func(e events.Event) error {
			s.mu.Lock()
			s.evs = append(s.evs, e)
			s.mu.Unlock()
			return nil
		})
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}()
	t.Cleanup(func() { s.close() })
	return s
}

func (s *sseClient) close() {
	s.stop()
	<-s.done
}

func (s *sseClient) got() []events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.Event(nil), s.evs...)
}

func (s *sseClient) wait(t *testing.T, n int, d time.Duration) []events.Event {
	t.Helper()
	if !testutil.Poll(d, func() bool { return len(s.got()) >= n }) {
		t.Fatalf("event stream: %d events after %v, want %d: %v", len(s.got()), d, n, kinds(s.got()))
	}
	return s.got()
}

func kinds(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("%d:%s:%s", e.ID, e.Camera, e.Kind)
	}
	return out
}

// eventSettings scale the seeds' figures (debounce 30 s, a 5 s drop, a
// 45 s outage) down by ten: debounce 3 s, a 1 s drop, a 6 s outage.
func eventSettings() device.Settings {
	set := testutil.FastSettings[device.Settings]()
	set.FlapDebounce, set.CrashedAfter = 3*time.Second, 3*time.Second
	set.ForceRestartAfter = 20 * time.Second
	set.BackoffMin, set.BackoffMax = 100*time.Millisecond, 500*time.Millisecond
	return set
}

func TestOutageIsOneDownAndOneUpOnAPIAndStream(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	set := eventSettings()
	e := newEventEnv(t, set)
	e.add("cam1", sm.URL(1), true)
	if !testutil.Poll(20*time.Second, func() bool { v, _ := e.m.Get("cam1"); return v.State == device.StateRunning }) {
		t.Fatal("cam1 not RUNNING")
	}
	first := e.settle()
	cl := NewClient(e.srv.Addr(), "")
	defer cl.CloseIdleConnections()
	// From the newest event on, whenever the stream gets to it.
	sse := follow(t, cl, EventQuery{}, first)

	// A drop under the debounce: nothing.
	writes := e.st.WriteCount()
	if err := sm.SetFault(1, sim.FaultDrop, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(set.FlapDebounce + 2*time.Second)
	if v, _ := e.m.Get("cam1"); v.State != device.StateRunning || v.Reconnects == 0 {
		t.Fatalf("after the short drop: %s, %d reconnects; want RUNNING after one at least", v.State, v.Reconnects)
	}
	if got := sse.got(); len(got) != 0 {
		t.Fatalf("a drop under the debounce sent %v on the stream", kinds(got))
	}
	if d := e.st.WriteCount() - writes; d != 0 {
		t.Fatalf("a drop under the debounce wrote %d times to the store", d)
	}

	// An outage of twice the debounce: one down at about the debounce, one
	// up with the outage's length.
	outage := 2 * set.FlapDebounce
	began := time.Now()
	if err := sm.SetFault(1, sim.FaultDrop, outage); err != nil {
		t.Fatal(err)
	}
	sse.wait(t, 2, outage+30*time.Second)
	time.Sleep(time.Second) // anything more would show up now
	got := sse.got()
	if len(got) != 2 || got[0].Kind != events.CameraDown || got[1].Kind != events.CameraUp || got[0].ID >= got[1].ID {
		t.Fatalf("stream: %v, want exactly down then up", kinds(got))
	}
	down, up := got[0], got[1]
	if at := down.Time.Sub(began); at < set.FlapDebounce-100*time.Millisecond || at > set.FlapDebounce+3*time.Second {
		t.Errorf("down came %v after the outage began, want about the debounce (%v)", at, set.FlapDebounce)
	}
	d, err := time.ParseDuration(up.Details["down_for"])
	if err != nil || d < outage-time.Second || d > outage+5*time.Second {
		t.Errorf("up's down_for %q, the outage lasted %v", up.Details["down_for"], outage)
	}
	page, err := cl.Events(context.Background(), EventQuery{Camera: "cam1", After: first})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[0].ID != down.ID || page.Events[1].ID != up.ID || page.NextAfter != up.ID {
		t.Fatalf("GET /api/v1/events after %d: %v (next_after %d), want the stream's down and up", first, kinds(page.Events), page.NextAfter)
	}
	if page.Events[1].Details["down_for"] != up.Details["down_for"] || !page.Events[0].Time.Equal(down.Time) {
		t.Errorf("history and stream differ: %+v vs %+v", page.Events, got)
	}
	t.Logf("down %v after the outage began (debounce %v); up: down_for %s (outage %v)",
		down.Time.Sub(began).Round(time.Millisecond), set.FlapDebounce, up.Details["down_for"], outage)
}

func TestStreamReplaysExactlyWhatWasMissed(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	e := newEventEnv(t, eventSettings())
	e.add("cam1", sm.URL(1), false)
	added := e.settle()
	cl := NewClient(e.srv.Addr(), "")
	defer cl.CloseIdleConnections()
	sse := follow(t, cl, EventQuery{}, added)
	ctx := context.Background()
	if _, err := cl.StartCamera(ctx, "cam1"); err != nil {
		t.Fatal(err)
	}
	seen := sse.wait(t, 1, 10*time.Second)
	lastSeen := seen[len(seen)-1].ID
	sse.close()

	// Three events while the client is away.
	for _, act := range []func(context.Context, string) (CameraJSON, error){cl.StopCamera, cl.StartCamera, cl.StopCamera} {
		if _, err := act(ctx, "cam1"); err != nil {
			t.Fatal(err)
		}
	}
	newest := e.settle()
	if newest != lastSeen+3 {
		t.Fatalf("newest event %d, want %d + 3", newest, lastSeen)
	}
	again := follow(t, cl, EventQuery{}, lastSeen)
	again.wait(t, 3, 10*time.Second)
	time.Sleep(time.Second) // a fourth would come now
	got := again.got()
	want := []events.Kind{events.CameraStopped, events.CameraStarted, events.CameraStopped}
	if len(got) != 3 {
		t.Fatalf("after reconnecting with Last-Event-ID %d: %v, want exactly the three missed", lastSeen, kinds(got))
	}
	for i, ev := range got {
		if ev.ID != lastSeen+uint64(i)+1 || ev.Kind != want[i] || ev.Camera != "cam1" {
			t.Fatalf("after reconnecting with Last-Event-ID %d: %v, want %v", lastSeen, kinds(got), want)
		}
	}
	// The query form, for clients that cannot set the header, with a
	// filter: only the one "started" of the three.
	qs := readStream(t, e.base+fmt.Sprintf("/api/v1/events/stream?last_event_id=%d&kind=started", lastSeen), 2*time.Second)
	if len(qs) != 1 || qs[0].ID != lastSeen+2 || qs[0].Kind != events.CameraStarted {
		t.Fatalf("?last_event_id=%d&kind=started: %v, want the one started", lastSeen, kinds(qs))
	}
}

// readStream reads an event stream for d and returns what came.
func readStream(t *testing.T, url string, d time.Duration) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, ct)
	}
	var out []events.Event
	_ = ReadSSE(resp.Body, func(e events.Event) error { out = append(out, e); return nil })
	return out
}

func TestEventRoutesFollowTheAPIRules(t *testing.T) {
	e := newEventEnv(t, eventSettings(), func(c *Config) { c.Token = "0123456789abcdef0123456789abcdef"; tr := true; c.RequireToken = &tr })
	for _, p := range []string{"/api/v1/events", "/api/v1/events/stream"} {
		if r := e.do("GET", p, "", nil); r.code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, r.code)
		}
	}
	auth := []string{"Authorization", "Bearer 0123456789abcdef0123456789abcdef"}
	for _, c := range []struct{ path, hdrK, hdrV string }{
		{"/api/v1/events?kind=bogus", "", ""},
		{"/api/v1/events?limit=0", "", ""},
		{"/api/v1/events?since=yesterday", "", ""},
		{"/api/v1/events?after=-1", "", ""},
		{"/api/v1/events/stream", "Last-Event-ID", "abc"},
	} {
		h := append([]string(nil), auth...)
		if c.hdrK != "" {
			h = append(h, c.hdrK, c.hdrV)
		}
		if r := e.do("GET", c.path, "", nil, h...); r.code != http.StatusBadRequest {
			t.Errorf("GET %s %s: %d %s, want 400", c.path, c.hdrV, r.code, r.body)
		}
	}
	if r := e.do("POST", "/api/v1/events", "", nil, auth...); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/events: %d, want 405", r.code)
	}
	// Without a token required, a foreign Host is refused (DNS rebinding).
	open := newEventEnv(t, eventSettings())
	for _, p := range []string{"/api/v1/events", "/api/v1/events/stream"} {
		if r := open.req("GET", p, "evil.example", "", nil); r.code != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with Host evil.example: %d, want 421", p, r.code)
		}
	}
}

func TestStreamEndsWhenTheServerStops(t *testing.T) {
	e := newEventEnv(t, eventSettings())
	cl := NewClient(e.srv.Addr(), "")
	defer cl.CloseIdleConnections()
	sse := follow(t, cl, EventQuery{}, 0)
	time.Sleep(500 * time.Millisecond)
	began := time.Now()
	e.stop()
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return with an event stream open")
	}
	e.stop = nil
	select {
	case <-sse.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when the server stopped")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("shutdown with a stream open took %v", took)
	}
	sse.mu.Lock()
	err := sse.err
	sse.mu.Unlock()
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("stream ended with %v", err)
	}
	_ = e.m.Close()
}
