package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/printable"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
)

// supervisor keeps one camera running. Its run goroutine is the only writer
// of the camera's state; other goroutines send it commands or read a copy of
// its status through view.
type supervisor struct {
	m     *Manager
	rec   store.Camera // as loaded or added; fixed for the supervisor's life
	log   *slog.Logger
	meter *stream.Meter
	tap   Tap

	cancelRun   context.CancelFunc // ends run; set by the Manager before run starts
	cmds        chan command
	attemptDone chan attemptResult
	// firstGen is the newest attempt generation that has delivered a
	// frame, and firstFrame signals that it moved. An older attempt that
	// is still winding down can neither move it back nor use up the
	// signal of the current one.
	firstGen   atomic.Uint64
	firstFrame chan struct{}
	kick       chan struct{} // another camera came back; see runLoop.kicked
	// begun is closed once run has acted on its start argument, so that
	// a camera added to start is seen STARTING, never in its first STOPPED.
	begun chan struct{}
	done  chan struct{}

	mu sync.Mutex // guards st; only run writes it
	st status
}

// status is what the supervisor shows of itself.
type status struct {
	state       State
	stateSince  time.Time
	persisted   store.Status
	persistedAt time.Time
	lastError   string
	lastErrorAt time.Time
	reconnects  uint64
	stalls      uint64
	restarts    uint64
	crashes     uint64
	// Times of recent reconnects and stalls, for the last-hour counts.
	reconnectTimes []time.Time
	stallTimes     []time.Time
}

type cmdKind int

const (
	cmdStart cmdKind = iota
	cmdStop
	cmdRestart
	cmdSettings
)

type command struct {
	kind  cmdKind
	reply chan struct{}
}

type attemptResult struct {
	gen      uint64
	err      error
	panicked bool
}

// attempt is one connection attempt in flight.
type attempt struct {
	gen     uint64
	cancel  context.CancelFunc
	started time.Time
	// abandoned is set when the reader did not return after cancel and a
	// new attempt may run: from then on its frames, info and end are
	// ignored, so that they cannot mix with the new attempt's.
	abandoned atomic.Bool
}

