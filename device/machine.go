package device

import (
	"log/slog"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/store"
)

//go:generate go run ./internal/gentable -doc ../docs/ARCHITECTURE.md

// The camera state machine. machine holds everything a camera's supervisor
// decides with; step applies one event to it by the rules of machineRules
// (machine_rules.go) and returns what the supervisor is to do. Nothing here
// touches a timer, a goroutine, the store or the network: the supervisor's
// run loop turns timers, commands and reader results into events and
// carries out the actions, so the rules can be read, and tested, as a table.

// machine is one camera's decision state. Only its supervisor's run
// goroutine holds it.
type machine struct {
	state       State
	persisted   store.Status
	persistedAt time.Time
	lastError   string

	attempt   bool      // a connection attempt is in flight
	attemptAt time.Time // when it started
	relaunch  bool      // it was cancelled and its replacement waits for its end

	// failingSince is when the camera stopped being RUNNING while it should
	// run; zero while healthy.
	failingSince time.Time
	forced       int // forced restarts during this failure
	// downFrom is when the outage began that a camera_down event
	// announced; zero while none is announced. The camera_up that ends it
	// carries how long it lasted.
	downFrom time.Time
	// Each of these kinds is emitted once per outage, so that a long one
	// costs a bounded number of event writes.
	stallSent, crashSent, forcedSent bool

	fails    int // consecutive failed attempts, for the backoff
	refusals int // consecutive refusals (stream.ErrRefused), for their schedule
	crashRun int // consecutive reader crashes
	retryAt  time.Time
	kickedAt time.Time // when a kick last moved the retry earlier in this outage
}

func newMachine(persisted store.Status, persistedAt time.Time, lastError string) machine {
	return machine{state: StateStopped, persisted: persisted, persistedAt: persistedAt, lastError: lastError}
}

type eventKind int

const (
	evNone eventKind = iota
	evStart
	evRestart
	evStop
	evSettings
	evAttemptEnded
	evFirstFrame
	evStallTimer
	evRetryTimer
	evKick
	evAbandonTimer
	evFailTimer
	// The failing timer serves two deadlines, counting as down and forcing a
	// restart; these are its checks, which it runs in this order.
	evCrashCheck
	evDownCheck
	evForceCheck
)

var eventNames = [...]string{
	evNone:         "",
	evStart:        "start",
	evRestart:      "restart",
	evStop:         "stop",
	evSettings:     "settings changed",
	evAttemptEnded: "attempt ended",
	evFirstFrame:   "first frame",
	evStallTimer:   "stall timer",
	evRetryTimer:   "retry timer",
	evKick:         "kick",
	evAbandonTimer: "abandon timer",
	evFailTimer:    "failing timer",
	evCrashCheck:   "failing timer: down check",
	evDownCheck:    "failing timer: announce check",
	evForceCheck:   "failing timer: force check",
}

func (k eventKind) String() string { return eventNames[k] }

// endKind is how a connection attempt ended, as the supervisor read its
// error.
type endKind int

const (
	endFailed   endKind = iota // closed, timed out, could not connect
	endRefused                 // stream.ErrRefused: wrong password, no such path…
	endPanicked                // the reader panicked
)

// event is something that happened to a camera.
type event struct {
	kind      eventKind
	by        string    // start, restart: who, for camera_started ("" for no event)
	end       endKind   // attempt ended
	msg       string    // attempt ended: its error, fit for display
	lastFrame time.Time // stall timer: when the newest frame arrived
}

// env is what step may know of the world besides the event.
type env struct {
	now time.Time
	set Settings
	// The retry delays; the supervisor draws them with jitter (backoff,
	// crashBackoff), tests with none.
	backoff, crashBackoff func(n int, min, max time.Duration) time.Duration
}

type actionKind int

const (
	aSetState    actionKind = iota // show state
	aPersist                       // record status (written only if it differs)
	aLaunch                        // start a connection attempt
	aCancel                        // cancel the attempt; its replacement waits for its end
	aStopAttempt                   // cancel the attempt and wait for it to end
	aEndAttempt                    // release the attempt that has ended
	aAbandon                       // give up on a cancelled reader that did not return
	aArmStall                      // StallTimeout after the last frame, or the attempt's start
	aStopStall
	aArmFail // at time at
	aStopFail
	aArmAbandon // after delay
	aStopAbandon
	aRetry // launch after delay
	aStopRetry
	aEmit          // emit event with details
	aLog           // log msg at level with args
	aCount         // count into the camera's status
	aKickOthers    // another camera may retry sooner: this one came back
	aApplySettings // pass the new ReadTimeout to live connections
)

