package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// abCounts parses -ab-n: the camera counts of the A/B pairs, each one of
// ns. Empty means 64 and 256 where they are in ns, else every count of ns.
func abCounts(s string, ns []int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		var out []int
		for _, n := range []int{64, 256} {
			if slices.Contains(ns, n) {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			out = slices.Clone(ns)
		}
		return out, nil
	}
	out, err := parseNList(s)
	if err != nil {
		return nil, fmt.Errorf("-ab-n: %w", err)
	}
	for _, n := range out {
		if !slices.Contains(ns, n) {
			return nil, fmt.Errorf("-ab-n: %d is not one of the camera counts of -n", n)
		}
	}
	return out, nil
}

// unbatchedRun reports whether the whole run already reads every packet as
// it arrives (-read-batch 0s), so that a separate read_batch 0s window
// would measure the same thing again.
func (b *bench) unbatchedRun() bool {
	if b.o.readBatch == "" {
		return false
	}
	d, err := time.ParseDuration(b.o.readBatch)
	return err == nil && d == 0
}

// buildAt builds camd as it is at the git revision rev into dir: the tree
// from git archive, then go build. It returns the full commit and the
// binary.
func buildAt(rev, dir string) (string, string, error) {
	out, err := exec.Command("git", "rev-parse", "--verify", "--quiet", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("-ab %s: not a commit of the git repository here", rev)
	}
	commit := strings.TrimSpace(string(out))
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", "", err
	}
	archive := exec.Command("git", "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	untar.Stdin = pipe
	var aErr, tErr strings.Builder
	archive.Stderr, untar.Stderr = &aErr, &tErr
	if err := untar.Start(); err != nil {
		return "", "", fmt.Errorf("tar: %w", err)
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", "", fmt.Errorf("git archive %s: %v: %s", commit, err, aErr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", "", fmt.Errorf("tar -x: %v: %s", err, tErr.String())
	}
	bin := filepath.Join(dir, "camd")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+commit[:12], "-o", bin, "./cmd/camd")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build of %s: %v\n%s", commit[:12], err, out)
	}
	return commit, bin, nil
}

// ingestWindow starts the camd binary bin with config cfg on a fresh data
// dir, adds every camera of the simulator, waits until all are RUNNING and
// the settling time, measures a steady window of d and stops camd.
func (b *bench) ingestWindow(ctx context.Context, sim *simProc, bin, cfg, tag string, d time.Duration) (window, error) {
	w, _, err := b.ingestReaderWindows(ctx, sim, bin, cfg, tag, d, false)
	if w == nil {
		return window{}, err
	}
	return *w, err
}

// ingestReaderWindows is ingestWindow and then, with readers, a second
// window with one relay reader per camera. A window that failed is nil.
func (b *bench) ingestReaderWindows(ctx context.Context, sim *simProc, bin, cfg, tag string, d time.Duration, readers bool) (*window, *window, error) {
	n := sim.n
	dataDir := filepath.Join(b.tmp, "data-"+tag)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dataDir)
	cd, err := b.startCamdWith(ctx, bin, cfg, dataDir, tag)
	if err != nil {
		return nil, nil, fmt.Errorf("camd: %w", err)
	}
	defer cd.stop(5 * time.Second)
	if err := cd.addCameras(ctx, sim); err != nil {
		return nil, nil, err
	}
	if _, _, err := cd.pollCameras(ctx, 60*time.Second+time.Duration(n)*100*time.Millisecond, allRunning(n)); err != nil {
		return nil, nil, fmt.Errorf("waiting for all %d cameras to run: %w", n, err)
	}
	if err := sleep(ctx, b.o.settle); err != nil {
		return nil, nil, err
	}
	w, err := b.camdWindow(ctx, cd, sim, nil, d)
	if err != nil || !readers {
		return &w, nil, err
	}
	b.logf("N=%d: %s: connecting %d relay readers", n, tag, n)
	rs, took, err := startReaders(ctx, b.relayURLs(cd, n))
	if err != nil {
		return &w, nil, err
	}
	defer closeReaders(rs)
	if err := sleep(ctx, b.o.settle); err != nil {
		return &w, nil, err
	}
	b.logf("N=%d: %s: steady window, 1 reader per camera, %v", n, tag, d)
	wr, err := b.camdWindow(ctx, cd, sim, rs, d)
	wr.ReaderConnect = summarize(took)
	if err != nil {
		return &w, nil, err
	}
	return &w, &wr, nil
}

