// Package simcam starts camd's camera simulator (stream/sim) in the test
// process, closed when the test ends. It is a package of its own because
// the simulator's own tests use package testutil.
package simcam

import (
	"testing"

	"github.com/camd/camd/stream/sim"
)

// Start starts a simulator with cfg, or fails the test.
func Start(tb testing.TB, cfg sim.Config) *sim.Server {
	tb.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		tb.Fatalf("simulator: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}
