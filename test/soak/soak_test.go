package soak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/store"
	"github.com/camd/camd/test/camdproc"
)

// bin is the camd binary TestMain built.
var bin camdproc.Bin

func TestMain(m *testing.M) {
	var dir string
	if os.Getenv("CAMD_SOAK") == "" {
		bin.Err = errors.New("CAMD_SOAK is not set")
	} else if dir, bin.Err = os.MkdirTemp("", "camd-soak-"); bin.Err == nil {
		bin = camdproc.Build(dir)
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Thresholds of camdproc.WriteConfig's file.
const (
	stallTimeout = 3 * time.Second
	backoffMax   = 2 * time.Second
)

const (
	nCams = 64
	// recoverySlack is added to stall threshold + backoff cap for what
	// the bound does not count: the RTSP handshake and first frame of the
	// attempt that succeeds, and the 100 ms between polls, on a loaded
	// two-core machine.
	recoverySlack = time.Second
	// Bounds on growth: FDs and goroutines at the rest at the end
	// against the rest after start-up, where the target is zero (each is
	// the least of about 15 samples at rest, so a connection or timer
	// that comes and goes does not count); RSS against the rest after
	// warm-up (see the RSS check).
	maxFDGrowth        = 0
	maxGoroutineGrowth = 0
	maxRSSGrowth       = 0.10
	// maxStoreSize bounds the store file: 64 camera records and a few
	// extra ones, after thousands of status writes.
	maxStoreSize = 1 << 20
	// maxEventsFileSize bounds the event history's file, which holds at
	// most eventsMaxCount events (a few hundred bytes each).
	maxEventsFileSize = 1 << 20
)

// TestSoak runs 64 simulated cameras through a random schedule of every
// fault kind, with relay readers and API clients coming and going, for
// CAMD_SOAK (a Go duration), and checks that camd recovers every camera and
// comes back to the resources it used before.
func TestSoak(t *testing.T) {
	v := os.Getenv("CAMD_SOAK")
	if v == "" {
		t.Skip("the soak runs only with CAMD_SOAK set to a duration: make soak SOAK=2m, or CAMD_SOAK=2m go test -run TestSoak ./test/soak/")
	}
	total, err := time.ParseDuration(v)
	if err != nil || total < 30*time.Second {
		t.Fatalf("CAMD_SOAK=%q: want a Go duration of at least 30s (e.g. 2m, 1h)", v)
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("the soak samples camd through /proc: Linux only")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CAMD_SOAK_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CAMD_SOAK_SEED=%q: want a number", s)
		}
	}
	warm := min(max(total/6, 15*time.Second), time.Minute)
	soakFor := total - warm
	t.Logf("soak %v: warm-up %v, then %v; %d cameras; seed %d (CAMD_SOAK_SEED replays the schedule)", total, warm, soakFor, nCams, seed)

	sim := bin.StartSim(t, nCams)
	dataDir := t.TempDir()
	dbPath := filepath.Join(dataDir, "camd.db")
	cfgPath := camdproc.WriteConfig(t, t.TempDir())
	withEventBound(t, cfgPath)
	c := bin.StartCamd(t, dataDir, cfgPath)
	if err := c.WaitStarted(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Followed from start-up to the end: its connection is open at every
	// rest, so it does not count in the FD and goroutine growth.
	evw := watchEvents(t, c.API)
	evDone := false
	defer func() {
		if !evDone {
			evw.close()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("camd log tail:\n%s", c.Tail(80))
		}
	})
	cl := api.NewClient(c.API, "")
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	for i := 1; i <= nCams; i++ {
		if _, err := cl.AddCamera(ctx, device.Spec{Name: fmt.Sprintf("cam%d", i), URL: sim.URL(i)}, true); err != nil {
			t.Fatalf("add cam%d: %v", i, err)
		}
	}
	r0 := waitAllRunning(t, cl, "start-up", 60*time.Second, nil)
	t.Logf("start-up: %d cameras added and RUNNING %v after the first add (the last RUNNING %v after the last add)",
		nCams, time.Since(t0).Round(10*time.Millisecond), r0.worst.Round(10*time.Millisecond))

	mon := newMonitor(c.PID(), c.API, dbPath)
	monCtx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.run(monCtx, 5*time.Second) }()
	defer func() { stopMon(); <-monDone }()
	// The test's own API connection is closed before each rest, so that
	// whether it is idle in camd at that moment does not count.
	cl.CloseIdleConnections()
	post, _ := mon.settled("post-start-up", 30*time.Second)

	st := newStats()
	phase := func(name string, n uint64, d time.Duration) recovery {
		mon.setPhase(name)
		pctx, pcancel := context.WithTimeout(context.Background(), d)
		defer pcancel()
		l := &load{sim: sim, api: c.API, relay: c.Relay, cams: nCams, st: st, seed: seed, phase: n}
		l.run(pctx)
		mon.setPhase(name + "/recover")
		return waitAllRunning(t, cl, name, 2*time.Minute, sim)
	}
	r1 := phase("warm-up", 1, warm)
	cl.CloseIdleConnections()
	base, w1 := mon.settled("rest/baseline", time.Minute)
	r2 := phase("soak", 2, soakFor)
	cl.CloseIdleConnections()
	end, w2 := mon.settled("rest/end", time.Minute)
	stopMon()
	<-monDone
	// camd keeps each camera's reconnect and stall times of the last hour:
	// memory that grows, by design, for the first hour of a soak.
	window := 0
	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer lcancel()
	if cams, err := cl.Cameras(lctx); err == nil {
		for _, c := range cams {
			window += c.ReconnectsLastHour + c.StallsLastHour
		}
	}

	mon.logSeries(t)
	t.Log(st.summary())
	st.mu.Lock()
	if len(st.problems) > 0 {
		t.Logf("first unexpected API answers:\n  %s", strings.Join(st.problems, "\n  "))
	}
	serverErrors := st.serverErrors
	st.mu.Unlock()
	if serverErrors > 0 {
		t.Errorf("camd answered %d API requests with 5xx", serverErrors)
	}

	// Recovery once the faults cleared.
	bound := stallTimeout + backoffMax
	for _, r := range []recovery{r1, r2} {
		t.Logf("%s: faults cleared on %d cameras (%d not RUNNING at that moment); every camera RUNNING %v after its fault cleared at worst (%s), median %v; bound stall %v + backoff cap %v = %v (+%v slack)",
			r.phase, nCams, r.notRunning, r.worst.Round(10*time.Millisecond), r.worstCam, r.median.Round(10*time.Millisecond),
			stallTimeout, backoffMax, bound, recoverySlack)
		if r.worst > bound+recoverySlack {
			t.Errorf("%s: %s was RUNNING only %v after its fault cleared: over stall threshold + backoff cap (%v, +%v slack)",
				r.phase, r.worstCam, r.worst.Round(10*time.Millisecond), bound, recoverySlack)
		}
	}

	// Resources: the rest at the end against the rest after start-up (FDs,
	// goroutines) and after warm-up (RSS).
	t.Logf("at rest (FDs, goroutines: least of 15 samples 1 s apart; memory: their median), after start-up / after warm-up / at the end (settled in %v / %v):", w1.Round(time.Second), w2.Round(time.Second))
	t.Logf("  open FDs:   %d / %d / %d (growth over post-start-up %+d, bound %d)", post.fds, base.fds, end.fds, end.fds-post.fds, maxFDGrowth)
	t.Logf("  goroutines: %d / %d / %d (growth over post-start-up %+d, bound %d)", post.goroutines, base.goroutines, end.goroutines, end.goroutines-post.goroutines, maxGoroutineGrowth)
	rssGrowth := float64(end.rssKiB-base.rssKiB) / float64(base.rssKiB)
	t.Logf("  RSS:        %.1f / %.1f / %.1f MiB (growth over warm-up %+.1f%%, bound %.0f%%; %+.1f%% over post-start-up)",
		mib(post.rssKiB), mib(base.rssKiB), mib(end.rssKiB), 100*rssGrowth, 100*maxRSSGrowth,
		100*float64(end.rssKiB-post.rssKiB)/float64(post.rssKiB))
	t.Logf("    of which private (RssAnon): %.1f / %.1f / %.1f MiB (%+.1f%% over warm-up, %+.1f%% over post-start-up); mapped files (RssFile, mostly camd's code): %.1f / %.1f / %.1f MiB",
		mib(post.anonKiB), mib(base.anonKiB), mib(end.anonKiB),
		100*float64(end.anonKiB-base.anonKiB)/float64(base.anonKiB), 100*float64(end.anonKiB-post.anonKiB)/float64(post.anonKiB),
		mib(post.fileKiB), mib(base.fileKiB), mib(end.fileKiB))
	t.Logf("  heap in use: %.1f / %.1f / %.1f MiB; GC goal (about twice the live heap, for information): %.1f / %.1f / %.1f MiB",
		float64(post.heapInuse)/(1<<20), float64(base.heapInuse)/(1<<20), float64(end.heapInuse)/(1<<20),
		float64(post.gcGoal)/(1<<20), float64(base.gcGoal)/(1<<20), float64(end.gcGoal)/(1<<20))
	t.Logf("  reconnect and stall times kept for the last hour, all cameras: %d", window)
	t.Logf("  peak during the soak: %d FDs, %d goroutines, %.1f MiB RSS",
		mon.maxOf("soak", func(s sample) int { return s.fds }), mon.maxOf("soak", func(s sample) int { return s.goroutines }),
		mib(mon.maxOf("soak", func(s sample) int { return s.rssKiB })))
	t.Logf("  store file: %d / %d / %d bytes (bound %d); event history file: %d / %d / %d bytes (bound %d)", post.storeSize, base.storeSize, end.storeSize, maxStoreSize,
		post.eventsSize, base.eventsSize, end.eventsSize, maxEventsFileSize)
	if end.fds-post.fds > maxFDGrowth {
		t.Errorf("open FDs grew by %d from after start-up to the end (%d → %d)", end.fds-post.fds, post.fds, end.fds)
	}
	if end.goroutines-post.goroutines > maxGoroutineGrowth {
		t.Errorf("goroutines grew by %d from after start-up to the end (%d → %d)", end.goroutines-post.goroutines, post.goroutines, end.goroutines)
	}
	if rssGrowth > maxRSSGrowth {
		t.Errorf("RSS grew by %.1f%% over the soak (%.1f → %.1f MiB), more than %.0f%%", 100*rssGrowth, mib(base.rssKiB), mib(end.rssKiB), 100*maxRSSGrowth)
	}
	if end.storeSize > maxStoreSize {
		t.Errorf("the store file is %d bytes, over %d", end.storeSize, maxStoreSize)
	}
	if peak := mon.maxOf("", func(s sample) int { return int(s.eventsSize) }); peak > maxEventsFileSize {
		t.Errorf("the event history file reached %d bytes, over %d", peak, maxEventsFileSize)
	}

	evDone = true
	checkEvents(t, c.API, evw)

	// A clean stop, a clean log, and the store as the operator left it.
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, ok := c.Wait(30 * time.Second); !ok || code != 0 {
		t.Errorf("camd did not exit 0 within 30 s of SIGTERM (exited %v, code %d)", ok, code)
	}
	log := c.Stderr.String()
	if pl := camdproc.PanicLines(log + sim.Stderr.String()); len(pl) > 0 {
		t.Errorf("a log shows a panic:\n%s", strings.Join(pl, "\n"))
	}
	t.Logf("camd log: %d lines; warnings and errors by message: %s", strings.Count(log, "\n"), levelCounts(log))
	if errs := errorLines(log, 10); errs != "" {
		t.Logf("camd's first ERROR lines:\n%s", errs)
	}
	checkStore(t, dbPath)
}

