package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/observe"
	"github.com/camd/camd/internal/sdnotify"
	"github.com/camd/camd/internal/web"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/relay"
)

// StoreFile is the name of the store inside the data dir.
const StoreFile = "camd.db"

// loopInterval is the period of the supervision loop that /healthz and the
// systemd watchdog follow.
const loopInterval = time.Second

// ErrFDCeiling is returned by Run when it shut down because the open
// descriptors crossed Config.FD.Ceiling.
var ErrFDCeiling = errors.New("open file descriptors crossed the configured ceiling")

// Options configure a Daemon beyond its Config.
type Options struct {
	// Config is the configuration; zero fields take their defaults.
	Config Config
	// Version is reported by the API, metrics and logs.
	Version string
	// Stderr receives the log. It defaults to os.Stderr.
	Stderr io.Writer
	// Exit ends the process when the shutdown deadline passes (the
	// backstop) or on a second signal. It defaults to os.Exit.
	Exit func(code int)
	// OnStateChange, if set, is called on every camera state change; it
	// must not block (see device.Config.OnStateChange).
	OnStateChange func(name string, from, to device.State)
	// Hooks are test hooks (empty unless built with -tags camdtesthooks);
	// see HooksFromEnv.
	Hooks Hooks
	// onStep, if set, is called as shutdown enters each step; in-package
	// tests use it to hang a step without the test-hooks build.
	onStep func(step string)
}

// Daemon is a running camd: store, cameras, relay, API, watchdogs.
type Daemon struct {
	cfg     Config
	opts    Options
	hooks   Hooks
	log     *slog.Logger
	level   *slog.LevelVar
	started time.Time

	st  *store.Store
	m   *device.Manager
	rl  *relay.Server // nil when the relay is off
	srv *api.Server
	fd  *observe.FDWatch
	// evq appends events to the history (d.st) off the emitters'
	// goroutines.
	evq *events.Queue

	mu       sync.Mutex // guards cfg's reloadable parts
	stopOnce sync.Once
	stopErr  error
	stopCh   chan struct{}
	step     atomic.Pointer[string]
	notifiers
}