var floorPlayingRE = regexp.MustCompile(`^floor: (\d+) sessions playing`)
var floorTotalsRE = regexp.MustCompile(`^floor: totals .*`)

// floorBatch is the batching interval of the floor: camd's read_batch of
// the run.
func (b *bench) floorBatch() time.Duration {
	if d, err := time.ParseDuration(b.o.readBatch); err == nil && d > 0 {
		return d
	}
	return 100 * time.Millisecond
}

// floorWindow runs the floor program (this binary, "camdbench floor") as
// its own process against the simulator and measures it like camd.
func (b *bench) floorWindow(ctx context.Context, sim *simProc) (window, *floorTotals, error) {
	n := sim.n
	exe, err := os.Executable()
	if err != nil {
		return window{}, nil, err
	}
	out := filepath.Join(b.tmp, fmt.Sprintf("floor-%d.out", n))
	logPath := filepath.Join(b.tmp, fmt.Sprintf("floor-%d.log", n))
	p, err := b.procs.start("floor", out, logPath, exe, "floor", "-rtsp", sim.rtsp, "-n", strconv.Itoa(n), "-batch", b.floorBatch().String())
	if err != nil {
		return window{}, nil, err
	}
	defer p.stop(5 * time.Second)
	if _, err := p.waitLine(ctx, out, floorPlayingRE, 60*time.Second+time.Duration(n)*100*time.Millisecond); err != nil {
		return window{}, nil, err
	}
	if err := sleep(ctx, b.o.settle); err != nil {
		return window{}, nil, err
	}
	b.logf("N=%d: steady window, floor, %v", n, b.o.steady)
	w, err := measure(ctx, []int{p.pid()}, sim.pid(), b.o.steady, b.cores)
	if err != nil {
		return w, nil, err
	}
	if p.exited() {
		return w, nil, fmt.Errorf("the floor exited during the window; last lines:\n%s", p.tail(20))
	}
	p.stop(10 * time.Second)
	m, err := p.waitLine(ctx, out, floorTotalsRE, time.Second)
	if err != nil {
		return w, nil, err
	}
	t, err := parseFloorTotals(m[0])
	if err != nil {
		return w, nil, err
	}
	if t.Alive < t.Sessions {
		w.Note = fmt.Sprintf("%d of %d floor sessions ended (see %s)", t.Sessions-t.Alive, t.Sessions, logPath)
	}
	return w, &t, nil
}

// abPair is one pair of ingest windows: A is the camd under test (-camd),
// B the reference (-ab or -ab-bin). BFirst says B was measured first.
type abPair struct {
	A, B   window
	BFirst bool
}

// ratio is A's CPU over B's.
func (p abPair) ratio() float64 {
	if p.B.CPU <= 0 {
		return math.NaN()
	}
	return p.A.CPU / p.B.CPU
}

// abResult is the A/B pairs at one camera count.
type abResult struct {
	N     int
	Pairs []abPair
	Err   string
}

