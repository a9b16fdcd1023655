package device

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// startSimProcess builds camd and runs `camd sim` as its own process, so
// that what is measured in this process is camd's ingest alone.
func startSimProcess(tb testing.TB, cams int) (urlFor func(int) string) {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "camd")
	build := exec.Command("go", "build", "-o", bin, "../cmd/camd")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build camd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "sim", "--cameras", fmt.Sprint(cams), "--listen", "127.0.0.1:0", "--control", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatalf("sim said nothing: %v", err)
	}
	// "sim: rtsp on 127.0.0.1:PORT (cam1..camN), control on …"
	f := strings.Fields(line)
	if len(f) < 4 {
		tb.Fatalf("unexpected sim banner %q", line)
	}
	addr := f[3]
	go func() { _, _ = bufio.NewReader(out).WriteTo(nopWriter{}) }()
	return func(i int) string { return fmt.Sprintf("rtsp://%s/cam%d", addr, i) }
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkMemoryPerCamera reports the Go heap and the goroutines that one
// connected camera costs, with 256 cameras RUNNING against `camd sim`.
func BenchmarkMemoryPerCamera(b *testing.B) {
	const n = 256
	url := startSimProcess(b, n)
	set := fastSettings()
	set.StallTimeout = 30 * time.Second
	for i := 0; i < b.N; i++ {
		h := newHarness(b, set)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		for c := 1; c <= n; c++ {
			if _, err := h.m.Add(context.Background(), Spec{Name: fmt.Sprintf("cam%d", c), URL: url(c)}, true); err != nil {
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
