package crash

// The test's model of what the store may hold: for every camera, which
// names, URLs and intents (stopped, or started: running or crashed) are
// acceptable, given which API writes were acknowledged and which were cut
// short by the kill.

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/camd/camd/store"
)

// camModel is one camera the operator added and camd acknowledged.
type camModel struct {
	id   string
	name string // the name ops use: the last acknowledged one
	// names and urls are the acceptable values in the store.
	names map[string]bool
	urls  map[string]bool
	// mayStopped and mayStarted say which persisted intents are acceptable:
	// "stopped", and "running" or "crashed".
	mayStopped, mayStarted bool
	// mayPresent and mayAbsent say whether the camera may be in the store.
	mayPresent, mayAbsent bool
	// busy: an op is in flight. dirty: an op was not acknowledged, so the
	// camera is left alone until the store says what became of it.
	busy, dirty bool
}

// pendingAdd is an add that was not acknowledged: it may or may not have
// happened.
type pendingAdd struct {
	url   string
	start bool
}

// model is shared by the writers of one iteration and the checks between
// iterations.
type model struct {
	mu      sync.Mutex
	byID    map[string]*camModel
	pending map[string]pendingAdd // by name
	// Counters, by op kind: attempted, acknowledged, cut short (any other
	// outcome).
	attempts, acks, unacked map[string]int
}

func newModel() *model {
	return &model{
		byID: map[string]*camModel{}, pending: map[string]pendingAdd{},
		attempts: map[string]int{}, acks: map[string]int{}, unacked: map[string]int{},
	}
}

func set(vs ...string) map[string]bool {
	m := map[string]bool{}
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// intent is "stopped" or "started".
func intent(s store.Status) string {
	if s == store.StatusStopped {
		return "stopped"
	}
	return "started"
}

// check compares the store's cameras with the model and returns every
// discrepancy. Then it resets the model to the store's content, which is
// the truth from here on.
func (m *model) check(recs []store.Camera) (problems []string, adopted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ids, names := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if !r.Status.Valid() {
			bad("camera %s (%s): persisted status %q is not a legal value", r.Name, r.ID, r.Status)
		}
		if ids[r.ID] {
			bad("camera ID %s is in the store twice", r.ID)
		}
		if names[r.Name] {
			bad("camera name %q is in the store twice", r.Name)
		}
		ids[r.ID], names[r.Name] = true, true
		c, ok := m.byID[r.ID]
		if !ok {
			pa, ok := m.pending[r.Name]
			switch {
			case !ok:
				bad("camera %s (%s) is in the store but was never added", r.Name, r.ID)
			case pa.url != r.URL:
				bad("camera %s: unacknowledged add with URL %s stored with URL %s", r.Name, pa.url, r.URL)
			case pa.start != (intent(r.Status) == "started"):
				bad("camera %s: unacknowledged add with start=%v stored with status %s", r.Name, pa.start, r.Status)
			}
			adopted++
			continue
		}
		if !c.mayPresent {
			bad("camera %s (%s): its removal was acknowledged, but it is still in the store", r.Name, r.ID)
		}
		if !c.names[r.Name] {
			bad("camera %s: stored name %q, acceptable %v", r.ID, r.Name, keys(c.names))
		}
		if !c.urls[r.URL] {
			bad("camera %s: stored URL %s, acceptable %v", r.Name, r.URL, keys(c.urls))
		}
		if intent(r.Status) == "stopped" && !c.mayStopped {
			bad("camera %s: stored status %s, but its last acknowledged operation started it", r.Name, r.Status)
		}
		if intent(r.Status) == "started" && !c.mayStarted {
			bad("camera %s: stored status %s, but its last acknowledged operation stopped it", r.Name, r.Status)
		}
	}
	for id, c := range m.byID {
		if !ids[id] && !c.mayAbsent {
			bad("camera %s (%s) was added and acknowledged, and is not in the store: lost", c.name, id)
		}
	}
	m.reset(recs)
	return problems, adopted
}

// reset makes the model the store's content.
func (m *model) reset(recs []store.Camera) {
	m.byID = map[string]*camModel{}
	m.pending = map[string]pendingAdd{}
	for _, r := range recs {
		st := intent(r.Status) == "stopped"
		m.byID[r.ID] = &camModel{
			id: r.ID, name: r.Name, names: set(r.Name), urls: set(r.URL),
			mayStopped: st, mayStarted: !st, mayPresent: true,
		}
	}
}

// pick returns a camera no op is using and whose state is certain, marked
// busy; nil if there is none.
func (m *model) pick(rnd func(int) int) *camModel {
	m.mu.Lock()
	defer m.mu.Unlock()
	var free []*camModel
	for _, c := range m.byID {
		if !c.busy && !c.dirty && c.mayPresent && !c.mayAbsent {
			free = append(free, c)
		}
	}
	if len(free) == 0 {
		return nil
	}
	sort.Slice(free, func(i, j int) bool { return free[i].id < free[j].id })
	c := free[rnd(len(free))]
	c.busy = true
	return c
}

// count returns how many cameras are surely in the store.
func (m *model) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.byID {
		if c.mayPresent && !c.mayAbsent {
			n++
		}
	}
	return n
}

// begin records an attempt; the camera's acceptable set grows by what the
// op would make of it.
func (m *model) begin(kind string, c *camModel, apply func(c *camModel)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts[kind]++
	if c != nil {
		apply(c)
	}
}

// end records the outcome. On an acknowledgement, collapse narrows the
// camera's acceptable set to the op's result.
func (m *model) end(kind string, c *camModel, acked bool, collapse func(c *camModel)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if acked {
		m.acks[kind]++
		if c != nil {
			collapse(c)
		}
	} else {
		m.unacked[kind]++
		if c != nil {
			c.dirty = true
		}
	}
	if c != nil {
		c.busy = false
	}
}

// beginAdd records an add attempt.
func (m *model) beginAdd(name, url string, start bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts["add"]++
	m.pending[name] = pendingAdd{url: url, start: start}
}

// endAdd records an add's outcome; id is the new camera's when acked.
func (m *model) endAdd(name, url string, start, acked bool, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !acked {
		m.unacked["add"]++
		return
	}
	m.acks["add"]++
	delete(m.pending, name)
	m.byID[id] = &camModel{
		id: id, name: name, names: set(name), urls: set(url),
		mayStopped: !start, mayStarted: start, mayPresent: true,
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// counts renders attempted/acknowledged/cut-short counts by op kind.
func (m *model) counts() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ks []string
	for k := range m.attempts {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, " %s=%d/%d/%d", k, m.attempts[k], m.acks[k], m.unacked[k])
	}
	return strings.TrimSpace(b.String())
}

// totalAcks returns how many writes were acknowledged.
func (m *model) totalAcks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, v := range m.acks {
		n += v
	}
	return n
}
