package main

// One exit-status rule for every command, checked on the built binary:
// 0 success, 1 failure, 2 usage error. Every command in the tree must have
// a row here (a new command without one fails TestExitCodes), with a wrong
// flag, a failure and a success, or the reason one cannot be had.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// binRun is what one run of the binary did.
type binRun struct {
	code           int
	stdout, stderr string
}

// runBin runs the built camd with args (and env on top of the test's) and
// waits up to 60 s for it.
func runBin(t *testing.T, env []string, args ...string) binRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, camdBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("camd %s did not end within 60 s", strings.Join(args, " "))
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("camd %s: %v", strings.Join(args, " "), err)
	}
	return binRun{cmd.ProcessState.ExitCode(), o.String(), e.String()}
}

// exitCase is one command's three runs. A nil args slice needs a reason
// in its why.
type exitCase struct {
	path  string   // the command path, "camd camera add"
	usage []string // a usage error: exit 2
	fail  []string // a failure: exit 1
	ok    []string // success: exit 0
	env   []string // for fail
	why   string   // why fail or ok is nil

	failWant string                       // in the failure's stderr
	okCheck  func(t *testing.T, r binRun) // of the success
	okRun    func(t *testing.T)           // a success that is not one run
}

// commandPaths lists every command of the tree as "camd camera add",
// with cobra's help and completion commands, hidden ones included.
func commandPaths() []string {
	root := newRootCmd()
	prepare(root)
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.HasPrefix(c.Name(), "__") {
			return // cobra's completion back end, run by the shells
		}
		out = append(out, c.CommandPath())
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	sort.Strings(out)
	return out
}

