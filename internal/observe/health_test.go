package observe

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/sim"
)

type healthReply struct {
	code int
	raw  string
	body struct {
		Status         string   `json:"status"`
		Reason         string   `json:"reason"`
		Degraded       *bool    `json:"degraded"`
		DegradedReason string   `json:"degraded_reason"`
		LastLoopAge    *float64 `json:"last_loop_age_seconds"`
	}
}

func get(t testing.TB, h http.Handler, method string) healthReply {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
	r := healthReply{code: rec.Code, raw: rec.Body.String()}
	if method != http.MethodHead {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
			t.Fatalf("%s: not JSON: %v: %q", method, err, r.raw)
		}
		if strings.Count(strings.TrimSpace(r.raw), "\n") != 0 {
			t.Errorf("body is not one line: %q", r.raw)
		}
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	return r
}

func TestHealthzFollowsTheSupervisionLoop(t *testing.T) {
	// The hook blocks while *hang holds a channel the test has not closed.
	var hang atomic.Pointer[chan struct{}]
	const loop = 100 * time.Millisecond
	e := newEnv(t, func(c *device.Config) {
		c.LoopInterval = loop
		c.LoopHook = func() {
			if ch := hang.Load(); ch != nil {
				<-*ch
			}
		}
	})
	release := func() {
		if ch := hang.Swap(nil); ch != nil {
			close(*ch)
		}
	}
	t.Cleanup(release) // before the Manager closes: Close waits for the loop
	s := simtest.Start(t, sim.Config{Cameras: 1})
	e.add("secretcam", "rtsp://admin:hunter2@"+strings.TrimPrefix(s.URL(1), "rtsp://"), "")

	fd := NewFDWatch(FDWatchConfig{Interval: 20 * time.Millisecond, Logger: testutil.Logger(&testutil.LogBuffer{})})
	runWatch(t, fd)
	healthz, readyz := HealthHandlers(e.m, loop, fd)

	r := get(t, healthz, http.MethodGet)
	if r.code != http.StatusOK || r.body.Status != "ok" || r.body.Degraded == nil || *r.body.Degraded {
		t.Fatalf("healthy Manager: %d %s", r.code, r.raw)
	}
	if r := get(t, readyz, http.MethodGet); r.code != http.StatusOK || r.body.Status != "ready" {
		t.Fatalf("readyz after Start: %d %s", r.code, r.raw)
	}

	ch := make(chan struct{})
	hang.Store(&ch)
	hungAt := time.Now()
	if !testutil.Poll(20*time.Second, func() bool { r = get(t, healthz, http.MethodGet); return r.code == http.StatusServiceUnavailable }) {
		t.Fatalf("healthz still %d 20 s after the loop hung: %s", r.code, r.raw)
	}
	t.Logf("503 after %s: %s", time.Since(hungAt).Round(time.Millisecond), r.raw)
	if d := time.Since(hungAt); d < 2*time.Second {
		t.Errorf("503 after %s, before the limit of 3×%s + 2 s", d, loop)
	}
	if r.body.Status != "unhealthy" || !strings.Contains(r.body.Reason, "supervision loop") {
		t.Errorf("reason: %s", r.raw)
	}
	if r := get(t, healthz, http.MethodHead); r.code != http.StatusServiceUnavailable || r.raw != "" {
		t.Errorf("HEAD: %d %q", r.code, r.raw)
	}

	release()
	if !testutil.Poll(20*time.Second, func() bool { r = get(t, healthz, http.MethodGet); return r.code == http.StatusOK }) {
		t.Fatalf("healthz still %d 20 s after the loop was released: %s", r.code, r.raw)
	}
	for _, body := range []string{r.raw, get(t, readyz, http.MethodGet).raw} {
		if strings.Contains(body, "secretcam") || strings.Contains(body, "hunter2") || strings.Contains(body, "rtsp") {
			t.Errorf("health reveals a camera: %s", body)
		}
	}
}

func TestHealthzDegradedIsStillLive(t *testing.T) {
	e := newEnv(t)
	fc := &fakeCount{}
	fc.total.Store(10)
	fd := NewFDWatch(FDWatchConfig{Interval: 10 * time.Millisecond, Logger: testutil.Logger(&testutil.LogBuffer{}), Count: fc.count})
	runWatch(t, fd)
	waitFirstCount(t, fd)
	fc.total.Store(500)
	if !testutil.Poll(10*time.Second, func() bool { d, _ := fd.Degraded(); return d }) {
		t.Fatal("not degraded")
	}
	healthz, _ := HealthHandlers(e.m, 0, fd)
	r := get(t, healthz, http.MethodGet)
	if r.code != http.StatusOK || r.body.Degraded == nil || !*r.body.Degraded || !strings.Contains(r.body.DegradedReason, "500") {
		t.Errorf("degraded: %d %s", r.code, r.raw)
	}
	// Without a watch, degraded is false.
	healthz, _ = HealthHandlers(e.m, 0, nil)
	if r := get(t, healthz, http.MethodGet); r.code != http.StatusOK || r.body.Degraded == nil || *r.body.Degraded {
		t.Errorf("no watch: %d %s", r.code, r.raw)
	}
}

func TestReadyzBeforeStart(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := device.NewManager(device.Config{Store: st, Logger: testutil.Logger(&testutil.LogBuffer{})})
	if err != nil {
		t.Fatal(err)
	}
	healthz, readyz := HealthHandlers(m, time.Second, nil)
	if r := get(t, readyz, http.MethodGet); r.code != http.StatusServiceUnavailable || r.body.Reason == "" {
		t.Errorf("readyz before Start: %d %s", r.code, r.raw)
	}
	if r := get(t, healthz, http.MethodGet); r.code != http.StatusServiceUnavailable {
		t.Errorf("healthz before Start: %d %s", r.code, r.raw)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if r := get(t, readyz, http.MethodGet); r.code != http.StatusOK {
		t.Errorf("readyz after Start: %d %s", r.code, r.raw)
	}
	if r := get(t, healthz, http.MethodGet); r.code != http.StatusOK {
		t.Errorf("healthz after Start: %d %s", r.code, r.raw)
	}
	rec := httptest.NewRecorder()
	readyz.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	if !json.Valid(b) {
		t.Errorf("POST body not JSON: %q", b)
	}
}
