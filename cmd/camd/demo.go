package main

// "camd demo": a simulator and a daemon in one process, the cameras added
// through the control API, a live table of their states, and two faults
// injected after a while so that the viewer sees detection and recovery.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/daemon"
	"github.com/camd/camd/stream/sim"
)

// demoCameras are the simulated cameras, in the simulator's order.
var demoCameras = []string{"front-door", "yard", "garage", "street"}

const (
	demoStalled = "yard"   // gets a stall fault
	demoDropped = "garage" // gets its connection dropped

	// demoCrashedAfter is the demo's crashed_after (and flap_debounce): a
	// camera failing this long is CRASHED.
	demoCrashedAfter = 3 * time.Second
)

// demoEvent is one state change seen by the demo.
type demoEvent struct {
	at       time.Time
	name     string
	from, to device.State
}

// demoLog collects state changes from the supervisors (which must not be
// blocked) for the display.
type demoLog struct {
	mu     sync.Mutex
	events []demoEvent
	notify chan struct{}
}

func (l *demoLog) add(name string, from, to device.State) {
	l.mu.Lock()
	l.events = append(l.events, demoEvent{time.Now(), name, from, to})
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *demoLog) since(i int) []demoEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.events) {
		return nil
	}
	return append([]demoEvent(nil), l.events[i:]...)
}

