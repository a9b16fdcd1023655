// Command camdbench measures camd against the simulator and against the
// alternative an operator would otherwise run, one ffmpeg per camera, and
// writes the figures to a Markdown report (bench/RESULTS.md, "make bench").
//
// For every camera count N it runs "camd sim" with N cameras as its own
// process and then, one after the other:
//
//   - camd with no camera (the baseline), then ingesting all N: CPU from
//     /proc/PID/stat over a steady window, RSS from /proc/PID/status sampled
//     every second, open descriptors from /proc/PID/fd, goroutines from the
//     API;
//   - the same with one relay reader per camera (and, at one N, two), the
//     readers being gortsplib clients inside this program, so that their
//     CPU is never counted as camd's;
//   - recovery: all cameras dropped at once by the simulator, then an
//     outage (new sessions refused, existing ones dropped) ended by the
//     simulator coming back; per camera, the time until RUNNING again, from
//     the state_since the API reports;
//   - stall detection: a few cameras stalled, the time until they leave
//     RUNNING, minus the configured stall_timeout;
//   - SIGTERM to exit, then a restart on the same data dir and the time
//     until all N are RUNNING again, then SIGTERM to exit again;
//   - one "ffmpeg -rtsp_transport tcp -i URL -c copy -f null -" process per
//     camera over a window as long as camd's.
//
// Every child process is stopped on every exit path, Ctrl-C included.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/camd/camd/internal/api"
)

