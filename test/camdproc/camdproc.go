// Package camdproc runs the built camd binary for the process-level tests.
// Build serves test/crash, test/soak, test/netfault and cmd/camd; the rest
// (start "camd sim" and "camd run" as processes, read their addresses from
// their output, inject simulator faults, scan logs for panics) serves
// test/crash and test/soak. It is for tests only.
package camdproc

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

// Bin is a built camd binary, or why there is none.
type Bin struct {
	Path string
	Err  error
}

// Build builds github.com/camd/camd/cmd/camd into dir, from the module
// root (go env GOMOD), without cgo or the race detector: the process is the
// subject, not the test.
func Build(dir string) Bin {
	path, err := build(dir, "camd")
	return Bin{Path: path, Err: err}
}

// TestHooksTag is the build tag that compiles the daemon's test hooks
// (the CAMD_TESTHOOK_* variables, internal/daemon/testhooks_on.go).
const TestHooksTag = "camdtesthooks"

// BuildTestHooks is Build with the test hooks compiled in, into
// dir/camd-testhooks; the tests that make camd hang or leak on purpose
// run this binary, the rest run the product build.
func BuildTestHooks(dir string) Bin {
	path, err := build(dir, "camd-testhooks", "-tags", TestHooksTag)
	return Bin{Path: path, Err: err}
}

func build(dir, name string, flags ...string) (string, error) {
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
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/camd/camd/cmd/camd")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/camd: %w\n%s", err, out)
	}
	return bin, nil
}

// Proc is one process of the camd binary.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Stdout  *testutil.LogBuffer
	Stderr  *testutil.LogBuffer
	Started time.Time
	done    chan struct{}
	waitErr error
}

// Start starts "camd ARGS…"; t.Cleanup kills it if it is still running.
func (b Bin) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	if b.Err != nil {
		t.Fatal(b.Err)
	}
	p := &Proc{Name: name, Stdout: &testutil.LogBuffer{}, Stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(b.Path, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.waitErr = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Kill() })
	return p
}

// PID is the process's pid.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (if the process still runs) and waits for it to end.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to d for the process to end and returns its exit code.
func (p *Proc) Wait(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// Tail returns the last n lines of the process's stderr.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Stderr.String(), "\n"), "\n")
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

// Camd is one "camd run" process.
type Camd struct {
	*Proc
	API   string // host:port, once started
	Relay string // host:port, once started
}

// StartCamd starts "camd run" on dataDir with the config file cfg and its
// API and relay on free loopback ports. It does not wait for start-up.
func (b Bin) StartCamd(t testing.TB, dataDir, cfg string) *Camd {
	t.Helper()
	args := []string{"run", "--data-dir", dataDir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0"}
	if cfg != "" {
		args = append(args, "--config", cfg)
	}
	return &Camd{Proc: b.Start(t, "camd run", args...)}
}

// WaitStarted waits up to d for the "camd started" line and reads the API
// and relay addresses from it.
func (c *Camd) WaitStarted(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		log := c.Stderr.String()
		if m := startedRE.FindStringSubmatch(log); m != nil {
			c.API = m[1]
			if r := relayRE.FindStringSubmatch(log); r != nil {
				c.Relay = r[1]
			}
			return nil
		}
		if c.Exited() {
			return fmt.Errorf("camd exited during start-up (%v):\n%s", c.waitErr, c.Tail(30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camd did not start within %v:\n%s", d, c.Tail(30))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sim is one "camd sim" process.
type Sim struct {
	*Proc
	RTSP string // host:port
	Ctrl string // host:port
	hc   *http.Client
}

// StartSim starts "camd sim" with n cameras and waits for its first line.
func (b Bin) StartSim(t testing.TB, n int) *Sim {
	t.Helper()
	p := b.Start(t, "camd sim", "sim", "--cameras", fmt.Sprint(n), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--no-udp")
	s := &Sim{Proc: p, hc: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(s.hc.CloseIdleConnections)
	testutil.WaitFor(t, 30*time.Second, "camd sim's first line", func() bool {
		if p.Exited() {
			t.Fatalf("camd sim exited (%v):\n%s", p.waitErr, p.Stderr.String())
		}
		m := simRE.FindStringSubmatch(p.Stdout.String())
		if m == nil {
			return false
		}
		s.RTSP, s.Ctrl = m[1], m[2]
		return true
	})
	return s
}

// URL returns simulated camera i's RTSP URL.
func (s *Sim) URL(i int) string { return fmt.Sprintf("rtsp://%s/cam%d", s.RTSP, i) }

// Fault sets camera i's fault ("stall", "drop", "refuse", "garbage",
// "no-video" or "none") for d (0: until changed; a drop with 0 is one-shot).
func (s *Sim) Fault(ctx context.Context, i int, fault string, d time.Duration) error {
	body, _ := json.Marshal(map[string]string{"fault": fault, "duration": d.String()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/cameras/%d/fault", s.Ctrl, i), bytes.NewReader(body))
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

// PanicLines returns the lines of log that show a panic, a fatal runtime
// error, a data race or a recovered reader panic.
func PanicLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "panic:") || strings.Contains(l, "panicked") || strings.Contains(l, "fatal error:") ||
			strings.Contains(l, "DATA RACE") || goroutineRE.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// WriteConfig writes a camd config file with the short test thresholds
// into dir and returns its path.
func WriteConfig(t testing.TB, dir string) string {
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
