package device

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/store"
)

// t0 is the machine tests' "now".
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixedBackoff is backoff without jitter: the longest delay it can draw.
func fixedBackoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return d
}

func fixedCrashBackoff(n int, min, max time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return fixedBackoff(n-1, min, max)
}

func testEnv() env {
	return env{now: t0, set: DefaultSettings(), backoff: fixedBackoff, crashBackoff: fixedCrashBackoff}
}

// same stands for "the state the row started in".
const same State = -1

// rowCase is how one row of machineRules is checked: a machine in each of
// the row's states, set up by given, receives ev; the rows in rows apply
// (the one under test first, then those it hands on to), leaving it in
// next with persisted recorded and having asked for acts (log lines not
// counted: they are checked by the behaviour tests).
type rowCase struct {
	row       int // 1-based, as in the generated table
	states    []State
	given     func(m *machine)
	ev        eventKind
	end       endKind
	rows      []int
	next      State
	persisted store.Status
	acts      []actionKind
	check     func(t *testing.T, m *machine, acts []action)
}

func failing(d time.Duration) func(m *machine) {
	return func(m *machine) { m.failingSince = t0.Add(-d) }
}

func inFlight(age time.Duration) func(m *machine) {
	return func(m *machine) { m.attempt, m.attemptAt = true, t0.Add(-age) }
}

func replacing(m *machine) { inFlight(time.Second)(m); m.relaunch = true }

func all(fs ...func(m *machine)) func(m *machine) {
	return func(m *machine) {
		for _, f := range fs {
			f(m)
		}
	}
}

func retryIn(d time.Duration) func(m *machine) { return func(m *machine) { m.retryAt = t0.Add(d) } }

func persisted(ps store.Status) func(m *machine) { return func(m *machine) { m.persisted = ps } }

var (
	launchActs  = []actionKind{aStopRetry, aLaunch, aArmStall}
	endActs     = []actionKind{aEndAttempt, aStopStall, aStopAbandon}
	cancelActs  = []actionKind{aStopRetry, aStopStall, aArmAbandon, aCancel}
	restartActs = append([]actionKind{aStopRetry, aStopStall}, launchActs...)
)

func cat(parts ...[]actionKind) []actionKind { return slices.Concat(parts...) }

func wantDelay(d time.Duration) func(t *testing.T, m *machine, acts []action) {
	return func(t *testing.T, _ *machine, acts []action) {
		for _, a := range acts {
			if a.kind == aRetry && a.delay != d {
				t.Errorf("retry in %v, want %v", a.delay, d)
			}
		}
	}
}

func wantEvent(k events.Kind) func(t *testing.T, m *machine, acts []action) {
	return func(t *testing.T, _ *machine, acts []action) {
		for _, a := range acts {
			if a.kind == aEmit && a.event == k {
				return
			}
		}
		t.Errorf("no %s emitted", k)
	}
}

