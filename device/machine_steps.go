package device

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/store"
)

// The guards and steps that machineRules is written in. Each is small and
// named; the names are what the generated table shows.

var (
	always = guard{}

	gPersistedStopped = guard{"persisted stopped", func(m *machine, _ event, _ env) bool {
		return m.persisted == store.StatusStopped
	}}
	gPersistedCrashed = guard{"persisted crashed", func(m *machine, _ event, _ env) bool {
		return m.persisted == store.StatusCrashed
	}}
	gReplacing = guard{"its replacement waits", func(m *machine, _ event, _ env) bool {
		return m.relaunch
	}}
	gNoCurrentAttempt = guard{"no attempt, or it is being replaced", func(m *machine, _ event, _ env) bool {
		return !m.attempt || m.relaunch
	}}
	gNoAttempt = guard{"no attempt in flight", func(m *machine, _ event, _ env) bool {
		return !m.attempt
	}}
	gFrameWithinStall = guard{"a frame within StallTimeout", func(m *machine, ev event, e env) bool {
		from := m.attemptAt
		if ev.lastFrame.After(from) {
			from = ev.lastFrame
		}
		return from.Add(e.set.StallTimeout).After(e.now)
	}}
	gPanicked = guard{"reader panicked", func(_ *machine, ev event, _ env) bool {
		return ev.end == endPanicked
	}}
	gRefused = guard{"camera refused", func(_ *machine, ev event, _ env) bool {
		return ev.end == endRefused
	}}
	gFailing = guard{"failing", func(m *machine, _ event, _ env) bool {
		return !m.failingSince.IsZero()
	}}
	gCrashDueUnrecorded = guard{"past CrashedAfter, not persisted crashed", func(m *machine, _ event, e env) bool {
		return !e.now.Before(m.crashAt(e.set)) && m.persisted != store.StatusCrashed
	}}
	gCrashDueNotCounted = guard{"past CrashedAfter, not yet CRASHED and persisted so", func(m *machine, _ event, e env) bool {
		return !e.now.Before(m.crashAt(e.set)) && !m.countedDown()
	}}
	gCrashDueUnannounced = guard{"past CrashedAfter, no camera_down yet", func(m *machine, _ event, e env) bool {
		return !e.now.Before(m.crashAt(e.set)) && m.downFrom.IsZero()
	}}
	gForceDueSession = guard{"past next ForceRestartAfter; attempt in flight ≥ ReadTimeout, not being replaced", func(m *machine, _ event, e env) bool {
		return !e.now.Before(m.forceAt(e.set)) && m.attempt && !m.relaunch && e.now.Sub(m.attemptAt) >= e.set.ReadTimeout
	}}
	gForceDue = guard{"past next ForceRestartAfter", func(m *machine, _ event, e env) bool {
		return !e.now.Before(m.forceAt(e.set))
	}}
	gNoRetryPending = guard{"no retry pending", func(m *machine, _ event, _ env) bool {
		return m.state == StateStopped || m.attempt || m.retryAt.IsZero()
	}}
	gRefusing = guard{"refused in a row", func(m *machine, _ event, _ env) bool {
		return m.refusals > 0
	}}
	gKickedRecently = guard{"kicked within BackoffMax", func(m *machine, _ event, e env) bool {
		return !m.kickedAt.IsZero() && e.now.Sub(m.kickedAt) < e.set.BackoffMax
	}}
)

// enter shows state st.
func enter(st State) step {
	return step{name: "→ " + st.String(), to: &st, run: func(c *stepCtx) {
		c.m.state = st
		c.add(action{kind: aSetState, state: st})
	}}
}

// persist records status ps; the supervisor writes it only if it differs
// from what is on disk.
func persist(ps store.Status) step {
	return step{name: "persist " + string(ps), persist: ps, run: func(c *stepCtx) {
		if c.m.persisted != ps {
			c.m.persisted, c.m.persistedAt = ps, c.e.now
		}
		c.add(action{kind: aPersist, status: ps})
	}}
}

