package device

import "github.com/camd/camd/store"

// live is every state of a camera that should run.
var live = []State{StateStarting, StateRunning, StateReconnecting, StateCrashed, StateRefused}

// startSteps begin running a camera that was STOPPED.
func startSteps(extra ...step) []step {
	s := []step{sResetCounts, sFailingFromStart, sEmitStarted}
	s = append(s, extra...)
	return append(s, enter(StateStarting), sArmFail, sLaunch)
}

// stallSteps restart an attempt that has shown no frame for StallTimeout.
func stallSteps(to ...step) []step {
	s := []step{sStalled, sFailingSince, sArmFail}
	s = append(s, to...)
	return append(s, sRestartAttempt)
}

// endedRow is a row for an attempt that failed (not refused, no panic):
// it is counted, the failure timed, and the next attempt is due after the
// backoff; to, if given, is the state shown meanwhile.
func endedRow(in []State, when guard, why string, to ...step) rule {
	do := append([]step{sEndAttempt, sFailingSince, sFailed, sClearRefusals}, to...)
	return rule{on: evAttemptEnded, in: in, when: when, do: append(do, sRetryBackoff, sArmFail), why: why}
}

// machineRules is the camera state machine. For an event, the first row
// whose state and guard match applies: its steps run in order, and then,
// if it names one, the next event is handled the same way. A row without a
// guard is the otherwise of those above it.
var machineRules = []rule{
	// Operator commands, and start-up recovery (start, by "recovery").
	{on: evStart, in: []State{StateStopped}, when: gPersistedStopped,
		do: startSteps(persist(store.StatusRunning)), why: "an operator's start is recorded, so it survives a restart of camd"},
	{on: evStart, in: []State{StateStopped}, when: gPersistedCrashed,
		do: startSteps(sResumeOutage), why: "camd stopped while it was down: its camera_up times the whole outage"},
	{on: evStart, in: []State{StateStopped},
		do: startSteps(), why: "persisted running: recovery at start-up, or a camera re-created by an update"},
	{on: evStart, in: live, why: "already running"},

	{on: evRestart, in: []State{StateStopped}, then: evStart, why: "restarting a stopped camera starts it"},
	{on: evRestart, in: []State{StateStarting, StateRunning, StateReconnecting},
		do:  []step{sCountRestart, sLogRestarted, sResetBackoff, enter(StateStarting), sRestartAttempt},
		why: "an operator's change retries at once"},
	{on: evRestart, in: []State{StateCrashed, StateRefused},
		do:  []step{sCountRestart, sLogRestarted, sResetBackoff, sRestartAttempt},
		why: "a down camera stays down until a frame arrives"},

	{on: evStop, in: []State{StateStopped}, do: []step{persist(store.StatusStopped)},
		why: "records the stop again"},
	{on: evStop, in: live,
		do:  []step{sStopTimers, sStopAttempt, sClearOutage, enter(StateStopped), persist(store.StatusStopped), sLogStopped, sEmitStopped},
		why: "only an operator's stop keeps a camera stopped across restarts"},

	{on: evSettings, do: []step{sApplySettings, sRearmStall, sArmFail}, why: "deadlines follow the new thresholds"},

	// The reader.
	{on: evFirstFrame, in: live, when: gReplacing,
		why: "a frame from an attempt being replaced does not count: its replacement has shown nothing"},
	{on: evFirstFrame, in: live,
		do:  []step{sLogRecovered, sKickOthers, sEmitUp, sHealthy, enter(StateRunning), persist(store.StatusRunning), sArmStall},
		why: "only a frame makes a camera RUNNING, and ends CRASHED"},

	{on: evAttemptEnded, in: live, when: gReplacing, do: []step{sEndAttempt, sRelaunch},
		why: "restart, stall or forced restart: the new attempt waited for this one"},
	{on: evAttemptEnded, in: live, when: gPanicked,
		do:  []step{sEndAttempt, sFailingSince, sCrashed, enter(StateCrashed), persist(store.StatusCrashed), sRetryCrash, sArmFail},
		why: "a panic is a bug, not a flap: down at once; repeated crashes back off"},
	{on: evAttemptEnded, in: live, when: gRefused,
		do:  []step{sEndAttempt, sFailingSince, sFailed, enter(StateRefused), sRetryRefused, sArmFail},
		why: "cameras lock accounts after failed logins: minutes between tries"},
	endedRow([]State{StateRefused}, gPersistedCrashed, "down for longer than the debounce: stays down", enter(StateCrashed)),
	endedRow([]State{StateCrashed}, always, "CRASHED is sticky across reconnects: only a frame ends it"),
	endedRow([]State{StateStarting, StateRunning, StateReconnecting, StateRefused}, always,
		"a flap writes nothing; the failing timer decides when it is down", enter(StateReconnecting)),

	// Timers.
	{on: evStallTimer, when: gNoCurrentAttempt, why: "nothing to watch"},
	{on: evStallTimer, when: gFrameWithinStall, do: []step{sRearmStall}, why: "the deadline moved with the frames"},
	{on: evStallTimer, in: []State{StateStarting}, do: stallSteps(enter(StateReconnecting)),
		why: "the stall timer runs in STARTING too: a connection that shows no frame is restarted"},
	{on: evStallTimer, in: []State{StateRunning, StateReconnecting}, do: stallSteps(enter(StateReconnecting)),
		why: "the camera was seen working and is being reconnected"},
	{on: evStallTimer, in: []State{StateCrashed, StateRefused}, do: stallSteps(),
		why: "a down camera stays down until a frame arrives"},

	{on: evRetryTimer, in: live, when: gNoAttempt, do: []step{sLaunch}, why: "the backoff is over"},
	{on: evRetryTimer, why: "a restart or stop came first"},

	{on: evKick, when: gNoRetryPending, why: "not waiting out a backoff"},
	{on: evKick, when: gRefusing, why: "a refusal is the camera's answer, not the network's"},
	{on: evKick, when: gKickedRecently, why: "a camera that is really down is not retried at every recovery of another"},
	{on: evKick, do: []step{sHurry}, why: "another camera came back: the network may be back"},

	{on: evAbandonTimer, in: live, when: gReplacing, do: []step{sAbandon, sLaunch},
		why: "a hung reader must not hold the camera down for good"},
	{on: evAbandonTimer, why: "the reader returned in time"},

	{on: evFailTimer, in: live, when: gFailing, then: evCrashCheck, why: "down, announce and force checks, in turn"},
	{on: evFailTimer, why: "healthy or stopped"},

	{on: evCrashCheck, in: []State{StateRefused}, when: gCrashDueUnrecorded,
		do: []step{sLogDown, persist(store.StatusCrashed)}, then: evDownCheck,
		why: "a refused camera keeps saying why it is down"},
	{on: evCrashCheck, in: []State{StateStarting, StateRunning, StateReconnecting, StateCrashed}, when: gCrashDueNotCounted,
		do: []step{sLogDown, enter(StateCrashed), persist(store.StatusCrashed)}, then: evDownCheck,
		why: "failing past the debounce counts as down; a flap before it writes nothing"},
	{on: evCrashCheck, then: evDownCheck},

	{on: evDownCheck, when: gCrashDueUnannounced, do: []step{sAnnounceDown}, then: evForceCheck,
		why: "one camera_down per outage"},
	{on: evDownCheck, then: evForceCheck},

	{on: evForceCheck, when: gForceDueSession, do: []step{sCountForce, sForced, sRestartAttempt, sArmFail},
		why: "a session that has had answers and still no frame went bad"},
	{on: evForceCheck, when: gForceDue, do: []step{sCountForce, sArmFail},
		why: "between attempts, or in a fresh one, the backoff decides"},
	{on: evForceCheck, do: []step{sArmFail}},
}