func newDemoCmd() *cobra.Command {
	var o demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "run a simulator and a daemon together with a live table",
		Long: fmt.Sprintf(`Runs a simulator with 4 cameras and a daemon (temporary data dir, short
thresholds) in one process and shows the cameras' states live. After
--fault-after it stalls %q and drops %q's connection, and says when
camd noticed and when the cameras recovered. Ctrl-C exits.`, demoStalled, demoDropped),
		Example: `  camd demo
  camd demo --duration 1m --plain
  camd demo --fault-after 5s --stall-for 30s`,
		Args: noArgs("demo"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdDemo(cmd.Context(), &o, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	fs.DurationVar(&o.faultAfter, "fault-after", 15*time.Second, "when to inject the faults")
	fs.DurationVar(&o.stallFor, "stall-for", 15*time.Second, "how long the stalled camera sends nothing")
	fs.BoolVar(&o.plain, "plain", false, "print changes line by line instead of redrawing the table (the default when stdout is not a terminal)")
	return cmd
}

// demoFlags are camd demo's flags.
type demoFlags struct {
	duration, faultAfter, stallFor time.Duration
	plain                          bool
}

func cmdDemo(ctx context.Context, o *demoFlags, stdout io.Writer) error {
	duration, faultAfter, stallFor, plain := &o.duration, &o.faultAfter, &o.stallFor, &o.plain
	if !*plain && !isTerminal(stdout) {
		*plain = true
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	s, err := sim.New(sim.Config{Cameras: len(demoCameras), NoUDP: true})
	if err != nil {
		return fmt.Errorf("demo: simulator: %w", err)
	}
	defer s.Close()
	dir, err := os.MkdirTemp("", "camd-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)
	logFile, err := os.Create(dir + "/camd.log")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer logFile.Close()

	events := &demoLog{notify: make(chan struct{}, 1)}
	sec := func(d time.Duration) daemon.Duration { return daemon.Duration(d) }
	d, err := daemon.New(ctx, daemon.Options{
		Config: daemon.Config{
			DataDir: dir,
			API:     daemon.APIConfig{Listen: "127.0.0.1:0"},
			Relay:   daemon.RelayConfig{Listen: "127.0.0.1:0"},
			Super: daemon.SupervisionConfig{
				StallTimeout: sec(5 * time.Second), FlapDebounce: sec(3 * time.Second),
				CrashedAfter: sec(demoCrashedAfter), ForceRestartAfter: sec(20 * time.Second),
				BackoffMin: sec(500 * time.Millisecond), BackoffMax: sec(3 * time.Second),
				ReadTimeout: sec(8 * time.Second), // above the stall timeout, so the stall timer shows
			},
			ShutdownDeadline: sec(5 * time.Second),
		},
		Version:       version,
		Stderr:        logFile,
		OnStateChange: events.add,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	runErr := make(chan error, 1)
	runCtx, stopDaemon := context.WithCancel(context.Background())
	defer stopDaemon()
	go func() { runErr <- d.Run(runCtx) }()

	c := api.NewClient(d.APIAddr(), "")
	defer c.CloseIdleConnections()
	for i, name := range demoCameras {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.AddCamera(actx, device.Spec{Name: name, URL: s.URL(i + 1)}, true)
		cancel()
		if err != nil {
			stopDaemon()
			<-runErr
			return fmt.Errorf("demo: add %s: %w", name, err)
		}
	}

	v := &demoView{out: stdout, plain: *plain, client: c, events: events, start: time.Now(),
		api: d.APIAddr(), relay: d.RelayAddr(), faultAt: time.Now().Add(*faultAfter)}
	v.header()
	faultTimer := time.NewTimer(*faultAfter)
	defer faultTimer.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-faultTimer.C:
			v.note(fmt.Sprintf("injecting faults: %s stalls (sends nothing for %s; camd should notice after 5 s of silence), %s's connection is dropped (camd should reconnect at once)",
				demoStalled, *stallFor, demoDropped))
			// Taken before the faults: a dropped connection is seen as soon
			// as the simulator closes it, before SetFault returns.
			v.faulted = time.Now()
			_ = s.SetFault(cameraIndex(demoStalled), sim.FaultStall, *stallFor)
			_ = s.SetFault(cameraIndex(demoDropped), sim.FaultDrop, 0)
		case <-events.notify:
			v.update(ctx)
		case <-tick.C:
			v.update(ctx)
		}
	}
	v.update(context.Background())
	stopDaemon()
	err = <-runErr
	v.summary()
	if err != nil {
		return fmt.Errorf("demo: daemon: %w", err)
	}
	fmt.Fprintln(stdout, "demo: stopped cleanly")
	return nil
}

func cameraIndex(name string) int {
	for i, n := range demoCameras {
		if n == name {
			return i + 1
		}
	}
	return 0
}

// demoView draws the demo: a redrawn table on a terminal, or line by line.
type demoView struct {
	out        io.Writer
	plain      bool
	client     *api.Client
	events     *demoLog
	start      time.Time
	api, relay string
	faultAt    time.Time
	faulted    time.Time
	seen       int      // events printed (plain mode)
	notes      []string // shown under the table
	lastTable  time.Time
}

func (v *demoView) header() {
	fmt.Fprintf(v.out, "camd demo: %d simulated cameras supervised by camd (thresholds shortened: stall 5 s, flap 3 s)\n", len(demoCameras))
	fmt.Fprintf(v.out, "  status page  http://%s/\n", v.api)
	fmt.Fprintf(v.out, "  control API  camd camera ls --api %s\n", v.api)
	fmt.Fprintf(v.out, "  relay        ffplay -rtsp_transport tcp rtsp://%s/%s\n", v.relay, demoCameras[0])
	fmt.Fprintf(v.out, "  faults at    +%s; Ctrl-C to stop\n", v.faultAt.Sub(v.start).Round(time.Second))
}

func (v *demoView) note(s string) {
	line := fmt.Sprintf("%s  %s", v.clock(time.Now()), s)
	v.notes = append(v.notes, line)
	if v.plain {
		fmt.Fprintln(v.out, line)
	}
}

func (v *demoView) clock(t time.Time) string {
	d := t.Sub(v.start)
	return fmt.Sprintf("+%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func (v *demoView) update(ctx context.Context) {
	for _, e := range v.events.since(v.seen) {
		v.seen++
		line := fmt.Sprintf("%s  %-10s %s -> %s", v.clock(e.at), e.name, e.from, e.to)
		if !v.faulted.IsZero() && e.at.After(v.faulted) {
			switch {
			case e.from == device.StateRunning && (e.name == demoStalled || e.name == demoDropped):
				line += fmt.Sprintf("   (fault detected %.1f s after injection)", e.at.Sub(v.faulted).Seconds())
			case e.to == device.StateRunning && (e.name == demoStalled || e.name == demoDropped):
				line += fmt.Sprintf("   (recovered %.1f s after injection)", e.at.Sub(v.faulted).Seconds())
			}
		}
		if e.to == device.StateCrashed {
			// CRASHED reads as if camd had crashed: say what it means.
			line += fmt.Sprintf("   (no video for %s of trying (crashed_after, 30 s outside the demo): camd records the camera as CRASHED and keeps reconnecting)",
				demoCrashedAfter)
		}
		v.notes = append(v.notes, line)
		if v.plain {
			fmt.Fprintln(v.out, line)
		}
	}
	if v.plain && time.Since(v.lastTable) < 10*time.Second {
		return
	}
	v.lastTable = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cams, err := v.client.Cameras(cctx)
	if err != nil {
		return
	}
	var b strings.Builder
	writeCameraTable(&b, cams, time.Now())
	if v.plain {
		fmt.Fprintf(v.out, "%s  cameras:\n%s", v.clock(time.Now()), indent(b.String()))
		return
	}
	// Redraw: home, clear, header, table, the latest notes.
	fmt.Fprint(v.out, "\033[H\033[2J")
	v.header()
	fmt.Fprintf(v.out, "\n%s  (%s)\n", strings.TrimRight(b.String(), "\n"), v.clock(time.Now()))
	notes := v.notes
	if len(notes) > 12 {
		notes = notes[len(notes)-12:]
	}
	if len(notes) > 0 {
		fmt.Fprintln(v.out, "\nstate changes:")
		for _, n := range notes {
			fmt.Fprintln(v.out, "  "+n)
		}
	}
}

// summary says, for each fault, when it was detected and when the camera
// recovered.
func (v *demoView) summary() {
	if v.faulted.IsZero() {
		fmt.Fprintln(v.out, "demo: ended before the faults were injected")
		return
	}
	evs := v.events.since(0)
	for _, name := range []string{demoStalled, demoDropped} {
		var detected, recovered time.Time
		for _, e := range evs {
			if e.name != name || e.at.Before(v.faulted) {
				continue
			}
			if detected.IsZero() && e.from == device.StateRunning {
				detected = e.at
			}
			if !detected.IsZero() && recovered.IsZero() && e.to == device.StateRunning {
				recovered = e.at
			}
		}
		kind := "stall"
		if name == demoDropped {
			kind = "drop"
		}
		switch {
		case detected.IsZero():
			fmt.Fprintf(v.out, "demo: %s of %s: not detected\n", kind, name)
		case recovered.IsZero():
			fmt.Fprintf(v.out, "demo: %s of %s: detected after %.1f s, not recovered yet\n", kind, name, detected.Sub(v.faulted).Seconds())
		default:
			fmt.Fprintf(v.out, "demo: %s of %s: detected after %.1f s, recovered after %.1f s\n", kind, name,
				detected.Sub(v.faulted).Seconds(), recovered.Sub(v.faulted).Seconds())
		}
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "\n    ") + "\n"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
