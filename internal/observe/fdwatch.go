package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/procfd"
)

// What one thing camd does costs in file descriptors, measured with
// gortsplib v5 against the simulator (see TestFDCostPerCamera):
const (
	// FDsPerTCPCamera: a camera read over RTSP/TCP (interleaved) holds its
	// one TCP connection.
	FDsPerTCPCamera = 1
	// FDsPerUDPCamera: a camera read over RTSP/UDP holds its TCP control
	// connection plus one RTP and one RTCP UDP socket for the video track
	// (camd sets up the video track only).
	FDsPerUDPCamera = 3
	// FDsPerRelayReader: a relay reader holds its TCP connection; UDP
	// readers share the relay server's listeners.
	FDsPerRelayReader = 1
	// FDsPerAPIConn: an open control API connection is one socket.
	FDsPerAPIConn = 1
)

// FDWatchConfig configures an FDWatch. Every field is optional.
type FDWatchConfig struct {
	// Interval is the time between two counts. It defaults to 5 seconds.
	Interval time.Duration
	// Slack is added to twice the expectation before the count is called
	// too high, so that a small process is not flagged for a few FDs. It
	// defaults to 16.
	Slack int
	// RepeatEvery is how often the warning is repeated while the count
	// stays too high. It defaults to 1 minute.
	RepeatEvery time.Duration
	// CamerasConnected returns how many cameras may hold a connection, by
	// transport (see ConnectedCameras). It defaults to none.
	CamerasConnected func() (tcp, udp int)
	// RelayReaders returns the number of relay readers. It defaults to none.
	RelayReaders func() int
	// APIConns returns the number of open control API connections. It
	// defaults to none.
	APIConns func() int
	// Ceiling is a hard limit on open descriptors: when the count exceeds
	// it, the watch logs an error and calls OnCeiling, once. It defaults to
	// 0, no ceiling.
	Ceiling int
	// Exempt returns how many open descriptors belong to client
	// connections (relay readers, API clients), which the clients control:
	// they are subtracted before the count is compared with Ceiling, so
	// that opening connections cannot shut camd down. It defaults to none.
	Exempt func() int
	// OnCeiling is called once, from Run's goroutine, when the ceiling is
	// crossed, or descriptors run out while a ceiling is set. The daemon makes it begin its normal
	// shutdown with a non-zero exit status. It must not block for long.
	OnCeiling func()
	// OnWarning, if set, is called from Run's goroutine each time the
	// count goes from within expectation to far above it (the first
	// warning of a spell, not its repeats), with the reason. It must not
	// block.
	OnWarning func(reason string)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Count counts the open descriptors. It defaults to procfd.Count;
	// tests replace it.
	Count func() (procfd.Counts, error)
}

// fdSnapshot is what FDWatch's goroutine publishes after each count.
type fdSnapshot struct {
	counts   procfd.Counts
	expected int
	degraded bool
	reason   string
}

// FDWatch compares the process's open file descriptors with what it should
// hold. Its state is owned by the goroutine running Run; the accessors read
// the last published snapshot and are safe for concurrent use.
type FDWatch struct {
	cfg  FDWatchConfig
	log  *slog.Logger
	last atomic.Pointer[fdSnapshot]

	runMu sync.Mutex
	ran   bool
}

// NewFDWatch returns a watch; call Run to start counting.
func NewFDWatch(cfg FDWatchConfig) *FDWatch {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Slack <= 0 {
		cfg.Slack = 16
	}
	if cfg.RepeatEvery <= 0 {
		cfg.RepeatEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Count == nil {
		cfg.Count = procfd.Count
	}
	return &FDWatch{cfg: cfg, log: cfg.Logger}
}

// Counts returns the last count and the expectation at that time; both are
// zero before the first count.
func (w *FDWatch) Counts() (last procfd.Counts, expected int) {
	if w == nil {
		return procfd.Counts{}, 0
	}
	s := w.last.Load()
	if s == nil {
		return procfd.Counts{}, 0
	}
	return s.counts, s.expected
}

// Degraded reports whether the last count was far above the expectation
// (or descriptors ran out), and why, in one line.
func (w *FDWatch) Degraded() (bool, string) {
	if w == nil {
		return false, ""
	}
	s := w.last.Load()
	if s == nil {
		return false, ""
	}
	return s.degraded, s.reason
}

// demand is what the callbacks account for at one moment.
type demand struct {
	tcp, udp, readers, api int
}

func (w *FDWatch) demand() demand {
	var d demand
	if w.cfg.CamerasConnected != nil {
		d.tcp, d.udp = w.cfg.CamerasConnected()
	}
	if w.cfg.RelayReaders != nil {
		d.readers = w.cfg.RelayReaders()
	}
	if w.cfg.APIConns != nil {
		d.api = w.cfg.APIConns()
	}
	return d
}

func (d demand) fds() int {
	return d.tcp*FDsPerTCPCamera + d.udp*FDsPerUDPCamera + d.readers*FDsPerRelayReader + d.api*FDsPerAPIConn
}

// Run counts descriptors every Interval until ctx is done. The first
// successful count sets the base (what it finds minus what the callbacks
// account for), so start Run once start-up is done. Run returns when ctx is
// done; it may be called once.
func (w *FDWatch) Run(ctx context.Context) error {
	w.runMu.Lock()
	if w.ran {
		w.runMu.Unlock()
		return errors.New("observe: FDWatch.Run called twice")
	}
	w.ran = true
	w.runMu.Unlock()

	r := fdRun{w: w, base: -1}
	r.sample(time.Now())
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			r.sample(now)
		}
	}
}