var rowCases = []rowCase{
	{row: 1, given: persisted(store.StatusStopped), ev: evStart, rows: []int{1}, next: StateStarting, persisted: store.StatusRunning,
		acts: cat([]actionKind{aEmit, aPersist, aSetState, aArmFail}, launchActs)},
	{row: 2, given: persisted(store.StatusCrashed), ev: evStart, rows: []int{2}, next: StateStarting, persisted: store.StatusCrashed,
		acts: cat([]actionKind{aEmit, aSetState, aArmFail}, launchActs),
		check: func(t *testing.T, m *machine, _ []action) {
			if !m.downFrom.Equal(m.persistedAt) {
				t.Errorf("outage from %v, want from when crashed was persisted, %v", m.downFrom, m.persistedAt)
			}
		}},
	{row: 3, ev: evStart, rows: []int{3}, next: StateStarting, persisted: store.StatusRunning,
		acts: cat([]actionKind{aEmit, aSetState, aArmFail}, launchActs)},
	{row: 4, ev: evStart, rows: []int{4}, next: same, persisted: store.StatusRunning},
	{row: 5, given: persisted(store.StatusStopped), ev: evRestart, rows: []int{5, 1}, next: StateStarting, persisted: store.StatusRunning,
		acts: cat([]actionKind{aEmit, aPersist, aSetState, aArmFail}, launchActs)},
	{row: 6, given: inFlight(time.Second), ev: evRestart, rows: []int{6}, next: StateStarting, persisted: store.StatusRunning,
		acts: cat([]actionKind{aCount, aSetState}, cancelActs)},
	{row: 7, ev: evRestart, rows: []int{7}, next: same, persisted: store.StatusRunning,
		acts: cat([]actionKind{aCount}, restartActs)},
	{row: 8, ev: evStop, rows: []int{8}, next: StateStopped, persisted: store.StatusStopped, acts: []actionKind{aPersist}},
	{row: 9, given: inFlight(time.Second), ev: evStop, rows: []int{9}, next: StateStopped, persisted: store.StatusStopped,
		acts: []actionKind{aStopRetry, aStopStall, aStopFail, aStopAttempt, aSetState, aPersist, aEmit}},
	{row: 10, states: live, given: all(inFlight(time.Second), failing(time.Second)), ev: evSettings, rows: []int{10}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aApplySettings, aArmStall, aArmFail}},
	{row: 11, given: replacing, ev: evFirstFrame, rows: []int{11}, next: same, persisted: store.StatusRunning},
	{row: 12, given: all(inFlight(time.Second), failing(40*time.Second), func(m *machine) { m.fails, m.downFrom = 2, t0.Add(-40*time.Second) }),
		ev: evFirstFrame, rows: []int{12}, next: StateRunning, persisted: store.StatusRunning,
		acts: []actionKind{aKickOthers, aEmit, aStopFail, aSetState, aPersist, aArmStall}, check: wantEvent(events.CameraUp)},
	{row: 13, given: replacing, ev: evAttemptEnded, rows: []int{13}, next: same, persisted: store.StatusRunning,
		acts: cat(endActs, launchActs)},
	{row: 14, given: inFlight(time.Second), ev: evAttemptEnded, end: endPanicked, rows: []int{14}, next: StateCrashed,
		persisted: store.StatusCrashed, acts: cat(endActs, []actionKind{aCount, aEmit, aSetState, aPersist, aRetry, aArmFail}),
		check: wantDelay(0)},
	{row: 15, given: inFlight(time.Second), ev: evAttemptEnded, end: endRefused, rows: []int{15}, next: StateRefused,
		persisted: store.StatusRunning, acts: cat(endActs, []actionKind{aCount, aSetState, aRetry, aArmFail}),
		check: wantDelay(5 * time.Minute)},
	{row: 16, given: all(inFlight(time.Second), persisted(store.StatusCrashed)), ev: evAttemptEnded, rows: []int{16},
		next: StateCrashed, persisted: store.StatusCrashed, acts: cat(endActs, []actionKind{aCount, aSetState, aRetry, aArmFail})},
	{row: 17, given: all(inFlight(time.Second), persisted(store.StatusCrashed)), ev: evAttemptEnded, rows: []int{17},
		next: same, persisted: store.StatusCrashed, acts: cat(endActs, []actionKind{aCount, aRetry, aArmFail})},
	{row: 18, given: inFlight(time.Second), ev: evAttemptEnded, rows: []int{18}, next: StateReconnecting,
		persisted: store.StatusRunning, acts: cat(endActs, []actionKind{aCount, aSetState, aRetry, aArmFail}),
		check: wantDelay(time.Second)},
	{row: 19, ev: evStallTimer, rows: []int{19}, next: same, persisted: store.StatusRunning},
	{row: 20, given: inFlight(30 * time.Second), ev: evStallTimer, rows: []int{20}, next: same, persisted: store.StatusRunning,
		acts: []actionKind{aArmStall}},
	{row: 21, given: inFlight(61 * time.Second), ev: evStallTimer, rows: []int{21}, next: StateReconnecting,
		persisted: store.StatusRunning, acts: cat([]actionKind{aCount, aEmit, aArmFail, aSetState}, cancelActs),
		check: wantEvent(events.CameraStalled)},
	{row: 22, given: inFlight(61 * time.Second), ev: evStallTimer, rows: []int{22}, next: StateReconnecting,
		persisted: store.StatusRunning, acts: cat([]actionKind{aCount, aEmit, aArmFail, aSetState}, cancelActs)},
	{row: 23, given: inFlight(61 * time.Second), ev: evStallTimer, rows: []int{23}, next: same,
		persisted: store.StatusRunning, acts: cat([]actionKind{aCount, aEmit, aArmFail}, cancelActs)},
	{row: 24, ev: evRetryTimer, rows: []int{24}, next: same, persisted: store.StatusRunning, acts: launchActs},
	{row: 25, given: inFlight(time.Second), ev: evRetryTimer, rows: []int{25}, next: same, persisted: store.StatusRunning},
	{row: 26, given: inFlight(time.Second), ev: evKick, rows: []int{26}, next: same, persisted: store.StatusRunning},
	{row: 27, states: live, given: all(retryIn(20*time.Second), func(m *machine) { m.refusals = 1 }), ev: evKick, rows: []int{27},
		next: same, persisted: store.StatusRunning},
	{row: 28, states: live, given: all(retryIn(20*time.Second), func(m *machine) { m.kickedAt = t0.Add(-10 * time.Second) }),
		ev: evKick, rows: []int{28}, next: same, persisted: store.StatusRunning},
	{row: 29, states: live, given: retryIn(20 * time.Second), ev: evKick, rows: []int{29}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aRetry},
		check: func(t *testing.T, m *machine, acts []action) {
			wantDelay(time.Second)(t, m, acts)
			if !m.kickedAt.Equal(t0) {
				t.Errorf("kicked at %v, want now", m.kickedAt)
			}
		}},
	{row: 30, given: replacing, ev: evAbandonTimer, rows: []int{30}, next: same, persisted: store.StatusRunning,
		acts: cat([]actionKind{aAbandon}, launchActs)},
	{row: 31, given: inFlight(time.Second), ev: evAbandonTimer, rows: []int{31}, next: same, persisted: store.StatusRunning},
	{row: 32, given: failing(10 * time.Second), ev: evFailTimer, rows: []int{32, 36, 38, 41}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aArmFail}},
	{row: 33, ev: evFailTimer, rows: []int{33}, next: same, persisted: store.StatusRunning},
	{row: 34, given: failing(31 * time.Second), ev: evFailTimer, rows: []int{32, 34, 37, 41}, next: same,
		persisted: store.StatusCrashed, acts: []actionKind{aPersist, aEmit, aArmFail}, check: wantEvent(events.CameraDown)},
	{row: 35, given: failing(31 * time.Second), ev: evFailTimer, rows: []int{32, 35, 37, 41}, next: StateCrashed,
		persisted: store.StatusCrashed, acts: []actionKind{aSetState, aPersist, aEmit, aArmFail}},
	{row: 36, states: live, given: failing(10 * time.Second), ev: evCrashCheck, rows: []int{36, 38, 41}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aArmFail}},
	{row: 37, states: live, given: failing(31 * time.Second), ev: evDownCheck, rows: []int{37, 41}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aEmit, aArmFail}},
	{row: 38, states: live, given: failing(10 * time.Second), ev: evDownCheck, rows: []int{38, 41}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aArmFail}},
	{row: 39, states: live, given: all(failing(61*time.Second), inFlight(11*time.Second), func(m *machine) { m.downFrom = t0 }), ev: evForceCheck,
		rows: []int{39}, next: same, persisted: store.StatusRunning,
		acts: cat([]actionKind{aCount, aEmit}, cancelActs, []actionKind{aArmFail}), check: wantEvent(events.CameraForcedRestart)},
	{row: 40, states: live, given: all(failing(61*time.Second), inFlight(time.Second)), ev: evForceCheck, rows: []int{40}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aArmFail},
		check: func(t *testing.T, m *machine, _ []action) {
			if m.forced != 1 {
				t.Errorf("forced %d, want 1: the deadline moves on", m.forced)
			}
		}},
	{row: 41, states: live, given: failing(10 * time.Second), ev: evForceCheck, rows: []int{41}, next: same,
		persisted: store.StatusRunning, acts: []actionKind{aArmFail}},
}

