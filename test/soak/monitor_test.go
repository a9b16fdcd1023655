package soak

// Sampling camd from outside: open FDs from /proc/PID/fd, RSS from
// /proc/PID/status, goroutines and heap from /metrics, and the store
// file's size.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sample is one measurement of camd.
type sample struct {
	at         time.Duration // since the monitor started
	phase      string
	fds        int
	goroutines int
	rssKiB     int
	heapInuse  int64 // bytes
	storeSize  int64 // bytes
	err        string
}

// monitor samples one camd process.
type monitor struct {
	pid    int
	api    string
	dbPath string
	t0     time.Time
	hc     *http.Client

	mu      sync.Mutex
	phase   string
	samples []sample
}

func newMonitor(pid int, api, dbPath string) *monitor {
	// A fresh connection for every sample: each sample then sees camd
	// serving exactly one API connection, whatever happened before.
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	return &monitor{pid: pid, api: api, dbPath: dbPath, t0: time.Now(), phase: "start-up",
		hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (m *monitor) setPhase(p string) {
	m.mu.Lock()
	m.phase = p
	m.mu.Unlock()
}

// take measures camd now, and records the sample when record is set.
func (m *monitor) take(record bool) sample {
	m.mu.Lock()
	s := sample{at: time.Since(m.t0), phase: m.phase}
	m.mu.Unlock()
	var errs []string
	// FDs first: the /metrics request below opens one more while it runs.
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", m.pid)); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.fds = len(ents)
	}
	if kb, err := vmRSS(m.pid); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.rssKiB = kb
	}
	if fi, err := os.Stat(m.dbPath); err == nil {
		s.storeSize = fi.Size()
	}
	if g, h, err := m.metrics(); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.goroutines, s.heapInuse = g, h
	}
	s.err = strings.Join(errs, "; ")
	if record {
		m.mu.Lock()
		m.samples = append(m.samples, s)
		m.mu.Unlock()
	}
	return s
}

// run records a sample every interval until ctx is done.
func (m *monitor) run(ctx context.Context, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			m.take(true)
		}
	}
}

// settled waits until camd's FD and goroutine counts have been steady
// (within 1 and 2) in five samples one second apart (at most limit), records those samples
// under phase and returns their median (FDs and goroutines: the minimum,
// the resting value), and how long it waited.
func (m *monitor) settled(phase string, limit time.Duration) (sample, time.Duration) {
	start := time.Now()
	m.setPhase(phase)
	var win []sample
	for {
		s := m.take(false)
		win = append(win, s)
		if len(win) > 5 {
			win = win[1:]
		}
		// At rest camd's counts still move by one now and then (a
		// connection closing, a timer's goroutine): "the same" allows that.
		same := len(win) == 5
		lo, hi := win[0], win[0]
		for _, w := range win {
			same = same && w.err == ""
			lo.fds, hi.fds = min(lo.fds, w.fds), max(hi.fds, w.fds)
			lo.goroutines, hi.goroutines = min(lo.goroutines, w.goroutines), max(hi.goroutines, w.goroutines)
		}
		same = same && hi.fds-lo.fds <= 1 && hi.goroutines-lo.goroutines <= 2
		if same || time.Since(start) > limit {
			break
		}
		time.Sleep(time.Second)
	}
	m.mu.Lock()
	m.samples = append(m.samples, win...)
	m.mu.Unlock()
	med := win[len(win)/2]
	rss := make([]int, len(win))
	for i, w := range win {
		rss[i] = w.rssKiB
		med.fds = min(med.fds, w.fds)
		med.goroutines = min(med.goroutines, w.goroutines)
	}
	slices.Sort(rss)
	med.rssKiB = rss[len(rss)/2]
	return med, time.Since(start)
}

// metrics reads go_goroutines and go_memstats_heap_inuse_bytes.
func (m *monitor) metrics() (goroutines int, heap int64, err error) {
	resp, err := m.hc.Get("http://" + m.api + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_goroutines":
			goroutines, found = int(v), true
		case "go_memstats_heap_inuse_bytes":
			heap = int64(v)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("/metrics has no go_goroutines")
	}
	return goroutines, heap, nil
}

// vmRSS reads VmRSS (KiB) from /proc/PID/status.
func vmRSS(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// logSeries prints every sample.
func (m *monitor) logSeries(t *testing.T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sort.SliceStable(m.samples, func(i, j int) bool { return m.samples[i].at < m.samples[j].at })
	var b strings.Builder
	fmt.Fprintf(&b, "%8s  %-14s %5s %10s %8s %9s %9s\n", "t", "phase", "fds", "goroutines", "rss_MiB", "heap_MiB", "store_KiB")
	for _, s := range m.samples {
		fmt.Fprintf(&b, "%8s  %-14s %5d %10d %8.1f %9.1f %9d", s.at.Round(time.Second), s.phase, s.fds, s.goroutines,
			float64(s.rssKiB)/1024, float64(s.heapInuse)/(1<<20), s.storeSize/1024)
		if s.err != "" {
			fmt.Fprintf(&b, "  (%s)", s.err)
		}
		b.WriteByte('\n')
	}
	t.Logf("camd, sampled every 5 s and at rest after each phase:\n%s", b.String())
}

// maxOf returns the largest value of f over the samples of phase.
func (m *monitor) maxOf(phase string, f func(sample) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	mx := 0
	for _, s := range m.samples {
		if s.phase == phase {
			mx = max(mx, f(s))
		}
	}
	return mx
}
