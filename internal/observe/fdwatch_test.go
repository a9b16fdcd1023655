package observe

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/devicetest"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// leakFDs is the test hook that leaks on purpose: it opens /dev/null n times
// and keeps the files open until the returned func (also run at cleanup).
func leakFDs(t testing.TB, n int) (release func()) {
	t.Helper()
	files := make([]*os.File, 0, n)
	release = func() {
		for _, f := range files {
			_ = f.Close()
		}
		files = nil
	}
	t.Cleanup(release)
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			release()
			t.Fatalf("leak: %v", err)
		}
		files = append(files, f)
	}
	return release
}

// field returns the integer value of key=N in a logfmt line.
func field(t testing.TB, line, key string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no %s= in %q", key, line)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// waitFirstCount waits for w's first count.
func waitFirstCount(t testing.TB, w *FDWatch) (procfd.Counts, int) {
	t.Helper()
	var c procfd.Counts
	var exp int
	if !testutil.Poll(10*time.Second, func() bool { c, exp = w.Counts(); return c.Total > 0 }) {
		t.Fatal("no descriptor count after 10 s")
	}
	return c, exp
}

const warnMsg = "open file descriptors far above expectation"

func TestFDWatchLeakWarnsWithBreakdownAndClears(t *testing.T) {
	logs := &testutil.LogBuffer{}
	w := NewFDWatch(FDWatchConfig{Interval: 50 * time.Millisecond, Logger: testutil.Logger(logs)})
	runWatch(t, w)
	c0, exp0 := waitFirstCount(t, w)
	if deg, why := w.Degraded(); deg {
		t.Fatalf("degraded before any leak: %s", why)
	}
	limit := 2*exp0 + 16
	n := limit - c0.Total + 40
	t.Logf("first count %s, expected %d, limit %d; leaking %d files", c0, exp0, limit, n)

	release := leakFDs(t, n)
	if !testutil.Poll(10*time.Second, func() bool { d, _ := w.Degraded(); return d }) {
		t.Fatalf("not degraded 10 s after leaking %d descriptors; counts %v", n, func() procfd.Counts { c, _ := w.Counts(); return c }())
	}
	if _, why := w.Degraded(); why == "" {
		t.Error("degraded without a reason")
	}
	warns := logs.Lines("level=WARN", warnMsg)
	if len(warns) != 1 {
		t.Fatalf("want one WARN line, got %d:\n%s", len(warns), logs)
	}
	line := warns[0]
	t.Logf("warning: %s", line)
	if got := field(t, line, "files"); got < c0.Files+n || got > c0.Files+n+8 {
		t.Errorf("files=%d in the warning, want about %d (%d before + %d leaked)", got, c0.Files+n, c0.Files, n)
	}
	if got := field(t, line, "expected"); got != exp0 {
		t.Errorf("expected=%d, want %d", got, exp0)
	}
	total := field(t, line, "total")
	sum := field(t, line, "sockets") + field(t, line, "files") + field(t, line, "pipes") + field(t, line, "events") + field(t, line, "other")
	if sum != total {
		t.Errorf("breakdown adds up to %d, total=%d", sum, total)
	}
	if total <= limit {
		t.Errorf("warned at total=%d, not above the limit %d", total, limit)
	}

	// It stays degraded without repeating the warning (RepeatEvery is a minute).
	time.Sleep(500 * time.Millisecond)
	if n := len(logs.Lines(warnMsg)); n != 1 {
		t.Errorf("%d warnings within half a second, want 1", n)
	}

	release()
	if !testutil.Poll(10*time.Second, func() bool { d, _ := w.Degraded(); return !d }) {
		t.Fatal("still degraded 10 s after the leaked files were closed")
	}
	if got := logs.Lines("level=INFO", "open file descriptors back within expectation"); len(got) != 1 {
		t.Errorf("want one INFO line when it clears, got %d:\n%s", len(got), logs)
	}
}

// fakeCount returns counts from a settable total, all of them files.
type fakeCount struct {
	total atomic.Int64
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *fakeCount) count() (procfd.Counts, error) {
	f.calls.Add(1)
	if p := f.err.Load(); p != nil {
		return procfd.Counts{}, *p
	}
	n := int(f.total.Load())
	return procfd.Counts{Files: n, Total: n}, nil
}

func TestFDWatchRepeatsAtMostOncePerRepeatEvery(t *testing.T) {
	logs := &testutil.LogBuffer{}
	fc := &fakeCount{}
	fc.total.Store(10)
	const every = 300 * time.Millisecond
	w := NewFDWatch(FDWatchConfig{Interval: 10 * time.Millisecond, RepeatEvery: every, Logger: testutil.Logger(logs), Count: fc.count})
	runWatch(t, w)
	waitFirstCount(t, w)
	fc.total.Store(1000)
	start := time.Now()
	if !testutil.Poll(20*time.Second, func() bool { return len(logs.Lines(warnMsg)) >= 3 }) {
		t.Fatalf("the warning was not repeated while it lasted:\n%s", logs)
	}
	elapsed := time.Since(start)
	got := len(logs.Lines(warnMsg))
	if max := int(elapsed/every) + 1; got > max {
		t.Errorf("%d warnings in %s, want at most %d (one per %s)", got, elapsed, max, every)
	}
	if calls := fc.calls.Load(); calls < int64(got)*5 {
		t.Errorf("only %d counts for %d warnings: the watch should count far more often than it warns", calls, got)
	}
}

func TestFDWatchExpectation(t *testing.T) {
	fc := &fakeCount{}
	fc.total.Store(50)
	var tcp, udp, readers, api atomic.Int64
	tcp.Store(10)
	udp.Store(5)
	readers.Store(3)
	api.Store(2)
	w := NewFDWatch(FDWatchConfig{
		Interval:         10 * time.Millisecond,
		Logger:           testutil.Logger(&testutil.LogBuffer{}),
		Count:            fc.count,
		CamerasConnected: func() (int, int) { return int(tcp.Load()), int(udp.Load()) },
		RelayReaders:     func() int { return int(readers.Load()) },
		APIConns:         func() int { return int(api.Load()) },
	})
	runWatch(t, w)
	// base = 50 - (10*1 + 5*3 + 3*1 + 2*1) = 20
	if _, exp := waitFirstCount(t, w); exp != 50 {
		t.Fatalf("first expectation %d, want 50", exp)
	}
	tcp.Store(20)
	udp.Store(10)
	readers.Store(0)
	api.Store(7)
	want := 20 + 20*FDsPerTCPCamera + 10*FDsPerUDPCamera + 7*FDsPerAPIConn
	if !testutil.Poll(10*time.Second, func() bool { _, exp := w.Counts(); return exp == want }) {
		_, exp := w.Counts()
		t.Fatalf("expectation %d, want %d", exp, want)
	}
	// At the limit (2*expected + slack) it is not degraded; one above, it is.
	fc.total.Store(int64(2*want + 16))
	time.Sleep(200 * time.Millisecond)
	if d, _ := w.Degraded(); d {
		t.Error("degraded at exactly the limit")
	}
	fc.total.Store(int64(2*want + 17))
	if !testutil.Poll(10*time.Second, func() bool { d, _ := w.Degraded(); return d }) {
		t.Error("not degraded one above the limit")
	}
}

func TestFDWatchCeilingCallsOnCeilingOnce(t *testing.T) {
	logs := &testutil.LogBuffer{}
	now, err := procfd.Count()
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	w := NewFDWatch(FDWatchConfig{
		Interval:  20 * time.Millisecond,
		Ceiling:   now.Total + 30,
		OnCeiling: func() { calls.Add(1) },
		Logger:    testutil.Logger(logs),
	})
	runWatch(t, w)
	waitFirstCount(t, w)
	if calls.Load() != 0 {
		t.Fatal("OnCeiling called before the ceiling was crossed")
	}
	leakFDs(t, 60)
	if !testutil.Poll(10*time.Second, func() bool { return calls.Load() > 0 }) {
		t.Fatalf("OnCeiling not called 10 s after crossing the ceiling:\n%s", logs)
	}
	time.Sleep(300 * time.Millisecond) // many more counts above the ceiling
	if n := calls.Load(); n != 1 {
		t.Errorf("OnCeiling called %d times, want once", n)
	}
	if n := len(logs.Lines("level=ERROR", "ceiling crossed")); n != 1 {
		t.Errorf("%d ERROR lines about the ceiling, want 1:\n%s", n, logs)
	}
}

func TestFDWatchOutOfDescriptors(t *testing.T) {
	logs := &testutil.LogBuffer{}
	fc := &fakeCount{}
	fc.total.Store(10)
	var calls atomic.Int64
	w := NewFDWatch(FDWatchConfig{Interval: 10 * time.Millisecond, Ceiling: 1000, OnCeiling: func() { calls.Add(1) },
		Logger: testutil.Logger(logs), Count: fc.count})
	runWatch(t, w)
	waitFirstCount(t, w)
	emfile := fmt.Errorf("count open file descriptors: %w", &os.PathError{Op: "open", Path: "/proc/self/fd", Err: syscall.EMFILE})
	fc.err.Store(&emfile)
	if !testutil.Poll(10*time.Second, func() bool { return calls.Load() > 0 }) {
		t.Fatal("running out of descriptors did not trigger the ceiling")
	}
	if d, why := w.Degraded(); !d || why != "out of file descriptors" {
		t.Errorf("Degraded() = %v, %q", d, why)
	}
	time.Sleep(100 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("OnCeiling called %d times, want once", n)
	}
	if n := len(logs.Lines("level=ERROR", `msg="out of file descriptors"`)); n != 1 {
		t.Errorf("%d ERROR lines, want 1", n)
	}
}

func TestFDWatchCountErrorLoggedOnce(t *testing.T) {
	logs := &testutil.LogBuffer{}
	fc := &fakeCount{}
	boom := errors.New("count open file descriptors: not supported")
	fc.err.Store(&boom)
	w := NewFDWatch(FDWatchConfig{Interval: 10 * time.Millisecond, Logger: testutil.Logger(logs), Count: fc.count})
	runWatch(t, w)
	if !testutil.Poll(10*time.Second, func() bool { return fc.calls.Load() >= 10 }) {
		t.Fatal("the watch does not count")
	}
	if n := len(logs.Lines("level=WARN", "blind")); n != 1 {
		t.Errorf("%d warnings about counting, want 1:\n%s", n, logs)
	}
	if d, _ := w.Degraded(); d {
		t.Error("a count error alone made it degraded")
	}
	fc.err.Store(nil)
	fc.total.Store(10)
	if !testutil.Poll(10*time.Second, func() bool { c, _ := w.Counts(); return c.Total == 10 }) {
		t.Fatal("no count after the error went away")
	}
}

func TestFDWatchRunTwice(t *testing.T) {
	w := NewFDWatch(FDWatchConfig{Logger: testutil.Logger(&testutil.LogBuffer{})})
	runWatch(t, w)
	waitFirstCount(t, w)
	if err := w.Run(t.Context()); err == nil {
		t.Error("second Run did not fail")
	}
}

func TestFDWatchNilIsSafe(t *testing.T) {
	var w *FDWatch
	if d, _ := w.Degraded(); d {
		t.Error("nil watch degraded")
	}
	if c, e := w.Counts(); c.Total != 0 || e != 0 {
		t.Error("nil watch counts")
	}
}

// socketsSettle waits until the socket count has not changed for a second
// and returns it.
func socketsSettle(t testing.TB) int {
	t.Helper()
	last, same := -1, 0
	var n int
	ok := testutil.Poll(30*time.Second, func() bool {
		c, err := procfd.Count()
		if err != nil {
			t.Fatal(err)
		}
		n = c.Sockets
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
		return same >= 50 // 50 polls of 20 ms
	})
	if !ok {
		t.Logf("socket count still moving after 30 s; using %d", n)
	}
	return n
}

// TestFDCostPerCamera measures what a camera costs in sockets, by transport,
// with gortsplib v5 against the simulator, and checks the constants the
// watch uses. The simulator runs in this process, so each camera also costs
// the server's end of its RTSP connection (one TCP socket; the server's UDP
// sockets are shared and opened before the first count).
func TestFDCostPerCamera(t *testing.T) {
	const n = 8
	s := simtest.Start(t, sim.Config{Cameras: 2 * n})
	e := newEnv(t)
	measure := func(transport string, first int) float64 {
		before := socketsSettle(t)
		for i := range n {
			e.add(fmt.Sprintf("%s%d", transport, i+1), s.URL(first+i), transport)
		}
		for i := range n {
			devicetest.WaitState(t, e.m, fmt.Sprintf("%s%d", transport, i+1), device.StateRunning, 60*time.Second)
		}
		after := socketsSettle(t)
		perCamera := float64(after-before)/n - 1 // minus the server's end
		t.Logf("%s: %d cameras: sockets %d → %d: %.2f per camera (client side)", transport, n, before, after, perCamera)
		return perCamera
	}
	tcp := measure("tcp", 1)
	for i := range n {
		if _, err := e.m.StopCamera(t.Context(), fmt.Sprintf("tcp%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	udp := measure("udp", n+1)
	if tcp < FDsPerTCPCamera-0.5 || tcp > FDsPerTCPCamera+0.5 {
		t.Errorf("a TCP camera holds %.2f sockets; FDsPerTCPCamera is %d", tcp, FDsPerTCPCamera)
	}
	if udp < FDsPerUDPCamera-0.5 || udp > FDsPerUDPCamera+0.5 {
		t.Errorf("a UDP camera holds %.2f sockets; FDsPerUDPCamera is %d", udp, FDsPerUDPCamera)
	}
}

// TestFDWatch64CamerasFlappingNeverWarns runs 64 simulator cameras (48 over
// TCP, 16 over UDP) through a real Manager on a real store, drops them again
// and again, and checks that the watch never warns.
func TestFDWatch64CamerasFlappingNeverWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("64 cameras for 15 s")
	}
	const cams = 64
	s := simtest.Start(t, sim.Config{Cameras: cams})
	e := newEnv(t)
	logs := &testutil.LogBuffer{}
	connected := ConnectedCameras(e.m)
	w := NewFDWatch(FDWatchConfig{
		Interval: 100 * time.Millisecond,
		Logger:   testutil.Logger(logs),
		// The simulator is in this process and holds the server's end of
		// every camera's RTSP connection: one more TCP socket per camera.
		CamerasConnected: func() (int, int) { tcp, udp := connected(); return 2*tcp + udp, udp },
	})
	for i := 1; i <= cams; i++ {
		tr := "tcp"
		if i%4 == 0 {
			tr = "udp"
		}
		e.add(fmt.Sprintf("cam%02d", i), s.URL(i), tr)
	}
	// As in camd run: the watch starts once start-up is done, cameras
	// still connecting.
	runWatch(t, w)
	devicetest.WaitAll(t, e.m, device.StateRunning, 90*time.Second)

	var maxRatio float64
	var maxTotal, maxExp int
	sample := func() {
		c, exp := w.Counts()
		if exp > 0 && float64(c.Total)/float64(exp) > maxRatio {
			maxRatio, maxTotal, maxExp = float64(c.Total)/float64(exp), c.Total, exp
		}
	}
	flapUntil := time.Now().Add(15 * time.Second)
	for round := 0; time.Now().Before(flapUntil); round++ {
		for k := range 8 {
			cam := (round*8+k)%cams + 1
			d := time.Duration(0)
			if k%2 == 1 {
				d = time.Duration(500+100*k) * time.Millisecond // hangs up on every attempt for a while
			}
			if err := s.SetFault(cam, sim.FaultDrop, d); err != nil {
				t.Fatal(err)
			}
		}
		for range 15 {
			sample()
			time.Sleep(20 * time.Millisecond)
		}
	}
	devicetest.WaitAll(t, e.m, device.StateRunning, 90*time.Second)
	sample()
	var reconnects uint64
	for _, v := range e.m.List() {
		reconnects += v.Reconnects
	}
	t.Logf("%d reconnects; highest count/expectation %.2f (%d/%d)", reconnects, maxRatio, maxTotal, maxExp)
	if reconnects < cams {
		t.Errorf("only %d reconnects: the cameras did not flap", reconnects)
	}
	if warns := logs.Lines(warnMsg); len(warns) > 0 {
		t.Errorf("the watch warned %d times during an honest run:\n%s", len(warns), warns[0])
	}
	if d, why := w.Degraded(); d {
		t.Errorf("degraded: %s", why)
	}
}