// New opens the store and binds the listeners, then starts the cameras
// that were running (start-up recovery). Any failure is one line that
// names what failed, and leaves nothing open or running.
func New(ctx context.Context, opts Options) (_ *Daemon, err error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := opts.Config.withDefaults()
	if err := cfg.checkRelayExposure(); err != nil {
		return nil, err
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Exit == nil {
		opts.Exit = os.Exit
	}
	d := &Daemon{cfg: cfg, opts: opts, hooks: opts.Hooks, started: time.Now(), stopCh: make(chan struct{})}
	d.level = new(slog.LevelVar)
	lvl, _ := parseLevel(cfg.Log.Level)
	d.level.Set(lvl)
	hopts := &slog.HandlerOptions{Level: d.level}
	if cfg.Log.Format == "json" {
		d.log = slog.New(slog.NewJSONHandler(opts.Stderr, hopts))
	} else {
		d.log = slog.New(slog.NewTextHandler(opts.Stderr, hopts))
	}
	idle := ""
	d.step.Store(&idle)

	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	cfg.warnReadableSecrets(d.log)
	if err := prepareDataDir(cfg.DataDir, d.log); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.DataDir, StoreFile)
	d.st, err = store.Open(dbPath, store.Options{LockTimeout: time.Second,
		EventsMaxCount: cfg.Events.MaxCount, EventsMaxAge: cfg.Events.MaxAge.D()})
	if err != nil {
		return nil, err // store errors name the file (and the holder's pid)
	}
	closers = append(closers, func() { _ = d.st.Close() })
	// A token made now is printed once (below) when the API requires it:
	// in a container that is how the operator learns it.
	_, statErr := os.Lstat(api.TokenPath(cfg.DataDir))
	newToken := errors.Is(statErr, os.ErrNotExist)
	d.evq = events.NewQueue(d.st, d.log)
	closers = append(closers, func() { d.evq.Close(time.Second) })
	token, err := api.EnsureToken(cfg.DataDir)
	if err != nil {
		return nil, err // "read API token: PATH is a symlink, …"
	}

	// Cameras get a third of the shutdown deadline to stop, so that the
	// store is closed well before the backstop fires.
	stopTimeout := cfg.ShutdownDeadline.D() / 3
	mcfg := device.Config{
		Store:         d.st,
		Settings:      cfg.Settings(),
		Logger:        d.log,
		StopTimeout:   stopTimeout,
		LoopInterval:  loopInterval,
		OnStateChange: opts.OnStateChange,
		LoopHook:      d.hooks.loopHook(),
		OnEvent:       d.evq.Emit,
	}
	if cfg.Relay.Listen != "off" {
		// d.rl is set before the Manager starts any camera.
		mcfg.NewTap = func(name string) device.Tap { return d.rl.Feed(name) }
	}
	d.m, err = device.NewManager(mcfg)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = d.m.Close() })
	if err := d.newNotifiers(d.eventLog(), opts.Version); err != nil {
		return nil, err
	}

	relayReaders := func(name string) int {
		if d.rl == nil {
			return 0
		}
		return d.rl.Stats(name).Readers
	}
	d.fd = observe.NewFDWatch(observe.FDWatchConfig{
		Interval:         cfg.FD.Interval.D(),
		Ceiling:          cfg.FD.Ceiling,
		OnCeiling:        func() { d.Stop(ErrFDCeiling) },
		CamerasConnected: observe.ConnectedCameras(d.m),
		RelayReaders: func() int {
			n := 0
			for _, v := range d.m.List() {
				n += relayReaders(v.Name)
			}
			return n
		},
		APIConns: func() int { return d.srv.OpenConns() },
		// Clients open these; they must not be able to shut camd down.
		Exempt: func() int {
			n := d.srv.OpenConns()
			if d.rl != nil {
				n += d.rl.OpenConns()
			}
			return n
		},
		Logger: d.log,
		OnWarning: func(reason string) {
			d.evq.Emit(events.Event{Kind: events.FDWarning, Details: map[string]string{"reason": reason}})
		},
	})
	relayAlive := func() error {
		if d.rl == nil {
			return nil
		}
		return d.rl.Err()
	}
	healthz, readyz := observe.HealthHandlers(d.m, loopInterval, d.fd, relayAlive)
	acfg := api.Config{
		Manager:         d.m,
		Listen:          cfg.API.Listen,
		Token:           token,
		RequireToken:    cfg.API.RequireToken,
		TLSCert:         cfg.API.TLSCert,
		TLSKey:          cfg.API.TLSKey,
		MaxConns:        cfg.API.MaxConns,
		Version:         opts.Version,
		Logger:          d.log,
		StatusExtra:     d.statusExtra,
		ShutdownTimeout: time.Second,
		Mount: map[string]http.Handler{"/metrics": observe.MetricsHandler(observe.MetricsConfig{
			Extra:   d.notifyCollectors(),
			Manager: d.m, FD: d.fd, StoreWrites: d.st.WriteCount, RelayReaders: relayReaders,
			EventWrites: d.st.EventWriteCount,
			Version:     opts.Version, Logger: d.log,
		})},
		PublicMount: map[string]http.Handler{"/": web.Handler(), "/healthz": healthz, "/readyz": readyz},
		Events:      d.st,
	}
	acfg.AllowNoTokenOffLoopback = cfg.API.AllowNoTokenOffLoopback
	if cfg.Relay.Listen != "off" {
		acfg.RelayStats = func(name string) any { return d.rl.Stats(name) }
	}
	d.srv, err = api.New(acfg)
	if errors.Is(err, api.ErrNoTokenOffLoopback) {
		return nil, fmt.Errorf("api: listen %s is not loopback and api.require_token is false: add api.allow_no_token_off_loopback: true to serve it without a token, or drop require_token: false", cfg.API.Listen)
	}
	if err != nil {
		return nil, err // "api: listen ADDR: address already in use"
	}
	closers = append(closers, func() { _ = d.srv.Close() })

	// The relay binds after the API so that a busy port is the only line
	// printed (the relay logs once it serves).
	if cfg.Relay.Listen != "off" {
		d.rl, err = relay.New(relay.Config{
			Listen:        cfg.Relay.Listen,
			UDPRTPAddress: cfg.Relay.UDPRTPAddress,
			User:          cfg.Relay.User,
			Pass:          cfg.Relay.Pass,
			Credentials:   cfg.relayCredentials(),
			DescribeWait:  cfg.Relay.DescribeWait.D(),
			MaxConns:      cfg.Relay.MaxConns,
			AllowTunnel:   cfg.Relay.AllowTunnel,
			TLSCert:       cfg.Relay.TLSCert,
			TLSKey:        cfg.Relay.TLSKey,
			Logger:        d.log,

			StartPointTimeout: cfg.Relay.StartPointTimeout.D(),
		})
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("relay: listen %s: %w", cfg.Relay.Listen, syscall.EADDRINUSE)
		}
		if err != nil {
			return nil, err // the relay's errors say "relay: …"
		}
		closers = append(closers, d.rl.Close)
		if cfg.Relay.Public && cfg.Relay.User == "" {
			d.log.Warn("relay: relay.public is set; every camera is served without credentials to anyone who can reach it",
				"listen", cfg.Relay.Listen)
		}
	}

	if err = d.m.Start(ctx); err != nil {
		return nil, fmt.Errorf("start cameras: %w", err)
	}
	observe.CheckNOFILE(len(d.m.List()), d.log)
	args := []any{"data_dir", cfg.DataDir, "api", d.srv.URL(), "token_required", d.srv.TokenRequired(),
		"version", opts.Version, "pid", os.Getpid()}
	if d.rl != nil {
		args = append(args, "relay", d.rl.Scheme()+"://"+d.rl.Addr())
	}
	d.startNotifiers()
	d.log.Info("camd started", args...)
	if newToken && d.srv.TokenRequired() {
		d.log.Info("API token created (printed only this once; it is in the data dir's "+api.TokenFile+"): give it to the CLI as CAMD_TOKEN",
			"token", token)
	}
	d.evq.Emit(events.Event{Kind: events.DaemonStarted, Details: map[string]string{"version": opts.Version, "pid": fmt.Sprint(os.Getpid())}})
	return d, nil
}

