package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/test/camdproc"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	xs := ms(50, 10, 40, 20, 30) // unsorted on purpose
	for _, c := range []struct {
		p    float64
		want int
	}{{0, 10}, {1, 10}, {20, 10}, {21, 20}, {50, 30}, {99, 50}, {100, 50}} {
		if got := percentile(xs, c.p); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("percentile(%v) = %v, want %dms", c.p, got, c.want)
		}
	}
	if xs[0] != 50*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
	// p99 of 100 values 1..100 ms is the 99th; of 256 values the 254th.
	var h []time.Duration
	for i := 1; i <= 256; i++ {
		h = append(h, time.Duration(i)*time.Millisecond)
	}
	if s := summarize(h); s.N != 256 || s.P50 != 128*time.Millisecond || s.P99 != 254*time.Millisecond || s.Max != 256*time.Millisecond {
		t.Errorf("summarize = %+v", s)
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command may hold spaces and parentheses: fields count from the
	// last ')'.
	line := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 3 4 20 0 12 0 100 12345678 2000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 325 {
		t.Fatalf("parseStatCPU = %d, %v; want 325", got, err)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Error("short stat line accepted")
	}
	// The bench's own process: the parse must work on the real file.
	if _, err := procCPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseProcStatus(t *testing.T) {
	text := "Name:\tffmpeg\nState:\tS (sleeping)\nVmPeak:\t  100000 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1000 kB\nThreads:\t3\n"
	st, err := parseProcStatus([]byte(text))
	if err != nil || st.RSSBytes != 51234*1024 || st.Threads != 3 {
		t.Fatalf("parseProcStatus = %+v, %v", st, err)
	}
	if _, err := parseProcStatus([]byte("Name:\tzombie\nThreads:\t1\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
	if _, err := readProcStatus(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if n, err := countFDs(os.Getpid()); err != nil || n < 3 {
		t.Fatalf("countFDs = %d, %v", n, err)
	}
	if p, err := readPSS(os.Getpid()); err != nil || p == 0 {
		t.Logf("readPSS = %d, %v (smaps_rollup may be missing on old kernels)", p, err)
	}
}

func TestMachineCPU(t *testing.T) {
	a, err := parseMachineCPU([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n"))
	if err != nil || a.Total != 1000 || a.Idle != 850 {
		t.Fatalf("parseMachineCPU = %+v, %v", a, err)
	}
	// Guest time is inside user already and is not added.
	b, err := parseMachineCPU([]byte("cpu  400 0 150 1300 50 0 0 100 70 0\n"))
	if err != nil || b.Total != 2000 || b.Idle != 1350 {
		t.Fatalf("parseMachineCPU = %+v, %v", b, err)
	}
	// 1000 ticks, 500 of them busy, on 2 cores: one core's worth.
	if got := busyPercent(a, b, 2); got < 99.9 || got > 100.1 {
		t.Errorf("busyPercent = %v, want 100", got)
	}
	c, err := parseMachineCPU([]byte("cpu  10 0 10 70 0 5 5 0 0 0\n"))
	if err != nil || c.IRQ != 10 || c.Total != 100 {
		t.Fatalf("parseMachineCPU = %+v, %v", c, err)
	}
	if got := irqPercent(machineCPU{}, c, 2); got < 19.9 || got > 20.1 {
		t.Errorf("irqPercent = %v, want 20", got)
	}
	if _, err := parseMachineCPU([]byte("intr 1 2 3\n")); err == nil {
		t.Error("bad /proc/stat accepted")
	}
	if _, err := readMachineCPU(); err != nil {
		t.Fatal(err)
	}
}

func TestAuxvClockTicks(t *testing.T) {
	var buf bytes.Buffer
	for _, kv := range [][2]uint64{{6, 4096}, {17, 100}, {0, 0}} {
		_ = binary.Write(&buf, binary.LittleEndian, kv)
	}
	if v, ok := parseAuxvClockTicks(buf.Bytes()); !ok || v != 100 {
		t.Errorf("parseAuxvClockTicks = %d, %v", v, ok)
	}
	if _, ok := parseAuxvClockTicks(make([]byte, 16)); ok {
		t.Error("AT_NULL-only vector gave a value")
	}
	if clockTicks <= 0 {
		t.Errorf("clockTicks = %v", clockTicks)
	}
}

func TestParseNList(t *testing.T) {
	got, err := parseNList(" 16, 64 ,256,")
	if err != nil || len(got) != 3 || got[0] != 16 || got[2] != 256 {
		t.Fatalf("parseNList = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "16,x", "-4"} {
		if _, err := parseNList(bad); err == nil {
			t.Errorf("parseNList(%q) accepted", bad)
		}
	}
}

func TestHelpers(t *testing.T) {
	if camIndex("cam12", 16) != 11 || camIndex("cam17", 16) != -1 || camIndex("door", 16) != -1 {
		t.Error("camIndex")
	}
	l0 := []api.CameraJSON{{Name: "cam1", Frames: 100}, {Name: "cam2", Frames: 100}}
	l1 := []api.CameraJSON{{Name: "cam1", Frames: 350}, {Name: "cam2", Frames: 300}}
	lo, mean := fpsOver(l0, l1, 10*time.Second)
	if lo != 20 || mean != 22.5 {
		t.Errorf("fpsOver = %v, %v", lo, mean)
	}
	if r := ratio(1, 20); r != "0.050 (1/20)" {
		t.Errorf("ratio = %q", r)
	}
	if r := ratio(1, 0); r != "n/a" {
		t.Errorf("ratio = %q", r)
	}
}

// TestQuick runs the whole harness as "-quick -skip-ffmpeg" against a camd
// built from this tree, with A/B pairs against the same binary, and checks
// that the report has every section and that no child process is left.
// Its windows are shorter still than -quick's: the figures are not
// checked, only that every scenario ran and reported.
func TestQuick(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs the harness for about 40 s")
	}
	dir := t.TempDir()
	built := camdproc.Build(dir)
	if built.Err != nil {
		t.Fatal(built.Err)
	}
	bin := built.Path
	out := filepath.Join(dir, "RESULTS.md")
	var log bytes.Buffer
	start := time.Now()
	args := []string{"-camd", bin, "-out", out, "-quick", "-skip-ffmpeg", "-ab-bin", bin, "-ab-steady", "2s",
		"-steady", "3s", "-settle", "1s", "-idle", "1s"}
	if code := run(args, &log); code != 0 {
		t.Fatalf("exit %d\n%s", code, log.String())
	}
	t.Logf("harness ran %v\n%s", time.Since(start).Round(time.Second), log.String())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rep := string(b)
	for _, want := range []string{"## Machine", "## Targets", "## Steady state", "| 16 | camd ingest |",
		"| 16 | camd + 1 relay reader/cam |", "## Recovery", "| 16 | drop |", "## Stall detection", "## SIGTERM and start-up",
		"## Ingest against the floor", "| 16 | camd ingest, `read_batch: 0s` |", "| 16 | floor (drain only) |", " | 16 of 16 |\n",
		"## A/B: this camd against the reference", "| 16 | 2 | B, A |", "at N = 16 (A/B pairs)",
		"## Readers: every packet, and the latency", "| 16 | camd + 1 relay reader/cam | 16 |"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(rep, "aborted") {
		t.Errorf("a scenario aborted:\n%s", rep)
	}
	if out, err := exec.Command("pgrep", "-f", bin).Output(); err == nil && len(out) > 0 {
		t.Errorf("processes left running: %s", out)
	}
}
