package device

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/test/camdproc"
)

// BenchmarkMemoryPerCamera reports the Go heap and the goroutines that one
// connected camera costs, with 256 cameras RUNNING against `camd sim`.
func BenchmarkMemoryPerCamera(b *testing.B) {
	const n = 256
	// camd sim runs as its own process, so that what is measured in
	// this one is camd's ingest alone.
	sm := camdproc.Build(b.TempDir()).StartSim(b, n)
	set := testutil.FastSettings[Settings]()
	set.StallTimeout = 30 * time.Second
	for i := 0; i < b.N; i++ {
		h := newHarness(b, set)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		for c := 1; c <= n; c++ {
			if _, err := h.m.Add(context.Background(), Spec{Name: fmt.Sprintf("cam%d", c), URL: sm.URL(c)}, true); err != nil {
				b.Fatal(err)
			}
		}
		if !testutil.Poll(120*time.Second, func() bool { return h.m.Counts()[StateRunning] == n }) {
			b.Fatalf("only %d of %d RUNNING", h.m.Counts()[StateRunning], n)
		}
		time.Sleep(5 * time.Second)
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n/1024, "heapKiB/camera")
		b.ReportMetric(float64(after.Sys-before.Sys)/n/1024, "sysKiB/camera")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/camera")
		h.close()
	}
}