func newSupervisor(m *Manager, rec store.Camera) *supervisor {
	s := &supervisor{
		m:           m,
		rec:         rec,
		log:         m.log.With("camera", rec.Name),
		meter:       stream.NewMeter(),
		cmds:        make(chan command),
		attemptDone: make(chan attemptResult, 1),
		firstFrame:  make(chan struct{}, 1),
		kick:        make(chan struct{}, 1),
		begun:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	if m.cfg.NewTap != nil {
		s.tap = m.cfg.NewTap(rec.Name)
	}
	if rec.TLSInsecure {
		s.log.Warn("camera's TLS certificate is not verified (tls_insecure): the connection is encrypted, but anyone on the path can pose as the camera")
	}
	now := time.Now()
	s.st = status{
		state:       StateStopped,
		stateSince:  now,
		persisted:   rec.Status,
		persistedAt: rec.StatusUpdatedAt,
		// A record written by an older camd may hold raw control characters.
		lastError: printable.String(rec.LastError),
	}
	return s
}

// send delivers a command and waits until it has been handled, or until the
// supervisor has ended.
func (s *supervisor) send(kind cmdKind) error {
	c := command{kind: kind, reply: make(chan struct{})}
	select {
	case s.cmds <- c:
	case <-s.done:
		return ErrClosed
	}
	select {
	case <-c.reply:
		return nil
	case <-s.done:
		return ErrClosed
	}
}

// runLoop holds the state machine's goroutine-local variables.
type runLoop struct {
	s        *supervisor
	ctx      context.Context
	want     bool
	gen      uint64
	att      *attempt
	relaunch bool // launch again as soon as the current attempt ends
	// failingSince is when the camera stopped being RUNNING while it should
	// run; zero while healthy.
	failingSince time.Time
	forced       int // forced restarts during this failure
	// downFrom is when the outage began that a CameraDown event
	// announced; zero while none is announced. The CameraUp that ends it
	// carries how long it lasted.
	downFrom time.Time
	// Each of these kinds is emitted once per outage, so that a long one
	// costs a bounded number of event writes.
	stallSent, crashSent, forcedSent bool
	// readTimeout is ReadTimeout as live connections see it: a new one
	// (SIGHUP) reaches a batched connection that is already playing.
	readTimeout stream.LiveTimeout
	fails       int // consecutive failed attempts, for the backoff
	refusals    int // consecutive refusals (stream.ErrRefused), for their schedule
	crashRun    int // consecutive reader crashes
	retry       *time.Timer
	retryAt     time.Time // when retry fires; zero when it is not set
	kickedAt    time.Time // when kicked last moved retry earlier in this outage
	stall       *time.Timer
	fail        *time.Timer
	abandon     *time.Timer // set while relaunch waits for a cancelled reader
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// run is the supervisor's goroutine. It returns when ctx is done, leaving
// the persisted status as it is so that the camera comes back next start.
func (s *supervisor) run(ctx context.Context, start bool, by string) {
	defer close(s.done)
	l := &runLoop{s: s, ctx: ctx, retry: stoppedTimer(), stall: stoppedTimer(), fail: stoppedTimer(), abandon: stoppedTimer()}
	defer func() {
		l.retry.Stop()
		l.stall.Stop()
		l.fail.Stop()
		l.abandon.Stop()
		l.stopAttempt()
	}()
	if start {
		l.start(by)
	}
	close(s.begun)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.cmds:
			l.handle(c.kind)
			close(c.reply)
		case r := <-s.attemptDone:
			l.attemptEnded(r)
		case <-s.firstFrame:
			// A frame from an attempt being replaced (relaunch) does not
			// make the camera RUNNING: its replacement has shown nothing.
			if l.att != nil && !l.relaunch && s.firstGen.Load() == l.att.gen {
				l.running()
			}
		case <-s.kick:
			l.kicked()
		case <-l.stall.C:
			l.checkStall()
		case <-l.retry.C:
			if l.want && l.att == nil {
				l.launch()
			}
		case <-l.fail.C:
			l.checkFailing()
		case <-l.abandon.C:
			l.abandonHung()
		}
	}
}

func (l *runLoop) settings() Settings { return l.s.m.Settings() }

func (l *runLoop) handle(k cmdKind) {
	s := l.s
	switch k {
	case cmdStart:
		if l.want {
			return
		}
		l.start("operator")
	case cmdStop:
		if !l.want && l.att == nil {
			s.persist(store.StatusStopped)
			return
		}
		l.want = false
		l.retry.Stop()
		l.stall.Stop()
		l.fail.Stop()
		l.stopAttempt()
		l.failingSince = time.Time{}
		l.downFrom = time.Time{}
		s.setState(StateStopped)
		s.persist(store.StatusStopped)
		s.log.Info("camera stopped by operator")
		s.emit(events.CameraStopped, map[string]string{"by": "operator"})
	case cmdRestart:
		if !l.want {
			l.start("operator")
			return
		}
		s.update(func(st *status) { st.restarts++ })
		s.log.Info("camera restarted by operator")
		l.fails, l.refusals = 0, 0
		l.restartAttempt(StateStarting)
	case cmdSettings:
		l.readTimeout.Set(l.settings().ReadTimeout)
		// Re-arm deadlines with the new thresholds.
		if l.att != nil {
			l.armStall()
		}
		l.armFail()
	}
}

// start begins running a camera that was not; by, if set, is who started
// it, for the CameraStarted event.
func (l *runLoop) start(by string) {
	s := l.s
	l.want = true
	l.fails, l.refusals, l.crashRun, l.forced = 0, 0, 0, 0
	l.stallSent, l.crashSent, l.forcedSent = false, false, false
	l.failingSince = time.Now()
	if by != "" {
		s.emit(events.CameraStarted, map[string]string{"by": by})
	}
	// A camera persisted as CRASHED was down (announced) when camd last
	// stopped: its recovery is that outage's end, timed from when it was
	// persisted (the debounce after it began).
	if s.persistedStatus() == store.StatusCrashed && l.downFrom.IsZero() {
		s.mu.Lock()
		l.downFrom = s.st.persistedAt
		s.mu.Unlock()
	}
	if s.persistedStatus() == store.StatusStopped {
		s.persist(store.StatusRunning)
	}
	s.setState(StateStarting)
	l.armFail()
	l.launch()
}

