package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/testutil"
)

// receiver is a real HTTP endpoint that records what it was sent and can
// be made to fail.
type receiver struct {
	srv    *httptest.Server
	secret string
	down   atomic.Bool
	limit  atomic.Int64 // above 0: it fails once it has accepted this many

	mu       sync.Mutex
	got      []events.Event // accepted (2xx), in arrival order
	attempts int
	badSig   int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.down.Load() || r.limit.Load() > 0 && int64(len(r.got)) >= r.limit.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.secret != "" {
			if err := Verify([]byte(r.secret), req.Header.Get(HeaderSignature), body, time.Minute, time.Now()); err != nil {
				r.badSig++
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		var e events.Event
		if err := json.Unmarshal(body, &e); err != nil || strconv.FormatUint(e.ID, 10) != req.Header.Get(HeaderIdempotency) ||
			req.Header.Get("Content-Type") != "application/json" || req.Header.Get(HeaderEventKind) != string(e.Kind) {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, e)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) ids() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	for _, e := range r.got {
		ids = append(ids, e.ID)
	}
	return ids
}

func (r *receiver) tries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// inOrder checks that ids hold every one of want, in order, each at least
// once (a repeat may only follow its own first delivery).
func inOrder(t *testing.T, ids, want []uint64) {
	t.Helper()
	var dedup []uint64
	for _, id := range ids {
		if len(dedup) > 0 && id < dedup[len(dedup)-1] {
			t.Fatalf("delivered out of order: %v", ids)
		}
		if len(dedup) == 0 || dedup[len(dedup)-1] != id {
			dedup = append(dedup, id)
		}
	}
	if len(dedup) != len(want) {
		t.Fatalf("delivered %v, want %v", ids, want)
	}
	for i := range want {
		if dedup[i] != want[i] {
			t.Fatalf("delivered %v, want %v", ids, want)
		}
	}
}

func start(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 50 * time.Millisecond
		cfg.BackoffMax = 200 * time.Millisecond
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() { _ = n.Close() })
	// A new hook starts at the end of the log: wait for it to be there.
	testutil.WaitFor(t, 10*time.Second, "the hooks' start", func() bool {
		for _, h := range n.hooks {
			if !h.ready.Load() {
				return false
			}
		}
		return true
	})
	return n
}

