package daemon

import (
	"os"
	"syscall"
)

var (
	shutdownSignals = []os.Signal{syscall.SIGTERM, os.Interrupt}
	reloadSignals   = []os.Signal{}
)

func isReload(os.Signal) bool { return false }
