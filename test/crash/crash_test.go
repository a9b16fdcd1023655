package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
	"github.com/camd/camd/test/camdproc"
)

// bin is the camd binary TestMain built.
var bin camdproc.Bin

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camd-crash-")
	if err != nil {
		bin.Err = err
	} else {
		bin = camdproc.Build(dir)
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

const (
	simCameras = 8
	// Simulated cameras stableCams+1..simCameras flap throughout the test.
	stableCams = 4
	// maxCameras bounds how many cameras the writers keep.
	maxCameras = 30
)

// settings returns CAMD_CRASH_ITERATIONS (default 50) and CAMD_CRASH_SEED
// (default: the clock).
func settings(t *testing.T) (iterations int, seed uint64) {
	iterations, seed = 50, uint64(time.Now().UnixNano())
	if v := os.Getenv("CAMD_CRASH_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CAMD_CRASH_ITERATIONS=%q: want a positive number", v)
		}
		iterations = n
	}
	if v := os.Getenv("CAMD_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CAMD_CRASH_SEED=%q: want a number", v)
		}
		seed = n
	}
	return iterations, seed
}

// TestCrash kills camd with SIGKILL at random moments (during start-up and
// while API writes are in flight, with cameras flapping) and checks after
// each kill that the store opens, every persisted status is legal, and
// every acknowledged write is there; and after restarts that start-up
// recovery resumes the cameras whose persisted status says so.
func TestCrash(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs Linux /proc")
	}
	iterations, seed := settings(t)
	t.Logf("iterations=%d seed=%d (rerun with CAMD_CRASH_SEED=%d)", iterations, seed, seed)
	// Two sequences, each with its own simulator, store and random
	// numbers, run side by side: the kills add up to iterations, and the
	// test takes half the time it would one after the other.
	for i, n := range []int{(iterations + 1) / 2, iterations / 2} {
		if n == 0 {
			continue
		}
		t.Run(fmt.Sprintf("seq%d", i+1), func(t *testing.T) {
			t.Parallel()
			crashSequence(t, n, seed+uint64(i)<<32)
		})
	}
}

