package main

// Tests of "camd run" as a process: signals, exit status, restart
// recovery, reload, single instance, busy ports, no children, the hard-exit
// backstop, the FD watchdog and the health check.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

func needLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("process tests read /proc")
	}
}

// fastConfig makes failures visible within seconds.
const fastConfig = `supervision:
  stall_timeout: 4s
  flap_debounce: 2s
  crashed_after: 2s
  force_restart_after: 10s
  backoff_min: 200ms
  backoff_max: 2s
  read_timeout: 3s
`

// addCameras adds sim cameras 1..n as cam1..camN and starts them.
func addCameras(t *testing.T, p *camdProc, s *sim.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := p.client()
	for i := 1; i <= n; i++ {
		if _, err := c.AddCamera(ctx, device.Spec{Name: fmt.Sprintf("cam%d", i), URL: s.URL(i)}, true); err != nil {
			t.Fatalf("add cam%d: %v", i, err)
		}
	}
}

func waitRunning(t *testing.T, p *camdProc, n int, d time.Duration) {
	t.Helper()
	c := p.client()
	testutil.WaitFor(t, d, fmt.Sprintf("%d cameras RUNNING", n), func() bool {
		return countState(statesOf(t, c), "RUNNING") == n
	})
}

// SIGTERM with 64 cameras running exits 0 within 2 s; the next start brings
// the same cameras back, and one stopped through the CLI stays stopped.
func TestRunSIGTERMAndRestart(t *testing.T) {
	t.Parallel()
	needLinux(t)
	const n = 64
	s := simtest.Start(t, sim.Config{Cameras: n, NoUDP: true})
	dir := t.TempDir()
	cfg := writeConfig(t, t.TempDir(), fastConfig)
	p := startCamd(t, dir, nil, "--config", cfg)

	// camd is our child, has no children of its own, and serves under the
	// PID we started: it never forks.
	if got := ppid(p.pid()); got != os.Getpid() {
		t.Fatalf("camd's parent is %d, want the test (%d)", got, os.Getpid())
	}
	if !strings.Contains(p.stderr.String(), "pid="+strconv.Itoa(p.pid())+" ") {
		t.Fatalf("camd logs another pid than %d:\n%s", p.pid(), p.stderr.String())
	}

	addCameras(t, p, s, n)
	waitRunning(t, p, n, 60*time.Second)
	out, errOut, err := camCLI("camera", "stop", "cam7", "--api", p.api)
	if err != nil {
		t.Fatalf("camd camera stop: %v %s %s", err, out, errOut)
	}
	if kids := children(t, p.pid()); len(kids) != 0 {
		t.Fatalf("camd has child processes %v", kids)
	}
	if got := ppid(p.pid()); got != os.Getpid() {
		t.Fatalf("camd's parent changed to %d", got)
	}

	p.signal(syscall.SIGTERM)
	code, took, ok := p.wait(10 * time.Second)
	if !ok {
		t.Fatal("camd did not exit within 10 s of SIGTERM")
	}
	t.Logf("SIGTERM with %d cameras: exit %d after %v", n, code, took)
	if code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if took > 2*time.Second {
		t.Fatalf("SIGTERM to exit took %v, want under 2 s", took)
	}
	if strings.Contains(p.stderr.String(), "level=ERROR") {
		t.Fatalf("clean shutdown logged an error:\n%s", p.stderr.String())
	}

	start := time.Now()
	p2 := startCamd(t, dir, nil, "--config", cfg)
	waitRunning(t, p2, n-1, 60*time.Second)
	t.Logf("restart: %d cameras RUNNING again %v after start", n-1, time.Since(start).Round(time.Millisecond))
	st := statesOf(t, p2.client())
	if len(st) != n {
		t.Fatalf("after restart %d cameras, want %d", len(st), n)
	}
	// The stopped camera stays stopped: give it the time the others took
	// and more, then check it never connected.
	sessions := s.Sessions(7)
	time.Sleep(2 * time.Second)
	if st := statesOf(t, p2.client()); st["cam7"] != "STOPPED" {
		t.Fatalf("cam7 is %s after restart, want STOPPED", st["cam7"])
	}
	if s.Sessions(7) != sessions || s.ActiveSessions(7) != 0 {
		t.Fatalf("stopped cam7 connected to the camera after restart")
	}
	p2.signal(syscall.SIGTERM)
	if code, _, ok := p2.wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("second SIGTERM: exit %d ok %v", code, ok)
	}
}

