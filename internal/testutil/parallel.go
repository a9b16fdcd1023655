package testutil

import (
	"flag"
	"strconv"
	"testing"
)

// RunParallel runs m with up to n parallel tests at a time, unless the
// command line gave -test.parallel or asks to fuzz (-parallel is also the
// number of fuzz workers, which want one per core). Tests that wait on sockets, child
// processes and clocks leave the CPU mostly idle, and the default
// (GOMAXPROCS, two on the team's machines) would run them nearly in
// series. Call it from TestMain: os.Exit(testutil.RunParallel(m, 8)).
func RunParallel(m *testing.M, n int) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) {
		given = given || f.Name == "test.parallel" || f.Name == "test.fuzz" && f.Value.String() != ""
	})
	if !given {
		if err := flag.Set("test.parallel", strconv.Itoa(n)); err != nil {
			panic(err)
		}
	}
	return m.Run()
}