// simple is a step that only asks the supervisor for kinds.
func simple(name string, kinds ...actionKind) step {
	return step{name: name, run: func(c *stepCtx) {
		for _, k := range kinds {
			c.add(action{kind: k})
		}
	}}
}

var (
	sResetCounts = step{name: "reset retry counts", run: func(c *stepCtx) {
		m := c.m
		m.fails, m.refusals, m.crashRun, m.forced = 0, 0, 0, 0
		m.stallSent, m.crashSent, m.forcedSent = false, false, false
	}}
	sFailingFromStart = step{name: "failing since now", run: func(c *stepCtx) {
		c.m.failingSince = c.e.now
	}}
	sEmitStarted = step{name: "emit camera_started (if by someone)", run: func(c *stepCtx) {
		if c.ev.by != "" {
			c.emit(events.CameraStarted, map[string]string{"by": c.ev.by})
		}
	}}
	// A camera persisted as crashed was down (announced) when camd last
	// stopped: its recovery is that outage's end, timed from when it was
	// persisted (the debounce after it began).
	sResumeOutage = step{name: "outage announced since persisted", run: func(c *stepCtx) {
		if c.m.downFrom.IsZero() {
			c.m.downFrom = c.m.persistedAt
		}
	}}
	sArmFail = step{name: "arm failing timer", run: func(c *stepCtx) {
		m := c.m
		if m.state == StateStopped || m.failingSince.IsZero() {
			c.add(action{kind: aStopFail})
			return
		}
		c.add(action{kind: aArmFail, at: m.nextEscalation(c.e.set)})
	}}
	sLaunch = step{name: "launch", run: launch}

	sStopTimers = step{name: "stop timers", run: func(c *stepCtx) {
		c.m.retryAt = time.Time{}
		c.add(action{kind: aStopRetry})
		c.add(action{kind: aStopStall})
		c.add(action{kind: aStopFail})
	}}
	sStopAttempt = step{name: "stop attempt", run: func(c *stepCtx) {
		c.m.attempt, c.m.relaunch = false, false
		c.add(action{kind: aStopAttempt})
	}}
	sClearOutage = step{name: "clear failing and outage", run: func(c *stepCtx) {
		c.m.failingSince, c.m.downFrom = time.Time{}, time.Time{}
	}}
	sLogStopped  = step{name: "log", run: func(c *stepCtx) { c.log(slog.LevelInfo, "camera stopped by operator") }}
	sEmitStopped = step{name: "emit camera_stopped", run: func(c *stepCtx) {
		c.emit(events.CameraStopped, map[string]string{"by": "operator"})
	}}

	sCountRestart = step{name: "count restart", run: func(c *stepCtx) {
		c.add(action{kind: aCount, count: countRestart})
	}}
	sLogRestarted   = step{name: "log", run: func(c *stepCtx) { c.log(slog.LevelInfo, "camera restarted by operator") }}
	sResetBackoff   = step{name: "reset backoff", run: func(c *stepCtx) { c.m.fails, c.m.refusals = 0, 0 }}
	sRestartAttempt = step{name: "restart attempt", run: restartAttempt}

	sApplySettings = simple("apply settings", aApplySettings)
	sRearmStall    = step{name: "re-arm stall timer (if attempt)", run: func(c *stepCtx) {
		if c.m.attempt {
			c.add(action{kind: aArmStall})
		}
	}}
	sArmStall = simple("arm stall timer", aArmStall)

	sLogRecovered = step{name: "log recovered (unless STARTING)", run: func(c *stepCtx) {
		if !c.m.failingSince.IsZero() && c.m.state != StateStarting {
			c.log(slog.LevelInfo, "camera recovered", "down_for", c.e.now.Sub(c.m.failingSince).Round(time.Millisecond))
		}
	}}
	sKickOthers = step{name: "kick others (after failed attempts)", run: func(c *stepCtx) {
		if c.m.fails > 0 {
			c.add(action{kind: aKickOthers})
		}
	}}
	sEmitUp = step{name: "emit camera_up (if announced down)", run: func(c *stepCtx) {
		if !c.m.downFrom.IsZero() {
			c.emit(events.CameraUp, map[string]string{"down_for": c.e.now.Sub(c.m.downFrom).Round(time.Millisecond).String()})
			c.m.downFrom = time.Time{}
		}
	}}
	sHealthy = step{name: "healthy: clear failure", run: func(c *stepCtx) {
		m := c.m
		m.stallSent, m.crashSent, m.forcedSent = false, false, false
		m.failingSince, m.kickedAt = time.Time{}, time.Time{}
		m.fails, m.refusals, m.crashRun, m.forced = 0, 0, 0, 0
		c.add(action{kind: aStopFail})
	}}

	sStalled      = step{name: "count stall, log, emit camera_stalled (once)", run: stalled}
	sFailingSince = step{name: "failing since now (if not yet)", run: func(c *stepCtx) {
		if c.m.failingSince.IsZero() {
			c.m.failingSince, c.m.forced = c.e.now, 0
		}
	}}

	sEndAttempt = step{name: "end attempt", run: func(c *stepCtx) {
		c.m.attempt = false
		c.add(action{kind: aEndAttempt})
		c.add(action{kind: aStopStall})
		c.add(action{kind: aStopAbandon})
	}}
	sRelaunch = step{name: "launch the replacement", run: func(c *stepCtx) {
		c.m.relaunch = false
		launch(c)
	}}
	sCrashed    = step{name: "count crash, log, emit camera_crashed (once)", run: crashed}
	sRetryCrash = step{name: "retry after crash backoff (first at once)", run: func(c *stepCtx) {
		set := c.e.set
		retry(c, c.e.crashBackoff(c.m.crashRun, set.BackoffMin, set.BackoffMax))
	}}
	sFailed = step{name: "count reconnect", run: func(c *stepCtx) {
		c.m.fails++
		c.m.lastError = c.ev.msg
		c.add(action{kind: aCount, count: countReconnect, msg: c.ev.msg, at: c.e.now})
	}}
	sRetryRefused  = step{name: "retry on the refusal schedule", run: retryRefused}
	sClearRefusals = step{name: "reset refusals", run: func(c *stepCtx) { c.m.refusals = 0 }}
	sRetryBackoff  = step{name: "retry after backoff", run: func(c *stepCtx) {
		set := c.e.set
		d := c.e.backoff(c.m.fails, set.BackoffMin, set.BackoffMax)
		c.log(slog.LevelInfo, "camera connection ended; retrying", "err", c.ev.msg, "retry_in", d.Round(time.Millisecond))
		retry(c, d)
	}}

	sLogDown      = step{name: "log down", run: logDown}
	sAnnounceDown = step{name: "emit camera_down", run: func(c *stepCtx) {
		c.m.downFrom = c.m.failingSince
		c.emit(events.CameraDown, map[string]string{"error": c.m.lastError, "since": c.m.failingSince.UTC().Format(time.RFC3339Nano)})
	}}
	sCountForce = step{name: "count forced restart", run: func(c *stepCtx) { c.m.forced++ }}
	sForced     = step{name: "count restart, log, emit camera_forced_restart (once)", run: forced}

	sAbandon = step{name: "abandon the reader", run: func(c *stepCtx) {
		c.m.attempt, c.m.relaunch = false, false
		c.log(slog.LevelError, "reader did not stop after cancel; abandoning it and reconnecting", "waited", abandonAfter(c.e.set))
		c.add(action{kind: aAbandon})
	}}
	sHurry = step{name: "retry after the shortest backoff (if sooner)", run: hurry}
)