// A shutdown that hangs ends at the deadline with a non-zero status and a
// log line naming the step; a second SIGTERM ends it at once.
func TestRunShutdownBackstop(t *testing.T) {
	t.Parallel()
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true})
	t.Run("deadline", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), fastConfig+"shutdown_deadline: 2s\n")
		p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_HANG_SHUTDOWN=cameras"}, "--config", cfg)
		addCameras(t, p, s, 2)
		waitRunning(t, p, 2, 30*time.Second)
		p.signal(syscall.SIGTERM)
		code, took, ok := p.wait(15 * time.Second)
		if !ok {
			t.Fatal("camd did not exit within 15 s of SIGTERM with a 2 s deadline")
		}
		t.Logf("hung shutdown: exit %d after %v (deadline 2 s)", code, took)
		if code == 0 {
			t.Fatal("hung shutdown exited 0; want non-zero so that the supervisor restarts camd")
		}
		if took > 3*time.Second {
			t.Fatalf("exit after %v, want within deadline + 1 s", took)
		}
		if !strings.Contains(p.stderr.String(), `msg="shutdown deadline passed; exiting without finishing" deadline=2s unfinished=cameras`) {
			t.Fatalf("no log line naming what hung:\n%s", p.stderr.String())
		}
	})
	t.Run("second signal", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), fastConfig+"shutdown_deadline: 60s\n")
		p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_HANG_SHUTDOWN=store"}, "--config", cfg)
		p.signal(syscall.SIGTERM)
		p.waitLog(10*time.Second, "test hook: shutdown step hangs")
		p.signal(syscall.SIGINT)
		code, took, ok := p.wait(10 * time.Second)
		if !ok {
			t.Fatal("a second signal did not end camd")
		}
		t.Logf("second signal: exit %d after %v", code, took)
		if code == 0 || !strings.Contains(p.stderr.String(), `msg="second signal; exiting now" signal=interrupt unfinished=store`) {
			t.Fatalf("exit %d; log:\n%s", code, p.stderr.String())
		}
	})
}

// SIGHUP re-reads the config: the stall threshold changes (seen through the
// API) and no camera reconnects; a bad config changes nothing.
func TestRunSIGHUPReload(t *testing.T) {
	t.Parallel()
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true})
	cdir := t.TempDir()
	cfg := writeConfig(t, cdir, fastConfig)
	p := startCamd(t, t.TempDir(), nil, "--config", cfg)
	addCameras(t, p, s, 2)
	waitRunning(t, p, 2, 30*time.Second)
	stall := func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, err := p.client().Do(ctx, "GET", "/api/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Settings map[string]float64 `json:"settings"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		return st.Settings["stall_timeout"]
	}
	if got := stall(); got != 4 {
		t.Fatalf("stall_timeout %v before reload, want 4", got)
	}
	before := []int{s.Sessions(1), s.Sessions(2)}

	writeConfig(t, cdir, strings.Replace(fastConfig, "stall_timeout: 4s", "stall_timeout: 17s", 1)+"log:\n  level: debug\n")
	p.signal(syscall.SIGHUP)
	testutil.WaitFor(t, 10*time.Second, "stall_timeout 17 through the API", func() bool { return stall() == 17 })

	// A config with a typo: logged, nothing changes, camd keeps running.
	writeConfig(t, cdir, "supervision:\n  stall_timout: 5s\n")
	p.signal(syscall.SIGHUP)
	p.waitLog(10*time.Second, `msg="reload failed; nothing changed"`)
	if got := stall(); got != 17 {
		t.Fatalf("a bad config changed stall_timeout to %v", got)
	}
	time.Sleep(time.Second)
	if p.exited() {
		t.Fatalf("SIGHUP ended camd:\n%s", p.stderr.String())
	}
	st := statesOf(t, p.client())
	if st["cam1"] != "RUNNING" || st["cam2"] != "RUNNING" {
		t.Fatalf("cameras after reload: %v", st)
	}
	if after := []int{s.Sessions(1), s.Sessions(2)}; after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("reload reconnected cameras: sessions %v -> %v", before, after)
	}
}