// relayCredentials returns the per-camera override, or nil.
func (c Config) relayCredentials() func(string) (string, string, bool) {
	if len(c.Relay.Cameras) == 0 {
		return nil
	}
	creds := c.Relay.Cameras
	return func(name string) (string, string, bool) {
		cr, ok := creds[name]
		return cr.User, cr.Pass, ok
	}
}

// APIAddr is the control API's bound address.
func (d *Daemon) APIAddr() string { return d.srv.Addr() }

// RelayAddr is the relay's bound address, "" when the relay is off.
func (d *Daemon) RelayAddr() string {
	if d.rl == nil {
		return ""
	}
	return d.rl.Addr()
}

// Manager returns the camera registry.
func (d *Daemon) Manager() *device.Manager { return d.m }

// Events returns the event history (the store), for consumers such as
// webhooks and MQTT.
func (d *Daemon) Events() events.Log { return d.st }

// Logger returns the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// Stop begins shutdown; Run then returns cause (nil for a clean stop). Only
// the first call counts.
func (d *Daemon) Stop(cause error) {
	d.stopOnce.Do(func() {
		d.stopErr = cause
		close(d.stopCh)
	})
}

// Step names the shutdown step in progress ("" before shutdown).
func (d *Daemon) Step() string { return *d.step.Load() }

