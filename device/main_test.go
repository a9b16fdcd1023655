package device

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs up to 8 of device's parallel tests at once unless -parallel
// says otherwise. They wait on sockets, timers and camera processes rather
// than compute, and -parallel's default (GOMAXPROCS, 2 on a small box) made
// them queue behind each other.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		if err := flag.Set("test.parallel", "8"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