// launch starts one connection attempt.
func launch(c *stepCtx) {
	c.m.attempt, c.m.attemptAt = true, c.e.now
	c.m.retryAt = time.Time{}
	c.add(action{kind: aStopRetry})
	c.add(action{kind: aLaunch})
	c.add(action{kind: aArmStall})
}

// restartAttempt starts a fresh attempt: at once if none is in flight, else
// once the one in flight, cancelled now, has ended (or been abandoned).
func restartAttempt(c *stepCtx) {
	m := c.m
	m.retryAt = time.Time{}
	c.add(action{kind: aStopRetry})
	c.add(action{kind: aStopStall})
	if !m.attempt {
		launch(c)
		return
	}
	if !m.relaunch {
		m.relaunch = true
		c.add(action{kind: aArmAbandon, delay: abandonAfter(c.e.set)})
	}
	c.add(action{kind: aCancel})
}

// retry sets the next attempt d from now.
func retry(c *stepCtx, d time.Duration) {
	c.m.retryAt = c.e.now.Add(d)
	c.add(action{kind: aRetry, delay: d})
}

func stalled(c *stepCtx) {
	timeout := c.e.set.StallTimeout
	msg := fmt.Sprintf("no video frame for %s", timeout)
	c.m.lastError = msg
	c.add(action{kind: aCount, count: countStall, msg: msg, at: c.e.now})
	c.log(slog.LevelWarn, "camera stalled; restarting the connection", "no_frame_for", timeout)
	if !c.m.stallSent {
		c.m.stallSent = true
		c.emit(events.CameraStalled, map[string]string{"error": msg})
	}
}