func (d *Daemon) setStep(s string) {
	d.step.Store(&s)
	if d.opts.onStep != nil {
		d.opts.onStep(s)
	}
	d.hookStep(s)
}

// Reload applies what can change without dropping cameras: the
// supervision thresholds and the log level. Other changes are logged as
// needing a restart.
func (d *Daemon) Reload(next Config) error {
	if err := next.Validate(); err != nil {
		return err
	}
	next = next.withDefaults()
	next.warnReadableSecrets(d.log)
	d.mu.Lock()
	prev := d.cfg
	d.cfg.Super = next.Super
	d.cfg.Log.Level = next.Log.Level
	d.mu.Unlock()

	lvl, _ := parseLevel(next.Log.Level)
	d.level.Set(lvl)
	d.m.SetSettings(next.Settings())
	var ignored []string
	if next.DataDir != prev.DataDir {
		ignored = append(ignored, "data_dir")
	}
	if next.Log.Format != prev.Log.Format {
		ignored = append(ignored, "log.format")
	}
	if next.API.Listen != prev.API.Listen || !sameBool(next.API.RequireToken, prev.API.RequireToken) ||
		next.API.AllowNoTokenOffLoopback != prev.API.AllowNoTokenOffLoopback || next.API.TLSCert != prev.API.TLSCert ||
		next.API.TLSKey != prev.API.TLSKey || next.API.MaxConns != prev.API.MaxConns {
		ignored = append(ignored, "api")
	}
	if !sameRelay(next.Relay, prev.Relay) {
		ignored = append(ignored, "relay")
	}
	if next.FD != prev.FD {
		ignored = append(ignored, "fd")
	}
	if next.Events != prev.Events {
		ignored = append(ignored, "events")
	}
	if next.ShutdownDeadline != prev.ShutdownDeadline {
		ignored = append(ignored, "shutdown_deadline")
	}
	ignored = append(ignored, notifyChanges(prev, next)...)
	if len(ignored) > 0 {
		d.log.Warn("config reloaded; these settings take effect at the next restart", "settings", strings.Join(ignored, ","))
	} else {
		d.log.Info("config reloaded", "log_level", lvl.String())
	}
	return nil
}

func sameBool(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameRelay(a, b RelayConfig) bool {
	if a.Listen != b.Listen || a.UDPRTPAddress != b.UDPRTPAddress || a.User != b.User || a.Pass != b.Pass ||
		a.DescribeWait != b.DescribeWait || a.StartPointTimeout != b.StartPointTimeout ||
		len(a.Cameras) != len(b.Cameras) || a.Public != b.Public ||
		a.MaxConns != b.MaxConns || a.AllowTunnel != b.AllowTunnel || a.TLSCert != b.TLSCert || a.TLSKey != b.TLSKey {
		return false
	}
	for k, v := range a.Cameras {
		if b.Cameras[k] != v {
			return false
		}
	}
	return true
}

// statusExtra adds the daemon's own fields to GET /api/v1/status.
func (d *Daemon) statusExtra() map[string]any {
	x := d.fd.StatusExtra()
	d.mu.Lock()
	x["shutdown_deadline"] = d.cfg.ShutdownDeadline.D().Seconds()
	d.mu.Unlock()
	x["data_dir"] = d.cfg.DataDir
	if d.rl != nil {
		x["relay"] = d.rl.Scheme() + "://" + d.rl.Addr()
		if err := d.rl.Err(); err != nil {
			x["relay_error"] = err.Error()
		}
	}
	return x
}

// summary is the one-line state of the cameras for systemd's STATUS=.
func (d *Daemon) summary() string {
	c := d.m.Counts()
	total := 0
	for _, n := range c {
		total += n
	}
	parts := []string{}
	for _, s := range []device.State{device.StateRunning, device.StateStarting, device.StateReconnecting, device.StateCrashed, device.StateStopped} {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], strings.ToLower(s.String())))
		}
	}
	noun := "cameras"
	if total == 1 {
		noun = "camera"
	}
	if total == 0 {
		return "0 cameras"
	}
	return fmt.Sprintf("%d %s: %s", total, noun, strings.Join(parts, ", "))
}

