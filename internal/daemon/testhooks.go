package daemon

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Hooks make the daemon misbehave on purpose so that process tests can see
// the backstop, the health check and the FD watchdog react. They are read
// from the environment (HooksFromEnv) and do nothing when unset.
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
}

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
func (h Hooks) loopHook() func() {
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

// leakFDs opens the descriptors LeakFDsFile asks for, once per file.
func (d *Daemon) leakFDs() {
	if d.hooks.LeakFDsFile == "" {
		return
	}
	b, err := os.ReadFile(d.hooks.LeakFDsFile)
	if err != nil {
		return
	}
	_ = os.Remove(d.hooks.LeakFDsFile)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; i < n; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		d.leaked = append(d.leaked, f) // never closed: that is the point
	}
	d.log.Warn("test hook: leaked descriptors on purpose", "count", n)
}
