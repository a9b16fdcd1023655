package observe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/camd/camd/device"
)

// healthBody is the JSON of /healthz and /readyz. It names no camera.
type healthBody struct {
	Status string `json:"status"`
	// Reason says, in one line, why the status is not ok.
	Reason string `json:"reason,omitempty"`
	// Degraded is set (on /healthz) while the descriptor watch finds far
	// more open file descriptors than expected; the process is still live.
	Degraded *bool `json:"degraded,omitempty"`
	// DegradedReason says why it is degraded.
	DegradedReason string `json:"degraded_reason,omitempty"`
	// LastLoopAgeSeconds is how long ago the supervision loop last ran.
	LastLoopAgeSeconds *float64 `json:"last_loop_age_seconds,omitempty"`
}

// HealthHandlers returns the liveness and readiness handlers.
//
// healthz answers 200 while the Manager's supervision loop has run within
// 3×loopInterval + 2 s, and 503 with a one-line JSON reason otherwise (a
// hung loop: the supervisor should restart camd). It reports the descriptor
// watch's degraded flag, but degraded alone is still 200. loopInterval is
// device.Config.LoopInterval; it defaults to 1 second. fd may be nil.
//
// readyz answers 200 once start-up recovery is done (Manager.Ready), 503
// before.
//
// Each of checks is called by healthz too: a non-nil error (a component
// that has died, such as the relay) makes it answer 503 with the error as
// the reason, as a hung loop does.
//
// Both are cheap (no camera is listed) and reveal no camera name or URL, so
// they may be served without authentication. They answer GET and HEAD.
func HealthHandlers(m *device.Manager, loopInterval time.Duration, fd *FDWatch, checks ...func() error) (healthz, readyz http.Handler) {
	if loopInterval <= 0 {
		loopInterval = time.Second
	}
	limit := 3*loopInterval + 2*time.Second
	healthz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		deg, why := fd.Degraded()
		body := healthBody{Status: "ok", Degraded: &deg, DegradedReason: why}
		code := http.StatusOK
		last := m.LastLoop()
		if last.UnixNano() <= 0 {
			// Manager.Start sets LastLoop; before it nothing supervises.
			code = http.StatusServiceUnavailable
			body.Status, body.Reason = "unhealthy", "the supervision loop has not started"
		} else {
			age := time.Since(last)
			secs := age.Round(time.Millisecond).Seconds()
			body.LastLoopAgeSeconds = &secs
			if age > limit {
				code = http.StatusServiceUnavailable
				body.Status = "unhealthy"
				body.Reason = fmt.Sprintf("the supervision loop has not run for %s (limit %s)",
					age.Round(time.Millisecond), limit)
			}
		}
		for _, check := range checks {
			if err := check(); err != nil && code == http.StatusOK {
				code = http.StatusServiceUnavailable
				body.Status, body.Reason = "unhealthy", err.Error()
			}
		}
		writeHealth(w, r, code, body)
	})
	readyz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		if !m.Ready() {
			writeHealth(w, r, http.StatusServiceUnavailable,
				healthBody{Status: "starting", Reason: "start-up recovery has not finished"})
			return
		}
		writeHealth(w, r, http.StatusOK, healthBody{Status: "ready"})
	})
	return healthz, readyz
}

func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeHealth(w, r, http.StatusMethodNotAllowed, healthBody{Status: "error", Reason: "method not allowed; use GET or HEAD"})
	return false
}

func writeHealth(w http.ResponseWriter, r *http.Request, code int, body healthBody) {
	b, err := json.Marshal(body)
	if err != nil {
		// Cannot happen with these fields; answer something valid anyway.
		b = []byte(`{"status":"error"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