type options struct {
	camd, out, ffmpeg string
	ns                []int
	steady, settle    time.Duration
	idle              time.Duration
	outages           []time.Duration
	stallTimeout      time.Duration
	readBatch         string
	stallCams         int
	twoReadersAt      int
	skipFFmpeg, quick bool
	keep              bool
	// skipUnbatched and skipFloor leave out the ingest window with
	// read_batch 0s and the floor.
	skipUnbatched, skipFloor bool
	// ab is the git revision to build the reference camd from, abBin a
	// reference binary; with either, abNs, abPairs and abSteady shape the
	// interleaved A/B pairs.
	ab, abBin string
	abNs      []int
	abPairs   int
	abSteady  time.Duration
	// abRev is the commit ab resolved to (set by the bench).
	abRev string
	// noStamp runs the simulator without send-time stamps (no latency).
	noStamp bool
	// go2rtc and mediamtx are the binaries of the comparison ("" leaves
	// the system out); compareNs are the camera counts it runs at.
	go2rtc, mediamtx string
	compareNs        []int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		os.Exit(runFloor(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("camdbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	nList := fs.String("n", "16,64,256", "camera counts, comma-separated")
	fs.StringVar(&o.camd, "camd", "./camd", "camd binary to measure (it also serves as the simulator)")
	fs.StringVar(&o.out, "out", "bench/RESULTS.md", "Markdown report to write")
	fs.StringVar(&o.ffmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary for the ffmpeg-per-camera comparison")
	fs.DurationVar(&o.steady, "steady", 60*time.Second, "length of every steady-state window")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "wait after a change before a window starts")
	fs.DurationVar(&o.idle, "idle", 5*time.Second, "length of the window of camd without cameras")
	outageList := fs.String("outage", "5s,30s", "outage tests: how long the simulator refuses every camera, comma-separated")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", 5*time.Second, "camd's supervision.stall_timeout for the run")
	fs.StringVar(&o.readBatch, "read-batch", "", "camd's supervision.read_batch for the run (\"\": camd's default; 0s: every packet read as it arrives)")
	fs.IntVar(&o.stallCams, "stall-cams", 8, "cameras stalled at once in the stall test (at most N)")
	fs.IntVar(&o.twoReadersAt, "two-readers-at", 64, "camera count at which to also measure two relay readers per camera (0: never)")
	fs.BoolVar(&o.skipFFmpeg, "skip-ffmpeg", false, "do not measure the ffmpeg-per-camera alternative")
	fs.BoolVar(&o.quick, "quick", false, "smoke test: N=16, 10 s windows, shorter settling (explicit flags still win)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs of every process) and print its path")
	fs.BoolVar(&o.skipUnbatched, "skip-unbatched", false, "do not measure camd ingesting with read_batch: 0s")
	fs.BoolVar(&o.skipFloor, "skip-floor", false, "do not measure the floor (N sockets drained with camd's batching, nothing parsed)")
	fs.StringVar(&o.ab, "ab", "", "git revision to build a reference camd from (git archive + go build) and compare ingest CPU in interleaved A/B pairs")
	fs.StringVar(&o.abBin, "ab-bin", "", "reference camd binary for the A/B pairs (instead of -ab)")
	abList := fs.String("ab-n", "", "camera counts of the A/B pairs (default: 64 and 256 where in -n, else every -n)")
	fs.IntVar(&o.abPairs, "ab-pairs", 4, "A/B pairs at each camera count")
	fs.DurationVar(&o.abSteady, "ab-steady", 30*time.Second, "length of each A/B window")
	fs.BoolVar(&o.noStamp, "no-stamp", false, "run the simulator without send-time stamps (one small RTP packet less per frame; no latency figures)")
	fs.StringVar(&o.go2rtc, "go2rtc", os.Getenv("GO2RTC"), "go2rtc binary to measure as an RTSP proxy of the simulated cameras (default $GO2RTC; \"\": left out)")
	fs.StringVar(&o.mediamtx, "mediamtx", os.Getenv("MEDIAMTX"), "mediamtx binary to measure as an RTSP proxy of the simulated cameras (default $MEDIAMTX; \"\": left out)")
	compareList := fs.String("compare-n", "", "camera counts of the go2rtc and mediamtx comparison (default: 64 where in -n, else every -n)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "camdbench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["n"] {
			*nList = "16"
		}
		if !set["steady"] {
			o.steady = 10 * time.Second
		}
		if !set["settle"] {
			o.settle = 3 * time.Second
		}
		if !set["idle"] {
			o.idle = 2 * time.Second
		}
		if !set["outage"] {
			*outageList = "3s"
		}
		if !set["ab-pairs"] {
			o.abPairs = 2
		}
		if !set["ab-steady"] {
			o.abSteady = 10 * time.Second
		}
	}
	var err error
	if o.ns, err = parseNList(*nList); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 2
	}
	if o.outages, err = parseDurList(*outageList); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 2
	}
	if o.abNs, err = abCounts(*abList, o.ns); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 2
	}
	if o.compareNs, err = compareCounts(*compareList, o.ns); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 2
	}
	for _, bin := range []*string{&o.go2rtc, &o.mediamtx} {
		if *bin == "" {
			continue
		}
		p, err := exec.LookPath(*bin)
		if err == nil {
			p, err = filepath.Abs(p)
		}
		if err != nil {
			fmt.Fprintf(stderr, "camdbench: %v\n", err)
			return 2
		}
		*bin = p
	}
	if o.ab != "" && o.abBin != "" {
		fmt.Fprintln(stderr, "camdbench: -ab and -ab-bin exclude each other")
		return 2
	}
	if o.abPairs < 1 || o.abSteady <= 0 {
		fmt.Fprintln(stderr, "camdbench: -ab-pairs must be at least 1 and -ab-steady positive")
		return 2
	}
	if o.abBin != "" {
		if o.abBin, err = filepath.Abs(o.abBin); err == nil {
			_, err = os.Stat(o.abBin)
		}
		if err != nil {
			fmt.Fprintf(stderr, "camdbench: no reference camd binary: %v\n", err)
			return 2
		}
	}
	if o.camd, err = filepath.Abs(o.camd); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 2
	}
	if _, err := os.Stat(o.camd); err != nil {
		fmt.Fprintf(stderr, "camdbench: no camd binary: %v (build it: go build -o camd ./cmd/camd)\n", err)
		return 2
	}
	if !o.skipFFmpeg {
		p, err := exec.LookPath(o.ffmpeg)
		if err != nil {
			fmt.Fprintf(stderr, "camdbench: %v (install ffmpeg or pass -skip-ffmpeg)\n", err)
			return 2
		}
		o.ffmpeg = p
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the bench cleans up; a second one kills
		// it (the children die with it: Pdeathsig).
		<-ctx.Done()
		stop()
	}()

	b, err := newBench(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 1
	}
	defer b.cleanup()
	rep, err := b.runAll(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 1
	}
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
		fmt.Fprintln(stderr, "camdbench:", err)
		return 1
	}
	b.logf("wrote %s", o.out)
	return 0
}

