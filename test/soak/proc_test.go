package soak

// Running the built camd binary: build it once in TestMain, start "camd
// sim" and "camd run" as processes, read their addresses from their output,
// and scan their logs for panics. test/crash has a copy of this file (the
// two packages share nothing else, and neither may import the other's
// test files).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// camdBin is the binary TestMain built; binErr says why there is none.
var (
	camdBin string
	binErr  error
)

// buildCamd builds github.com/camd/camd/cmd/camd into dir, from the module
// root (go env GOMOD), without cgo or the race detector: the process is the
// subject, not the test.
func buildCamd(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err2 := os.Stat(goBin); err2 != nil {
			return "", fmt.Errorf("go command not found: %v", err)
		}
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the camd module (go env GOMOD = %q)", gomod)
	}
	bin := filepath.Join(dir, "camd")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/camd/camd/cmd/camd")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/camd: %w\n%s", err, out)
	}
	return bin, nil
}

// proc is one process of the camd binary.
type proc struct {
	name    string
	cmd     *exec.Cmd
	stdout  *testutil.LogBuffer
	stderr  *testutil.LogBuffer
	started time.Time
	done    chan struct{}
	waitErr error
}

// startProc starts "camd ARGS…"; t.Cleanup kills it if it is still running.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	if binErr != nil {
		t.Fatal(binErr)
	}
	p := &proc{name: name, stdout: &testutil.LogBuffer{}, stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(camdBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (if the process still runs) and waits for it to end.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// wait waits up to d for the process to end and returns its exit code.
func (p *proc) wait(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// tail returns the last n lines of the process's stderr.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	startedRE = regexp.MustCompile(`msg="camd started".* api=http://(\S+)`)
	relayRE   = regexp.MustCompile(`msg="camd started".* relay=rtsp://(\S+)`)
	simRE     = regexp.MustCompile(`(?m)^sim: rtsp on (\S+) \(cam1\.\.cam\d+\), control on http://(\S+)$`)
)

// camd is one "camd run" process.
type camd struct {
	*proc
	api   string // host:port, once started
	relay string // host:port, once started
}

// startCamd starts "camd run" on dataDir with the config file cfg and its
// API and relay on free loopback ports. It does not wait for start-up.
func startCamd(t testing.TB, dataDir, cfg string) *camd {
	t.Helper()
	args := []string{"run", "--data-dir", dataDir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0"}
	if cfg != "" {
		args = append(args, "--config", cfg)
	}
	return &camd{proc: startProc(t, "camd run", args...)}
}

// waitStarted waits up to d for the "camd started" line and reads the API
// and relay addresses from it.
func (c *camd) waitStarted(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		log := c.stderr.String()
		if m := startedRE.FindStringSubmatch(log); m != nil {
			c.api = m[1]
			if r := relayRE.FindStringSubmatch(log); r != nil {
				c.relay = r[1]
			}
			return nil
		}
		if c.exited() {
			return fmt.Errorf("camd exited during start-up (%v):\n%s", c.waitErr, c.tail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camd did not start within %v:\n%s", d, c.tail(30))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// simProc is one "camd sim" process.
type simProc struct {
	*proc
	rtsp string // host:port
	ctrl string // host:port
	hc   *http.Client
}

// startSim starts "camd sim" with n cameras and waits for its first line.
func startSim(t testing.TB, n int) *simProc {
	t.Helper()
	p := startProc(t, "camd sim", "sim", "--cameras", fmt.Sprint(n), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--no-udp")
	s := &simProc{proc: p, hc: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(s.hc.CloseIdleConnections)
	testutil.WaitFor(t, 30*time.Second, "camd sim's first line", func() bool {
		if p.exited() {
			t.Fatalf("camd sim exited (%v):\n%s", p.waitErr, p.stderr.String())
		}
		m := simRE.FindStringSubmatch(p.stdout.String())
		if m == nil {
			return false
		}
		s.rtsp, s.ctrl = m[1], m[2]
		return true
	})
	return s
}

// url returns simulated camera i's RTSP URL.
func (s *simProc) url(i int) string { return fmt.Sprintf("rtsp://%s/cam%d", s.rtsp, i) }

// fault sets camera i's fault ("stall", "drop", "refuse", "garbage",
// "no-video" or "none") for d (0: until changed; a drop with 0 is one-shot).
func (s *simProc) fault(ctx context.Context, i int, fault string, d time.Duration) error {
	body, _ := json.Marshal(map[string]string{"fault": fault, "duration": d.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/cameras/%d/fault", s.ctrl, i), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("sim fault %s on cam%d: %s: %s", fault, i, resp.Status, strings.TrimSpace(b.String()))
	}
	return nil
}

var goroutineRE = regexp.MustCompile(`goroutine \d+ \[running\]`)

// panicLines returns the lines of log that show a panic, a fatal runtime
// error, a data race or a recovered reader panic.
func panicLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "panic:") || strings.Contains(l, "panicked") || strings.Contains(l, "fatal error:") ||
			strings.Contains(l, "DATA RACE") || goroutineRE.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// writeConfig writes a camd config file with the short test thresholds
// into dir and returns its path.
func writeConfig(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "camd.yaml")
	body := `supervision:
  stall_timeout: 3s
  flap_debounce: 2s
  crashed_after: 2s
  force_restart_after: 10s
  backoff_min: 200ms
  backoff_max: 2s
  read_timeout: 3s
fd:
  interval: 1s
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