// TestMachineRows checks every row of the state table in every state it
// names.
func TestMachineRows(t *testing.T) {
	covered := map[int]bool{}
	for _, c := range rowCases {
		covered[c.row] = true
		r := machineRules[c.row-1]
		states := c.states
		if states == nil {
			states = r.in
		}
		if states == nil {
			states = States
		}
		if len(states) == 0 {
			t.Errorf("row %d applies in no state", c.row)
		}
		for _, st := range states {
			if !r.appliesIn(st) {
				t.Fatalf("row %d: case in %s, a state the row does not name", c.row, st)
			}
			t.Run(rowName(c.row, st), func(t *testing.T) { checkRow(t, c, st) })
		}
	}
	for i := range machineRules {
		if !covered[i+1] {
			t.Errorf("row %d (%s) has no case", i+1, machineRules[i].on)
		}
	}
}

func rowName(row int, st State) string { return "row" + strconv.Itoa(row) + "_" + st.String() }

func checkRow(t *testing.T, c rowCase, st State) {
	m := newMachine(store.StatusRunning, t0.Add(-time.Hour), "")
	m.state = st
	if c.given != nil {
		c.given(&m)
	}
	acts, rows := m.step(event{kind: c.ev, end: c.end, by: "operator", msg: "test: it failed"}, testEnv())
	for i := range rows {
		rows[i]++
	}
	if !slices.Equal(rows, c.rows) {
		t.Fatalf("rows %v applied, want %v", rows, c.rows)
	}
	next := c.next
	if next == same {
		next = st
	}
	if m.state != next {
		t.Errorf("state %s, want %s", m.state, next)
	}
	if m.persisted != c.persisted {
		t.Errorf("persisted %q, want %q", m.persisted, c.persisted)
	}
	if got := kinds(acts); !slices.Equal(got, c.acts) {
		t.Errorf("actions %v,\n want %v", got, c.acts)
	}
	if c.check != nil {
		c.check(t, &m, acts)
	}
}

