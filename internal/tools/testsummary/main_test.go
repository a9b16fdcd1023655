package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const fakeTests = `package fake

import "testing"

func TestPasses(t *testing.T) {}

func TestNeedsFfmpeg(t *testing.T) { t.Skip("missing program ffmpeg: exec: not found") }

func TestNeedsFfprobe(t *testing.T) { t.Skipf("missing program %s: not found", "ffprobe") }

func TestAlsoFfmpeg(t *testing.T) { t.Skip("missing program ffmpeg: exec: not found") }

func TestSlow(t *testing.T) { t.Skip("slow") }
`

const failing = `
func TestFails(t *testing.T) { t.Log("the detail"); t.Fatal("it broke") }
`

// runSummary runs the tool over a module holding tests, as make test does.
func runSummary(t *testing.T, tests string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	tool := filepath.Join(dir, "testsummary")
	if out, err := exec.Command("go", "build", "-o", tool, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	mod := filepath.Join(dir, "mod")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/fake\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "fake_test.go"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "-count=1", "./...")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func TestSkipSummary(t *testing.T) {
	out, code := runSummary(t, fakeTests)
	if code != 0 {
		t.Fatalf("exit %d for passing tests:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "ok  \texample.com/fake") {
		t.Errorf("the package line is not first:\n%s", out)
	}
	for _, want := range []string{
		"4 tests skipped.",
		"  slow: example.com/fake.TestSlow",
		"Skipped for a missing program (3 tests):",
		"  ffmpeg           2: example.com/fake.TestNeedsFfmpeg, example.com/fake.TestAlsoFfmpeg",
		"  ffprobe          1: example.com/fake.TestNeedsFfprobe",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, out)
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "make test-deps") {
		t.Errorf("the last line does not name make test-deps: %q", last)
	}
	if strings.Contains(out, "=== RUN") || strings.Contains(out, "TestPasses") {
		t.Errorf("passing tests are shown:\n%s", out)
	}
}

// A failing test fails the run, and its output is shown.
func TestFailureExits(t *testing.T) {
	out, code := runSummary(t, fakeTests+failing)
	if code == 0 {
		t.Fatalf("exit 0 with a failing test:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestFails", "the detail", "it broke", "FAIL\texample.com/fake", "make test-deps"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// A package that does not build fails too.
	out, code = runSummary(t, fakeTests+"\nfunc broken( {}\n")
	if code == 0 || !strings.Contains(out, "fake_test.go") {
		t.Fatalf("exit %d for a build failure:\n%s", code, out)
	}
}
