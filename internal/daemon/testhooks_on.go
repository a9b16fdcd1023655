//go:build camdtesthooks

package daemon

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Hooks make the daemon misbehave on purpose so that process tests can see
// the backstop, the health check and the FD watchdog react. They exist only
// in binaries built with -tags camdtesthooks (test/camdproc.BuildTestHooks),
// so that no environment variable can make a shipped camd hang or leak.
type Hooks struct {
	// HangShutdown names a shutdown step ("api", "cameras", "relay",
	// "store") that blocks forever once reached. CAMD_TESTHOOK_HANG_SHUTDOWN;
	// "1" means "cameras".
	HangShutdown string
	// HangLoopFile: while this file exists the supervision loop blocks, as a
	// hung camd would. CAMD_TESTHOOK_HANG_LOOP_FILE.
	HangLoopFile string
	// LeakFDsFile: when this file appears holding a number N, the daemon
	// opens N descriptors and never closes them (once per appearance).
	// CAMD_TESTHOOK_LEAK_FDS_FILE.
	LeakFDsFile string

	leaked []*os.File
}

// TestHooksBuilt says whether this binary has the test hooks.
const TestHooksBuilt = true

// HooksFromEnv reads the CAMD_TESTHOOK_* variables.
func HooksFromEnv() Hooks {
	h := Hooks{
		HangShutdown: os.Getenv("CAMD_TESTHOOK_HANG_SHUTDOWN"),
		HangLoopFile: os.Getenv("CAMD_TESTHOOK_HANG_LOOP_FILE"),
		LeakFDsFile:  os.Getenv("CAMD_TESTHOOK_LEAK_FDS_FILE"),
	}
	if h.HangShutdown == "1" {
		h.HangShutdown = "cameras"
	}
	return h
}

// loopHook blocks the supervision loop while HangLoopFile exists.
func (h *Hooks) loopHook() func() {
	if h.HangLoopFile == "" {
		return nil
	}
	return func() {
		for {
			if _, err := os.Stat(h.HangLoopFile); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// step blocks forever when shutdown reaches HangShutdown.
func (d *Daemon) hookStep(s string) {
	if s == d.hooks.HangShutdown {
		d.log.Warn("test hook: shutdown step hangs", "step", s)
		select {}
	}
}

// hookTick opens the descriptors LeakFDsFile asks for, once per file.
func (d *Daemon) hookTick() {
	h := &d.hooks
	if h.LeakFDsFile == "" {
		return
	}
	b, err := os.ReadFile(h.LeakFDsFile)
	if err != nil {
		return
	}
	_ = os.Remove(h.LeakFDsFile)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; i < n; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		h.leaked = append(h.leaked, f) // never closed until the store is: that is the point
	}
	d.log.Warn("test hook: leaked descriptors on purpose", "count", n)
}

// hookClose closes what hookTick leaked.
func (d *Daemon) hookClose() {
	for _, f := range d.hooks.leaked {
		_ = f.Close()
	}
}