// launch starts one connection attempt.
func (l *runLoop) launch() {
	s := l.s
	l.retry.Stop()
	l.retryAt = time.Time{}
	l.gen++
	actx, cancel := context.WithCancel(l.ctx)
	a := &attempt{gen: l.gen, cancel: cancel, started: time.Now()}
	l.att = a
	set := l.settings()
	l.readTimeout.Set(set.ReadTimeout)
	tr, _ := stream.ParseTransport(s.rec.Transport)
	var gotFirst atomic.Bool
	opts := stream.Options{
		URL:             s.rec.URL,
		Transport:       tr,
		ReadTimeout:     set.ReadTimeout,
		LiveReadTimeout: &l.readTimeout,
		TLS:             cameraTLS(s.rec),
		ReadBatch:       max(set.ReadBatch, 0),
		OnDecodeError: func(err error) {
			if !a.abandoned.Load() {
				s.meter.DecodeError(err)
			}
		},
		OnInfo: func(i stream.Info) {
			if a.abandoned.Load() {
				return
			}
			s.meter.SetInfo(i)
			if s.tap != nil {
				s.tap.Info(i)
			}
		},
		// OnFrame runs on the RTSP client's goroutine; stream.Read
		// recovers a panic there and returns it as ErrReaderPanic.
		OnFrame: func(f stream.Frame) {
			if a.abandoned.Load() {
				return
			}
			s.meter.Observe(f)
			if s.tap != nil {
				s.tap.Frame(f)
			}
			if !gotFirst.Load() {
				gotFirst.Store(true)
				s.frameFrom(a.gen)
			}
		},
	}
	if bt, ok := s.tap.(BatchTap); ok {
		opts.OnBatch = func() {
			if !a.abandoned.Load() {
				bt.BatchEnd()
			}
		}
	}
	if s.tap != nil {
		// Audio is set up only when there is a relay to pass it on to.
		opts.OnAudio = func(track int, pkt *rtp.Packet, at time.Time) {
			if !a.abandoned.Load() {
				s.tap.Audio(track, pkt, at)
			}
		}
	}
	read := s.m.read
	go func() {
		res := attemptResult{gen: a.gen}
		defer func() {
			if r := recover(); r != nil {
				res.err = fmt.Errorf("reader panicked: %v", r)
				res.panicked = true
			}
			if s.tap != nil && !a.abandoned.Load() {
				s.tap.Disconnected()
			}
			// run takes every result while it runs (stopAttempt in its
			// defer included); an abandoned reader that returns after it
			// has ended must not block forever.
			select {
			case s.attemptDone <- res:
			case <-s.done:
			}
		}()
		res.err = read(actx, opts)
		res.panicked = errors.Is(res.err, stream.ErrReaderPanic)
	}()
	l.armStall()
}

// frameFrom records the first frame of attempt gen and signals run, unless
// a newer attempt has already had one.
func (s *supervisor) frameFrom(gen uint64) {
	for {
		cur := s.firstGen.Load()
		if cur >= gen {
			return
		}
		if s.firstGen.CompareAndSwap(cur, gen) {
			break
		}
	}
	select {
	case s.firstFrame <- struct{}{}:
	default: // one signal pending is enough: run reads firstGen
	}
}

// abandonAfter is how long a cancelled reader has to return before the
// supervisor gives up on it: stream.Read closes the connection at once on
// cancel, so only a bug (in the RTSP client, or a Tap that blocks) takes
// longer. A hung reader must not hold the camera down for good.
func (l *runLoop) abandonAfter() time.Duration {
	return l.settings().ReadTimeout + 5*time.Second
}

