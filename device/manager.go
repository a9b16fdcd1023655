package device

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
)

// ReadFunc makes one connection attempt; stream.Read is the real one.
type ReadFunc func(ctx context.Context, o stream.Options) error

// Tap receives a camera's video as the supervisor reads it. The relay
// implements it. Methods are called from the reader's goroutine and must not
// block.
type Tap interface {
	// Info is called once per connection, when the video track is set up.
	Info(stream.Info)
	// Frame is called for every video access unit.
	Frame(stream.Frame)
	// Audio is called for every RTP packet of the audio track Info lists
	// as read (stream.Options.OnAudio); pkt is only valid during the call.
	Audio(track int, pkt *rtp.Packet, at time.Time)
	// Disconnected is called when a connection ends.
	Disconnected()
	// End is called once when the camera is removed or updated, or the
	// Manager closes; reason says which, for the Tap's log.
	End(reason string)
}

// BatchTap is a Tap that wants to know when a batch of frames read
// together has been handed over (stream.Options.OnBatch), so that it can
// wake its consumer once per batch rather than once per frame.
type BatchTap interface {
	Tap
	// BatchEnd is called on the reader's goroutine after a batch.
	BatchEnd()
}

// Config configures a Manager.
type Config struct {
	// Store persists cameras and statuses. Required. The Manager never
	// closes it: whoever opened it does.
	Store *store.Store
	// Settings are the supervision thresholds; zero fields take defaults.
	Settings Settings
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Read defaults to stream.Read. Tests replace it to inject faults.
	Read ReadFunc
	// NewTap, if set, is called once per camera to get its Tap.
	NewTap func(name string) Tap
	// StopTimeout bounds how long Close waits for all cameras. It defaults
	// to 5 seconds.
	StopTimeout time.Duration
	// LoopInterval is the period of the supervision loop (the one whose last
	// run is reported by LastLoop). It defaults to 1 second.
	LoopInterval time.Duration
	// OnStateChange, if set, is called on every change of a camera's live
	// state, from that camera's supervisor goroutine; it must not block.
	OnStateChange func(name string, from, to State)
	// OnEvent, if set, receives every camera event (events.CameraAdded
	// and the rest of the camera kinds) and the store's
	// events.StoreWriteFailing and StoreRecovered, without an ID: the
	// receiver appends them to the history (events.Queue.Emit). It is
	// called from supervisor goroutines and must not block. A failure
	// shorter than the debounce (Settings.FlapDebounce, CrashedAfter)
	// emits nothing; an outage past it emits one CameraDown and, when it
	// ends, one CameraUp.
	OnEvent func(events.Event)
	// LoopHook, if set, is called on every run of the supervision loop.
	// Tests use it to make the loop hang.
	LoopHook func()
}

// Manager owns the set of camera supervisors.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	st       *store.Store
	read     ReadFunc
	settings atomic.Pointer[Settings]
	pers     *persister

	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup // persister and loop

	// opMu serialises operator actions, so that checks such as "is the name
	// free" and the changes that follow them are one step.
	opMu    sync.Mutex
	mu      sync.RWMutex
	cams    map[string]*supervisor // by name
	started bool
	closed  bool

	counts   [len(stateNames)]atomic.Int64
	lastLoop atomic.Int64
	ready    atomic.Bool
}

var stateNames = [...]State{StateStopped, StateStarting, StateRunning, StateReconnecting, StateCrashed, StateRefused}

// NewManager returns a Manager; call Start to load cameras from the store.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("device: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Read == nil {
		cfg.Read = stream.Read
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.LoopInterval <= 0 {
		cfg.LoopInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:    cfg,
		log:    cfg.Logger,
		st:     cfg.Store,
		read:   cfg.Read,
		pers:   newPersister(cfg.Store, cfg.Logger),
		ctx:    ctx,
		cancel: cancel,
		cams:   map[string]*supervisor{},
	}
	set := cfg.Settings.withDefaults()
	m.settings.Store(&set)
	m.pers.emit = func(k events.Kind) { m.emit("", k, nil) }
	return m, nil
}

// Start loads every camera from the store and starts those whose persisted
// status is running or crashed (start-up recovery). It returns once every
// supervisor has been started, not once cameras are RUNNING.
func (m *Manager) Start(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed || m.started {
		m.mu.Unlock()
		return ErrClosed
	}
	m.started = true
	m.mu.Unlock()

	recs, err := m.st.Cameras()
	if err != nil {
		return fmt.Errorf("load cameras: %w", err)
	}
	m.bg.Add(2)
	go func() { defer m.bg.Done(); m.pers.run(m.ctx) }()
	go func() { defer m.bg.Done(); m.loop() }()

	resumed := 0
	for _, rec := range recs {
		start := rec.Status == store.StatusRunning || rec.Status == store.StatusCrashed
		if start {
			resumed++
		}
		by := ""
		if start {
			by = "recovery"
		}
		m.spawn(rec, start, by)
	}
	m.lastLoop.Store(time.Now().UnixNano())
	m.ready.Store(true)
	m.log.Info("cameras loaded", "total", len(recs), "resumed", resumed)
	return nil
}