// kinds lists the actions' kinds, log lines left out.
func kinds(acts []action) []actionKind {
	var ks []actionKind
	for _, a := range acts {
		if a.kind != aLog {
			ks = append(ks, a.kind)
		}
	}
	return ks
}

// TestMachineEveryEventHasARow checks that the table leaves no event
// unhandled in any state: each one ends in a row, if only one that does
// nothing.
func TestMachineEveryEventHasARow(t *testing.T) {
	for k := evStart; k <= evForceCheck; k++ {
		for _, st := range States {
			if st == StateStopped && (k == evAttemptEnded || k == evFirstFrame) {
				continue // a stopped camera has no attempt: the supervisor feeds neither
			}
			for _, end := range []endKind{endFailed, endRefused, endPanicked} {
				m := newMachine(store.StatusRunning, t0, "")
				m.state = st
				if rows := matchRule(&m, event{kind: k, end: end}, k, testEnv()); rows < 0 {
					t.Errorf("%s in %s (end %d): no row", k, st, end)
				}
			}
		}
	}
}

// TestMachineCrashedIsSticky follows a camera through the behaviour the
// table makes visible: a crash is down at once, failed reconnects leave it
// CRASHED, and only a frame ends it.
func TestMachineCrashedIsSticky(t *testing.T) {
	e := testEnv()
	m := newMachine(store.StatusStopped, t0, "")
	feed := func(ev event, want State) {
		t.Helper()
		m.step(ev, e)
		if m.state != want {
			t.Fatalf("after %s: %s, want %s", ev.kind, m.state, want)
		}
		e.now = e.now.Add(time.Second)
	}
	feed(event{kind: evStart, by: "operator"}, StateStarting)
	feed(event{kind: evAttemptEnded, end: endPanicked, msg: "boom"}, StateCrashed)
	for range 3 {
		feed(event{kind: evRetryTimer}, StateCrashed)
		feed(event{kind: evAttemptEnded, msg: "connection refused"}, StateCrashed)
	}
	feed(event{kind: evRetryTimer}, StateCrashed)
	feed(event{kind: evFirstFrame}, StateRunning)
	if m.persisted != store.StatusRunning {
		t.Errorf("persisted %q after recovery, want running", m.persisted)
	}
}

// TestStateTableDocIsCurrent fails when docs/ARCHITECTURE.md's state table
// is not what the code generates: run go generate ./device.
func TestStateTableDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- BEGIN GENERATED STATE TABLE -->\n" + StateTableMarkdown() + "<!-- END GENERATED STATE TABLE -->"
	if !strings.Contains(string(doc), want) {
		t.Error("docs/ARCHITECTURE.md's state table differs from the code's: run go generate ./device")
	}
}
