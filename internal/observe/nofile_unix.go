//go:build unix

package observe

import (
	"log/slog"
	"syscall"
)

// CheckNOFILE warns when the soft limit on open files (RLIMIT_NOFILE) is
// lower than camd may need for cameras: a base of 64 plus 8 per camera.
func CheckNOFILE(cameras int, logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		logger.Warn("cannot read the limit on open files", "err", err)
		return
	}
	checkNOFILE(uint64(rl.Cur), uint64(rl.Max), cameras, logger)
}
