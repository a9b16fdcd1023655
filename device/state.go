package device

// State is a camera's live state.
type State int

// Camera states; see docs/ARCHITECTURE.md#the-camera-state-machine.
const (
	// StateStopped: an operator stopped it (or never started it).
	StateStopped State = iota
	// StateStarting: it should run; connecting; no frame yet since this (re)start.
	StateStarting
	// StateRunning: video frames are arriving.
	StateRunning
	// StateReconnecting: the connection failed or closed; retrying with backoff.
	StateReconnecting
	// StateCrashed: failing long enough to count as down, or its reader panicked.
	// It is still retried.
	StateCrashed
	// StateRefused: the camera refused us in a way that retrying at once
	// will not cure (wrong password, no such path, no readable video, an
	// untrusted certificate, an unknown host name; stream.ErrRefused). It
	// is retried on the long RefusedRetry schedule, and at once when an
	// operator changes or restarts it.
	StateRefused
)

// States lists every state, in order.
var States = []State{StateStopped, StateStarting, StateRunning, StateReconnecting, StateCrashed, StateRefused}

// down reports whether the state counts as down: CRASHED or REFUSED.
func (s State) down() bool { return s == StateCrashed || s == StateRefused }

// String returns the state's name in upper case, as shown to operators.
func (s State) String() string {
	switch s {
	case StateStopped:
		return "STOPPED"
	case StateStarting:
		return "STARTING"
	case StateRunning:
		return "RUNNING"
	case StateReconnecting:
		return "RECONNECTING"
	case StateCrashed:
		return "CRASHED"
	case StateRefused:
		return "REFUSED"
	}
	return "UNKNOWN"
}

// ParseState parses a state name as returned by String.
func ParseState(s string) (State, bool) {
	for _, st := range States {
		if st.String() == s {
			return st, true
		}
	}
	return StateStopped, false
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
