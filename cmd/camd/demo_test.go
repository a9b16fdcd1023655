package main

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// The demo, run as "make demo" would, shows both injected faults detected
// and recovered, and exits cleanly when its time is up. The faults come
// after 5 s instead of 15 (the cameras run within a second); the stall
// keeps its 15 s, which it needs to outlast detection by crashed_after.
func TestDemoShowsFaultsDetectedAndRecovered(t *testing.T) {
	t.Parallel()
	needLinux(t)
	p := startProc(t, nil, "demo", "--duration", "30s", "--fault-after", "5s")
	code, took, ok := p.wait(60 * time.Second)
	if !ok {
		t.Fatal("demo did not end within 60 s")
	}
	out := p.stdout.String()
	t.Logf("demo exit %d after %v; last lines:\n%s", code, took, tail(out, 6))
	if code != 0 {
		t.Fatalf("demo exit %d\n%s\n%s", code, out, p.stderr.String())
	}
	for _, re := range []string{
		`yard +RUNNING -> (RECONNECTING|STARTING) +\(fault detected [0-9.]+ s after injection\)`,
		`demo: stall of yard: detected after [4-9]\.[0-9] s, recovered after [0-9.]+ s`,
		`demo: drop of garage: detected after [0-2]\.[0-9] s, recovered after [0-9.]+ s`,
		`(?m)^demo: stopped cleanly$`,
		// The stall outlasts detection by more than crashed_after, and the
		// CRASHED line says what CRASHED means.
		`yard +(STARTING|RECONNECTING) -> CRASHED +\(no video for 3s of trying \(crashed_after`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("demo output lacks %s:\n%s", re, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "-> CRASHED") && !strings.Contains(line, "crashed_after") {
			t.Errorf("a CRASHED line without its explanation: %q", line)
		}
	}
	for _, name := range demoCameras {
		if !strings.Contains(out, name) {
			t.Errorf("demo output lacks camera %s", name)
		}
	}
}

// Ctrl-C ends the demo cleanly.
func TestDemoInterrupt(t *testing.T) {
	t.Parallel()
	needLinux(t)
	p := startProc(t, nil, "demo")
	testutil.WaitFor(t, 30*time.Second, "cameras running", func() bool {
		return strings.Count(p.stdout.String(), "-> RUNNING") >= len(demoCameras)
	})
	p.signal(syscall.SIGINT)
	code, took, ok := p.wait(15 * time.Second)
	if !ok || code != 0 || !strings.Contains(p.stdout.String(), "demo: stopped cleanly") {
		t.Fatalf("after Ctrl-C: exit %d ok %v after %v\n%s\n%s", code, ok, took, p.stdout.String(), p.stderr.String())
	}
	if !strings.Contains(p.stdout.String(), "demo: ended before the faults were injected") {
		t.Fatalf("summary missing:\n%s", p.stdout.String())
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