// abPairs measures A and B ingest alternately, each window on a freshly
// started camd; the order flips from one pair to the next (AB, BA, AB, …)
// so that a drift of the machine over the run weighs on both alike.
func (b *bench) abPairs(ctx context.Context, sim *simProc) *abResult {
	n := sim.n
	r := &abResult{N: n}
	for i := range b.o.abPairs {
		p := abPair{BFirst: i%2 == 1}
		order := []string{"A", "B"}
		if p.BFirst {
			order = []string{"B", "A"}
		}
		for _, who := range order {
			bin := b.o.camd
			if who == "B" {
				bin = b.refBin
			}
			b.logf("N=%d: A/B pair %d of %d, %s, %v", n, i+1, b.o.abPairs, who, b.o.abSteady)
			w, err := b.ingestWindow(ctx, sim, bin, b.cfgPath, fmt.Sprintf("%d-ab%d%s", n, i+1, who), b.o.abSteady)
			if err != nil {
				r.Err = fmt.Sprintf("pair %d, %s: %v", i+1, who, err)
				return r
			}
			if who == "A" {
				p.A = w
			} else {
				p.B = w
			}
		}
		r.Pairs = append(r.Pairs, p)
		b.logf("N=%d: A/B pair %d: A %.3f %%/cam, B %.3f %%/cam, A/B %.3f", n, i+1, p.A.CPU/float64(n), p.B.CPU/float64(n), p.ratio())
	}
	return r
}

// abStats summarises the per-pair ratios A/B: their mean, sample standard
// deviation, range and the 95 % confidence interval of the mean (Student's
// t, k−1 degrees of freedom); and the spread of A's and B's own windows
// (coefficient of variation), the run's noise.
type abStats struct {
	K                  int
	Mean, SD, Min, Max float64
	Lo, Hi             float64 // NaN with fewer than 2 pairs
	AMean, BMean       float64 // CPU per camera, % of a core
	ACV, BCV           float64
}

func (r *abResult) stats() abStats {
	s := abStats{Lo: math.NaN(), Hi: math.NaN(), Min: math.NaN(), Max: math.NaN(), Mean: math.NaN(), SD: math.NaN()}
	var ratios, as, bs []float64
	for _, p := range r.Pairs {
		if x := p.ratio(); !math.IsNaN(x) {
			ratios = append(ratios, x)
		}
		as = append(as, p.A.CPU/float64(r.N))
		bs = append(bs, p.B.CPU/float64(r.N))
	}
	s.K = len(ratios)
	s.AMean, s.ACV = meanCV(as)
	s.BMean, s.BCV = meanCV(bs)
	if s.K == 0 {
		return s
	}
	s.Mean, s.SD = meanSD(ratios)
	s.Min, s.Max = slices.Min(ratios), slices.Max(ratios)
	if s.K >= 2 {
		h := tQuantile975(s.K-1) * s.SD / math.Sqrt(float64(s.K))
		s.Lo, s.Hi = s.Mean-h, s.Mean+h
	}
	return s
}

// verdict says how A compares to B given the noise; met is whether A is
// no higher than B within it.
func (s abStats) verdict() (string, bool) {
	switch {
	case s.K == 0:
		return "no pair measured", false
	case s.K == 1:
		return "one pair: no estimate of the noise", s.Mean <= 1
	case s.Lo > 1:
		return "higher than the reference, beyond the run's noise", false
	case s.Hi < 1:
		return "lower than the reference, beyond the run's noise", true
	}
	return "the same as the reference within the run's noise", true
}

// meanSD returns the mean and the sample standard deviation (0 for one
// value).
func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	m := sum / float64(len(xs))
	if len(xs) < 2 {
		return m, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)-1))
}

// meanCV returns the mean and the coefficient of variation (SD / mean).
func meanCV(xs []float64) (float64, float64) {
	m, sd := meanSD(xs)
	if m <= 0 || math.IsNaN(m) {
		return m, math.NaN()
	}
	return m, sd / m
}

// tQuantile975 is the 97.5th percentile of Student's t distribution with
// df degrees of freedom (two-sided 95 %).
func tQuantile975(df int) float64 {
	table := []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df < 1 {
		return math.NaN()
	}
	if df <= len(table) {
		return table[df-1]
	}
	return 1.96
}