// stopAttempt cancels the attempt in flight and waits for it to end.
func (l *runLoop) stopAttempt() {
	l.abandon.Stop()
	if l.att == nil {
		return
	}
	l.att.cancel()
	t := time.NewTimer(l.abandonAfter())
	defer t.Stop()
	for waiting := true; waiting; {
		select {
		case r := <-l.s.attemptDone:
			waiting = r.gen != l.att.gen
		case <-t.C:
			l.s.log.Error("reader did not stop after cancel; abandoning it")
			l.att.abandoned.Store(true)
			waiting = false
		}
	}
	l.att = nil
	l.relaunch = false
}

// abandonHung gives up on a reader that a restart cancelled and that has
// not returned (see abandonAfter), and starts the new attempt without it.
func (l *runLoop) abandonHung() {
	if l.att == nil || !l.relaunch {
		return
	}
	l.s.log.Error("reader did not stop after cancel; abandoning it and reconnecting", "waited", l.abandonAfter())
	l.att.abandoned.Store(true)
	l.att = nil
	l.relaunch = false
	if l.want {
		l.launch()
	}
}

// restartAttempt abandons the attempt in flight (if any) and starts a fresh
// one as soon as it has ended, showing state st meanwhile.
func (l *runLoop) restartAttempt(st State) {
	s := l.s
	// A crashed or refused camera keeps its state until frames arrive
	// again.
	if !s.state().down() {
		s.setState(st)
	}
	l.retry.Stop()
	l.stall.Stop()
	if l.att == nil {
		l.launch()
		return
	}
	if !l.relaunch {
		l.relaunch = true
		l.abandon.Reset(l.abandonAfter())
	}
	l.att.cancel()
}

// attemptEnded handles the end of a connection attempt.
func (l *runLoop) attemptEnded(r attemptResult) {
	s := l.s
	if l.att == nil || r.gen != l.att.gen {
		return
	}
	// The reader has returned, but its context is still registered with
	// the camera's: without cancel it would stay there, one per failed
	// attempt, until the camera is removed (months of reconnects).
	l.att.cancel()
	l.att = nil
	l.stall.Stop()
	l.abandon.Stop()
	if l.relaunch {
		l.relaunch = false
		if l.want {
			l.launch()
		}
		return
	}
	if !l.want {
		return
	}
	now := time.Now()
	msg := s.redact(r.err)
	if l.failingSince.IsZero() {
		l.failingSince = now
		l.forced = 0
	}
	if r.panicked {
		l.crashRun++
		s.update(func(st *status) {
			st.crashes++
			st.lastError, st.lastErrorAt = msg, now
		})
		s.log.Error("camera reader crashed; restarting", "err", msg, "crashes_in_a_row", l.crashRun)
		if !l.crashSent {
			l.crashSent = true
			s.emit(events.CameraCrashed, map[string]string{"error": msg})
		}
		s.setState(StateCrashed)
		s.persist(store.StatusCrashed)
		set := l.settings()
		l.scheduleRetry(crashBackoff(l.crashRun, set.BackoffMin, set.BackoffMax))
		l.armFail()
		return
	}
	l.fails++
	s.update(func(st *status) {
		st.reconnects++
		st.reconnectTimes = appendRecent(st.reconnectTimes, now)
		st.lastError, st.lastErrorAt = msg, now
	})
	set := l.settings()
	if errors.Is(r.err, stream.ErrRefused) {
		// Retrying at once will not cure it, and a camera that locks an
		// account after failed logins counts every try.
		l.refusals++
		s.setState(StateRefused)
		d := backoff(l.refusals, set.RefusedRetry, set.RefusedRetryMax)
		if l.refusals == 1 {
			s.log.Warn("camera refused the connection; retrying on the long schedule", "err", msg, "retry_in", d.Round(time.Second))
		} else {
			s.log.Info("camera refused the connection again", "err", msg, "retry_in", d.Round(time.Second))
		}
		l.scheduleRetry(d)
		l.armFail()
		return
	}
	l.refusals = 0
	switch st := s.state(); {
	case st == StateRefused && s.persistedStatus() == store.StatusCrashed:
		s.setState(StateCrashed) // down for longer than the debounce
	case st != StateCrashed:
		s.setState(StateReconnecting)
	}
	d := backoff(l.fails, set.BackoffMin, set.BackoffMax)
	s.log.Info("camera connection ended; retrying", "err", msg, "retry_in", d.Round(time.Millisecond))
	l.scheduleRetry(d)
	l.armFail()
}