func appendN(t *testing.T, l events.Log, cam string, kinds ...events.Kind) []uint64 {
	t.Helper()
	var ids []uint64
	for _, k := range kinds {
		e, err := l.Append(events.Event{Camera: cam, Kind: k, Details: map[string]string{"error": "dial tcp: refused"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// The receiver is down across several outages' events, then back: every
// event arrives, in order, each id at least once; the outage is logged
// once when it begins and once when it ends, and /metrics shows the
// backlog while it lasts.
func TestReceiverDownThenBack(t *testing.T) {
	l := events.NewMemLog(0)
	rcv := newReceiver(t, "")
	var logs testutil.LogBuffer
	n := start(t, Config{Log: l, Hooks: []Hook{{URL: rcv.srv.URL + "/hook/T0KEN9?token=tok3n"}}, Logger: testutil.Logger(&logs)})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n.Collector())

	want := appendN(t, l, "door", events.CameraDown, events.CameraUp)
	testutil.WaitFor(t, 20*time.Second, "the first two events", func() bool { return len(rcv.ids()) == 2 })
	rcv.down.Store(true)
	for i := 0; i < 3; i++ {
		want = append(want, appendN(t, l, "door", events.CameraDown, events.CameraUp)...)
		before := rcv.tries()
		testutil.WaitFor(t, 20*time.Second, "retries while down", func() bool { return rcv.tries() >= before+2 })
	}
	testutil.WaitFor(t, 20*time.Second, "the backlog in /metrics", func() bool {
		return promtest.ToFloat64(gauge(t, reg, "camd_webhook_pending_events")) == 6
	})
	if v := promtest.ToFloat64(gauge(t, reg, "camd_webhook_failing")); v != 1 {
		t.Errorf("camd_webhook_failing %v while down", v)
	}
	rcv.down.Store(false)
	testutil.WaitFor(t, 30*time.Second, "every event", func() bool { return len(rcv.ids()) >= len(want) })
	inOrder(t, rcv.ids(), want)

	if got := len(logs.Lines("delivery failing")); got != 1 {
		t.Errorf("%d lines about the outage, want 1:\n%s", got, logs.String())
	}
	testutil.WaitFor(t, 10*time.Second, "the recovery line", func() bool { return len(logs.Lines("delivering again")) == 1 })
	if strings.Contains(logs.String(), "tok3n") || strings.Contains(logs.String(), "T0KEN9") {
		t.Errorf("the URL's path or query reached the log:\n%s", logs.String())
	}
	if mfs, _ := reg.Gather(); strings.Contains(fmt.Sprint(mfs), "T0KEN9") || strings.Contains(fmt.Sprint(mfs), "tok3n") {
		t.Errorf("the URL's path or query reached /metrics")
	}
	testutil.WaitFor(t, 10*time.Second, "an empty backlog", func() bool {
		return promtest.ToFloat64(gauge(t, reg, "camd_webhook_pending_events")) == 0
	})
	if v := promtest.ToFloat64(gauge(t, reg, "camd_webhook_delivered_total")); v < float64(len(want)) {
		t.Errorf("delivered_total %v", v)
	}
	if v := promtest.ToFloat64(gauge(t, reg, "camd_webhook_failures_total")); v < 6 {
		t.Errorf("failures_total %v", v)
	}
	if c, _ := l.Cursor(CursorName(rcv.srv.URL + "/hook/T0KEN9?token=tok3n")); c != want[len(want)-1] {
		t.Errorf("cursor %d, want %d", c, want[len(want)-1])
	}
}

// gauge returns the one sample of a metric family as a collector that
// promtest.ToFloat64 reads.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.Metric) != 1 {
			continue
		}
		m := mf.Metric[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return -1 })
}

// With a secret every request is signed: the receiver verifies it with the
// secret; a tampered body, another secret or a stale timestamp do not
// verify. The secret never reaches the log.
func TestSignature(t *testing.T) {
	const secret = "s3cret-hook-key"
	l := events.NewMemLog(0)
	rcv := newReceiver(t, secret)
	var logs testutil.LogBuffer
	start(t, Config{Log: l, Hooks: []Hook{{URL: rcv.srv.URL, Secret: secret}}, Logger: testutil.Logger(&logs)})
	want := appendN(t, l, "door", events.CameraDown, events.CameraUp)
	testutil.WaitFor(t, 20*time.Second, "signed events", func() bool { return len(rcv.ids()) == 2 })
	inOrder(t, rcv.ids(), want)
	rcv.mu.Lock()
	bad := rcv.badSig
	rcv.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d signatures did not verify", bad)
	}

	body := []byte(`{"id":7,"kind":"down"}`)
	now := time.Now()
	sig := Sign([]byte(secret), now, body)
	if !strings.HasPrefix(sig, "t="+strconv.FormatInt(now.Unix(), 10)+",v1=") {
		t.Fatalf("signature header %q", sig)
	}
	if err := Verify([]byte(secret), sig, body, time.Minute, now); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	for name, c := range map[string]struct {
		secret, sig string
		body        []byte
		now         time.Time
	}{
		"tampered body": {secret, sig, []byte(`{"id":7,"kind":"up"}`), now},
		"other secret":  {"other", sig, body, now},
		"stale":         {secret, sig, body, now.Add(time.Hour)},
		"no v1":         {secret, "t=" + strconv.FormatInt(now.Unix(), 10), body, now},
	} {
		if err := Verify([]byte(c.secret), c.sig, c.body, time.Minute, c.now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the secret reached the log")
	}
}

// Kinds and cameras filters: only matching events are sent; the others
// still move the cursor.
func TestFilter(t *testing.T) {
	l := events.NewMemLog(0)
	rcv := newReceiver(t, "")
	start(t, Config{Log: l, Hooks: []Hook{{URL: rcv.srv.URL, Kinds: []events.Kind{events.CameraDown}, Cameras: []string{"door"}}}})
	appendN(t, l, "yard", events.CameraDown)
	want := appendN(t, l, "door", events.CameraDown)
	appendN(t, l, "door", events.CameraUp)
	appendN(t, l, "", events.DaemonStarted)
	want = append(want, appendN(t, l, "door", events.CameraDown)...)
	testutil.WaitFor(t, 20*time.Second, "two events", func() bool { return len(rcv.ids()) >= 2 })
	time.Sleep(200 * time.Millisecond)
	inOrder(t, rcv.ids(), want)
}

// A hook down for longer than the bounded history keeps loses the oldest
// events: that is counted in /metrics and logged once; the rest arrive in
// order.
func TestHistoryDroppedEvents(t *testing.T) {
	l := events.NewMemLog(3)
	rcv := newReceiver(t, "")
	var logs testutil.LogBuffer
	n := start(t, Config{Log: l, Hooks: []Hook{{URL: rcv.srv.URL}}, Logger: testutil.Logger(&logs)})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n.Collector())
	first := appendN(t, l, "door", events.CameraDown)
	testutil.WaitFor(t, 20*time.Second, "the first event", func() bool { return len(rcv.ids()) == 1 })
	rcv.down.Store(true)
	ids := appendN(t, l, "door", events.CameraUp)
	before := rcv.tries()
	testutil.WaitFor(t, 20*time.Second, "a failed attempt", func() bool { return rcv.tries() > before })
	// The event in flight (ids[0]) is kept by the hook; the history drops
	// what is behind it.
	for i := 0; i < 8; i++ {
		ids = append(ids, appendN(t, l, "door", events.CameraStalled)...)
	}
	rcv.down.Store(false)
	last3 := ids[len(ids)-3:]
	testutil.WaitFor(t, 30*time.Second, "the newest events", func() bool {
		got := rcv.ids()
		return len(got) > 0 && got[len(got)-1] == last3[2]
	})
	inOrder(t, rcv.ids(), append(append(first, ids[0]), last3...))
	if v := promtest.ToFloat64(gauge(t, reg, "camd_webhook_dropped_events_total")); v != float64(len(ids)-4) {
		t.Errorf("dropped_events_total %v, want %d", v, len(ids)-4)
	}
	if got := len(logs.Lines("dropped events")); got != 1 {
		t.Errorf("%d lines about dropped events, want 1:\n%s", got, logs.String())
	}
}