// crashSequence is one sequence of TestCrash: iterations kills, then a
// clean restart, with the random numbers of seed.
func crashSequence(t *testing.T, iterations int, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 1))

	sim := bin.StartSim(t, simCameras)
	dataDir := t.TempDir()
	cfg := camdproc.WriteConfig(t, t.TempDir())
	dbPath := filepath.Join(dataDir, "camd.db")

	// Cameras stableCams+1..simCameras flap until the last restart.
	flapCtx, stopFlap := context.WithCancel(context.Background())
	var flapWG sync.WaitGroup
	var flapErrs atomic.Int64
	flapWG.Add(1)
	go func() { defer flapWG.Done(); flap(flapCtx, sim, rand.New(rand.NewPCG(seed, 2)), &flapErrs) }()
	t.Cleanup(func() { stopFlap(); flapWG.Wait() })

	m := newModel()
	var (
		startupKills, killedBeforeStarted int
		termKills                         int
		startTimes                        []time.Duration // exec to "camd started"
		recoveries                        []string
		adoptedTotal                      int
		checkDue                          bool // a recovery wait is due
	)
	for it := 1; it <= iterations; it++ {
		if it%10 == 0 {
			checkDue = true
		}
		p := bin.StartCamd(t, dataDir, cfg)
		killAt := "writes"
		mode := rnd.IntN(100)
		if it > 1 && mode < 16 {
			// A kill during start-up: anywhere from before the store is
			// open to just after the cameras were resumed.
			startupKills++
			killAt = "start-up"
			// camd is up in some tens of milliseconds: half the kills
			// land in its first 40 ms.
			window := 40
			if rnd.IntN(2) == 0 {
				window = 300
			}
			time.Sleep(time.Duration(rnd.IntN(window*1000)) * time.Microsecond)
			if !strings.Contains(p.Stderr.String(), `msg="camd started"`) {
				killedBeforeStarted++
			}
			p.Kill()
		} else {
			if err := p.WaitStarted(60 * time.Second); err != nil {
				t.Fatalf("iteration %d: %v", it, err)
			}
			startTimes = append(startTimes, time.Since(p.Started))
			cl := api.NewClient(p.API, "")
			checkResumed(t, it, cl, m)
			if checkDue {
				checkDue = false
				d := waitRunning(t, it, cl, m, p, 60*time.Second, func(url string) bool { return isStable(sim, url) })
				recoveries = append(recoveries, fmt.Sprintf("it%d=%v", it, d.Round(10*time.Millisecond)))
			}
			cl.CloseIdleConnections()

			// Writers run until the kill; the kill lands 0–2 s in. Now and
			// then camd gets a SIGTERM first, and the kill lands during
			// its graceful shutdown (which must not change what is
			// persisted: the cameras come back at the next start).
			killed := make(chan struct{})
			var terminated atomic.Bool
			var wg sync.WaitGroup
			for w := range 2 {
				wg.Add(1)
				wrnd := rand.New(rand.NewPCG(seed, uint64(1000*it+w)))
				go func() { defer wg.Done(); writer(t, p.API, sim, m, wrnd, killed, &terminated, it, w) }()
			}
			time.Sleep(time.Duration(rnd.IntN(2000)) * time.Millisecond)
			if mode >= 88 {
				killAt = "shutdown"
				termKills++
				terminated.Store(true)
				_ = p.Signal(syscall.SIGTERM)
				time.Sleep(time.Duration(rnd.IntN(150000)) * time.Microsecond)
			}
			p.Kill()
			close(killed)
			wg.Wait()
		}
		if pl := camdproc.PanicLines(p.Stderr.String()); len(pl) > 0 {
			t.Errorf("iteration %d: camd log shows a panic:\n%s\n--- log tail:\n%s", it, strings.Join(pl, "\n"), p.Tail(40))
		}
		adoptedTotal += checkStore(t, it, killAt, dbPath, m, p)
		if t.Failed() {
			t.Fatalf("iteration %d (kill during %s) failed; camd log tail:\n%s", it, killAt, p.Tail(60))
		}
	}

	// The last restart: no more flapping, no more faults; every camera
	// whose persisted status is running or crashed must reach RUNNING.
	stopFlap()
	flapWG.Wait()
	if n := flapErrs.Load(); n > 0 {
		t.Errorf("the simulator refused %d fault changes", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i <= simCameras; i++ {
		if err := sim.Fault(ctx, i, "none", 0); err != nil {
			t.Fatal(err)
		}
	}
	p := bin.StartCamd(t, dataDir, cfg)
	if err := p.WaitStarted(60 * time.Second); err != nil {
		t.Fatalf("final start: %v", err)
	}
	cl := api.NewClient(p.API, "")
	checkResumed(t, iterations+1, cl, m)
	final := waitRunning(t, iterations+1, cl, m, p, 60*time.Second, func(string) bool { return true })
	recoveries = append(recoveries, fmt.Sprintf("final=%v", final.Round(10*time.Millisecond)))
	cl.CloseIdleConnections()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, ok := p.Wait(30 * time.Second); !ok || code != 0 {
		t.Errorf("camd did not exit 0 within 30 s of SIGTERM (exited=%v code=%d):\n%s", ok, code, p.Tail(30))
	}
	if pl := camdproc.PanicLines(p.Stderr.String() + sim.Stderr.String()); len(pl) > 0 {
		t.Errorf("a log shows a panic:\n%s", strings.Join(pl, "\n"))
	}
	checkStore(t, iterations+1, finalStop, dbPath, m, p)
	size := int64(-1)
	if fi, err := os.Stat(dbPath); err == nil {
		size = fi.Size()
	}

	slices.Sort(startTimes)
	t.Logf("kills: %d (%d during start-up, %d of them before \"camd started\"; %d 0–150 ms after a SIGTERM), then one clean restart",
		iterations, startupKills, killedBeforeStarted, termKills)
	t.Logf("writes attempted/acknowledged/cut short: %s; acknowledged in all: %d; unacknowledged adds found in the store: %d",
		m.counts(), m.totalAcks(), adoptedTotal)
	if n := len(startTimes); n > 0 {
		t.Logf("exec to \"camd started\": min %v, median %v, max %v (%d starts)",
			startTimes[0].Round(time.Millisecond), startTimes[n/2].Round(time.Millisecond), startTimes[n-1].Round(time.Millisecond), n)
	}
	t.Logf("exec to every resumed camera RUNNING (first restart from iterations 10, 20…: cameras on steady sim cameras only; final: all): %s", strings.Join(recoveries, " "))
	t.Logf("cameras in the store at the end: %d; store file: %d bytes", m.count(), size)
}

// isStable reports whether url is one of the simulated cameras that do not
// flap.
func isStable(sim *camdproc.Sim, url string) bool {
	for i := 1; i <= stableCams; i++ {
		if url == sim.URL(i) {
			return true
		}
	}
	return false
}

// flap gives the flapping cameras a new fault every 0.2–0.8 s: a one-shot
// drop, a refusal, a stall, garbage, no video, or none.
func flap(ctx context.Context, sim *camdproc.Sim, rnd *rand.Rand, errs *atomic.Int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(200+rnd.IntN(600)) * time.Millisecond):
		}
		cam := stableCams + 1 + rnd.IntN(simCameras-stableCams)
		d := time.Duration(500+rnd.IntN(3000)) * time.Millisecond
		var err error
		switch rnd.IntN(6) {
		case 0:
			err = sim.Fault(ctx, cam, "drop", 0)
		case 1:
			err = sim.Fault(ctx, cam, "refuse", d)
		case 2:
			err = sim.Fault(ctx, cam, "stall", d)
		case 3:
			err = sim.Fault(ctx, cam, "garbage", d)
		case 4:
			err = sim.Fault(ctx, cam, "no-video", d)
		default:
			err = sim.Fault(ctx, cam, "none", 0)
		}
		if err != nil && ctx.Err() == nil {
			errs.Add(1)
		}
	}
}

