//go:build !windows

package daemon

import (
	"os"
	"syscall"
)

var (
	shutdownSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	reloadSignals   = []os.Signal{syscall.SIGHUP}
)

func isReload(s os.Signal) bool { return s == syscall.SIGHUP }
