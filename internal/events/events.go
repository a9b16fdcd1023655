// Package events is camd's one event type and the contract between the
// event history (kept in the store) and whatever tells people about it
// (the API's event stream, webhooks, MQTT).
//
// Events are appended to one log with ids that only grow. A consumer that
// must not miss one (a webhook, MQTT) remembers the last id it delivered
// (Log.Cursor, Log.SetCursor) and reads on from there after a restart, so
// delivery is at least once. A consumer is woken by Log.Changed and never
// holds up the writer: supervision appends and moves on.
package events

import (
	"context"
	"time"
)

// Kind says what happened.
type Kind string

// Camera kinds.
const (
	CameraAdded         Kind = "added"
	CameraRemoved       Kind = "removed"
	CameraStarted       Kind = "started" // Details["by"]: "operator" or "recovery"
	CameraStopped       Kind = "stopped" // Details["by"]: "operator"
	CameraDown          Kind = "down"    // failing for the debounce; Details["error"], ["since"] (RFC 3339)
	CameraUp            Kind = "up"      // back after a down; Details["down_for"] (Go duration)
	CameraStalled       Kind = "stalled" // connected but no video frame for stall_timeout
	CameraCrashed       Kind = "crashed" // its reader panicked
	CameraForcedRestart Kind = "forced_restart"
)

// Daemon kinds (Camera is empty).
const (
	DaemonStarted     Kind = "daemon_started"
	DaemonStopping    Kind = "daemon_stopping"
	FDWarning         Kind = "fd_warning"
	StoreWriteFailing Kind = "store_write_failing"
	StoreRecovered    Kind = "store_recovered"
	RelayFailed       Kind = "relay_failed"
)

// Event is one thing that happened. Its JSON form is what the API, the
// event stream, webhooks and MQTT carry.
type Event struct {
	// ID is assigned by the Log on Append: 1, 2, 3, ... never reused.
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Camera string    `json:"camera,omitempty"`
	Kind   Kind      `json:"kind"`
	// Details are short strings (already redacted: never a password).
	Details map[string]string `json:"details,omitempty"`
}

// Filter selects events; zero fields select everything.
type Filter struct {
	Camera string
	Kinds  []Kind
	Since  time.Time
}

// Log is the event history. Implementations are safe for concurrent use.
type Log interface {
	// Append assigns e an ID, stores it and wakes Changed waiters. It
	// must not block on consumers.
	Append(e Event) (Event, error)
	// After returns up to limit events with ID > after, oldest first,
	// that match f.
	After(after uint64, f Filter, limit int) ([]Event, error)
	// Changed returns a channel closed at the next Append.
	Changed() <-chan struct{}
	// Cursor and SetCursor keep a named consumer's last delivered ID
	// across restarts.
	Cursor(name string) (uint64, error)
	SetCursor(name string, id uint64) error
}

// Wait blocks until the log has an event after id or ctx is done.
func Wait(ctx context.Context, l Log, after uint64) error {
	for {
		ch := l.Changed()
		evs, err := l.After(after, Filter{}, 1)
		if err != nil || len(evs) > 0 {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
