package rtsp

import (
	"os"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// These tests mostly wait on sockets and the session's clocks.
func TestMain(m *testing.M) { os.Exit(testutil.RunParallel(m, 8)) }