// fdRun is the state of one Run, touched only by its goroutine.
type fdRun struct {
	w          *FDWatch
	base       int // -1 until measured
	degraded   bool
	lastWarn   time.Time
	countErr   bool // a count error has been logged
	ceilingHit bool
}

func (r *fdRun) sample(now time.Time) {
	w := r.w
	c, err := w.cfg.Count()
	if err != nil {
		r.countFailed(err)
		return
	}
	if r.countErr {
		r.countErr = false
		w.log.Info("counting open file descriptors works again")
	}
	d := r.w.demand()
	if r.base < 0 {
		r.base = max(c.Total-d.fds(), 0)
		w.log.Info("file descriptor watch started", "base", r.base, "total", c.Total,
			"cameras_tcp", d.tcp, "cameras_udp", d.udp, "relay_readers", d.readers, "api_conns", d.api,
			"interval", w.cfg.Interval, "ceiling", w.cfg.Ceiling)
	}
	expected := r.base + d.fds()
	limit := 2*expected + w.cfg.Slack
	snap := &fdSnapshot{counts: c, expected: expected}

	if c.Total > limit {
		snap.degraded = true
		snap.reason = fmt.Sprintf("%d open file descriptors, expected about %d", c.Total, expected)
		if !r.degraded && w.cfg.OnWarning != nil {
			w.cfg.OnWarning(snap.reason)
		}
		if !r.degraded || now.Sub(r.lastWarn) >= w.cfg.RepeatEvery {
			r.lastWarn = now
			w.log.Warn("open file descriptors far above expectation",
				"total", c.Total, "expected", expected, "limit", limit,
				"sockets", c.Sockets, "files", c.Files, "pipes", c.Pipes, "events", c.Events, "other", c.Other,
				"base", r.base, "cameras_tcp", d.tcp, "cameras_udp", d.udp,
				"relay_readers", d.readers, "api_conns", d.api)
		}
		r.degraded = true
	} else if r.degraded {
		r.degraded = false
		w.log.Info("open file descriptors back within expectation",
			"total", c.Total, "expected", expected, "limit", limit)
	}
	w.last.Store(snap)

	exempt := 0
	if w.cfg.Exempt != nil && w.cfg.Ceiling > 0 {
		exempt = max(w.cfg.Exempt(), 0)
	}
	if w.cfg.Ceiling > 0 && c.Total-exempt > w.cfg.Ceiling {
		r.ceiling(fmt.Sprintf("%d open file descriptors besides %d client connections, above the ceiling of %d",
			c.Total-exempt, exempt, w.cfg.Ceiling),
			"total", c.Total, "client_conns", exempt, "ceiling", w.cfg.Ceiling, "expected", expected,
			"sockets", c.Sockets, "files", c.Files, "pipes", c.Pipes, "events", c.Events, "other", c.Other)
	}
}

// countFailed handles a failed count. Running out of descriptors is what
// the watch exists to catch, so it counts as degraded and, when a ceiling is
// set, as crossing it; other errors are logged once.
func (r *fdRun) countFailed(err error) {
	w := r.w
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		prev := w.last.Load()
		snap := &fdSnapshot{degraded: true, reason: "out of file descriptors"}
		if prev != nil {
			snap.counts, snap.expected = prev.counts, prev.expected
		}
		w.last.Store(snap)
		if !r.degraded {
			w.log.Error("out of file descriptors", "err", err)
		}
		r.degraded = true
		r.ceiling("out of file descriptors", "err", err)
		return
	}
	if !r.countErr {
		r.countErr = true
		w.log.Warn("cannot count open file descriptors; the descriptor watch is blind", "err", err)
	}
}

func (r *fdRun) ceiling(reason string, args ...any) {
	if r.ceilingHit || r.w.cfg.Ceiling <= 0 {
		return
	}
	r.ceilingHit = true
	r.w.log.Error("file descriptor ceiling crossed; shutting down so that the supervisor restarts camd",
		append([]any{"reason", reason}, args...)...)
	if r.w.cfg.OnCeiling != nil {
		r.w.cfg.OnCeiling()
	}
}

// ConnectedCameras returns a CamerasConnected callback over m: every camera
// that should run (STARTING, RUNNING, RECONNECTING, CRASHED) counts, by its
// configured transport ("udp" and "auto" count as UDP). That is generous, as
// a camera between attempts holds no socket, which is what the watch wants:
// never to warn about an honest process.
func ConnectedCameras(m *device.Manager) func() (tcp, udp int) {
	return func() (tcp, udp int) {
		for _, v := range m.List() {
			if v.State == device.StateStopped {
				continue
			}
			switch v.Transport {
			case "udp", "auto":
				udp++
			default:
				tcp++
			}
		}
		return tcp, udp
	}
}

// StatusExtra returns the watch's fields for the API's daemon status
// (api.Config.StatusExtra): expected_fds, fds_degraded and, while degraded,
// fds_degraded_reason. The status page shows them next to the open FDs.
func (w *FDWatch) StatusExtra() map[string]any {
	_, expected := w.Counts()
	deg, why := w.Degraded()
	m := map[string]any{"expected_fds": expected, "fds_degraded": deg}
	if why != "" {
		m["fds_degraded_reason"] = why
	}
	return m
}
