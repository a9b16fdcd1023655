package testutil

import "syscall"

// DieWithParent is the SysProcAttr of a child process (a camera, a
// broker, a camd) that must not outlive the test: Linux sends it SIGKILL
// when the thread that started it exits, even when the test process is
// killed before its cleanups run.
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