// checkResumed checks, right after start-up, that camd has every camera in
// the store, that those persisted as stopped are STOPPED and that the
// others have been started (start-up recovery).
func checkResumed(t *testing.T, it int, cl *api.Client, m *model) {
	t.Helper()
	m.mu.Lock()
	want := map[string]*camModel{}
	for _, c := range m.byID {
		want[c.name] = c
	}
	m.mu.Unlock()
	var last string
	ok := testutil.Poll(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cams, err := cl.Cameras(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		var bad []string
		for _, c := range cams {
			w, ok := want[c.Name]
			switch {
			case !ok:
				bad = append(bad, c.Name+": not in the store")
			case w.mayStopped && c.State != "STOPPED":
				bad = append(bad, fmt.Sprintf("%s: persisted stopped, state %s", c.Name, c.State))
			case w.mayStarted && c.State == "STOPPED":
				bad = append(bad, fmt.Sprintf("%s: persisted %s, state STOPPED", c.Name, c.PersistedStatus))
			}
		}
		if len(cams) != len(want) {
			bad = append(bad, fmt.Sprintf("%d cameras listed, %d in the store", len(cams), len(want)))
		}
		last = strings.Join(bad, "; ")
		return len(bad) == 0
	})
	if !ok {
		t.Fatalf("iteration %d: start-up recovery: %s", it, last)
	}
}

// waitRunning waits until every camera whose persisted status is running or
// crashed and whose URL passes include is RUNNING, and returns how long
// after the process's exec that was.
func waitRunning(t *testing.T, it int, cl *api.Client, m *model, p *camdproc.Camd, d time.Duration, include func(url string) bool) time.Duration {
	t.Helper()
	m.mu.Lock()
	var names []string
	for _, c := range m.byID {
		if c.mayStarted && include(keys(c.urls)[0]) {
			names = append(names, c.name)
		}
	}
	m.mu.Unlock()
	var last string
	ok := testutil.Poll(d, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cams, err := cl.Cameras(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		state := map[string]string{}
		for _, c := range cams {
			state[c.Name] = c.State
		}
		var notYet []string
		for _, n := range names {
			if state[n] != "RUNNING" {
				notYet = append(notYet, n+"="+state[n])
			}
		}
		last = strings.Join(notYet, " ")
		return len(notYet) == 0
	})
	took := time.Since(p.Started)
	if !ok {
		t.Fatalf("iteration %d: %d resumed cameras not all RUNNING %v after exec: %s\n%s", it, len(names), took, last, p.Tail(40))
	}
	return took
}