// A second camd on the same data dir, or with the API or relay port taken,
// exits non-zero within 2 s with one line, and the first is unaffected.
func TestRunSingleInstanceAndBusyPorts(t *testing.T) {
	t.Parallel()
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	dir := t.TempDir()
	first := startCamd(t, dir, nil)
	addCameras(t, first, s, 1)
	waitRunning(t, first, 1, 30*time.Second)
	sessions := s.Sessions(1)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	for _, tc := range []struct {
		name string
		dir  string
		args []string
		want string
	}{
		{"same data dir", dir, nil, "camd: open " + filepath.Join(dir, "camd.db") + ": data file is locked by another camd (pid " + strconv.Itoa(first.pid()) + ")"},
		{"api port taken", t.TempDir(), []string{"--api-listen", busy.Addr().String()}, "camd: api: listen " + busy.Addr().String() + ": address already in use"},
		{"relay port taken", t.TempDir(), []string{"--rtsp-listen", busy.Addr().String()}, "camd: relay: listen " + busy.Addr().String() + ": address already in use"},
		{"api port of the first", t.TempDir(), []string{"--api-listen", first.api}, "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"run", "--data-dir", tc.dir}
			if !hasFlag(tc.args, "--api-listen") {
				args = append(args, "--api-listen", "127.0.0.1:0")
			}
			if !hasFlag(tc.args, "--rtsp-listen") {
				args = append(args, "--rtsp-listen", "127.0.0.1:0")
			}
			p := startProc(t, nil, append(args, tc.args...)...)
			code, took, ok := p.wait(10 * time.Second)
			if !ok {
				t.Fatal("did not exit within 10 s")
			}
			out := p.stderr.String()
			t.Logf("%s: exit %d after %v: %s", tc.name, code, took, strings.TrimSpace(out))
			if code == 0 || took > 2*time.Second {
				t.Fatalf("exit %d after %v, want non-zero within 2 s", code, took)
			}
			if !oneLine(out) || !strings.Contains(out, tc.want) {
				t.Fatalf("stderr %q, want one line containing %q", out, tc.want)
			}
			// Nothing left behind: a camd on the same data dir starts at
			// once (no lock held, no stale pid file in the way).
			if tc.dir != dir {
				q := startCamd(t, tc.dir, nil)
				q.signal(syscall.SIGTERM)
				if code, _, ok := q.wait(10 * time.Second); !ok || code != 0 {
					t.Fatalf("camd on the same dir afterwards: exit %d ok %v", code, ok)
				}
			}
		})
	}
	if first.exited() {
		t.Fatal("the first camd exited")
	}
	if st := statesOf(t, first.client()); st["cam1"] != "RUNNING" || s.Sessions(1) != sessions {
		t.Fatalf("the first camd was disturbed: %v, sessions %d -> %d", st, sessions, s.Sessions(1))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "camd.db.pid")); strings.TrimSpace(string(b)) != strconv.Itoa(first.pid()) {
		t.Fatalf("pid file says %q, want %d", b, first.pid())
	}
}

