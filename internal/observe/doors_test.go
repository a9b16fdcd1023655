package observe

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// TestFDWatchCeilingExemptsClientConns: descriptors held by client
// connections (Exempt) do not count toward the ceiling; others still do.
func TestFDWatchCeilingExemptsClientConns(t *testing.T) {
	logs := &testutil.LogBuffer{}
	fc := &fakeCount{}
	fc.total.Store(50)
	var clients, calls atomic.Int64
	w := NewFDWatch(FDWatchConfig{Interval: 10 * time.Millisecond, Ceiling: 100,
		OnCeiling: func() { calls.Add(1) }, Exempt: func() int { return int(clients.Load()) },
		Logger: testutil.Logger(logs), Count: fc.count})
	runWatch(t, w)
	waitFirstCount(t, w)
	// 200 client connections on top of 50 of camd's own.
	clients.Store(200)
	fc.total.Store(250)
	n0 := fc.calls.Load()
	if !testutil.Poll(10*time.Second, func() bool { return fc.calls.Load() > n0+20 }) {
		t.Fatal("the watch stopped counting")
	}
	if calls.Load() != 0 {
		t.Fatalf("200 client connections crossed a ceiling of 100:\n%s", logs)
	}
	// 60 more descriptors of camd's own cross it.
	fc.total.Store(310)
	if !testutil.Poll(10*time.Second, func() bool { return calls.Load() > 0 }) {
		t.Fatalf("110 own descriptors did not cross a ceiling of 100:\n%s", logs)
	}
	if l := logs.Lines("ceiling crossed"); len(l) != 1 || !strings.Contains(l[0], "client_conns=200") {
		t.Errorf("ceiling lines %q, want one naming client_conns=200", l)
	}
}

// TestHealthzFailsACheck: a failing check (a dead relay) makes healthz
// 503 with its error as the reason; readyz is not affected.
func TestHealthzFailsACheck(t *testing.T) {
	e := newEnv(t)
	var dead atomic.Pointer[error]
	check := func() error {
		if p := dead.Load(); p != nil {
			return *p
		}
		return nil
	}
	healthz, readyz := HealthHandlers(e.m, 100*time.Millisecond, nil, check)
	if r := get(t, healthz, http.MethodGet); r.code != http.StatusOK {
		t.Fatalf("healthz with a passing check: %d %s", r.code, r.raw)
	}
	err := errors.New("relay: stopped serving: accept: broken")
	dead.Store(&err)
	r := get(t, healthz, http.MethodGet)
	if r.code != http.StatusServiceUnavailable || r.body.Status != "unhealthy" || r.body.Reason != err.Error() {
		t.Fatalf("healthz with a failing check: %d %s", r.code, r.raw)
	}
	if r := get(t, readyz, http.MethodGet); r.code != http.StatusOK {
		t.Errorf("readyz: %d %s", r.code, r.raw)
	}
}
