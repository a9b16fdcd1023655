// Package simtest starts the camera simulator (stream/sim) in a test's
// process. It is apart from testutil because stream/sim's own tests import
// testutil. It is imported by _test.go files only.
package simtest

import (
	"testing"

	"github.com/camd/camd/stream/sim"
)

// Start starts a simulator with cfg and closes it at cleanup.
func Start(t testing.TB, cfg sim.Config) *sim.Server {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