type bench struct {
	o       options
	log     io.Writer
	tmp     string
	cfgPath string
	// cfg0Path is the same configuration with read_batch: 0s.
	cfg0Path string
	// refBin is the reference camd of the A/B pairs ("" for none).
	refBin string
	procs  *procSet
	cores  int
	begin  time.Time
}

func newBench(o options, log io.Writer) (*bench, error) {
	tmp, err := os.MkdirTemp("", "camdbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, log: log, tmp: tmp, procs: newProcSet(), cores: runtime.NumCPU(), begin: time.Now()}
	b.cfgPath = filepath.Join(tmp, "camd.yaml")
	b.cfg0Path = filepath.Join(tmp, "camd-read-batch-0s.yaml")
	for path, batch := range map[string]string{b.cfgPath: b.o.readBatch, b.cfg0Path: "0s"} {
		if err := os.WriteFile(path, []byte(b.config(batch)), 0o644); err != nil {
			b.cleanup()
			return nil, err
		}
	}
	switch {
	case b.o.abBin != "":
		b.refBin = b.o.abBin
	case b.o.ab != "":
		b.logf("building the reference camd at %s", b.o.ab)
		rev, bin, err := buildAt(b.o.ab, filepath.Join(tmp, "ref"))
		if err != nil {
			b.cleanup()
			return nil, err
		}
		b.o.abRev, b.refBin = rev, bin
		b.logf("reference camd: commit %s", rev)
	}
	return b, nil
}

// config is the camd configuration of the run: defaults but for the stall
// timeout (and read_batch if given: camd's supervision.read_batch).
func (b *bench) config(readBatch string) string {
	c := fmt.Sprintf("log:\n  level: info\nsupervision:\n  stall_timeout: %s\n", b.o.stallTimeout)
	if readBatch != "" {
		c += fmt.Sprintf("  read_batch: %s\n", readBatch)
	}
	return c
}

func (b *bench) cleanup() {
	b.procs.stopAll(5 * time.Second)
	if b.o.keep {
		b.logf("kept %s", b.tmp)
		return
	}
	os.RemoveAll(b.tmp)
}

func (b *bench) logf(format string, args ...any) {
	el := time.Since(b.begin).Round(time.Second)
	fmt.Fprintf(b.log, "[%02d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

// nResult is everything measured at one camera count.
type nResult struct {
	N int
	// AddAll is the time from the first add request until all N cameras
	// were RUNNING, on a fresh daemon.
	AddAll time.Duration
	// Idle is camd without cameras; Ingest with N; R1 and R2 with one and
	// two relay readers per camera; FF is one ffmpeg per camera.
	Idle, Ingest *window
	R1, R2, FF   *window
	// Unbatched is camd ingesting with read_batch: 0s, UnbatchedR1 the
	// same with one reader per camera; Floor the floor program,
	// FloorTotals what it counted.
	Unbatched, UnbatchedR1, Floor *window
	FloorTotals                   *floorTotals
	// AB is the interleaved A/B pairs against the reference camd.
	AB *abResult
	// Proxies are go2rtc and mediamtx, where given.
	Proxies []*proxyResult
	Drop    *recovery
	Outages []*recovery
	Stall   *stallResult
	Restart *restartResult
	Errors  []string
}

func (r *nResult) fail(what string, err error) {
	r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
}

func (b *bench) runAll(ctx context.Context) (*report, error) {
	rep := &report{o: b.o, started: time.Now(), machine: describeMachine(b.o)}
	if b.refBin != "" {
		rep.machine.Ref = camdBuild(b.refBin)
		if b.o.abRev != "" {
			rep.machine.Ref += fmt.Sprintf(" (built by the bench from `%s`, commit %.12s)", b.o.ab, b.o.abRev)
		} else {
			rep.machine.Ref += " (" + b.refBin + ")"
		}
	}
	b.logf("camdbench: N=%v, %v windows, camd %s; temp dir %s", b.o.ns, b.o.steady, b.o.camd, b.tmp)
	for _, n := range b.o.ns {
		res := nResult{N: n}
		err := b.runN(ctx, &res)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if err != nil {
			res.fail("aborted", err)
			b.logf("N=%d: aborted: %v", n, err)
		}
		rep.results = append(rep.results, res)
		// Nothing of one N may leak into the next.
		b.procs.stopAll(5 * time.Second)
	}
	rep.finished = time.Now()
	return rep, nil
}

func (b *bench) runN(ctx context.Context, res *nResult) error {
	n := res.N
	sim, err := b.startSim(ctx, n)
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	defer sim.stop(5 * time.Second)
	b.logf("N=%d: simulator on %s", n, sim.rtsp)

	dataDir := filepath.Join(b.tmp, fmt.Sprintf("data-%d", n))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	cd, err := b.startCamd(ctx, dataDir, fmt.Sprintf("%d-first", n))
	if err != nil {
		return fmt.Errorf("camd: %w", err)
	}
	defer func() { cd.stop(5 * time.Second) }()

	b.logf("N=%d: camd without cameras, %v", n, b.o.idle)
	idle, err := b.camdWindow(ctx, cd, sim, nil, b.o.idle)
	if err != nil {
		return err
	}
	res.Idle = &idle

	b.logf("N=%d: adding %d cameras", n, n)
	t0 := time.Now()
	if err := cd.addCameras(ctx, sim); err != nil {
		return err
	}
	tAll, _, err := cd.pollCameras(ctx, 60*time.Second+time.Duration(n)*100*time.Millisecond, allRunning(n))
	if err != nil {
		return fmt.Errorf("waiting for all %d cameras to run: %w", n, err)
	}
	res.AddAll = tAll.Sub(t0)
	b.logf("N=%d: all RUNNING after %v", n, res.AddAll.Round(time.Millisecond))

	if err := sleep(ctx, b.o.settle); err != nil {
		return err
	}
	b.logf("N=%d: steady window, ingest only, %v", n, b.o.steady)
	ingest, err := b.camdWindow(ctx, cd, sim, nil, b.o.steady)
	if err != nil {
		return err
	}
	res.Ingest = &ingest

	if err := b.readerWindows(ctx, res, cd, sim); err != nil {
		if ctx.Err() != nil {
			return err
		}
		res.fail("relay readers", err)
	}

	if err := sleep(ctx, 2*time.Second); err != nil {
		return err
	}
	b.logf("N=%d: drop test", n)
	res.Drop = b.recoveryTest(ctx, cd, sim, 0)
	for _, d := range b.o.outages {
		b.logf("N=%d: outage test (%v)", n, d)
		res.Outages = append(res.Outages, b.recoveryTest(ctx, cd, sim, d))
	}
	b.logf("N=%d: stall test", n)
	res.Stall = b.stallTest(ctx, cd, sim)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	b.logf("N=%d: SIGTERM and restart", n)
	var rr *restartResult
	rr, cd = b.restartTest(ctx, cd, sim, dataDir)
	res.Restart = rr
	if ctx.Err() != nil {
		return ctx.Err()
	}
	cd.stop(5 * time.Second)

	if !b.o.skipUnbatched && !b.unbatchedRun() {
		b.logf("N=%d: camd with read_batch: 0s", n)
		w, wr, err := b.ingestReaderWindows(ctx, sim, b.o.camd, b.cfg0Path, fmt.Sprintf("%d-unbatched", n), b.o.steady, n == b.o.twoReadersAt)
		if w != nil {
			res.Unbatched = w
		}
		if wr != nil {
			res.UnbatchedR1 = wr
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			res.fail("camd with read_batch: 0s", err)
		}
	}
	if !b.o.skipFloor {
		b.logf("N=%d: floor, %d sockets drained", n, n)
		w, t, err := b.floorWindow(ctx, sim)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			res.fail("floor", err)
		} else {
			res.Floor, res.FloorTotals = &w, t
		}
	}
	if b.refBin != "" && slices.Contains(b.o.abNs, n) {
		res.AB = b.abPairs(ctx, sim)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	if slices.Contains(b.o.compareNs, n) {
		for _, px := range b.proxies() {
			res.Proxies = append(res.Proxies, b.proxyWindows(ctx, sim, px))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	if !b.o.skipFFmpeg {
		b.logf("N=%d: %d ffmpeg processes", n, n)
		w, err := b.ffmpegWindow(ctx, sim)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			res.fail("ffmpeg", err)
		} else {
			res.FF = &w
		}
	}
	return nil
}

// camdWindow measures camd over d, with the frame rates its cameras
// ingested and what its readers (if any) received over the same window.
func (b *bench) camdWindow(ctx context.Context, cd *camdProc, sim *simProc, rs []*reader, d time.Duration) (window, error) {
	l0, _ := cd.c.Cameras(ctx)
	tl0 := time.Now()
	m0 := markReaders(rs, true)
	w, err := measure(ctx, []int{cd.pid()}, sim.pid(), d, b.cores)
	if err != nil {
		return w, err
	}
	m1 := markReaders(rs, false)
	l1, _ := cd.c.Cameras(ctx)
	tl1 := time.Now()
	if st, err := cd.c.Status(ctx); err == nil {
		w.Goroutines = st.Goroutines
	}
	w.FPSMin, w.FPSMean = fpsOver(l0, l1, tl1.Sub(tl0))
	w.Stalls, w.Reconnects = eventsOver(l0, l1)
	w.RelayDropped = relayDroppedOver(l0, l1)
	readerWindow(&w, rs, m0, m1)
	if cd.exited() {
		return w, fmt.Errorf("camd exited during the window; last lines:\n%s", cd.tail(20))
	}
	return w, nil
}

// relayDroppedOver returns how many readers camd's relay dropped between
// two camera lists (its readers_dropped), or -1 if a list lacks it.
func relayDroppedOver(l0, l1 []api.CameraJSON) int64 {
	dropped := func(c api.CameraJSON) (int64, bool) {
		m, ok := c.Relay.(map[string]any)
		if !ok {
			return 0, false
		}
		v, ok := m["readers_dropped"].(float64)
		return int64(v), ok
	}
	if len(l0) == 0 || len(l1) == 0 {
		return -1
	}
	before := map[string]int64{}
	for _, c := range l0 {
		v, ok := dropped(c)
		if !ok {
			return -1
		}
		before[c.Name] = v
	}
	var sum int64
	for _, c := range l1 {
		v, ok := dropped(c)
		if !ok {
			return -1
		}
		sum += max(0, v-before[c.Name])
	}
	return sum
}

// fpsOver returns the lowest and mean per-camera frame rate between two
// camera lists taken d apart.
func fpsOver(l0, l1 []api.CameraJSON, d time.Duration) (lo, mean float64) {
	if len(l1) == 0 || d <= 0 {
		return 0, 0
	}
	before := map[string]uint64{}
	for _, c := range l0 {
		before[c.Name] = c.Frames
	}
	lo = -1
	var sum float64
	for _, c := range l1 {
		f := float64(c.Frames-min(c.Frames, before[c.Name])) / d.Seconds()
		sum += f
		if lo < 0 || f < lo {
			lo = f
		}
	}
	return lo, sum / float64(len(l1))
}

// eventsOver returns the stalls and reconnects of every camera between two
// camera lists.
func eventsOver(l0, l1 []api.CameraJSON) (stalls, reconnects uint64) {
	before := map[string]api.CameraJSON{}
	for _, c := range l0 {
		before[c.Name] = c
	}
	for _, c := range l1 {
		b := before[c.Name]
		stalls += c.StallsTotal - min(c.StallsTotal, b.StallsTotal)
		reconnects += c.ReconnectsTotal - min(c.ReconnectsTotal, b.ReconnectsTotal)
	}
	return stalls, reconnects
}

func (b *bench) relayURLs(cd *camdProc, n int) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("rtsp://%s/cam%d", cd.relay, i+1)
	}
	return urls
}

// readerWindows measures camd with one relay reader per camera and, at
// -two-readers-at, two.
func (b *bench) readerWindows(ctx context.Context, res *nResult, cd *camdProc, sim *simProc) error {
	n := res.N
	var readers []*reader
	defer func() { closeReaders(readers) }()
	rounds := 1
	if n == b.o.twoReadersAt {
		rounds = 2
	}
	for round := 1; round <= rounds; round++ {
		b.logf("N=%d: connecting %d more relay readers", n, n)
		rs, took, err := startReaders(ctx, b.relayURLs(cd, n))
		if err != nil {
			return err
		}
		readers = append(readers, rs...)
		if err := sleep(ctx, b.o.settle); err != nil {
			return err
		}
		for _, r := range readers {
			if !r.alive() {
				return fmt.Errorf("a relay reader ended before the window: %v", r.rd.Err())
			}
		}
		b.logf("N=%d: steady window, %d reader(s) per camera, %v", n, round, b.o.steady)
		w, err := b.camdWindow(ctx, cd, sim, readers, b.o.steady)
		if err != nil {
			return err
		}
		w.ReaderConnect = summarize(took)
		if round == 1 {
			res.R1 = &w
		} else {
			res.R2 = &w
		}
	}
	return nil
}

// recovery is the result of a drop (outage 0) or an outage test.
type recovery struct {
	Outage time.Duration
	Cams   int
	// Down is how many cameras had left RUNNING just before the simulator
	// came back (outage test only).
	Down      int
	Recovered int
	// PerCam is, per camera, the time from its fault request (drop) or its
	// clear request (outage) to the state_since of RUNNING again.
	PerCam durStats
	// All is from the first request of the event to the last camera's
	// RUNNING (from state_since); Observed the same to the poll that saw
	// all RUNNING.
	All, Observed time.Duration
	Err           string
}

// recoveryTest drops every camera's session at once (outage 0), or makes
// the simulator refuse every camera, drops their sessions, waits outage and
// lets them back in; then it polls the cameras every 100 ms until all are
// RUNNING again.
func (b *bench) recoveryTest(ctx context.Context, cd *camdProc, sim *simProc, outage time.Duration) *recovery {
	n := sim.n
	r := &recovery{Outage: outage, Cams: n}
	if _, _, err := cd.pollCameras(ctx, 60*time.Second, allRunning(n)); err != nil {
		r.Err = fmt.Sprintf("not all RUNNING before the test: %v", err)
		return r
	}
	var from, drop []time.Time
	var err error
	if outage > 0 {
		if _, err = sim.faultAll(ctx, n, "refuse"); err != nil {
			r.Err = err.Error()
			return r
		}
	}
	drop, err = sim.faultAll(ctx, n, "drop")
	if err != nil {
		r.Err = err.Error()
		return r
	}
	from = drop
	if outage > 0 {
		if err := sleep(ctx, outage); err != nil {
			r.Err = err.Error()
			return r
		}
		if list, err := cd.c.Cameras(ctx); err == nil {
			for _, c := range list {
				if c.State != "RUNNING" {
					r.Down++
				}
			}
		}
		if from, err = sim.faultAll(ctx, n, "clear"); err != nil {
			r.Err = err.Error()
			return r
		}
	}
	first := slices.MinFunc(from, func(a, b time.Time) int { return a.Compare(b) })
	per := make([]time.Duration, n)
	back := make([]time.Time, n)
	got := make([]bool, n)
	seen, _, err := cd.pollCameras(ctx, 60*time.Second, func(list []api.CameraJSON) bool {
		all := len(list) == n
		for _, c := range list {
			i := camIndex(c.Name, n)
			if i < 0 {
				continue
			}
			if c.State == "RUNNING" && c.StateSince.After(drop[i]) {
				got[i], back[i] = true, c.StateSince
				per[i] = max(0, c.StateSince.Sub(from[i]))
			} else {
				all = false
			}
		}
		return all
	})
	var xs []time.Duration
	var last time.Time
	for i := range n {
		if got[i] {
			xs = append(xs, per[i])
			if back[i].After(last) {
				last = back[i]
			}
		}
	}
	r.Recovered = len(xs)
	r.PerCam = summarize(xs)
	if !last.IsZero() {
		r.All = max(0, last.Sub(first))
	}
	r.Observed = seen.Sub(first)
	if err != nil {
		r.Err = fmt.Sprintf("%d of %d cameras RUNNING again when the bench gave up: %v", r.Recovered, n, err)
	}
	return r
}

// stallResult is the stall detection latency, less the stall timeout.
type stallResult struct {
	Cams      int
	Threshold time.Duration
	// Precise uses the state_since of the camera leaving RUNNING; Observed
	// the 100 ms poll that first saw it.
	Precise, Observed durStats
	Err               string
}

func (b *bench) stallTest(ctx context.Context, cd *camdProc, sim *simProc) *stallResult {
	n := sim.n
	k := max(1, min(n, b.o.stallCams))
	r := &stallResult{Cams: k, Threshold: b.o.stallTimeout}
	if _, _, err := cd.pollCameras(ctx, 60*time.Second, allRunning(n)); err != nil {
		r.Err = fmt.Sprintf("not all RUNNING before the test: %v", err)
		return r
	}
	sent, err := sim.faultAll(ctx, k, "stall")
	defer func() {
		// Clear the fault whatever happened, and let the cameras recover.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = sim.faultAll(cctx, k, "clear")
		if ctx.Err() == nil {
			if _, _, err := cd.pollCameras(ctx, 60*time.Second, allRunning(n)); err != nil && r.Err == "" {
				r.Err = fmt.Sprintf("stalled cameras did not recover after the fault was cleared: %v", err)
			}
		}
	}()
	if err != nil {
		r.Err = err.Error()
		return r
	}
	precise := make([]time.Duration, k)
	observed := make([]time.Duration, k)
	got := make([]bool, k)
	_, _, err = cd.pollCameras(ctx, b.o.stallTimeout+20*time.Second, func(list []api.CameraJSON) bool {
		now := time.Now()
		for _, c := range list {
			i := camIndex(c.Name, n)
			if i < 0 || i >= k || got[i] {
				continue
			}
			if c.State != "RUNNING" && c.StateSince.After(sent[i]) {
				got[i] = true
				precise[i] = c.StateSince.Sub(sent[i]) - b.o.stallTimeout
				observed[i] = now.Sub(sent[i]) - b.o.stallTimeout
			}
		}
		return !slices.Contains(got, false)
	})
	var ps, obs []time.Duration
	for i := range k {
		if got[i] {
			ps = append(ps, precise[i])
			obs = append(obs, observed[i])
		}
	}
	r.Precise, r.Observed = summarize(ps), summarize(obs)
	if err != nil {
		r.Err = fmt.Sprintf("%d of %d stalled cameras detected: %v", len(ps), k, err)
	}
	return r
}

// termResult is one SIGTERM-to-exit measurement.
type termResult struct {
	D    time.Duration
	Code int
	Err  string
}

// restartResult is SIGTERM, a restart on the same data dir, and SIGTERM
// again.
type restartResult struct {
	Term []termResult
	// APIUp is from exec until the "camd started" line; AllRunning until
	// the poll that saw every camera RUNNING; PerCam per camera until its
	// state_since of RUNNING.
	APIUp, AllRunning time.Duration
	PerCam            durStats
	Running           int
	Err               string
}

// sigterm stops camd with SIGTERM and measures the time to its exit.
func sigterm(cd *camdProc) termResult {
	t0 := time.Now()
	if err := cd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return termResult{Err: err.Error(), Code: -1}
	}
	if !cd.wait(30 * time.Second) {
		cd.stop(0)
		return termResult{D: time.Since(t0), Code: -1, Err: "still running 30 s after SIGTERM; killed"}
	}
	tr := termResult{D: cd.exitedAt.Sub(t0), Code: cd.exitCode()}
	if tr.Code != 0 {
		tr.Err = fmt.Sprintf("exit status %d", tr.Code)
	}
	return tr
}

// restartTest returns the camd process running at the end (stopped, or
// the old one if the restart failed).
func (b *bench) restartTest(ctx context.Context, cd *camdProc, sim *simProc, dataDir string) (*restartResult, *camdProc) {
	n := sim.n
	r := &restartResult{}
	if _, _, err := cd.pollCameras(ctx, 60*time.Second, allRunning(n)); err != nil {
		r.Err = fmt.Sprintf("not all RUNNING before SIGTERM: %v", err)
	}
	r.Term = append(r.Term, sigterm(cd))
	cd2, err := b.startCamd(ctx, dataDir, fmt.Sprintf("%d-restart", n))
	if err != nil {
		r.Err = fmt.Sprintf("restart: %v", err)
		return r, cd
	}
	r.APIUp = cd2.upAt.Sub(cd2.startedAt)
	seen, list, err := cd2.pollCameras(ctx, 60*time.Second, allRunning(n))
	r.AllRunning = seen.Sub(cd2.startedAt)
	var xs []time.Duration
	for _, c := range list {
		if c.State == "RUNNING" {
			xs = append(xs, max(0, c.StateSince.Sub(cd2.startedAt)))
		}
	}
	r.Running = len(xs)
	r.PerCam = summarize(xs)
	if err != nil {
		r.Err = fmt.Sprintf("%d of %d RUNNING after the restart: %v", r.Running, n, err)
	}
	if ctx.Err() == nil {
		r.Term = append(r.Term, sigterm(cd2))
	}
	return r, cd2
}

// ffmpegWindow runs one ffmpeg per camera and measures them together.
func (b *bench) ffmpegWindow(ctx context.Context, sim *simProc) (window, error) {
	n := sim.n
	logPath := filepath.Join(b.tmp, fmt.Sprintf("ffmpeg-%d.log", n))
	var procs []*proc
	defer func() { stopProcs(procs, 5*time.Second) }()
	for i := range n {
		p, err := b.procs.start("ffmpeg", "", logPath, b.o.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
			"-rtsp_transport", "tcp", "-i", sim.url(i+1), "-c", "copy", "-f", "null", "-")
		if err != nil {
			return window{}, err
		}
		procs = append(procs, p)
	}
	deadline := time.Now().Add(60*time.Second + time.Duration(n)*100*time.Millisecond)
	for {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return window{}, err
		}
		for _, p := range procs {
			if p.exited() {
				return window{}, fmt.Errorf("an ffmpeg exited before the window (%v); %s:\n%s", p.waitErr, logPath, p.tail(10))
			}
		}
		st, err := sim.status(ctx)
		if err == nil && len(st) == n && !slices.ContainsFunc(st, func(c simCamStatus) bool { return c.ActiveSessions < 1 }) {
			break
		}
		if time.Now().After(deadline) {
			return window{}, fmt.Errorf("not every camera had an ffmpeg session after %v", time.Until(deadline)+60*time.Second)
		}
	}
	if err := sleep(ctx, b.o.settle); err != nil {
		return window{}, err
	}
	b.logf("N=%d: steady window, ffmpeg per camera, %v", n, b.o.steady)
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.pid()
	}
	w, err := measure(ctx, pids, sim.pid(), b.o.steady, b.cores)
	if err != nil {
		return w, err
	}
	if w.Died > 0 {
		w.Note = fmt.Sprintf("%d ffmpeg processes ended during the window", w.Died)
	}
	return w, nil
}

// describeMachine gathers what the report says about the machine.
func describeMachine(o options) machine {
	m := machine{Cores: runtime.NumCPU(), GoHarness: runtime.Version(), Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v, err := parseKBField(b, "MemTotal"); err == nil {
			m.RAM = v
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadBefore = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	m.Camd = camdBuild(o.camd)
	m.Repo = repoState()
	if !o.skipFFmpeg {
		if out, err := exec.Command(o.ffmpeg, "-version").Output(); err == nil {
			m.FFmpeg, _, _ = strings.Cut(string(out), "\n")
			m.FFmpeg = strings.TrimSpace(strings.Split(m.FFmpeg, " Copyright")[0])
		}
	} else if p, err := exec.LookPath("ffmpeg"); err == nil {
		if out, err := exec.Command(p, "-version").Output(); err == nil {
			line, _, _ := strings.Cut(string(out), "\n")
			m.FFmpeg = strings.TrimSpace(strings.Split(line, " Copyright")[0]) + " (not run: -skip-ffmpeg)"
		}
	}
	return m
}
