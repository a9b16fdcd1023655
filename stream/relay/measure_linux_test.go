//go:build linux

package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"

	"github.com/camd/camd/internal/testutil"
)

// The measurement runs the camera simulator and the readers in helper
// processes (this test binary, re-executed), so that what is measured in
// this process is what camd does: ingest, relay, serve.
func TestMain(m *testing.M) {
	switch os.Getenv("RELAY_HELPER") {
	case "sim":
		simHelper()
		return
	case "readers":
		readersHelper()
		return
	}
	// Most tests wait on cameras, ffmpeg and sockets: several at once.
	os.Exit(testutil.RunParallel(m, 6))
}

// simHelper serves RELAY_CAMERAS simulated cameras, prints its address and
// runs until its stdin closes.
func simHelper() {
	n, _ := strconv.Atoi(os.Getenv("RELAY_CAMERAS"))
	s, err := sim.New(sim.Config{Cameras: n, NoUDP: true})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("addr", s.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Close()
}

// readersHelper plays each URL of RELAY_URLS RELAY_PER times with a raw
// RTSP client that reads and discards everything, prints "ready" and runs
// until its stdin closes; then it prints the bytes it read.
func readersHelper() {
	per, _ := strconv.Atoi(os.Getenv("RELAY_PER"))
	var total atomic.Int64
	var wg sync.WaitGroup
	var conns []net.Conn
	for _, url := range strings.Split(os.Getenv("RELAY_URLS"), ",") {
		for range per {
			addr := strings.SplitN(strings.TrimPrefix(url, "rtsp://"), "/", 2)[0]
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			c := newRawClient(conn)
			if code, err := c.play(url, nil); err != nil || code != 200 {
				fmt.Println("error", code, err)
				os.Exit(1)
			}
			conns = append(conns, conn)
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, _ := io.Copy(io.Discard, c.br)
				total.Add(n)
			}()
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	fmt.Println("bytes", total.Load())
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startHelper(t testing.TB, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { h.stop() })
	return h
}

// line reads the helper's next line, failing on "error".
func (h *helper) line(t testing.TB) []string {
	t.Helper()
	l, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	f := strings.Fields(l)
	if len(f) == 0 || f[0] == "error" {
		t.Fatalf("helper: %q", l)
	}
	return f
}

func (h *helper) stop() {
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
		done := make(chan struct{})
		go func() { _ = h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-done
		}
	}
}

// cpuTime is the CPU (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssKiB is this process's resident set.
func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

type sample struct {
	cpu        float64 // percent of one core
	heapMiB    float64
	rssMiB     float64
	goroutines int
}

func measure(d time.Duration) sample {
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(d)
	c1, t1 := cpuTime(), time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{
		cpu:        100 * float64(c1-c0) / float64(t1.Sub(t0)),
		heapMiB:    float64(ms.HeapInuse) / (1 << 20),
		rssMiB:     float64(rssKiB()) / 1024,
		goroutines: runtime.NumGoroutine(),
	}
}

// TestMeasureRelay64x2 is the figure for the note: CPU and memory of camd's
// ingest and relay with 64 cameras, without readers and with 2 readers per
// camera (the simulator and the readers run in other processes). It takes
// about a minute of a core; run it with CAMD_RELAY_MEASURE=1.
func TestMeasureRelay64x2(t *testing.T) {
	if os.Getenv("CAMD_RELAY_MEASURE") == "" {
		t.Skip("set CAMD_RELAY_MEASURE=1 to measure")
	}
	const cams, per = 64, 2
	window := 10 * time.Second
	simH := startHelper(t, "RELAY_HELPER=sim", "RELAY_CAMERAS="+strconv.Itoa(cams))
	simAddr := simH.line(t)[1]

	base := measure(time.Second)
	s := newRelay(t, Config{})
	var frames atomic.Int64
	urls := make([]string, cams)
	for i := 1; i <= cams; i++ {
		name := "cam" + strconv.Itoa(i)
		f := s.Feed(name)
		counted := countingTap{Feed: f, n: &frames}
		supervise(t, "rtsp://"+simAddr+"/"+name, counted)
		urls[i-1] = "rtsp://" + s.Addr() + "/" + name
	}
	testutil.WaitFor(t, 60*time.Second, "every camera streaming", func() bool {
		for i := 1; i <= cams; i++ {
			f := s.feed("cam" + strconv.Itoa(i))
			if f == nil || f.waitStream(time.Millisecond, nil) == nil {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second)
	runtime.GC()
	f0 := frames.Load()
	noReaders := measure(window)
	fps0 := float64(frames.Load()-f0) / window.Seconds()

	rd := startHelper(t, "RELAY_HELPER=readers", "RELAY_PER="+strconv.Itoa(per), "RELAY_URLS="+strings.Join(urls, ","))
	rd.line(t) // ready
	testutil.WaitFor(t, 30*time.Second, "every reader playing", func() bool {
		for i := 1; i <= cams; i++ {
			if s.Stats("cam"+strconv.Itoa(i)).Readers != per {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second)
	runtime.GC()
	var sent0 uint64
	for i := 1; i <= cams; i++ {
		sent0 += s.Stats("cam" + strconv.Itoa(i)).BytesSent
	}
	f1 := frames.Load()
	withReaders := measure(window)
	fps1 := float64(frames.Load()-f1) / window.Seconds()
	var sent1, dropped uint64
	for i := 1; i <= cams; i++ {
		st := s.Stats("cam" + strconv.Itoa(i))
		sent1 += st.BytesSent
		dropped += st.ReadersDropped
	}
	rd.stop()

	t.Logf("baseline (test process, simulator elsewhere): heap %.1f MiB, RSS %.1f MiB, %d goroutines",
		base.heapMiB, base.rssMiB, base.goroutines)
	t.Logf("%d cameras, 0 readers: CPU %.1f%% of a core, heap %.1f MiB, RSS %.1f MiB, %d goroutines, %.0f frames/s in",
		cams, noReaders.cpu, noReaders.heapMiB, noReaders.rssMiB, noReaders.goroutines, fps0)
	t.Logf("%d cameras, %d readers each: CPU %.1f%% of a core, heap %.1f MiB, RSS %.1f MiB, %d goroutines, %.0f frames/s in, %.1f Mbit/s out, %d readers dropped",
		cams, per, withReaders.cpu, withReaders.heapMiB, withReaders.rssMiB, withReaders.goroutines, fps1,
		float64(sent1-sent0)*8/window.Seconds()/1e6, dropped)
	t.Logf("per reader: CPU %.2f%% of a core, heap %.0f KiB, RSS %.0f KiB",
		(withReaders.cpu-noReaders.cpu)/(cams*per),
		(withReaders.heapMiB-noReaders.heapMiB)*1024/(cams*per),
		(withReaders.rssMiB-noReaders.rssMiB)*1024/(cams*per))
	if dropped != 0 {
		t.Errorf("%d readers dropped", dropped)
	}
}

// countingTap counts the frames the camera delivers.
type countingTap struct {
	*Feed
	n *atomic.Int64
}

func (c countingTap) Frame(f stream.Frame) {
	c.n.Add(1)
	c.Feed.Frame(f)
}

// BenchmarkFeedFrame is the relay's cost per camera frame (the sim clip,
// about 5 KB and 4 RTP packets a frame) for 0 and 2 readers, in CPU time of
// the whole process (the readers drain in the same process, over loopback).
func BenchmarkFeedFrame(b *testing.B) {
	c := loadClip(b, "../sim/clip.h264")
	for _, readers := range []int{0, 2} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			s := newRelay(b, Config{})
			f := s.Feed("cam1")
			f.Info(c.info())
			f.Frame(stream.Frame{Time: time.Now(), ClockRate: videoClockRate, AU: c.aus[0], Key: true})
			if f.waitStream(10*time.Second, nil) == nil {
				b.Fatal("no stream")
			}
			url := "rtsp://" + s.Addr() + "/cam1"
			var wg sync.WaitGroup
			got := make([]atomic.Int64, readers)
			for i := range readers {
				rc := dialRaw(b, s.Addr(), 0)
				if code, err := rc.play(url, nil); err != nil || code != 200 {
					b.Fatalf("PLAY: %d %v", code, err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 64<<10)
					for {
						n, err := rc.br.Read(buf)
						got[i].Add(int64(n))
						if err != nil {
							return
						}
					}
				}()
			}
			// behind reports whether a reader is more than 256 KiB (well
			// under its queue) behind what the relay has sent it.
			behind := func() bool {
				if readers == 0 {
					return false
				}
				want := int64(s.Stats("cam1").BytesSent)/int64(readers) - 256<<10
				for i := range got {
					if got[i].Load() < want {
						return true
					}
				}
				return false
			}
			testutil.WaitFor(b, 10*time.Second, "readers", func() bool { return s.Stats("cam1").Readers == readers })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				k := (i + 1) % len(c.aus)
				f.Frame(stream.Frame{Time: time.Now(), PTS: int64(i+1) * 3600, ClockRate: videoClockRate,
					AU: c.aus[k], Key: c.keys[k]})
				// Let the Feed and the readers keep up, as they do at 25 fps:
				// never queue more than a few frames.
				for {
					f.qmu.Lock()
					q := f.queued
					f.qmu.Unlock()
					if (q < 4 && (i%8 != 0 || !behind())) || ctx.Err() != nil {
						break
					}
					runtime.Gosched()
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&m1)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1000, "cpu-µs/frame")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "alloc-B/frame")
			if st := s.Stats("cam1"); st.ReadersDropped != 0 || st.Readers != readers {
				b.Errorf("readers fell behind: %+v", st)
			}
			s.Close()
			wg.Wait()
		})
	}
}
