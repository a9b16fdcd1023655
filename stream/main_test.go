package stream

import (
	"os"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// Most of these tests wait on cameras playing at 25 fps: many at once.
func TestMain(m *testing.M) { os.Exit(testutil.RunParallel(m, 12)) }
