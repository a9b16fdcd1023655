package device

import (
	"os"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

// TestMain runs up to 8 of device's parallel tests at once unless -parallel
// says otherwise. They wait on sockets, timers and camera processes rather
// than compute, and -parallel's default (GOMAXPROCS, 2 on a small box) made
// them queue behind each other.
func TestMain(m *testing.M) { os.Exit(testutil.RunParallel(m, 8)) }