// spawn creates and starts a camera's supervisor. Callers hold opMu. A
// camera started with by set emits CameraStarted with Details["by"].
func (m *Manager) spawn(rec store.Camera, start bool, by string) *supervisor {
	s := newSupervisor(m, rec)
	m.counts[StateStopped].Add(1)
	m.mu.Lock()
	m.cams[rec.Name] = s
	m.mu.Unlock()
	ctx, cancel := context.WithCancel(m.ctx)
	s.cancelRun = cancel
	go s.run(ctx, start, by)
	return s
}

// emit hands an event to Config.OnEvent; it never blocks on the disk.
func (m *Manager) emit(camera string, k events.Kind, details map[string]string) {
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(events.Event{Time: time.Now(), Camera: camera, Kind: k, Details: details})
	}
}

// stateChanged keeps the per-state counts; supervisors call it.
func (m *Manager) stateChanged(s *supervisor, from, to State) {
	m.counts[from].Add(-1)
	m.counts[to].Add(1)
	if m.cfg.OnStateChange != nil {
		m.cfg.OnStateChange(s.rec.Name, from, to)
	}
}

// recovered tells every other camera that from came back after failed
// attempts; those waiting out a backoff may retry sooner (the kick rows of
// machineRules). It never blocks: a camera with a kick pending needs no
// second one.
func (m *Manager) recovered(from *supervisor) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.cams {
		if s == from {
			continue
		}
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// loop is the supervision loop: it proves the Manager is alive (LastLoop,
// which the systemd watchdog and /healthz follow).
func (m *Manager) loop() {
	t := time.NewTicker(m.cfg.LoopInterval)
	defer t.Stop()
	lastSummary := time.Now()
	decodeErrs := map[string]decodeCounts{}
	for {
		select {
		case <-m.ctx.Done():
			return
		case now := <-t.C:
			if m.cfg.LoopHook != nil {
				m.cfg.LoopHook()
			}
			m.lastLoop.Store(time.Now().UnixNano())
			if now.Sub(lastSummary) >= summaryInterval {
				lastSummary = now
				m.summariseDecodeErrors(decodeErrs)
			}
		}
	}
}

// summaryInterval is how often per-packet noise (decode errors from a
// hostile or broken camera) is summarised in the log, instead of a line per
// packet.
const summaryInterval = time.Minute

// decodeCounts are a camera's meter counts as of the last summary.
type decodeCounts struct{ errors, losses uint64 }

func (m *Manager) summariseDecodeErrors(last map[string]decodeCounts) {
	m.mu.RLock()
	sups := make([]*supervisor, 0, len(m.cams))
	for _, s := range m.cams {
		sups = append(sups, s)
	}
	m.mu.RUnlock()
	seen := make(map[string]bool, len(sups))
	for _, s := range sups {
		snap := s.meter.Snapshot(time.Now())
		n := decodeCounts{errors: snap.DecodeErrors, losses: snap.Losses}
		prev := last[s.rec.Name]
		seen[s.rec.Name] = true
		if d := n.errors - prev.errors; d > 0 && n.errors >= prev.errors {
			s.log.Warn("camera sent undecodable video", "packets_dropped", d, "in_last", summaryInterval)
		}
		// Loss on the way (UDP) is the network's doing, not the camera's.
		if d := n.losses - prev.losses; d > 0 && n.losses >= prev.losses {
			s.log.Info("camera video lost packets on the way; frames dropped until the next whole one", "losses", d, "in_last", summaryInterval)
		}
		last[s.rec.Name] = n
	}
	for name := range last {
		if !seen[name] {
			delete(last, name)
		}
	}
}

// Close stops every camera concurrently (bounded by Config.StopTimeout),
// writes pending status changes and returns once all goroutines have ended.
// Persisted statuses are kept, so running cameras come back on the next
// start. It does not close the store.
func (m *Manager) Close() error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	sups := make([]*supervisor, 0, len(m.cams))
	for _, s := range m.cams {
		sups = append(sups, s)
	}
	m.mu.Unlock()

	m.cancel()
	deadline := time.NewTimer(m.cfg.StopTimeout)
	defer deadline.Stop()
	var stuck []string
	for _, s := range sups {
		select {
		case <-s.done:
		case <-deadline.C:
			// Keep the timer fired for the rest of the loop.
			deadline.Reset(0)
			stuck = append(stuck, s.rec.Name)
		}
	}
	for _, s := range sups {
		if s.tap != nil {
			s.tap.End("daemon shutting down")
		}
	}
	m.bg.Wait()
	if len(stuck) > 0 {
		return fmt.Errorf("device: %d cameras did not stop within %s: %v", len(stuck), m.cfg.StopTimeout, stuck)
	}
	return nil
}