// scheduleRetry sets the next attempt d from now.
func (l *runLoop) scheduleRetry(d time.Duration) {
	l.retryAt = time.Now().Add(d)
	l.retry.Reset(d)
}

// kicked handles another camera's recovery after failed attempts: the
// network, or the host the cameras share, may be back, so a camera waiting
// out a long backoff retries now (after the shortest backoff, which keeps
// the cameras from reconnecting in lock-step) rather than up to BackoffMax
// later. It does so at most once per BackoffMax while the camera stays
// down, so that a camera that is really down is not retried at every
// recovery of another; once the camera is back, its next outage starts
// afresh (running clears kickedAt).
func (l *runLoop) kicked() {
	// A refusal is the camera's answer, not the network's: another
	// camera's recovery says nothing about it.
	if !l.want || l.att != nil || l.retryAt.IsZero() || l.refusals > 0 {
		return
	}
	set := l.settings()
	now := time.Now()
	if !l.kickedAt.IsZero() && now.Sub(l.kickedAt) < set.BackoffMax {
		return
	}
	d := backoff(1, set.BackoffMin, set.BackoffMax)
	if due := l.retryAt.Sub(now); due > d {
		l.kickedAt = now
		l.s.log.Info("another camera came back; retrying sooner", "was_due_in", due.Round(time.Millisecond), "retry_in", d.Round(time.Millisecond))
		l.scheduleRetry(d)
	}
}

// running handles the first frame of an attempt.
func (l *runLoop) running() {
	s := l.s
	if !l.failingSince.IsZero() && s.state() != StateStarting {
		s.log.Info("camera recovered", "down_for", time.Since(l.failingSince).Round(time.Millisecond))
	}
	if l.fails > 0 {
		s.m.recovered(s)
	}
	if !l.downFrom.IsZero() {
		s.emit(events.CameraUp, map[string]string{"down_for": time.Since(l.downFrom).Round(time.Millisecond).String()})
		l.downFrom = time.Time{}
	}
	l.stallSent, l.crashSent, l.forcedSent = false, false, false
	l.failingSince = time.Time{}
	l.kickedAt = time.Time{}
	l.fails, l.refusals, l.crashRun, l.forced = 0, 0, 0, 0
	l.fail.Stop()
	s.setState(StateRunning)
	s.persist(store.StatusRunning)
	l.armStall()
}

// armStall sets the stall deadline: StallTimeout after the last frame, or
// after the attempt started if no frame has come yet.
func (l *runLoop) armStall() {
	if l.att == nil {
		return
	}
	from := l.att.started
	if last := l.s.meter.LastFrame(); last.After(from) {
		from = last
	}
	l.stall.Reset(time.Until(from.Add(l.settings().StallTimeout)))
}

func (l *runLoop) checkStall() {
	s := l.s
	if l.att == nil || l.relaunch {
		return
	}
	timeout := l.settings().StallTimeout
	from := l.att.started
	if last := s.meter.LastFrame(); last.After(from) {
		from = last
	}
	if wait := time.Until(from.Add(timeout)); wait > 0 {
		l.stall.Reset(wait)
		return
	}
	now := time.Now()
	msg := fmt.Sprintf("no video frame for %s", timeout)
	s.update(func(st *status) {
		st.stalls++
		st.stallTimes = appendRecent(st.stallTimes, now)
		st.lastError, st.lastErrorAt = msg, now
	})
	s.log.Warn("camera stalled; restarting the connection", "no_frame_for", timeout)
	if !l.stallSent {
		l.stallSent = true
		s.emit(events.CameraStalled, map[string]string{"error": msg})
	}
	if l.failingSince.IsZero() {
		l.failingSince = now
		l.forced = 0
	}
	l.armFail()
	// RECONNECTING, not STARTING: the camera was seen working and is now
	// being reconnected.
	l.restartAttempt(StateReconnecting)
}