// Run serves until ctx is cancelled or Stop is called, then shuts down:
// API, cameras (statuses persisted), relay, store. Once shutdown begins,
// the backstop ends the process within Config.ShutdownDeadline whatever
// hangs. Run returns nil after a clean stop, or the cause given to Stop.
func (d *Daemon) Run(ctx context.Context) error {
	apiCtx, apiCancel := context.WithCancel(context.Background())
	bgCtx, bgCancel := context.WithCancel(context.Background())
	apiDone := make(chan struct{})
	var bg sync.WaitGroup
	go func() {
		defer close(apiDone)
		if err := d.srv.Run(apiCtx); err != nil {
			d.log.Error("api server stopped", "err", err)
			d.Stop(fmt.Errorf("api server: %w", err))
		}
	}()
	bg.Add(2)
	go func() { defer bg.Done(); _ = d.fd.Run(bgCtx) }()
	go func() { defer bg.Done(); d.notifyLoop(bgCtx) }()

	if ok, err := sdnotify.Ready(); err != nil {
		d.log.Warn("sd_notify READY failed", "err", err)
	} else if ok {
		d.log.Info("told systemd we are ready")
	}

	select {
	case <-ctx.Done():
	case <-d.stopCh:
	}
	d.Stop(nil)
	began := time.Now()
	deadline := d.cfg.ShutdownDeadline.D()
	backstop := time.AfterFunc(deadline, func() {
		d.log.Error("shutdown deadline passed; exiting without finishing", "deadline", deadline, "unfinished", d.Step())
		d.opts.Exit(1)
	})
	defer backstop.Stop()
	_, _ = sdnotify.Stopping()
	stopping := map[string]string{}
	if d.stopErr != nil {
		stopping["cause"] = d.stopErr.Error()
	}
	d.evq.Emit(events.Event{Kind: events.DaemonStopping, Details: stopping})
	if d.stopErr != nil {
		d.log.Error("shutting down", "cause", d.stopErr, "deadline", deadline)
	} else {
		d.log.Info("shutting down", "deadline", deadline)
	}

	d.setStep("api")
	apiCancel()
	<-apiDone
	d.setStep("cameras")
	if err := d.m.Close(); err != nil {
		d.log.Error("stopping cameras", "err", err)
	}
	d.setStep("relay")
	if d.rl != nil {
		d.rl.Close()
	}
	d.setStep("notify")
	d.closeNotifiers()
	d.setStep("watchdogs")
	bgCancel()
	bg.Wait()
	d.setStep("events")
	d.evq.Close(time.Second)
	d.setStep("store")
	if err := d.st.Close(); err != nil {
		d.log.Error("closing the store", "err", err)
	}
	d.hookClose()
	d.setStep("done")
	d.log.Info("stopped", "took", time.Since(began).Round(time.Millisecond))
	return d.stopErr
}

// notifyLoop keeps systemd informed: STATUS= when the summary changes, and
// WATCHDOG=1 only while the supervision loop is alive, so that a hung camd
// is killed and restarted by systemd.
func (d *Daemon) notifyLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	wd := sdnotify.WatchdogInterval()
	last := ""
	relayFailed := false
	for {
		d.hookTick()
		if d.rl != nil && !relayFailed {
			if err := d.rl.Err(); err != nil {
				relayFailed = true
				d.evq.Emit(events.Event{Kind: events.RelayFailed, Details: map[string]string{"error": err.Error()}})
			}
		}
		if s := d.summary(); s != last {
			last = s
			_, _ = sdnotify.Status(s)
		}
		if wd > 0 && time.Since(d.m.LastLoop()) < 3*loopInterval {
			_, _ = sdnotify.Watchdog()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
