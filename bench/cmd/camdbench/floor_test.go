package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/stream/sim"
)

// TestMain lets the test binary be the floor process, as the bench's own
// binary is when it starts "camdbench floor".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		os.Exit(runFloor(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestFloorTotalsLine(t *testing.T) {
	in := floorTotals{Bytes: 123456789, Reads: 4321, Wakes: 4400, Seconds: 12.5, Alive: 63, Sessions: 64}
	got, err := parseFloorTotals(in.line() + "\n")
	if err != nil || got != in {
		t.Fatalf("parseFloorTotals(%q) = %+v, %v", in.line(), got, err)
	}
	for _, bad := range []string{"", "floor: 8 sessions playing", "floor: totals bytes=x reads=1 wakes=1 seconds=1 alive=1 sessions=1"} {
		if _, err := parseFloorTotals(bad); err == nil {
			t.Errorf("parseFloorTotals(%q) accepted", bad)
		}
	}
}

func TestSDPControls(t *testing.T) {
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\na=control:*\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n" +
		"m=audio 0 RTP/AVP 0\r\n" +
		"m=application 0 RTP/AVP 107\r\na=control:rtsp://cam/abs\r\n"
	got := sdpControls(sdp)
	want := []string{"trackID=0", "", "rtsp://cam/abs"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sdpControls = %q, want %q", got, want)
	}
	for _, c := range []struct{ base, ctl, want string }{
		{"rtsp://h/cam1", "trackID=0", "rtsp://h/cam1/trackID=0"},
		{"rtsp://h/cam1/", "trackID=0", "rtsp://h/cam1/trackID=0"},
		{"rtsp://h/cam1/", "*", "rtsp://h/cam1/"},
		{"rtsp://h/cam1", "", "rtsp://h/cam1"},
		{"rtsp://h/cam1", "rtsp://other/x", "rtsp://other/x"},
	} {
		if got := controlURL(c.base, c.ctl); got != c.want {
			t.Errorf("controlURL(%q, %q) = %q, want %q", c.base, c.ctl, got, c.want)
		}
	}
}

func TestReadRTSPResponse(t *testing.T) {
	// An interleaved frame before the answer is skipped; the body is read
	// by Content-Length and what follows stays in the reader.
	in := "$\x01\x00\x03abc" + "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://h/cam1/\r\nContent-Length: 5\r\n\r\nhello$\x00"
	br := bufio.NewReader(strings.NewReader(in))
	st, hdr, body, err := readRTSPResponse(br)
	if err != nil || st != 200 || hdr["content-base"] != "rtsp://h/cam1/" || hdr["cseq"] != "2" || body != "hello" {
		t.Fatalf("readRTSPResponse = %d, %v, %q, %v", st, hdr, body, err)
	}
	if rest, _ := br.Peek(2); string(rest) != "$\x00" {
		t.Errorf("left %q, want the next frame", rest)
	}
	for _, bad := range []string{"HTTP/1.1 200 OK\r\n\r\n", "RTSP/1.0 abc OK\r\n\r\n", "RTSP/1.0 200 OK\r\nno colon\r\n\r\n",
		"RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", "RTSP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort"} {
		if _, _, _, err := readRTSPResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readRTSPResponse(%q) accepted", bad)
		}
	}
}

func TestFloorFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-rtsp", "127.0.0.1:1", "-n", "0"}, {"-rtsp", "127.0.0.1:1", "-batch", "-1s"}, {"-rtsp", "127.0.0.1:1", "extra"}} {
		var out, errb strings.Builder
		if code := runFloor(args, &out, &errb); code != 2 {
			t.Errorf("runFloor(%q) = %d, want 2", args, code)
		}
	}
}