// newID returns a random camera ID.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (m *Manager) lookup(name string) (*supervisor, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed || !m.started {
		return nil, ErrClosed
	}
	s, ok := m.cams[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return s, nil
}

// Add validates spec, stores the camera and, if start is true, starts it.
func (m *Manager) Add(ctx context.Context, spec Spec, start bool) (View, error) {
	spec, err := spec.Validate()
	if err != nil {
		return View{}, err
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if _, err := m.lookup(spec.Name); err == nil {
		return View{}, fmt.Errorf("%w: %q", ErrExists, spec.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return View{}, err
	}
	now := time.Now()
	rec := store.Camera{
		ID:              newID(),
		Name:            spec.Name,
		URL:             spec.URL,
		Transport:       spec.Transport,
		TLSFingerprint:  spec.TLS.Fingerprint,
		TLSCA:           spec.TLS.CAFile,
		TLSInsecure:     spec.TLS.Insecure,
		Status:          store.StatusStopped,
		StatusUpdatedAt: now,
		CreatedAt:       now,
	}
	if start {
		rec.Status = store.StatusRunning
	}
	if err := m.st.PutCamera(rec); err != nil {
		return View{}, fmt.Errorf("add camera %q: %w", spec.Name, err)
	}
	m.emit(rec.Name, events.CameraAdded, nil)
	by := ""
	if start {
		by = "operator"
	}
	s := m.spawn(rec, start, by)
	m.log.Info("camera added", "camera", rec.Name, "url", stream.RedactURL(rec.URL), "started", start)
	select {
	case <-s.begun:
	case <-s.done:
	}
	return s.view(time.Now()), nil
}

// Update changes a camera's name, URL or transport. An empty spec.URL keeps
// the stored URL byte for byte: callers only ever see the redacted one, and
// writing that back would replace its secrets with "xxxxx". The camera keeps
// its ID and persisted status; if it was running it reconnects with the new
// settings. Its counters start again from zero.
func (m *Manager) Update(ctx context.Context, name string, spec Spec) (View, error) {
	if spec.URL != "" {
		var err error
		if spec, err = spec.Validate(); err != nil {
			return View{}, err
		}
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	old, err := m.lookup(name)
	if err != nil {
		return View{}, err
	}
	if spec.URL == "" {
		spec.URL = old.rec.URL
		if spec, err = spec.Validate(); err != nil {
			return View{}, err
		}
	}
	if spec.Name != name {
		if _, err := m.lookup(spec.Name); err == nil {
			return View{}, fmt.Errorf("%w: %q", ErrExists, spec.Name)
		}
	}
	rec, err := m.st.Camera(old.rec.ID)
	if err != nil {
		return View{}, fmt.Errorf("update camera %q: %w", name, err)
	}
	if err := m.stopSupervisor(ctx, old, "camera updated"); err != nil {
		return View{}, err
	}
	// The stopped supervisor may have had a status change in flight.
	if err := m.pers.flush(ctx); err != nil {
		return View{}, fmt.Errorf("update camera %q: %w", name, err)
	}
	if cur, err := m.st.Camera(old.rec.ID); err == nil {
		rec = cur
	}
	oldURL := rec.URL
	rec.Name, rec.URL, rec.Transport = spec.Name, spec.URL, spec.Transport
	rec.TLSFingerprint, rec.TLSCA, rec.TLSInsecure = spec.TLS.Fingerprint, spec.TLS.CAFile, spec.TLS.Insecure
	if err := m.st.PutCamera(rec); err != nil {
		// Bring the old camera back as it was.
		m.spawn(old.rec, rec.Status != store.StatusStopped, "")
		return View{}, fmt.Errorf("update camera %q: %w", name, err)
	}
	if rec.URL != oldURL {
		// The old URL (an old password, say) stays in the file's free
		// pages until the file is rewritten.
		if err := m.st.Scrub(); err != nil {
			m.log.Warn("camera updated, but the data file could not be rewritten without its old URL", "camera", rec.Name, "err", err)
		}
	}
	s := m.spawn(rec, rec.Status != store.StatusStopped, "")
	m.log.Info("camera updated", "camera", rec.Name, "url", stream.RedactURL(rec.URL))
	return s.view(time.Now()), nil
}

// stopSupervisor ends a supervisor's goroutine without touching its
// persisted status, and removes it from the registry. Callers hold opMu.
func (m *Manager) stopSupervisor(ctx context.Context, s *supervisor, reason string) error {
	m.mu.Lock()
	delete(m.cams, s.rec.Name)
	m.mu.Unlock()
	s.cancelRun()
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("stop camera %q: %w", s.rec.Name, ctx.Err())
	}
	m.counts[s.state()].Add(-1)
	if s.tap != nil {
		s.tap.End(reason)
	}
	return nil
}

// Remove stops a camera and deletes it from the store.
func (m *Manager) Remove(ctx context.Context, name string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	s, err := m.lookup(name)
	if err != nil {
		return err
	}
	if err := m.stopSupervisor(ctx, s, "camera removed"); err != nil {
		return err
	}
	m.pers.forget(s.rec.ID)
	if err := m.st.DeleteCamera(s.rec.ID); errors.Is(err, store.ErrNotScrubbed) {
		// The camera is gone; only the file still holds its old bytes.
		m.log.Warn("camera removed, but the data file could not be rewritten without its old record", "camera", name, "err", err)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("remove camera %q: %w", name, err)
	}
	m.emit(name, events.CameraRemoved, nil)
	m.log.Info("camera removed", "camera", name)
	return nil
}

// StartCamera starts a camera; its persisted status becomes running before
// this returns.
func (m *Manager) StartCamera(ctx context.Context, name string) (View, error) {
	return m.command(ctx, name, cmdStart)
}

// StopCamera stops a camera; its persisted status is stopped before this
// returns, so it stays stopped across restarts.
func (m *Manager) StopCamera(ctx context.Context, name string) (View, error) {
	return m.command(ctx, name, cmdStop)
}

// RestartCamera closes a camera's connection and starts it afresh.
func (m *Manager) RestartCamera(ctx context.Context, name string) (View, error) {
	return m.command(ctx, name, cmdRestart)
}

func (m *Manager) command(ctx context.Context, name string, k cmdKind) (View, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	s, err := m.lookup(name)
	if err != nil {
		return View{}, err
	}
	if err := s.send(k); err != nil {
		return View{}, err
	}
	// An operator's word must be on disk when we say it is done.
	if err := m.pers.flush(ctx); err != nil {
		return s.view(time.Now()), fmt.Errorf("camera %q: status not yet persisted: %w", name, err)
	}
	return s.view(time.Now()), nil
}

// List returns every camera's view, sorted by name.
func (m *Manager) List() []View {
	m.mu.RLock()
	sups := make([]*supervisor, 0, len(m.cams))
	for _, s := range m.cams {
		sups = append(sups, s)
	}
	m.mu.RUnlock()
	now := time.Now()
	vs := make([]View, len(sups))
	for i, s := range sups {
		vs[i] = s.view(now)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
	return vs
}

// Get returns one camera's view.
func (m *Manager) Get(name string) (View, error) {
	m.mu.RLock()
	s, ok := m.cams[name]
	m.mu.RUnlock()
	if !ok {
		return View{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return s.view(time.Now()), nil
}

// Counts returns how many cameras are in each state; every state is present.
func (m *Manager) Counts() map[State]int {
	c := make(map[State]int, len(stateNames))
	for _, st := range stateNames {
		c[st] = int(m.counts[st].Load())
	}
	return c
}

// Settings returns the supervision settings in force, defaults filled in.
func (m *Manager) Settings() Settings { return *m.settings.Load() }

// SetSettings changes the supervision settings of every camera without
// dropping any connection (SIGHUP). Zero fields take their defaults.
func (m *Manager) SetSettings(s Settings) {
	s = s.withDefaults()
	m.settings.Store(&s)
	m.mu.RLock()
	sups := make([]*supervisor, 0, len(m.cams))
	for _, sp := range m.cams {
		sups = append(sups, sp)
	}
	m.mu.RUnlock()
	for _, sp := range sups {
		_ = sp.send(cmdSettings)
	}
	m.log.Info("supervision settings changed", "stall_timeout", s.StallTimeout, "flap_debounce", s.FlapDebounce,
		"crashed_after", s.CrashedAfter, "force_restart_after", s.ForceRestartAfter,
		"backoff_min", s.BackoffMin, "backoff_max", s.BackoffMax, "refused_retry", s.RefusedRetry,
		"refused_retry_max", s.RefusedRetryMax, "read_timeout", s.ReadTimeout)
}

// LastLoop returns when the supervision loop last ran; liveness checks and
// the systemd watchdog follow it.
func (m *Manager) LastLoop() time.Time { return time.Unix(0, m.lastLoop.Load()) }

// Ready reports whether start-up recovery has finished.
func (m *Manager) Ready() bool { return m.ready.Load() }
