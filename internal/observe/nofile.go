package observe

import (
	"log/slog"
	"math"
)

// NOFILE budget: what CheckNOFILE asks of the soft limit on open files.
const (
	NOFILEBase      = 64
	NOFILEPerCamera = 8
)

// checkNOFILE compares the soft limit cur (hard limit hardMax) with the
// budget for cameras. It is separate from CheckNOFILE so that tests can feed
// it any limit.
func checkNOFILE(cur, hardMax uint64, cameras int, logger *slog.Logger) {
	need := uint64(NOFILEBase + NOFILEPerCamera*max(cameras, 0))
	if cur >= need || cur == math.MaxUint64 {
		logger.Debug("limit on open files is enough", "soft_limit", cur, "need", need, "cameras", cameras)
		return
	}
	logger.Warn("limit on open files is low for the configured cameras; raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
		"soft_limit", cur, "hard_limit", hardMax, "need", need, "cameras", cameras)
}