func TestExitCodes(t *testing.T) {
	needLinux(t)
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	d := startCamd(t, t.TempDir(), nil)
	a := []string{"--api", d.api}
	free := []string{"--api", freeAddr(t)}
	with := func(args []string, more ...string) []string { return append(append([]string{}, args...), more...) }

	dir := t.TempDir()
	badCfg := filepath.Join(dir, "camd.yaml")
	if err := os.WriteFile(badCfg, []byte("log:\n  level: info\napi:\n  listen: 127.0.0.1:0\nsupervison:\n  stall_timeout: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// install refuses a binary under /tmp (the unit's PrivateTmp hides it):
	// a copy beside the test is one it accepts.
	instDir, err := os.MkdirTemp(".", "_exitcodes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(instDir) })
	instBin, _ := filepath.Abs(filepath.Join(instDir, "camd"))
	if b, err := os.ReadFile(camdBin(t)); err != nil || os.WriteFile(instBin, b, 0o755) != nil {
		t.Fatalf("copy the binary: %v", err)
	}
	serviceInstalled := false
	for _, p := range []string{"/etc/systemd/system/camd.service", "/lib/systemd/system/camd.service", "/usr/lib/systemd/system/camd.service"} {
		if _, err := os.Stat(p); err == nil {
			serviceInstalled = true
		}
	}
	noManager := "needs camd installed as a service, which a test does not do to the machine"

	cases := []exitCase{
		{path: "camd", usage: []string{"--bogus"}, ok: []string{"--version"}, why: "camd alone only dispatches; it has no failure of its own",
			okCheck: func(t *testing.T, r binRun) {
				if r.stdout != "camd "+version+"\n" && !strings.HasPrefix(r.stdout, "camd ") {
					t.Errorf("--version: %q", r.stdout)
				}
			}},
		{path: "camd run", usage: []string{"run", "--bogus"}, fail: []string{"run", "--config", badCfg},
			failWant: badCfg + `:5: unknown key "supervison" (did you mean "supervision"?)`,
			okRun: func(t *testing.T) {
				p := startCamd(t, t.TempDir(), nil)
				p.signal(syscall.SIGTERM)
				if code, _, ok := p.wait(30 * time.Second); !ok || code != 0 {
					t.Errorf("camd run after SIGTERM: exit %d (exited %v), want 0", code, ok)
				}
			}},
		{path: "camd camera", usage: []string{"camera", "frobnicate"}, ok: []string{"camera", "help"}, why: "a group has no failure of its own"},
		{path: "camd camera add", usage: []string{"camera", "add", "onlyname"}, fail: with(a, "camera", "add", "x", "127.0.0.1/cam"),
			failWant: "url must start with rtsp:// or rtsps://", ok: with(a, "camera", "add", "cam1", s.URL(1)),
			okCheck: func(t *testing.T, r binRun) {
				if !regexp.MustCompile(`^added cam1 \S+ \(tcp, (STARTING|RUNNING)\)\n$`).MatchString(r.stdout) {
					t.Errorf("add answers %q, want STARTING or RUNNING", r.stdout)
				}
			}},
		{path: "camd camera ls", usage: []string{"camera", "ls", "--bogus"}, fail: with(free, "camera", "ls"), failWant: "cannot reach the camd daemon",
			ok: with(a, "camera", "ls")},
		{path: "camd camera show", usage: []string{"camera", "show"}, fail: with(a, "camera", "show", "nope"), failWant: "no such camera",
			ok: with(a, "camera", "show", "cam1"), okCheck: noJSON},
		{path: "camd camera restart", usage: []string{"camera", "restart", "a", "b"}, fail: with(a, "camera", "restart", "nope"), failWant: "no such camera",
			ok: with(a, "camera", "restart", "cam1")},
		{path: "camd camera stop", usage: []string{"camera", "stop", "--bogus", "cam1"}, fail: with(a, "camera", "stop", "nope"), failWant: "no such camera",
			ok: with(a, "camera", "stop", "cam1")},
		{path: "camd camera start", usage: []string{"camera", "start"}, fail: with(a, "camera", "start", "nope"), failWant: "no such camera",
			ok: with(a, "camera", "start", "cam1")},
		{path: "camd camera rm", usage: []string{"camera", "rm", "--bogus"}, fail: with(a, "camera", "rm", "nope"), failWant: "no such camera",
			ok: with(a, "camera", "rm", "cam1")},
		{path: "camd status", usage: []string{"status", "extra"}, fail: with(free, "status"), failWant: "cannot reach the camd daemon",
			ok: with(a, "status"), okCheck: func(t *testing.T, r binRun) {
				noJSON(t, r)
				if !regexp.MustCompile(`(?m)^Shutdown deadline: +10s$`).MatchString(r.stdout) {
					t.Errorf("status gives no shutdown deadline in seconds:\n%s", r.stdout)
				}
			}},
		{path: "camd events", usage: []string{"events", "-n", "-1"}, fail: with(free, "events"), failWant: "cannot reach the camd daemon",
			ok: with(a, "events")},
		{path: "camd health", usage: []string{"health", "--timeout", "0s"}, fail: with(free, "health"), failWant: "cannot reach the camd daemon",
			ok: with(a, "health")},
		{path: "camd sim", usage: []string{"sim", "--cameras", "many"}, fail: []string{"sim", "--listen", "127.0.0.1:99999"},
			okRun: func(t *testing.T) {
				p := startProc(t, nil, "sim", "--cameras", "1", "--listen", "127.0.0.1:0", "--control", "off", "--no-udp")
				testutil.WaitFor(t, 30*time.Second, "sim up", func() bool { return strings.Contains(p.stdout.String(), "sim: rtsp on") })
				p.signal(syscall.SIGTERM)
				if code, _, ok := p.wait(30 * time.Second); !ok || code != 0 {
					t.Errorf("camd sim after SIGTERM: exit %d (exited %v), want 0", code, ok)
				}
			}},
		{path: "camd demo", usage: []string{"demo", "--duration", "soon"}, fail: []string{"demo", "--duration", "1s"},
			env: []string{"TMPDIR=" + notDir}, ok: []string{"demo", "--duration", "2s", "--plain"}},
		{path: "camd install", usage: []string{"install", "now"}, fail: []string{"install", "--dry-run", "--config", filepath.Join(dir, "missing.yaml")},
			failWant: "missing.yaml", why: "the success is a --dry-run of the copy outside /tmp"},
		{path: "camd uninstall", usage: []string{"uninstall", "--bogus"}, fail: []string{"uninstall"}, why: noManager},
		{path: "camd start", usage: []string{"start", "now"}, fail: []string{"start"}, why: noManager},
		{path: "camd stop", usage: []string{"stop", "now"}, fail: []string{"stop"}, why: noManager},
		{path: "camd restart", usage: []string{"restart", "now"}, fail: []string{"restart"}, why: noManager},
		{path: "camd service", usage: []string{"service", "frobnicate"}, ok: []string{"service", "help"}, why: "a group has no failure of its own"},
		{path: "camd service status", usage: []string{"service", "status", "now"},
			why: "its statuses are the init-script ones: 0 running, 3 stopped, 4 not installed (checked below)"},
		{path: "camd service run", fail: []string{"service", "run"}, failWant: "Windows service entry point",
			why: "the Windows service entry point: it takes camd run's flags unparsed, and succeeds only under the Windows service manager"},
		{path: "camd version", usage: []string{"version", "--bogus"}, ok: []string{"version", "--json"}, why: "printing the version cannot fail"},
		{path: "camd help", usage: []string{"help", "frobnicate"}, ok: []string{"help", "camera", "add"}, why: "help has no failure",
			okCheck: func(t *testing.T, r binRun) {
				if !strings.Contains(r.stdout, "Usage: camd camera add NAME URL|-") {
					t.Errorf("help camera add:\n%s", r.stdout)
				}
			}},
		{path: "camd gen-man", usage: []string{"gen-man"}, fail: []string{"gen-man", filepath.Join(notDir, "man")},
			ok: []string{"gen-man", filepath.Join(dir, "man")}},
		{path: "camd completion", usage: []string{"completion", "tcsh"}, ok: []string{"completion", "--help"}, why: "a group has no failure of its own"},
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		cases = append(cases, exitCase{path: "camd completion " + sh, usage: []string{"completion", sh, "--bogus"},
			ok: []string{"completion", sh}, why: "writing a script to stdout has no failure of its own"})
	}

	have := map[string]bool{}
	for _, c := range cases {
		have[c.path] = true
	}
	for _, p := range commandPaths() {
		if !have[p] {
			t.Errorf("no exit-status row for %q: add one to TestExitCodes", p)
		}
	}

	// The install success, from the copy outside /tmp.
	cmd := exec.Command(instBin, "install", "--dry-run")
	if out, err := cmd.CombinedOutput(); hiddenByUnit(instBin) == "" && (err != nil || !strings.Contains(string(out), "# service: camd")) {
		t.Errorf("install --dry-run: %v\n%s", err, out)
	}

	for _, c := range cases {
		if c.usage != nil {
			if r := runBin(t, nil, c.usage...); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: camd") || !strings.HasPrefix(lastLine(r.stderr), "camd: ") {
				t.Errorf("%s: %q: exit %d, stderr %q; want 2, the usage and a last line with the problem", c.path, c.usage, r.code, r.stderr)
			}
		}
		if c.fail != nil && !(serviceInstalled && c.why == noManager) {
			r := runBin(t, c.env, c.fail...)
			if r.code != exitFailure || !strings.HasPrefix(lastLine(r.stderr), "camd: ") || !strings.Contains(r.stderr, c.failWant) {
				t.Errorf("%s: %q: exit %d, stderr %q; want 1 and a line with %q", c.path, c.fail, r.code, r.stderr, c.failWant)
			}
		}
		switch {
		case c.okRun != nil:
			c.okRun(t)
		case c.ok != nil:
			r := runBin(t, nil, c.ok...)
			if r.code != exitOK {
				t.Errorf("%s: %q: exit %d, stderr %q; want 0", c.path, c.ok, r.code, r.stderr)
			} else if c.okCheck != nil {
				c.okCheck(t, r)
			}
		}
		if c.path == "camd camera stop" {
			// A stopped camera shows no frame rate or bitrate.
			r := runBin(t, nil, with(a, "camera", "ls")...)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if f := strings.Fields(lines[len(lines)-1]); len(f) < 6 || f[0] != "cam1" || f[1] != "STOPPED" || f[len(f)-4] != "-" || f[len(f)-3] != "-" {
				t.Errorf("ls of a stopped camera:\n%s\nwant - for FPS and BITRATE", r.stdout)
			}
		}
	}

	// Bare camd: the help, on stderr, and 2.
	if r := runBin(t, nil); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: camd COMMAND") || !strings.Contains(r.stderr, "Exit status: 0 success, 1 failure, 2 usage error") {
		t.Errorf("bare camd: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runBin(t, nil, "frobnicate"); r.code != exitUsage {
		t.Errorf("camd frobnicate: exit %d", r.code)
	}
	if r := runBin(t, nil, "-v"); r.code != exitOK || !strings.HasPrefix(r.stdout, "camd ") {
		t.Errorf("camd -v: exit %d %q", r.code, r.stdout)
	}
	// 1 where there is no service manager to ask (as in a container).
	if r := runBin(t, nil, "service", "status"); r.code != 0 && r.code != 3 && r.code != 4 && !(r.code == 1 && strings.HasPrefix(r.stderr, "camd: ")) {
		t.Errorf("service status: exit %d %q, want 0, 3 or 4, or 1 with the reason", r.code, r.stderr)
	}

	d.signal(syscall.SIGTERM)
	if code, _, ok := d.wait(30 * time.Second); !ok || code != 0 {
		t.Errorf("camd run after SIGTERM: exit %d", code)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// noJSON fails when human output holds raw JSON.
func noJSON(t *testing.T, r binRun) {
	t.Helper()
	if strings.ContainsAny(r.stdout, "{}") || strings.Contains(r.stdout, `":`) {
		t.Errorf("human output holds JSON:\n%s", r.stdout)
	}
}

// Every command's help has examples, and a bad flag value is named in
// words.
func TestHelpHasExamples(t *testing.T) {
	root := newRootCmd()
	prepare(root)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.HasPrefix(c.Name(), "__") {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for args, want := range map[string]string{
		"sim --cameras many":     `camd: --cameras wants a whole number, not "many"`,
		"demo --duration soon":   `camd: --duration wants a duration like "30s", not "soon"`,
		"camera ls --json=maybe": `camd: --json wants true or false, not "maybe"`,
	} {
		_, errOut, err := camCLI(strings.Fields(args)...)
		if code := (exitError{}); !errors.As(err, &code) || code.code != 2 || lastLine(errOut) != want {
			t.Errorf("%s: %v, last line %q, want %q", args, err, lastLine(errOut), want)
		}
	}
}

// "camd completion bash" is a script bash accepts.
func TestCompletionBashParses(t *testing.T) {
	needLinux(t)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	r := runBin(t, nil, "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "__start_camd") {
		t.Fatalf("completion bash: exit %d, %d bytes", r.code, len(r.stdout))
	}
	f := filepath.Join(t.TempDir(), "camd.bash")
	if err := os.WriteFile(f, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// And it completes: the shell asks camd, which answers with commands.
	r = runBin(t, nil, "__complete", "camera", "")
	for _, want := range []string{"add", "ls", "show", "rm"} {
		if !regexp.MustCompile(`(?m)^` + want + `\t`).MatchString(r.stdout) {
			t.Errorf("completion of \"camd camera \" lacks %s:\n%s", want, r.stdout)
		}
	}
}

// "make man" (camd gen-man DIR) writes one page per command, each naming
// the command and its exit-status rule.
func TestManPages(t *testing.T) {
	needLinux(t)
	dir := t.TempDir()
	if r := runBin(t, nil, "gen-man", dir); r.code != 0 {
		t.Fatalf("gen-man: exit %d %s", r.code, r.stderr)
	}
	root := newRootCmd()
	prepare(root)
	want := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		want[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = true
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && !s.IsAdditionalHelpTopicCommand() {
				walk(s)
			}
		}
	}
	walk(root)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range ents {
		got[e.Name()] = true
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if !bytes.Contains(b, []byte(".TH \"CAMD\"")) || !bytes.Contains(b, []byte("2 usage error")) {
			t.Errorf("%s is not a camd man page with the exit-status rule", e.Name())
		}
	}
	for p := range want {
		if !got[p] {
			t.Errorf("no man page %s", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("man page %s for no command", p)
		}
	}
	if !got["camd-camera-add.1"] || len(got) < 20 {
		t.Errorf("%d man pages: %v", len(got), got)
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil || !regexp.MustCompile(`(?m)^man:.*\n(\t.*\n)*\t.*camd gen-man `).Match(mk) {
		t.Errorf("the Makefile's man target does not run camd gen-man: %v", err)
	}
}
