package main

// Helpers for tests that run the built camd binary as a process: build it
// once, start "camd run", find its addresses in its log, signal it, and
// read its exit status.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/test/camdproc"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error

	hookOnce sync.Once
	hookBin  camdproc.Bin
)

func TestMain(m *testing.M) {
	// The process tests mostly wait on camd and the simulator: a few at
	// once.
	code := testutil.RunParallel(m, 4)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// camdBin builds the camd binary once per test run (without the race
// detector: the process is the subject, not the test).
func camdBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "camd-bin-")
		if binErr != nil {
			return
		}
		b := camdproc.Build(binDir)
		binPath, binErr = b.Path, b.Err
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// camdHookBin builds, once, camd with the test hooks compiled in (next to
// camdBin's binary).
func camdHookBin(t *testing.T) string {
	t.Helper()
	camdBin(t) // makes binDir
	hookOnce.Do(func() { hookBin = camdproc.BuildTestHooks(binDir) })
	if hookBin.Err != nil {
		t.Fatal(hookBin.Err)
	}
	return hookBin.Path
}

// hookEnv says whether env asks for a test hook, which only the
// camdHookBin binary reads; the product binary would ignore it and the
// test would wait for misbehaviour that never comes.
func hookEnv(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "CAMD_TESTHOOK_") {
			return true
		}
	}
	return false
}

// camdProc is one "camd run" process.
type camdProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stderr  *testutil.LogBuffer
	stdout  *testutil.LogBuffer
	done    chan struct{}
	waitErr error
	api     string // host:port
	relay   string // host:port, "" when off
	dataDir string
}

var startedRE = regexp.MustCompile(`msg="camd started".* api=https?://(\S+).*?(?: relay=rtsp://(\S+))?$`)

// startProc starts "camd ARGS…" without waiting for anything.
func startProc(t *testing.T, env []string, args ...string) *camdProc {
	t.Helper()
	bin := camdBin(t)
	if hookEnv(env) {
		bin = camdHookBin(t)
	}
	return startCmd(t, exec.Command(bin, args...), env, args)
}

// startCmd starts cmd, a camd process or a shell that execs one (args
// say which command, for the log of a failed test).
func startCmd(t *testing.T, cmd *exec.Cmd, env, args []string) *camdProc {
	t.Helper()
	p := &camdProc{t: t, stderr: &testutil.LogBuffer{}, stdout: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd = cmd
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("camd %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// startCamd runs "camd run" on dataDir (with its API and relay on free
// loopback ports unless args say otherwise) and waits until it is up.
func startCamd(t *testing.T, dataDir string, env []string, args ...string) *camdProc {
	t.Helper()
	full := []string{"run", "--data-dir", dataDir}
	if !hasFlag(args, "--api-listen") {
		full = append(full, "--api-listen", "127.0.0.1:0")
	}
	if !hasFlag(args, "--rtsp-listen") {
		full = append(full, "--rtsp-listen", "127.0.0.1:0")
	}
	p := startProc(t, env, append(full, args...)...)
	p.dataDir = dataDir
	p.waitStarted()
	return p
}

// waitStarted waits until camd has logged that it is up and takes its API
// and relay addresses from that line.
func (p *camdProc) waitStarted() {
	t := p.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil {
				p.api, p.relay = m[1], m[2]
				return
			}
		}
		if p.exited() {
			t.Fatalf("camd exited during start-up (%v):\n%s", p.waitErr, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("camd did not start within 30 s:\n%s", p.stderr.String())
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func (p *camdProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *camdProc) pid() int { return p.cmd.Process.Pid }

func (p *camdProc) signal(s syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("signal %v: %v", s, err)
	}
}

// wait waits up to d for the process to exit and returns its exit status
// and how long it took; ok is false if it did not exit.
func (p *camdProc) wait(d time.Duration) (code int, took time.Duration, ok bool) {
	start := time.Now()
	select {
	case <-p.done:
	case <-time.After(d):
		return 0, time.Since(start), false
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start), true
}

func (p *camdProc) client() *api.Client { return api.NewClient(p.api, "") }

// waitLog waits until the log contains s.
func (p *camdProc) waitLog(d time.Duration, s string) {
	p.t.Helper()
	testutil.WaitFor(p.t, d, "log line "+s, func() bool { return strings.Contains(p.stderr.String(), s) })
}

// statesOf returns each camera's state by name.
func statesOf(t *testing.T, c *api.Client) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cams, err := c.Cameras(ctx)
	if err != nil {
		t.Fatalf("list cameras: %v", err)
	}
	m := make(map[string]string, len(cams))
	for _, cam := range cams {
		m[cam.Name] = cam.State
	}
	return m
}

// countState counts cameras in state s.
func countState(m map[string]string, s string) int {
	n := 0
	for _, v := range m {
		if v == s {
			n++
		}
	}
	return n
}

// writeConfig writes a config file into dir and returns its path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "camd.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// children returns the PIDs whose parent is pid, from /proc.
func children(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var kids []int
	for _, e := range ents {
		var child int
		if _, err := fmt.Sscanf(e.Name(), "%d", &child); err != nil {
			continue
		}
		if ppid(child) == pid {
			kids = append(kids, child)
		}
	}
	return kids
}

// ppid reads a process's parent PID from /proc/PID/stat (-1 if gone).
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; it ends at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	var state string
	var pp int
	if _, err := fmt.Sscanf(s[i+1:], " %s %d", &state, &pp); err != nil {
		return -1
	}
	return pp
}

// oneLine reports whether s (trimmed) is exactly one line.
func oneLine(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && !strings.Contains(s, "\n")
}