// armFail sets the deadline of the next failure escalation: counting as
// CRASHED, then forced restarts.
func (l *runLoop) armFail() {
	if !l.want || l.failingSince.IsZero() {
		l.fail.Stop()
		return
	}
	next, ok := l.nextEscalation()
	if !ok {
		l.fail.Stop()
		return
	}
	l.fail.Reset(time.Until(next))
}

func (l *runLoop) crashAt() time.Time {
	set := l.settings()
	return l.failingSince.Add(max(set.CrashedAfter, set.FlapDebounce))
}

func (l *runLoop) forceAt() time.Time {
	return l.failingSince.Add(time.Duration(l.forced+1) * l.settings().ForceRestartAfter)
}

func (l *runLoop) nextEscalation() (time.Time, bool) {
	force := l.forceAt()
	if l.downFrom.IsZero() || l.s.persistedStatus() != store.StatusCrashed || !l.s.state().down() {
		if c := l.crashAt(); c.Before(force) {
			return c, true
		}
	}
	return force, true
}

func (l *runLoop) checkFailing() {
	s := l.s
	if !l.want || l.failingSince.IsZero() {
		return
	}
	now := time.Now()
	if !now.Before(l.crashAt()) && (!s.state().down() || s.persistedStatus() != store.StatusCrashed) {
		s.log.Warn("camera is down", "failing_for", now.Sub(l.failingSince).Round(time.Millisecond), "last_error", s.lastError())
		// A refused camera keeps saying why it is down.
		if s.state() != StateRefused {
			s.setState(StateCrashed)
		}
		s.persist(store.StatusCrashed)
	}
	if !now.Before(l.crashAt()) && l.downFrom.IsZero() {
		l.downFrom = l.failingSince
		s.emit(events.CameraDown, map[string]string{"error": s.lastError(), "since": l.failingSince.UTC().Format(time.RFC3339Nano)})
	}
	if !now.Before(l.forceAt()) {
		l.forced++
		// A forced restart is for a session that went bad: an attempt
		// that has lived longer than ReadTimeout has had answers (each
		// request is bounded by it) and still no frame. Between attempts
		// that fail to connect, or during a fresh one, the backoff decides
		// when to try: restarting then (and resetting the backoff, as this
		// once did) knocked on a refusing camera every ForceRestartAfter.
		if l.att != nil && !l.relaunch && now.Sub(l.att.started) >= l.settings().ReadTimeout {
			s.update(func(st *status) { st.restarts++ })
			s.log.Warn("camera still failing; forcing a full restart", "failing_for", now.Sub(l.failingSince).Round(time.Millisecond))
			if !l.forcedSent {
				l.forcedSent = true
				s.emit(events.CameraForcedRestart, map[string]string{"failing_for": now.Sub(l.failingSince).Round(time.Second).String()})
			}
			l.restartAttempt(s.state())
		}
	}
	l.armFail()
}

// --- status, written only by run ---

// emit hands one of this camera's events to the Manager's OnEvent.
func (s *supervisor) emit(k events.Kind, details map[string]string) {
	s.m.emit(s.rec.Name, k, details)
}

func (s *supervisor) update(f func(*status)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *supervisor) state() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.state
}

func (s *supervisor) persistedStatus() store.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.persisted
}

func (s *supervisor) lastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.lastError
}

func (s *supervisor) setState(st State) {
	s.mu.Lock()
	old := s.st.state
	if old != st {
		s.st.state = st
		s.st.stateSince = time.Now()
	}
	s.mu.Unlock()
	if old != st {
		s.log.Debug("camera state", "from", old, "to", st)
		s.m.stateChanged(s, old, st)
	}
}

