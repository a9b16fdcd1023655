// Package testutil holds what camd's tests share: a log sink readable while
// it is written, polling with a deadline, and the lookup of external
// programs (ffmpeg, promtool, ip, nft…) that skips a test on a developer's
// machine without them but fails it in CI (CI=true), where .ci/run
// installs them.
//
// It is imported by _test.go files and by the test helpers and bench
// programs that start child processes, never by camd itself.
package testutil

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer is a log sink that tests read while others write to it.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines returns the lines that contain every one of subs.
func (b *LogBuffer) Lines(subs ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// Logger returns a debug-level text logger writing to b.
func Logger(b *LogBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Poll calls cond every 20 ms until it is true (true) or d has passed
// (false).
func Poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitFor polls cond until it holds, or fails the test after d naming what
// it waited for.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// WaitEvery polls until ok holds for every item list returns, or fails the
// test after d naming up to ten of those for which it does not (as describe
// puts them) and what it waited for.
func WaitEvery[V any](t testing.TB, d time.Duration, what string, list func() []V, ok func(V) bool, describe func(V) string) {
	t.Helper()
	var bad []string
	if !Poll(d, func() bool {
		bad = bad[:0]
		for _, v := range list() {
			if !ok(v) {
				bad = append(bad, describe(v))
			}
		}
		return len(bad) == 0
	}) {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("… %d more", len(bad)-10))
		}
		t.Fatalf("timed out after %v waiting for %s: %v", d, what, bad)
	}
}

// NeedTool returns the path of an external program. Without it the test
// is skipped, or failed when CI=true.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipMissing(t, name, err.Error())
	}
	return p
}

// MissingPrefix begins the message of a test skipped for want of a
// program: "missing program NAME: DETAIL". make test's summary
// (internal/tools/testsummary) groups skips by NAME, which has no blank.
const MissingPrefix = "missing program "

// SkipMissing skips a test that needs program, or fails it when CI=true
// (.ci/run and make test-deps install every program the tests use).
func SkipMissing(t testing.TB, program, detail string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (make test-deps installs it): %s", program, detail)
	}
	t.Skipf("%s%s: %s", MissingPrefix, program, detail)
}
