//go:build !unix

package observe

import "log/slog"

// CheckNOFILE does nothing where there is no RLIMIT_NOFILE (Windows).
func CheckNOFILE(cameras int, logger *slog.Logger) {}