// writer issues API writes as fast as one client does, until killed is
// closed.
func writer(t *testing.T, addr string, sim *camdproc.Sim, m *model, rnd *rand.Rand, killed <-chan struct{}, terminated *atomic.Bool, it, w int) {
	cl := api.NewClient(addr, "")
	defer cl.CloseIdleConnections()
	seq := 0
	newName := func() string { seq++; return fmt.Sprintf("i%02dw%d-%d", it, w, seq) }
	simURL := func() string { return sim.URL(1 + rnd.IntN(simCameras)) }
	for {
		select {
		case <-killed:
			return
		default:
		}
		// A pause now and then, so that kills also land between writes.
		time.Sleep(time.Duration(rnd.IntN(40)) * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n := m.count()
		op := "add"
		switch r := rnd.IntN(100); {
		case n < 4:
		case r < 25:
			if n >= maxCameras {
				op = "remove"
			}
		case r < 42:
			op = "stop"
		case r < 59:
			op = "start"
		case r < 74:
			op = "update"
		case r < 84:
			op = "restart"
		default:
			op = "remove"
		}
		var c *camModel
		if op != "add" {
			if c = m.pick(rnd.IntN); c == nil {
				op = "add" // every camera is busy or uncertain
			}
		}
		var err error
		switch op {
		case "add":
			name, url, start := newName(), simURL(), rnd.IntN(4) != 0
			m.beginAdd(name, url, start)
			var v api.CameraJSON
			v, err = cl.AddCamera(ctx, device.Spec{Name: name, URL: url}, start)
			m.endAdd(name, url, start, err == nil, v.ID)
		case "stop":
			m.begin(op, c, func(c *camModel) { c.mayStopped = true })
			_, err = cl.StopCamera(ctx, c.name)
			m.end(op, c, err == nil, func(c *camModel) { c.mayStarted = false })
		case "start":
			m.begin(op, c, func(c *camModel) { c.mayStarted = true })
			_, err = cl.StartCamera(ctx, c.name)
			m.end(op, c, err == nil, func(c *camModel) { c.mayStopped = false })
		case "restart":
			// Restarting a stopped camera starts it.
			m.begin(op, c, func(c *camModel) { c.mayStarted = true })
			_, err = cl.RestartCamera(ctx, c.name)
			m.end(op, c, err == nil, func(c *camModel) { c.mayStopped = false })
		case "update":
			url, name := simURL(), ""
			if rnd.IntN(2) == 0 {
				name = newName()
			}
			m.begin(op, c, func(c *camModel) {
				c.urls[url] = true
				if name != "" {
					c.names[name] = true
				}
			})
			_, err = cl.UpdateCamera(ctx, c.name, device.Spec{Name: name, URL: url})
			m.end(op, c, err == nil, func(c *camModel) {
				c.urls = set(url)
				if name != "" {
					c.names, c.name = set(name), name
				}
			})
		case "remove":
			m.begin(op, c, func(c *camModel) { c.mayAbsent = true })
			err = cl.RemoveCamera(ctx, c.name)
			m.end(op, c, err == nil, func(c *camModel) { c.mayPresent = false })
		}
		cancel()
		var ae *api.Error
		if errors.As(err, &ae) && !(terminated.Load() && ae.StatusCode == http.StatusServiceUnavailable) {
			// camd answered, so it was alive: a refusal of a write that the
			// model says is valid is a bug whatever the kill does next
			// (once shutting down, camd answers 503).
			t.Errorf("iteration %d: camd refused a write: %d %s", it, ae.StatusCode, ae.Message)
		}
	}
}

// finalStop is checkStore's killAt after the last restart, which ends with
// a SIGTERM and no kill.
const finalStop = "none (SIGTERM)"

// checkStore opens the store of the dead camd and checks it against the
// model; it returns how many unacknowledged adds it found there.
func checkStore(t *testing.T, it int, killAt, dbPath string, m *model, p *camdproc.Camd) int {
	t.Helper()
	// camd must have been killed (exit code -1: ended by a signal), except
	// that after a SIGTERM it may exit 0 first. Any other end, on its own,
	// is a bug that a readable store would hide.
	termed := killAt == "shutdown" || killAt == finalStop
	if code, ok := p.Wait(30 * time.Second); !ok {
		t.Fatalf("iteration %d: camd still running 30 s after SIGKILL", it)
	} else if code != -1 && (!termed || code != 0) {
		t.Errorf("iteration %d (kill during %s): camd exited with %d before the kill:\n%s", it, killAt, code, p.Tail(20))
	}
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if m.count() > 0 {
			t.Fatalf("iteration %d: the store file is gone", it)
		}
		return 0
	}
	st, err := store.Open(dbPath, store.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("iteration %d (kill during %s): the store does not open after the kill: %v", it, killAt, err)
	}
	recs, err := st.Cameras()
	if cerr := st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("iteration %d: read the store: %v", it, err)
	}
	problems, adopted := m.check(recs)
	for _, pr := range problems {
		t.Errorf("iteration %d (kill during %s): %s", it, killAt, pr)
	}
	return adopted
}