// recovery is how fast every camera was RUNNING again after its fault was
// cleared.
type recovery struct {
	phase      string
	worst      time.Duration
	worstCam   string
	median     time.Duration
	notRunning int // cameras not RUNNING when the faults were cleared
}

// waitAllRunning clears every simulated camera's fault (unless sim is nil)
// and waits until cam1..camN have all been RUNNING for stall threshold +
// 1 s, and are the only cameras. A camera's recovery time is from its
// clear to the first poll (every 100 ms) from which on it stayed RUNNING.
func waitAllRunning(t *testing.T, cl *api.Client, phase string, limit time.Duration, sim *camdproc.Sim) recovery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit+time.Minute)
	defer cancel()
	cleared := make([]time.Time, nCams+1)
	for i := 1; i <= nCams; i++ {
		if sim != nil {
			if err := sim.Fault(ctx, i, "none", 0); err != nil {
				t.Fatal(err)
			}
		}
		cleared[i] = time.Now()
	}
	r := recovery{phase: phase}
	good := make([]time.Time, nCams+1) // since when each camera has been RUNNING
	first := true
	var allSince time.Time
	deadline := time.Now().Add(limit)
	hold := stallTimeout + time.Second
	for {
		cams, err := cl.Cameras(ctx)
		now := time.Now()
		all := err == nil && len(cams) == nCams
		var bad []string
		for _, c := range cams {
			i, _ := strconv.Atoi(strings.TrimPrefix(c.Name, "cam"))
			if !strings.HasPrefix(c.Name, "cam") || i < 1 || i > nCams {
				bad = append(bad, c.Name+" (left over)")
				all = false
				continue
			}
			if c.State != "RUNNING" {
				good[i] = time.Time{}
				bad = append(bad, c.Name+"="+c.State)
				all = false
				if first {
					r.notRunning++
				}
			} else if good[i].IsZero() {
				good[i] = now
			}
		}
		if err == nil {
			first = false
		}
		switch {
		case !all:
			allSince = time.Time{}
		case allSince.IsZero():
			allSince = now
		case now.Sub(allSince) >= hold:
			var ds []time.Duration
			for i := 1; i <= nCams; i++ {
				d := max(0, good[i].Sub(cleared[i]))
				ds = append(ds, d)
				if d > r.worst {
					r.worst, r.worstCam = d, fmt.Sprintf("cam%d", i)
				}
			}
			sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
			r.median = ds[len(ds)/2]
			return r
		}
		if now.After(deadline) {
			t.Fatalf("%s: cameras not all RUNNING %v after their faults were cleared (err %v): %s", phase, limit, err, strings.Join(bad, " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mib(kib int) float64 { return float64(kib) / 1024 }

var levelRE = regexp.MustCompile(`level=(WARN|ERROR) msg=("[^"]*"|\S+)`)

// levelCounts counts warning and error lines by level and message.
func levelCounts(log string) string {
	counts := map[string]int{}
	for _, m := range levelRE.FindAllStringSubmatch(log, -1) {
		counts[m[1]+" "+m[2]]++
	}
	if len(counts) == 0 {
		return "none"
	}
	var ks []string
	for k := range counts {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		return counts[ks[i]] > counts[ks[j]] || counts[ks[i]] == counts[ks[j]] && ks[i] < ks[j]
	})
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "\n  %6d %s", counts[k], k)
	}
	return b.String()
}

// errorLines returns the first n lines of log at level ERROR.
func errorLines(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") && len(out) < n {
			out = append(out, "  "+l)
		}
	}
	return strings.Join(out, "\n")
}

// checkStore opens the store of the stopped camd: it must hold cam1..camN,
// all persisted as running, and nothing else.
func checkStore(t *testing.T, dbPath string) {
	t.Helper()
	s, err := store.Open(dbPath, store.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("the store does not open after the soak: %v", err)
	}
	recs, err := s.Cameras()
	_ = s.Close()
	if err != nil {
		t.Fatalf("read the store: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Name] = true
		i, _ := strconv.Atoi(strings.TrimPrefix(r.Name, "cam"))
		switch {
		case !r.Status.Valid():
			t.Errorf("store: %s has the illegal status %q", r.Name, r.Status)
		case !strings.HasPrefix(r.Name, "cam") || i < 1 || i > nCams:
			t.Errorf("store: %s (%s) is left over from the soak", r.Name, r.Status)
		case r.Status != store.StatusRunning:
			t.Errorf("store: %s is %s, want running", r.Name, r.Status)
		}
	}
	for i := 1; i <= nCams; i++ {
		if !seen[fmt.Sprintf("cam%d", i)] {
			t.Errorf("store: cam%d is missing", i)
		}
	}
	t.Logf("store after SIGTERM: %d cameras", len(recs))
}