// A new hook is not sent the history from before it was configured.
func TestNewHookStartsAtTheEnd(t *testing.T) {
	l := events.NewMemLog(0)
	appendN(t, l, "door", events.CameraDown, events.CameraUp)
	rcv := newReceiver(t, "")
	start(t, Config{Log: l, Hooks: []Hook{{URL: rcv.srv.URL}}})
	want := appendN(t, l, "door", events.CameraStalled)
	testutil.WaitFor(t, 20*time.Second, "the new event", func() bool { return len(rcv.ids()) >= 1 })
	time.Sleep(100 * time.Millisecond)
	inOrder(t, rcv.ids(), want)
}

// A URL that accepts the connection and never answers: Append (what
// supervision calls) never waits for it, each attempt is cut at the
// request timeout, and Close returns at once, cancelling the request in
// flight, with no goroutine left behind.
func TestHangingURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns.Add(1)
			go func() { defer conns.Done(); _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	base := runtime.NumGoroutine()
	l := events.NewMemLog(0)
	n, err := New(Config{Log: l, Hooks: []Hook{{URL: "http://" + ln.Addr().String() + "/"}, {URL: "http://" + ln.Addr().String() + "/b"}},
		Timeout: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	testutil.WaitFor(t, 10*time.Second, "the hooks' start", func() bool { return n.hooks[0].ready.Load() && n.hooks[1].ready.Load() })
	t0 := time.Now()
	for i := 0; i < 100; i++ {
		appendN(t, l, "door", events.CameraDown)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("100 appends took %v with a hanging hook", d)
	}
	testutil.WaitFor(t, 20*time.Second, "attempts cut by the timeout and retried", func() bool {
		return n.hooks[0].failures.Load() >= 2 && n.hooks[1].failures.Load() >= 2
	})

	t0 = time.Now()
	_ = n.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}

	// A request that would hang for an hour is cancelled by Close.
	slow, err := New(Config{Log: l, Hooks: []Hook{{URL: "http://" + ln.Addr().String() + "/slow"}}, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := accepted.Load()
	slow.Start()
	testutil.WaitFor(t, 10*time.Second, "the slow hook's start", func() bool { return slow.hooks[0].ready.Load() })
	appendN(t, l, "door", events.CameraUp)
	testutil.WaitFor(t, 10*time.Second, "the slow request", func() bool { return accepted.Load() > before })
	time.Sleep(100 * time.Millisecond)
	t0 = time.Now()
	_ = slow.Close()
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Close with a request in flight took %v", d)
	}
	ln.Close()
	testutil.WaitFor(t, 10*time.Second, "goroutines back to where they were", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

func TestNewRejects(t *testing.T) {
	l := events.NewMemLog(0)
	for _, u := range []string{"", "ftp://h/x", "http://", "not a url", "http://user:pw@%zz"} {
		_, err := New(Config{Log: l, Hooks: []Hook{{URL: u, Secret: "zzsecret"}}})
		if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "zzsecret") {
			t.Errorf("%q: %v", u, err)
		}
	}
	if _, err := New(Config{Log: l, Hooks: []Hook{{URL: "http://h/"}, {URL: "http://h/"}}}); err == nil {
		t.Error("a hook listed twice was accepted")
	}
	if _, err := New(Config{Hooks: []Hook{{URL: "http://h/"}}}); err == nil {
		t.Error("no log accepted")
	}
}