// An unreadable or wrong config is one line and a non-zero exit.
func TestRunBadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"missing file": {[]string{"--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		"typo":         {[]string{"--config", writeConfig(t, dir, "supervison: {}\n")}, `camd.yaml:1: unknown key "supervison" (did you mean "supervision"?)`},
		"bad level":    {[]string{"--log-level", "loud"}, "log.level"},
		"extra arg":    {[]string{"now"}, "run takes no arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			p := startProc(t, nil, append([]string{"run", "--data-dir", t.TempDir(), "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0"}, tc.args...)...)
			code, _, ok := p.wait(10 * time.Second)
			out := p.stderr.String()
			if name == "extra arg" {
				// A usage error: exit 2, the usage, and the problem last.
				if !ok || code != 2 || !strings.Contains(out, "Usage: camd run") || !strings.Contains(lastLine(out), tc.want) {
					t.Fatalf("exit %d ok %v stderr %q, want 2 and a last line with %q", code, ok, out, tc.want)
				}
				return
			}
			if !ok || code == 0 || !oneLine(out) || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d ok %v stderr %q, want one line with %q", code, ok, out, tc.want)
			}
		})
	}
}

// The FD watchdog sees descriptors leaked on purpose (WARN line with the
// breakdown, degraded health); with a ceiling set, crossing it ends camd
// non-zero within the shutdown deadline.
func TestRunFDWatchdog(t *testing.T) {
	t.Parallel()
	needLinux(t)
	t.Run("leak warns", func(t *testing.T) {
		leak := filepath.Join(t.TempDir(), "leak")
		cfg := writeConfig(t, t.TempDir(), "fd:\n  interval: 200ms\n")
		p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_LEAK_FDS_FILE=" + leak}, "--config", cfg)
		if h := health(t, p, "/healthz"); strings.Contains(h, `"degraded":true`) {
			t.Fatalf("degraded before any leak: %s", h)
		}
		if err := os.WriteFile(leak, []byte("200"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.waitLog(20*time.Second, `msg="open file descriptors far above expectation"`)
		line := grepLine(p.stderr.String(), "far above expectation")
		t.Logf("warning: %s", line)
		// The watch may sample while the hook is still opening its 200
		// descriptors, so the line is checked for naming files as the
		// excess, not for the final count.
		files, limit := intField(line, "files"), intField(line, "limit")
		if limit <= 0 || files <= limit/2 || !strings.Contains(line, "expected=") || !strings.Contains(line, "sockets=") {
			t.Fatalf("warning line lacks the breakdown (files=%d): %s", files, line)
		}
		testutil.WaitFor(t, 10*time.Second, "degraded health", func() bool {
			return strings.Contains(health(t, p, "/healthz"), `"degraded":true`)
		})
	})
	t.Run("ceiling ends camd", func(t *testing.T) {
		leak := filepath.Join(t.TempDir(), "leak")
		cfg := writeConfig(t, t.TempDir(), "fd:\n  interval: 200ms\n  ceiling: 100\nshutdown_deadline: 3s\n")
		p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_LEAK_FDS_FILE=" + leak}, "--config", cfg)
		time.Sleep(time.Second)
		if p.exited() {
			t.Fatalf("camd ended before the leak:\n%s", p.stderr.String())
		}
		if err := os.WriteFile(leak, []byte("150"), 0o600); err != nil {
			t.Fatal(err)
		}
		p.waitLog(20*time.Second, "file descriptor ceiling crossed")
		code, took, ok := p.wait(10 * time.Second)
		if !ok {
			t.Fatal("camd did not exit after crossing the ceiling")
		}
		t.Logf("ceiling: exit %d, %v after the log line", code, took)
		if code == 0 || took > 3*time.Second+time.Second {
			t.Fatalf("exit %d after %v; want non-zero within the 3 s deadline", code, took)
		}
		if !strings.Contains(p.stderr.String(), "open file descriptors crossed the configured ceiling") {
			t.Fatalf("no cause in the log:\n%s", p.stderr.String())
		}
	})
}

// /healthz goes 503 while the supervision loop hangs, and back to 200.
func TestRunHealthzHungLoop(t *testing.T) {
	t.Parallel()
	needLinux(t)
	hang := filepath.Join(t.TempDir(), "hang")
	p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_HANG_LOOP_FILE=" + hang})
	code := func() int {
		resp, err := http.Get("http://" + p.api + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := code(); c != 200 {
		t.Fatalf("healthz %d before the hang", c)
	}
	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "healthz 503", func() bool { return code() == 503 })
	_ = os.Remove(hang)
	testutil.WaitFor(t, 20*time.Second, "healthz 200 again", func() bool { return code() == 200 })
}

func health(t *testing.T, p *camdProc, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.api + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func intField(line, key string) int {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return -1
	}
	v := line[i+len(key)+2:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// A camera's password appears in no log line, CLI output, API response or
// error, even when the camera rejects it.
func TestRunSecretNeverShown(t *testing.T) {
	t.Parallel()
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true, User: "user", Pass: "secret"})
	p := startCamd(t, t.TempDir(), nil, "--log-level", "debug")
	good := strings.Replace(s.URL(1), "rtsp://", "rtsp://user:secret@", 1)
	bad := strings.Replace(s.URL(2), "rtsp://", "rtsp://user:wrongsecret@", 1)
	var shown strings.Builder
	cli := func(args ...string) {
		o, e, err := camCLI(append(args, "--api", p.api)...)
		fmt.Fprintf(&shown, "%s\n%s\n%v\n", o, e, err)
	}
	cli("camera", "add", "cam1", good)
	cli("camera", "add", "cam2", bad)
	waitRunning(t, p, 1, 30*time.Second)
	testutil.WaitFor(t, 30*time.Second, "cam2 to fail with an error", func() bool {
		raw, err := p.client().Do(context.Background(), "GET", "/api/v1/cameras/cam2", nil)
		return err == nil && strings.Contains(string(raw), `"last_error":"`)
	})
	cli("camera", "add", "cam1", good) // duplicate: an error that could echo the URL
	cli("camera", "add", "cam3", "rtsp://user:secret@/nohost")
	for _, c := range [][]string{{"camera", "ls"}, {"camera", "ls", "--json"}, {"camera", "show", "cam1"},
		{"camera", "show", "cam2", "--json"}, {"status"}, {"status", "--json"}} {
		cli(c...)
	}
	for _, path := range []string{"/api/v1/cameras", "/api/v1/cameras/cam1", "/api/v1/cameras/cam2", "/api/v1/status", "/metrics", "/healthz", "/readyz", "/"} {
		resp, err := http.Get("http://" + p.api + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&shown, "%s %d\n%s\n", path, resp.StatusCode, b)
	}
	p.signal(syscall.SIGTERM)
	if code, _, ok := p.wait(10 * time.Second); !ok || code != 0 {
		t.Fatalf("exit %d ok %v", code, ok)
	}
	all := shown.String() + p.stderr.String()
	if !strings.Contains(all, "cam2") || !strings.Contains(all, "RUNNING") {
		t.Fatalf("the outputs checked look empty:\n%s", all)
	}
	for _, secret := range []string{"secret", "wrongsecret"} {
		if strings.Contains(all, secret) {
			for _, l := range strings.Split(all, "\n") {
				if strings.Contains(l, secret) {
					t.Errorf("%q shown: %s", secret, l)
				}
			}
		}
	}
}

// promtool finds nothing wrong with a live camd's /metrics, with cameras
// and relay readers counted.
func TestRunMetricsPromtool(t *testing.T) {
	t.Parallel()
	needLinux(t)
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testutil.SkipMissing(t, "promtool", "apt-get install prometheus")
	}
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true})
	p := startCamd(t, t.TempDir(), nil)
	addCameras(t, p, s, 2)
	waitRunning(t, p, 2, 30*time.Second)
	resp, err := http.Get("http://" + p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`camd_camera_state{camera="cam1",state="RUNNING"} 1`, "camd_open_fds", "go_goroutines", "process_open_fds"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
