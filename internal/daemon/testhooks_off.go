//go:build !camdtesthooks

package daemon

// Hooks are empty in a product build: the misbehaviour process tests ask
// for exists only with -tags camdtesthooks (testhooks_on.go).
type Hooks struct{}

// TestHooksBuilt says whether this binary has the test hooks.
const TestHooksBuilt = false

// HooksFromEnv returns no hooks: a product build reads no CAMD_TESTHOOK_*.
func HooksFromEnv() Hooks { return Hooks{} }

func (*Hooks) loopHook() func() { return nil }
func (*Daemon) hookStep(string) {}
func (*Daemon) hookTick()       {}
func (*Daemon) hookClose()      {}
