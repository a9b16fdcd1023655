package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/camd/camd/internal/events"
)

// EventLog is the event history the API serves: events.Log, and the id of
// the newest event ever appended (where a new stream starts).
type EventLog interface {
	events.Log
	LastEventID() (uint64, error)
}

// Event paging limits of GET /api/v1/events.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// DefaultEventKeepalive is how often an idle event stream sends a comment
// when Config.EventKeepalive is 0.
const DefaultEventKeepalive = 15 * time.Second

// EventsPage is GET /api/v1/events' answer.
type EventsPage struct {
	Events []events.Event `json:"events"`
	// NextAfter is the after= of the next page: the id of the last event
	// returned, or the request's after when none was.
	NextAfter uint64 `json:"next_after"`
	// LastID is the id of the newest event ever appended, matching or
	// not: a client that follows the stream from here misses nothing.
	LastID uint64 `json:"last_id"`
}

// knownKinds are the kinds a kind= filter may name.
var knownKinds = map[events.Kind]bool{
	events.CameraAdded: true, events.CameraRemoved: true, events.CameraStarted: true, events.CameraStopped: true,
	events.CameraDown: true, events.CameraUp: true, events.CameraStalled: true, events.CameraCrashed: true,
	events.CameraForcedRestart: true, events.DaemonStarted: true, events.DaemonStopping: true,
	events.FDWarning: true, events.StoreWriteFailing: true, events.StoreRecovered: true, events.RelayFailed: true,
}

// eventQuery is a parsed query string of the event routes.
type eventQuery struct {
	f     events.Filter
	after uint64
	limit int
	tail  bool
}

// parseEventQuery reads camera=, kind= (comma-separated), since= (RFC 3339
// time, or a duration back from now such as 24h), after=, limit= and
// tail=1 (the newest limit events instead of the oldest).
func parseEventQuery(r *http.Request) (eventQuery, error) {
	q := r.URL.Query()
	eq := eventQuery{limit: DefaultEventLimit}
	eq.f.Camera = q.Get("camera")
	if k := q.Get("kind"); k != "" {
		for _, s := range strings.Split(k, ",") {
			kind := events.Kind(strings.TrimSpace(s))
			if !knownKinds[kind] {
				return eq, fmt.Errorf("kind: %q is not an event kind", oneLine(string(kind)))
			}
			eq.f.Kinds = append(eq.f.Kinds, kind)
		}
	}
	if v := q.Get("since"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			eq.f.Since = t
		} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			eq.f.Since = time.Now().Add(-d)
		} else {
			return eq, fmt.Errorf("since: %q is neither an RFC 3339 time nor a duration such as 24h", oneLine(v))
		}
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return eq, fmt.Errorf("after: %q is not an event id", oneLine(v))
		}
		eq.after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventLimit {
			return eq, fmt.Errorf("limit: %q is not a number from 1 to %d", oneLine(v), MaxEventLimit)
		}
		eq.limit = n
	}
	switch q.Get("tail") {
	case "", "0", "false":
	case "1", "true":
		eq.tail = true
	default:
		return eq, fmt.Errorf("tail: %q is not 1 or 0", oneLine(q.Get("tail")))
	}
	return eq, nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	eq, err := parseEventQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := eq.limit
	if eq.tail {
		limit = 0 // all that match, of which the newest are kept
	}
	lastID, err := s.cfg.Events.LastEventID()
	var evs []events.Event
	if err == nil {
		evs, err = s.cfg.Events.After(eq.after, eq.f, limit)
	}
	if err != nil {
		s.log.Error("read event history", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot read the event history")
		return
	}
	if eq.tail && len(evs) > eq.limit {
		evs = evs[len(evs)-eq.limit:]
	}
	page := EventsPage{Events: evs, NextAfter: eq.after, LastID: lastID}
	if len(evs) > 0 {
		page.NextAfter = evs[len(evs)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// streamEvents serves the events as Server-Sent Events: each with its id,
// so that a client reconnecting with Last-Event-ID (or ?last_event_id=,
// for clients that cannot set headers) first gets what it missed from the
// history; without either it gets the events from now on. An idle stream
// sends a comment every Config.EventKeepalive. The stream ends when the
// client goes or the server shuts down.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	eq, err := parseEventQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	var cursor uint64
	if last != "" {
		if cursor, err = strconv.ParseUint(strings.TrimSpace(last), 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Last-Event-ID: %q is not an event id", oneLine(last)))
			return
		}
	} else if cursor, err = s.cfg.Events.LastEventID(); err != nil {
		s.log.Error("read event history", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot read the event history")
		return
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests; a stream
	// lives long. The read deadline is lifted (Go's background read would
	// otherwise cancel the request when it fires); each write gets its own
	// deadline so that a client that stops reading is dropped.
	_ = rc.SetReadDeadline(time.Time{})
	keepalive := s.cfg.EventKeepalive
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(keepalive + 30*time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !write([]byte(": camd events\nretry: 2000\n\n")) {
		return
	}
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	go func() {
		select {
		case <-s.streamsDone:
			stop()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	const batch = 100
	for {
		changed := s.cfg.Events.Changed()
		// Read past every event, matching or not, so that the cursor
		// moves on; only the matching ones are sent.
		evs, err := s.cfg.Events.After(cursor, events.Filter{}, batch)
		if err != nil {
			s.log.Error("read event history", "err", err)
			return
		}
		var buf []byte
		for _, e := range evs {
			cursor = e.ID
			if !matches(e, eq.f) {
				continue
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue
			}
			buf = fmt.Appendf(buf, "id: %d\ndata: %s\n\n", e.ID, data)
		}
		if len(buf) > 0 && !write(buf) {
			return
		}
		if len(evs) == batch {
			continue
		}
		select {
		case <-changed:
		case <-tick.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func matches(e events.Event, f events.Filter) bool {
	if f.Camera != "" && e.Camera != f.Camera {
		return false
	}
	if len(f.Kinds) > 0 {
		found := false
		for _, k := range f.Kinds {
			found = found || k == e.Kind
		}
		if !found {
			return false
		}
	}
	return f.Since.IsZero() || !e.Time.Before(f.Since)
}