// TestFloorDrainsBatched runs the floor as its own process (this test
// binary, see TestMain) against the simulator and checks that it took the
// whole stream of every camera in batches: about one read per 100 ms tick,
// where a packet-by-packet reader makes over a hundred a second.
func TestFloorDrainsBatched(t *testing.T) {
	t.Parallel()
	const cams = 3
	s, err := sim.New(sim.Config{Cameras: cams, NoUDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outPath := filepath.Join(dir, "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var stderr strings.Builder
	cmd := exec.Command(exe, "floor", "-rtsp", s.Addr(), "-n", "3", "-batch", "100ms")
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFile := func(re *regexp.Regexp) string {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(outPath)
			for _, line := range strings.Split(string(b), "\n") {
				if re.MatchString(line) {
					return line
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no line matching %s; stderr:\n%s", re, stderr.String())
		return ""
	}
	waitFile(floorPlayingRE)
	time.Sleep(3 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("floor: %v\n%s", err, stderr.String())
	}
	tot, err := parseFloorTotals(waitFile(floorTotalsRE))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", tot)
	if tot.Alive != cams || tot.Sessions != cams {
		t.Errorf("alive %d of %d sessions, want %d", tot.Alive, tot.Sessions, cams)
	}
	// The simulator sends about 130 kB/s per camera.
	perCam := float64(tot.Bytes) / tot.Seconds / cams
	if perCam < 50e3 {
		t.Errorf("%.0f bytes/s per camera: the floor did not take the stream", perCam)
	}
	if reads := float64(tot.Reads) / tot.Seconds / cams; reads > 30 {
		t.Errorf("%.1f reads/s per camera: not batched", reads)
	}
}

func TestABStats(t *testing.T) {
	pair := func(a, b float64) abPair { return abPair{A: window{CPU: a}, B: window{CPU: b}} }
	r := &abResult{N: 10, Pairs: []abPair{pair(1.0, 1.0), pair(1.1, 1.0), pair(0.9, 1.0), pair(1.0, 1.0)}}
	s := r.stats()
	if s.K != 4 || math.Abs(s.Mean-1) > 1e-9 || math.Abs(s.SD-math.Sqrt(0.02/3)) > 1e-9 || s.Min != 0.9 || math.Abs(s.Max-1.1) > 1e-9 {
		t.Fatalf("stats = %+v", s)
	}
	h := 3.182 * math.Sqrt(0.02/3) / 2
	if math.Abs(s.Lo-(1-h)) > 1e-9 || math.Abs(s.Hi-(1+h)) > 1e-9 {
		t.Errorf("interval %v – %v, want 1 ± %v", s.Lo, s.Hi, h)
	}
	if math.Abs(s.AMean-0.1) > 1e-9 || math.Abs(s.BMean-0.1) > 1e-9 || s.BCV != 0 {
		t.Errorf("A/B means %+v", s)
	}
	if v, ok := s.verdict(); !ok || !strings.Contains(v, "same") {
		t.Errorf("verdict = %q, %v", v, ok)
	}
	hi := (&abResult{N: 1, Pairs: []abPair{pair(1.2, 1.0), pair(1.25, 1.0), pair(1.22, 1.0)}}).stats()
	if v, ok := hi.verdict(); ok || !strings.Contains(v, "higher") {
		t.Errorf("verdict = %q, %v", v, ok)
	}
	lo := (&abResult{N: 1, Pairs: []abPair{pair(0.8, 1.0), pair(0.82, 1.0)}}).stats()
	if v, ok := lo.verdict(); !ok || !strings.Contains(v, "lower") {
		t.Errorf("verdict = %q, %v", v, ok)
	}
	one := (&abResult{N: 1, Pairs: []abPair{pair(1.1, 1.0)}}).stats()
	if v, ok := one.verdict(); ok || !math.IsNaN(one.Lo) || interval(one) != "n/a" {
		t.Errorf("one pair: %q, %v, %+v", v, ok, one)
	}
	if tQuantile975(1) != 12.706 || tQuantile975(3) != 3.182 || tQuantile975(100) != 1.96 || !math.IsNaN(tQuantile975(0)) {
		t.Error("tQuantile975")
	}
}

func TestABCounts(t *testing.T) {
	for _, c := range []struct {
		s    string
		ns   []int
		want string
		bad  bool
	}{
		{"", []int{16, 64, 256}, "[64 256]", false},
		{"", []int{8}, "[8]", false},
		{"", []int{16, 256}, "[256]", false},
		{"16", []int{16, 64}, "[16]", false},
		{"32", []int{16, 64}, "", true},
		{"x", []int{16}, "", true},
	} {
		got, err := abCounts(c.s, c.ns)
		if (err != nil) != c.bad || (!c.bad && fmt.Sprint(got) != c.want) {
			t.Errorf("abCounts(%q, %v) = %v, %v", c.s, c.ns, got, err)
		}
	}
}

// TestReportIngestAndAB checks the report's floor and A/B sections on
// figures made up for the purpose.
func TestReportIngestAndAB(t *testing.T) {
	w := func(cpu float64) *window { return &window{CPU: cpu, Cores: 2, FPSMin: 25} }
	pair := func(a, b float64, bFirst bool) abPair {
		return abPair{A: *w(a), B: *w(b), BFirst: bFirst}
	}
	o := options{ns: []int{64}, steady: time.Minute, settle: 10 * time.Second, abSteady: 30 * time.Second, ab: "HEAD~1", abNs: []int{64}, abPairs: 2}
	r := &report{o: o, started: time.Now(), finished: time.Now(), machine: machine{Cores: 2, Camd: "camd x", Ref: "camd y"}}
	r.results = []nResult{{
		N: 64, Ingest: w(1.92), Unbatched: w(8.96), Floor: w(0.64), FF: w(19.2),
		FloorTotals: &floorTotals{Bytes: 64 * 137000 * 10, Reads: 64 * 100, Seconds: 10, Alive: 64, Sessions: 64},
		AB:          &abResult{N: 64, Pairs: []abPair{pair(1.92, 1.92, false), pair(1.92, 2.0, true)}},
	}}
	md := r.markdown()
	for _, want := range []string{
		"## Ingest against the floor",
		"| 64 | 0.030 % | 0.140 % | 0.010 % | 3.00× | 14.00× | 0.300 % | 137 | 10.0 | 64 of 64 |",
		"| 64 | camd ingest, `read_batch: 0s` |", "| 64 | floor (drain only) |",
		"## A/B: this camd against the reference",
		"| 64 | 1 | A, B | 0.030 % | 0.030 % | 1.000 |", "| 64 | 2 | B, A | 0.030 % | 0.031 % | 0.960 |",
		"| 64 | 2 | 0.030 % (0.0 %) |",
		"camd ingest CPU per camera no higher than the reference's within the run's noise, at N = 64",
		"camd ingest CPU per camera ≤ 1/10 of ffmpeg-per-camera at N = 256 | not measured",
		"| Reference camd (A/B) | camd y |",
		"-ab HEAD~1 -ab-n 64 -ab-pairs 2 -ab-steady 30s",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestABFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-ab", "HEAD~1", "-ab-bin", "/bin/true"}, "exclude each other"},
		{[]string{"-n", "16", "-ab-n", "64"}, "not one of the camera counts"},
		{[]string{"-ab-pairs", "0"}, "-ab-pairs must be at least 1"},
		{[]string{"-ab-bin", "/nonexistent/camd"}, "no reference camd binary"},
	} {
		var errb strings.Builder
		if code := run(c.args, &errb); code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("run(%q) = %d, %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
	}
}
