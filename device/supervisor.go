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
	kick       chan struct{} // another camera came back; see the kick rows of machineRules
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

// runLoop is the supervisor's goroutine-local side: the state machine, and
// the attempt and timers that carry out what it decides.
type runLoop struct {
	s       *supervisor
	ctx     context.Context
	machine machine
	gen     uint64
	att     *attempt
	// readTimeout is ReadTimeout as live connections see it: a new one
	// (SIGHUP) reaches a batched connection that is already playing.
	readTimeout stream.LiveTimeout
	retry       *time.Timer
	stall       *time.Timer
	fail        *time.Timer
	abandon     *time.Timer // set while a relaunch waits for a cancelled reader
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// run is the supervisor's goroutine: it turns commands, reader results and
// timers into events for the state machine and carries out its actions. It
// returns when ctx is done, leaving the persisted status as it is so that
// the camera comes back next start.
func (s *supervisor) run(ctx context.Context, start bool, by string) {
	defer close(s.done)
	s.mu.Lock()
	m := newMachine(s.st.persisted, s.st.persistedAt, s.st.lastError)
	s.mu.Unlock()
	l := &runLoop{s: s, ctx: ctx, machine: m, retry: stoppedTimer(), stall: stoppedTimer(), fail: stoppedTimer(), abandon: stoppedTimer()}
	defer func() {
		l.retry.Stop()
		l.stall.Stop()
		l.fail.Stop()
		l.stopAttempt()
	}()
	if start {
		l.feed(event{kind: evStart, by: by})
	}
	close(s.begun)
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.cmds:
			l.feed(commandEvent(c.kind))
			close(c.reply)
		case r := <-s.attemptDone:
			// Results of attempts already stopped or abandoned are stale.
			if l.att != nil && r.gen == l.att.gen {
				l.feed(l.ended(r))
			}
		case <-s.firstFrame:
			if l.att != nil && s.firstGen.Load() == l.att.gen {
				l.feed(event{kind: evFirstFrame})
			}
		case <-s.kick:
			l.feed(event{kind: evKick})
		case <-l.stall.C:
			l.feed(event{kind: evStallTimer, lastFrame: s.meter.LastFrame()})
		case <-l.retry.C:
			l.feed(event{kind: evRetryTimer})
		case <-l.fail.C:
			l.feed(event{kind: evFailTimer})
		case <-l.abandon.C:
			l.feed(event{kind: evAbandonTimer})
		}
	}
}

func commandEvent(k cmdKind) event {
	switch k {
	case cmdStart:
		return event{kind: evStart, by: "operator"}
	case cmdStop:
		return event{kind: evStop}
	case cmdRestart:
		return event{kind: evRestart, by: "operator"}
	}
	return event{kind: evSettings}
}

// ended reads how an attempt ended: the reader reports its error, the
// machine decides what it means for the camera.
func (l *runLoop) ended(r attemptResult) event {
	ev := event{kind: evAttemptEnded, end: endFailed, msg: l.s.redact(r.err)}
	switch {
	case r.panicked:
		ev.end = endPanicked
	case errors.Is(r.err, stream.ErrRefused):
		ev.end = endRefused
	}
	return ev
}

func (l *runLoop) settings() Settings { return l.s.m.Settings() }

// feed runs ev through the state machine and carries out its actions.
func (l *runLoop) feed(ev event) {
	e := env{now: time.Now(), set: l.settings(), backoff: backoff, crashBackoff: crashBackoff}
	acts, _ := l.machine.step(ev, e)
	for _, a := range acts {
		l.do(a)
	}
}

// do carries out one action of the state machine.
func (l *runLoop) do(a action) {
	s := l.s
	switch a.kind {
	case aSetState:
		s.setState(a.state)
	case aPersist:
		s.persist(a.status)
	case aLaunch:
		l.launch()
	case aCancel:
		l.att.cancel()
	case aStopAttempt:
		l.stopAttempt()
	case aEndAttempt:
		// The reader has returned, but its context is still registered
		// with the camera's: without cancel it would stay there, one per
		// failed attempt, until the camera is removed (months of reconnects).
		l.att.cancel()
		l.att = nil
	case aAbandon:
		l.att.abandoned.Store(true)
		l.att = nil
	case aArmStall:
		l.armStall()
	case aArmFail:
		l.fail.Reset(time.Until(a.at))
	case aArmAbandon:
		l.abandon.Reset(a.delay)
	case aRetry:
		l.retry.Reset(a.delay)
	case aStopStall, aStopFail, aStopAbandon, aStopRetry:
		l.timer(a.kind).Stop()
	case aApplySettings:
		l.readTimeout.Set(l.settings().ReadTimeout)
	default:
		l.report(a)
	}
}

func (l *runLoop) timer(k actionKind) *time.Timer {
	switch k {
	case aStopStall:
		return l.stall
	case aStopFail:
		return l.fail
	case aStopAbandon:
		return l.abandon
	}
	return l.retry
}

// report carries out the actions that only tell others: events, log lines,
// counters.
func (l *runLoop) report(a action) {
	s := l.s
	switch a.kind {
	case aEmit:
		s.emit(a.event, a.details)
	case aLog:
		s.log.Log(context.Background(), a.level, a.msg, a.args...)
	case aCount:
		s.update(func(st *status) { st.count(a) })
	case aKickOthers:
		s.m.recovered(s)
	}
}

// count adds one to the counter a names, and records its error.
func (st *status) count(a action) {
	switch a.count {
	case countRestart:
		st.restarts++
		return
	case countCrash:
		st.crashes++
	case countReconnect:
		st.reconnects++
		st.reconnectTimes = appendRecent(st.reconnectTimes, a.at)
	case countStall:
		st.stalls++
		st.stallTimes = appendRecent(st.stallTimes, a.at)
	}
	st.lastError, st.lastErrorAt = a.msg, a.at
}

// launch starts one connection attempt.
func (l *runLoop) launch() {
	s := l.s
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
	go s.read(actx, a, opts)
}

// read runs one attempt on its own goroutine and reports how it ended.
func (s *supervisor) read(ctx context.Context, a *attempt, opts stream.Options) {
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
	res.err = s.m.read(ctx, opts)
	res.panicked = errors.Is(res.err, stream.ErrReaderPanic)
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

// stopAttempt cancels the attempt in flight and waits for it to end, for
// at most abandonAfter.
func (l *runLoop) stopAttempt() {
	l.abandon.Stop()
	if l.att == nil {
		return
	}
	l.att.cancel()
	t := time.NewTimer(abandonAfter(l.settings()))
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