// persist records a new persisted status; it is written only if it differs
// from the one on disk.
func (s *supervisor) persist(ps store.Status) {
	s.mu.Lock()
	if s.st.persisted == ps {
		s.mu.Unlock()
		return
	}
	now := time.Now()
	s.st.persisted, s.st.persistedAt = ps, now
	u := store.StatusUpdate{ID: s.rec.ID, Status: ps, At: now, LastError: s.st.lastError}
	s.mu.Unlock()
	s.m.pers.put(u)
}

// cameraTLS is how rec's certificate is trusted.
func cameraTLS(rec store.Camera) stream.CameraTLS {
	return stream.CameraTLS{Fingerprint: rec.TLSFingerprint, CAFile: rec.TLSCA, Insecure: rec.TLSInsecure}
}

// redact turns an attempt's error into a line fit for display: no secret
// of the URL, and no control character (a camera's reason phrase can hold
// terminal escapes, and this text reaches logs, the API and terminals).
func (s *supervisor) redact(err error) string {
	if err == nil {
		return "connection closed"
	}
	if errors.Is(err, context.Canceled) {
		return "connection cancelled"
	}
	return printable.String(stream.RedactError(err, s.rec.URL).Error())
}

// appendRecent appends t and forgets times older than an hour.
func appendRecent(ts []time.Time, t time.Time) []time.Time {
	ts = pruneHour(ts, t)
	return append(ts, t)
}

func pruneHour(ts []time.Time, now time.Time) []time.Time {
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

// view returns the camera as shown to operators.
func (s *supervisor) view(now time.Time) View {
	s.mu.Lock()
	st := s.st
	recon := countSince(st.reconnectTimes, now.Add(-time.Hour))
	stalls := countSince(st.stallTimes, now.Add(-time.Hour))
	s.mu.Unlock()
	ms := s.meter.Snapshot(now)
	v := View{
		ID:                 s.rec.ID,
		Name:               s.rec.Name,
		URL:                stream.RedactURL(s.rec.URL),
		Transport:          s.rec.Transport,
		TLS:                cameraTLS(s.rec),
		TransportActive:    ms.Transport,
		State:              st.state,
		Since:              st.persistedAt,
		StateSince:         st.stateSince,
		Persisted:          string(st.persisted),
		Codec:              ms.Codec,
		Width:              ms.Width,
		Height:             ms.Height,
		FPS:                ms.FPS,
		BitrateBPS:         ms.BitrateBPS,
		Frames:             ms.Frames,
		Keyframes:          ms.Keyframes,
		Bytes:              ms.Bytes,
		LastFrameAt:        ms.LastFrameAt,
		ReconnectsLastHour: recon,
		StallsLastHour:     stalls,
		Reconnects:         st.reconnects,
		Stalls:             st.stalls,
		Restarts:           st.restarts,
		Crashes:            st.crashes,
		StatusWrites:       s.m.pers.writeCount(s.rec.ID),
		LastError:          st.lastError,
		LastErrorAt:        st.lastErrorAt,
		Audio:              audioLine(ms.Audio),
	}
	if v.Transport == "" {
		v.Transport = "tcp"
	}
	if v.State == StateStopped {
		// The meter's window still holds the last seconds before the stop;
		// a stopped camera receives nothing, and says so.
		v.FPS, v.BitrateBPS = 0, 0
	}
	return v
}

// audioLine says what became of each of the camera's audio tracks:
// "opus (relayed)", "g726-32 (not relayed: the relay does not pass this
// codec on)"; "" for a camera without audio.
func audioLine(tracks []stream.AudioTrack) string {
	parts := make([]string, 0, len(tracks))
	for _, t := range tracks {
		switch t.NotRead {
		case "":
			parts = append(parts, t.Codec+" (relayed)")
		case stream.AudioNotWanted:
			parts = append(parts, t.Codec+" (not relayed: the relay is off)")
		default:
			parts = append(parts, t.Codec+" (not relayed: "+t.NotRead+")")
		}
	}
	return strings.Join(parts, ", ")
}

func countSince(ts []time.Time, cut time.Time) int {
	n := 0
	for i := len(ts) - 1; i >= 0 && !ts[i].Before(cut); i-- {
		n++
	}
	return n
}
