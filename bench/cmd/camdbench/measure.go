package main

import (
	"context"
	"os"
	"time"
)

// window is what one steady-state window measured over a set of processes
// (camd, or every ffmpeg).
type window struct {
	Dur   time.Duration
	Procs int
	// Died counts processes that ended during the window; their CPU is
	// missing from CPU.
	Died int
	// CPU is the processes' CPU time over the window, in percent of one
	// core.
	CPU float64
	// RSS is the sum of VmRSS, sampled every second: mean and maximum.
	RSSMean, RSSMax float64
	// PSS is the sum of the proportional set sizes at the end of the
	// window: shared pages divided among the processes that map them.
	PSS float64
	// FDs is the mean of the summed open descriptors; Threads the summed
	// threads at the end.
	FDs     float64
	Threads int

	// Machine is the whole machine's CPU use (every process) in percent of
	// one core; Cores is how many there are (Machine ≤ 100 × Cores).
	Machine float64
	Cores   int
	// IRQ is the machine's interrupt time (loopback networking, charged to
	// no process) in percent of one core; it is inside Machine.
	IRQ float64
	// Sim is the simulator's CPU, Harness the bench's own (it runs the
	// relay readers), both in percent of one core.
	Sim, Harness float64

	// Filled in by the callers where they apply.
	Goroutines int     // camd's, from /api/v1/status at the end
	FPSMin     float64 // lowest per-camera ingest rate over the window
	FPSMean    float64
	// Stalls and Reconnects are camd's counts over all cameras during the
	// window: a steady window should have none.
	Stalls, Reconnects uint64
	Readers            int
	// ReaderConnect is how long connecting this window's new readers took,
	// each (describe, setup, play).
	ReaderConnect durStats
	// ReaderPktMin is the lowest per-reader RTP packet rate over the window.
	ReaderPktMin, ReaderPktMean float64
	// ReaderPackets is the RTP packets all readers received, Lost those
	// missing from their sequence numbers; Ended counts readers that ended
	// during the window (EndedErr is the first one's error).
	ReaderPackets, Lost int64
	Ended               int
	EndedErr            string
	// RelayDropped is camd's relay readers_dropped over the window, summed
	// over the cameras (-1: not known).
	RelayDropped int64
	// StampedMin is the lowest per-reader rate of frames with a send-time
	// stamp; Latency is from each such frame's stamp to its arrival.
	StampedMin float64
	Latency    durStats
	Note       string
}

// other is the machine's CPU use by processes the window did not measure
// (neither the measured ones, nor the simulator, nor the bench), interrupts
// left out.
func (w window) other() float64 { return w.Machine - w.IRQ - w.CPU - w.Sim - w.Harness }

// saturated says whether the machine had less than 10% of its CPU idle.
func (w window) saturated() bool { return w.Cores > 0 && w.Machine > 90*float64(w.Cores) }

// measure watches pids for d: CPU from /proc/PID/stat over the whole
// window, RSS and descriptors sampled every second, PSS at the end. sim is
// the simulator's pid (0 for none).
func measure(ctx context.Context, pids []int, sim int, d time.Duration, cores int) (window, error) {
	w := window{Procs: len(pids), Cores: cores}
	start := make(map[int]uint64, len(pids))
	for _, pid := range pids {
		if t, err := procCPUTicks(pid); err == nil {
			start[pid] = t
		}
	}
	m0, _ := readMachineCPU()
	sim0, _ := procCPUTicks(sim)
	self := os.Getpid()
	self0, _ := procCPUTicks(self)
	t0 := time.Now()

	var rss []uint64
	var fds []int
	sample := func() {
		var r uint64
		var f int
		for _, pid := range pids {
			if st, err := readProcStatus(pid); err == nil {
				r += st.RSSBytes
			}
			if n, err := countFDs(pid); err == nil {
				f += n
			}
		}
		rss = append(rss, r)
		fds = append(fds, f)
	}
	sample()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-tick.C:
			sample()
		case <-end.C:
			break loop
		}
	}
	t1 := time.Now()
	wall := t1.Sub(t0).Seconds()
	var ticks uint64
	for _, pid := range pids {
		t, err := procCPUTicks(pid)
		s, ok := start[pid]
		if err != nil || !ok || t < s {
			w.Died++
			continue
		}
		ticks += t - s
	}
	m1, _ := readMachineCPU()
	sim1, _ := procCPUTicks(sim)
	self1, _ := procCPUTicks(self)
	sample()
	for _, pid := range pids {
		if p, err := readPSS(pid); err == nil {
			w.PSS += float64(p)
		}
		if st, err := readProcStatus(pid); err == nil {
			w.Threads += st.Threads
		}
	}

	pct := func(t uint64) float64 { return float64(t) / clockTicks / wall * 100 }
	w.Dur = t1.Sub(t0)
	w.CPU = pct(ticks)
	w.RSSMean, w.RSSMax = meanU64(rss), float64(maxU64(rss))
	w.FDs = meanInt(fds)
	w.Machine = busyPercent(m0, m1, cores)
	w.IRQ = irqPercent(m0, m1, cores)
	if sim > 0 && sim1 >= sim0 {
		w.Sim = pct(sim1 - sim0)
	}
	if self1 >= self0 {
		w.Harness = pct(self1 - self0)
	}
	return w, nil
}
