package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/test/camdproc"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// camdBinary builds ./cmd/camd once per test binary run.
func camdBinary(t testing.TB) string {
	t.Helper()
	testutil.NeedTool(t, "go")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "camd-sim-test-")
		if buildErr != nil {
			return
		}
		b := camdproc.Build(buildDir)
		buildBin, buildErr = b.Path, b.Err
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	// Most tests wait on readers at the simulator's frame rate.
	code := testutil.RunParallel(m, 8)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// simProcess is "camd sim" running as a child process.
type simProcess struct {
	cmd     *exec.Cmd
	addr    string // RTSP
	control string // http://…, or "off"
	udp     string
	done    chan error
}

var simLine = regexp.MustCompile(`^sim: rtsp on (\S+) \(cam1\.\.cam(\d+)\), control on (\S+)$`)

// startSimProcess runs "camd sim" with args and reads its addresses back.
func startSimProcess(t testing.TB, args ...string) *simProcess {
	t.Helper()
	cmd := exec.Command(camdBinary(t), append([]string{"sim"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &simProcess{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // already gone if the test stopped it
		<-p.done
	})

	// Buffered beyond the few lines camd sim prints, so that the reader
	// goroutine never blocks even if this test gives up early.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		// Wait only after stdout is drained, as exec requires.
		p.done <- cmd.Wait()
	}()
	deadline := time.After(waitTimeout)
	for p.addr == "" || (p.udp == "" && !strings.Contains(strings.Join(args, " "), "--no-udp")) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("camd sim exited before printing its addresses")
			}
			if m := simLine.FindStringSubmatch(l); m != nil {
				p.addr, p.control = m[1], m[3]
			}
			if a, ok := strings.CutPrefix(l, "sim: udp rtp on "); ok {
				p.udp = a
			}
		case <-deadline:
			t.Fatal("camd sim printed no addresses")
		}
	}
	// Keep draining stdout so the child never blocks on a full pipe.
	go func() {
		for range lines {
		}
	}()
	return p
}

// stop sends SIGTERM and checks that the process exits, cleanly and soon.
func (p *simProcess) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("camd sim exited with %v after SIGTERM", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("camd sim still running after SIGTERM")
	}
}

func TestCamdSimCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds camd")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGTERM")
	}
	t.Parallel()
	p := startSimProcess(t, "--cameras", "3", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")

	r := startReader(t, "rtsp://"+p.addr+"/cam3", readerOpts{})
	r.waitFrames(t, 5)

	hc := &http.Client{Timeout: waitTimeout}
	res, err := hc.Post(p.control+"/cameras/2/fault", "application/json",
		strings.NewReader(`{"fault":"refuse","duration":"1m"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST fault: %s", res.Status)
	}
	res, err = hc.Get(p.control + "/cameras")
	if err != nil {
		t.Fatal(err)
	}
	var all []CameraStatus
	err = json.NewDecoder(res.Body).Decode(&all)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[1].Fault != FaultRefuse || all[2].Sessions != 1 || all[2].ActiveSessions != 1 {
		t.Fatalf("GET /cameras: %+v", all)
	}
	if _, _, err := dial("rtsp://"+p.addr+"/cam2", false); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("cam2 with refuse: %v", err)
	}

	p.stop(t)
}

// "camd sim --stamp" stamps every frame; without the flag, none.
func TestCamdSimStampFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds camd")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGTERM")
	}
	t.Parallel()
	for _, stamp := range []bool{true, false} {
		args := []string{"--cameras", "1", "--listen", "127.0.0.1:0", "--control", "off", "--no-udp"}
		if stamp {
			args = append(args, "--stamp")
		}
		p := startSimProcess(t, args...)
		r := startReader(t, "rtsp://"+p.addr+"/cam1", readerOpts{videoOnly: true})
		r.waitFrames(t, 10)
		st := r.stats()
		if stamp && (st.stamps < st.videoAUs-1 || st.misplaced != 0) {
			t.Errorf("--stamp: %d stamps (%d misplaced) in %d frames", st.stamps, st.misplaced, st.videoAUs)
		}
		if !stamp && st.stamps != 0 {
			t.Errorf("without --stamp: %d stamps", st.stamps)
		}
		p.stop(t)
	}
}

func TestCamdSimHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds camd")
	}
	t.Parallel()
	out, err := exec.Command(camdBinary(t), "sim", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--cameras") && !strings.Contains(string(out), "-cameras") {
		t.Fatalf("camd sim --help: %v\n%s", err, out)
	}
}

// procCPU returns the process's user+system CPU time, from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces; utime and stime are fields 14 and 15 of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// procRSS returns the process's resident set size in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// BenchmarkSim64 measures what "camd sim" costs serving 64 cameras to 64
// readers (one each, video over TCP, as camd reads them). The simulator runs
// as its own process so that its CPU time and RSS can be read from /proc
// apart from the readers'. Reported: % of one core, MB RSS, and the frame
// rate each reader got (to show the load was real). SIM_BENCH_SECONDS sets
// the measuring window; it defaults to 10.
//
//	go test -run '^$' -bench Sim64 -benchtime 1x ./stream/sim/
func BenchmarkSim64(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	const cams = 64
	window := 10 * time.Second
	if v, err := strconv.Atoi(os.Getenv("SIM_BENCH_SECONDS")); err == nil && v > 0 {
		window = time.Duration(v) * time.Second
	}
	p := startSimProcess(b, "--cameras", strconv.Itoa(cams), "--listen", "127.0.0.1:0", "--control", "")
	pid := p.cmd.Process.Pid

	readers := make([]*reader, cams)
	for i := range readers {
		readers[i] = startReader(b, fmt.Sprintf("rtsp://%s/cam%d", p.addr, i+1), readerOpts{videoOnly: true})
	}
	for _, r := range readers {
		r.waitFrames(b, 25) // warmed up: every reader is getting frames
	}

	b.ResetTimer()
	cpu0, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	frames0 := 0
	for _, r := range readers {
		frames0 += r.stats().videoAUs
	}
	start := time.Now()
	time.Sleep(window)
	cpu1, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	frames1 := 0
	for _, r := range readers {
		frames1 += r.stats().videoAUs
	}
	rss, err := procRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	cpuPct := 100 * float64(cpu1-cpu0) / float64(elapsed)
	fps := float64(frames1-frames0) / elapsed.Seconds() / cams
	b.ReportMetric(cpuPct, "%cpu")
	b.ReportMetric(float64(rss)/(1<<20), "MB-rss")
	b.ReportMetric(fps, "fps/reader")
	b.Logf("camd sim, %d cameras x 1 reader: %.1f%% of one core, %.1f MB RSS, %.1f fps per reader over %v",
		cams, cpuPct, float64(rss)/(1<<20), fps, elapsed.Round(time.Millisecond))
	if fps < 20 {
		b.Errorf("readers got %.1f fps, want about 25: the measurement is not of a full load", fps)
	}
	p.stop(b)
}
