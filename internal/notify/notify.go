// Package notify holds what camd's notifiers (webhook, mqtt) share: where
// a consumer of the event log starts, and the retry backoff.
//
// A notifier reads the event log (events.Log) from its own cursor and
// advances the cursor only once an event is delivered, so delivery is at
// least once across restarts. The log is bounded; a consumer that falls
// further behind than the log keeps loses the oldest events, and says so.
package notify

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/camd/camd/internal/events"
)

// knownSuffix names the marker cursor that says a consumer has been seen
// before: a cursor of 0 alone cannot tell "new" from "nothing delivered
// yet".
const knownSuffix = "#known"

// scanPage is how many events StartCursor reads at a time to find the end
// of the log.
const scanPage = 1000

// StartCursor returns the ID after which the named consumer reads. A
// consumer seen before resumes from its cursor; a new one starts at the
// end of the log (it is not sent the history that was there before it),
// and that start is recorded at once so that a restart before its first
// delivery loses nothing.
func StartCursor(l events.Log, name string) (uint64, error) {
	known, err := l.Cursor(name + knownSuffix)
	if err != nil {
		return 0, err
	}
	if known != 0 {
		return l.Cursor(name)
	}
	var last uint64
	for {
		evs, err := l.After(last, events.Filter{}, scanPage)
		if err != nil {
			return 0, err
		}
		if len(evs) == 0 {
			break
		}
		last = evs[len(evs)-1].ID
	}
	if err := l.SetCursor(name, last); err != nil {
		return 0, err
	}
	if err := l.SetCursor(name+knownSuffix, 1); err != nil {
		return 0, err
	}
	return last, nil
}

// Backoff is an exponential retry delay with jitter.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the delay before the next attempt: Min, doubling up to
// Max, each within ±20% so that many notifiers do not retry in step.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	j := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + j
}

// Reset starts the delays again from Min.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep waits d or until ctx is done; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Kinds are the event kinds a webhook may select.
var Kinds = []events.Kind{
	events.CameraAdded, events.CameraRemoved, events.CameraStarted, events.CameraStopped,
	events.CameraDown, events.CameraUp, events.CameraStalled, events.CameraCrashed, events.CameraForcedRestart,
	events.DaemonStarted, events.DaemonStopping, events.FDWarning, events.StoreWriteFailing,
	events.StoreRecovered, events.RelayFailed,
}
