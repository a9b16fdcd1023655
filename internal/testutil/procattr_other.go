//go:build !linux

package testutil

import "syscall"

// DieWithParent is nil where the kernel has no parent-death signal: there
// a child outlives a test that is killed, and only the tests' cleanups
// stop it.
func DieWithParent() *syscall.SysProcAttr { return nil }