func crashed(c *stepCtx) {
	m := c.m
	m.crashRun++
	m.lastError = c.ev.msg
	c.add(action{kind: aCount, count: countCrash, msg: c.ev.msg, at: c.e.now})
	c.log(slog.LevelError, "camera reader crashed; restarting", "err", c.ev.msg, "crashes_in_a_row", m.crashRun)
	if !m.crashSent {
		m.crashSent = true
		c.emit(events.CameraCrashed, map[string]string{"error": c.ev.msg})
	}
}

// retryRefused waits out the long schedule: retrying at once will not cure
// a refusal, and a camera that locks an account after failed logins counts
// every try.
func retryRefused(c *stepCtx) {
	set := c.e.set
	c.m.refusals++
	d := c.e.backoff(c.m.refusals, set.RefusedRetry, set.RefusedRetryMax)
	if c.m.refusals == 1 {
		c.log(slog.LevelWarn, "camera refused the connection; retrying on the long schedule", "err", c.ev.msg, "retry_in", d.Round(time.Second))
	} else {
		c.log(slog.LevelInfo, "camera refused the connection again", "err", c.ev.msg, "retry_in", d.Round(time.Second))
	}
	retry(c, d)
}

func logDown(c *stepCtx) {
	m := c.m
	c.log(slog.LevelWarn, "camera is down", "failing_for", c.e.now.Sub(m.failingSince).Round(time.Millisecond), "last_error", m.lastError)
}

func forced(c *stepCtx) {
	m := c.m
	failing := c.e.now.Sub(m.failingSince)
	c.add(action{kind: aCount, count: countRestart})
	c.log(slog.LevelWarn, "camera still failing; forcing a full restart", "failing_for", failing.Round(time.Millisecond))
	if !m.forcedSent {
		m.forcedSent = true
		c.emit(events.CameraForcedRestart, map[string]string{"failing_for": failing.Round(time.Second).String()})
	}
}

// hurry moves a pending retry to the shortest backoff, if that is sooner
// (the jitter keeps cameras from reconnecting in lock-step).
func hurry(c *stepCtx) {
	set := c.e.set
	d := c.e.backoff(1, set.BackoffMin, set.BackoffMax)
	if due := c.m.retryAt.Sub(c.e.now); due > d {
		c.m.kickedAt = c.e.now
		c.log(slog.LevelInfo, "another camera came back; retrying sooner", "was_due_in", due.Round(time.Millisecond), "retry_in", d.Round(time.Millisecond))
		retry(c, d)
	}
}