var actionNames = [...]string{
	aSetState: "set state", aPersist: "persist", aLaunch: "launch", aCancel: "cancel",
	aStopAttempt: "stop attempt", aEndAttempt: "end attempt", aAbandon: "abandon",
	aArmStall: "arm stall", aStopStall: "stop stall", aArmFail: "arm failing", aStopFail: "stop failing",
	aArmAbandon: "arm abandon", aStopAbandon: "stop abandon", aRetry: "retry", aStopRetry: "stop retry",
	aEmit: "emit", aLog: "log", aCount: "count", aKickOthers: "kick others", aApplySettings: "apply settings",
}

func (k actionKind) String() string { return actionNames[k] }

// counter is one of the status counts an aCount bumps.
type counter int

const (
	countRestart counter = iota
	countCrash
	countReconnect
	countStall
)

// action is one thing the supervisor is to do; which fields matter depends
// on kind.
type action struct {
	kind    actionKind
	state   State
	status  store.Status
	at      time.Time
	delay   time.Duration
	event   events.Kind
	details map[string]string
	level   slog.Level
	msg     string
	args    []any
	count   counter
}

// step applies ev and returns the actions to carry out, in order, and the
// indexes in machineRules of the rows that applied.
func (m *machine) step(ev event, e env) ([]action, []int) {
	c := &stepCtx{m: m, ev: ev, e: e}
	for k := ev.kind; k != evNone; {
		i := matchRule(m, ev, k, e)
		if i < 0 {
			break
		}
		c.rows = append(c.rows, i)
		r := &machineRules[i]
		for _, s := range r.do {
			s.run(c)
		}
		k = r.then
	}
	return c.out, c.rows
}

// matchRule returns the first row for event kind k that applies to m, or -1.
func matchRule(m *machine, ev event, k eventKind, e env) int {
	for i := range machineRules {
		r := &machineRules[i]
		if r.on == k && r.appliesIn(m.state) && (r.when.ok == nil || r.when.ok(m, ev, e)) {
			return i
		}
	}
	return -1
}

// stepCtx is one step's working state: the machine, what happened, and the
// actions so far.
type stepCtx struct {
	m    *machine
	ev   event
	e    env
	out  []action
	rows []int
}

func (c *stepCtx) add(a action) { c.out = append(c.out, a) }

func (c *stepCtx) log(level slog.Level, msg string, args ...any) {
	c.add(action{kind: aLog, level: level, msg: msg, args: args})
}

func (c *stepCtx) emit(k events.Kind, details map[string]string) {
	c.add(action{kind: aEmit, event: k, details: details})
}

// rule is one row of the state table: in one of the states in, on event
// on, if when holds, do these steps and then handle event then.
type rule struct {
	on   eventKind
	in   []State // nil: every state
	when guard
	do   []step
	then eventKind
	why  string
}

func (r *rule) appliesIn(s State) bool {
	if r.in == nil {
		return true
	}
	for _, st := range r.in {
		if st == s {
			return true
		}
	}
	return false
}

// guard is a named condition on the machine, beyond its state.
type guard struct {
	name string
	ok   func(m *machine, ev event, e env) bool
}

// step is a named part of a row's effect. to and persist name what the
// step sets, for the table.
type step struct {
	name    string
	to      *State
	persist store.Status
	run     func(c *stepCtx)
}

// crashAt is when the current failure counts as down: after CrashedAfter,
// and never within the flap debounce.
func (m *machine) crashAt(set Settings) time.Time {
	return m.failingSince.Add(max(set.CrashedAfter, set.FlapDebounce))
}

// forceAt is when the next forced restart of this failure is due.
func (m *machine) forceAt(set Settings) time.Time {
	return m.failingSince.Add(time.Duration(m.forced+1) * set.ForceRestartAfter)
}

// countedDown reports whether the camera already shows and has recorded
// that it is down, so that the crash deadline has nothing left to do.
func (m *machine) countedDown() bool {
	return m.state.down() && m.persisted == store.StatusCrashed
}

// nextEscalation is when the failing timer is next due.
func (m *machine) nextEscalation(set Settings) time.Time {
	force := m.forceAt(set)
	if m.downFrom.IsZero() || !m.countedDown() {
		if c := m.crashAt(set); c.Before(force) {
			return c
		}
	}
	return force
}

// abandonAfter is how long a cancelled reader has to return before the
// supervisor gives up on it: stream.Read closes the connection at once on
// cancel, so only a bug (in the RTSP client, or a Tap that blocks) takes
// longer. A hung reader must not hold the camera down for good.
func abandonAfter(set Settings) time.Duration {
	return set.ReadTimeout + 5*time.Second
}
