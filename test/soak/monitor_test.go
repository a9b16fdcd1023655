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

	"github.com/camd/camd/store"
)

// sample is one measurement of camd.
type sample struct {
	at         time.Duration // since the monitor started
	phase      string
	fds        int
	goroutines int
	rssKiB     int
	// anonKiB and fileKiB split RSS: private memory (heap, stacks) and
	// pages of mapped files, mostly camd's own code, which grows as new
	// code paths first run and says nothing about a leak.
	anonKiB   int
	fileKiB   int
	heapInuse int64 // bytes
	// gcGoal is the heap size at which the next GC starts: about twice
	// the live heap after the last one, whatever the GC's phase now.
	gcGoal     int64
	stackInuse int64
	storeSize  int64 // bytes
	eventsSize int64 // the event history's file, bytes
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
	if r, err := readRSS(m.pid); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.rssKiB, s.anonKiB, s.fileKiB = r.total, r.anon, r.file
	}
	if fi, err := os.Stat(m.dbPath); err == nil {
		s.storeSize = fi.Size()
	}
	if fi, err := os.Stat(store.EventsPath(m.dbPath)); err == nil {
		s.eventsSize = fi.Size()
	}
	if mt, err := m.metrics(); err != nil {
		errs = append(errs, err.Error())
	} else {
		s.goroutines = int(mt["go_goroutines"])
		s.heapInuse = int64(mt["go_memstats_heap_inuse_bytes"])
		s.gcGoal = int64(mt["go_memstats_next_gc_bytes"])
		s.stackInuse = int64(mt["go_memstats_stack_inuse_bytes"])
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
// (within 1 and 2) in five samples one second apart (at most limit), then
// takes ten more, one second apart: RSS and the heap move with every GC
// cycle, a few seconds apart at rest. It records the samples under phase
// and returns their resting values: the least FDs and goroutines, the
// median RSS, heap and GC goal. It also returns how long it took.
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
		// connection closing, a timer's goroutine): "steady" allows that.
		steady := len(win) == 5
		lo, hi := win[0], win[0]
		for _, w := range win {
			steady = steady && w.err == ""
			lo.fds, hi.fds = min(lo.fds, w.fds), max(hi.fds, w.fds)
			lo.goroutines, hi.goroutines = min(lo.goroutines, w.goroutines), max(hi.goroutines, w.goroutines)
		}
		steady = steady && hi.fds-lo.fds <= 1 && hi.goroutines-lo.goroutines <= 2
		if steady || time.Since(start) > limit {
			break
		}
		time.Sleep(time.Second)
	}
	for range 10 {
		time.Sleep(time.Second)
		win = append(win, m.take(false))
	}
	m.mu.Lock()
	m.samples = append(m.samples, win...)
	m.mu.Unlock()
	out := win[len(win)-1]
	var rss, anon, file []int
	var heap, goal []int64
	for _, w := range win {
		if w.err != "" {
			continue
		}
		out.fds = min(out.fds, w.fds)
		out.goroutines = min(out.goroutines, w.goroutines)
		rss, anon, file = append(rss, w.rssKiB), append(anon, w.anonKiB), append(file, w.fileKiB)
		heap, goal = append(heap, w.heapInuse), append(goal, w.gcGoal)
	}
	if len(rss) > 0 {
		out.rssKiB, out.anonKiB, out.fileKiB = median(rss), median(anon), median(file)
		out.heapInuse, out.gcGoal = median(heap), median(goal)
	}
	return out, time.Since(start)
}

// metrics reads camd's Go runtime metrics (go_*) from /metrics.
func (m *monitor) metrics() (map[string]float64, error) {
	resp, err := m.hc.Get("http://" + m.api + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !strings.HasPrefix(f[0], "go_") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	if _, ok := out["go_goroutines"]; !ok {
		return nil, fmt.Errorf("/metrics has no go_goroutines")
	}
	return out, nil
}

// median returns the middle value of v, which it sorts.
func median[T int | int64](v []T) T {
	slices.Sort(v)
	return v[len(v)/2]
}

// rss is a process's resident memory in KiB: all of it, and its private
// (anonymous) and file-backed parts.
type rss struct{ total, anon, file int }

// readRSS reads VmRSS, RssAnon and RssFile from /proc/PID/status.
func readRSS(pid int) (rss, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, err
	}
	defer f.Close()
	var r rss
	fields := map[string]*int{"VmRSS:": &r.total, "RssAnon:": &r.anon, "RssFile:": &r.file}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, v, ok := strings.Cut(sc.Text(), "\t")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		if *dst, err = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB")); err != nil {
			return rss{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		delete(fields, key)
	}
	if err := sc.Err(); err != nil {
		return rss{}, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	for k := range fields {
		return rss{}, fmt.Errorf("no %s in /proc/%d/status", strings.TrimSuffix(k, ":"), pid)
	}
	return r, nil
}

// logSeries prints every sample.
func (m *monitor) logSeries(t *testing.T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sort.SliceStable(m.samples, func(i, j int) bool { return m.samples[i].at < m.samples[j].at })
	var b strings.Builder
	fmt.Fprintf(&b, "%8s  %-16s %5s %10s %8s %9s %9s %9s %12s %10s %9s %10s\n", "t", "phase", "fds", "goroutines", "rss_MiB",
		"anon_MiB", "file_MiB", "heap_MiB", "gc_goal_MiB", "stack_MiB", "store_KiB", "events_KiB")
	for _, s := range m.samples {
		fmt.Fprintf(&b, "%8s  %-16s %5d %10d %8.1f %9.1f %9.1f %9.1f %12.1f %10.2f %9d %10d", s.at.Round(time.Second), s.phase, s.fds, s.goroutines,
			mib(s.rssKiB), mib(s.anonKiB), mib(s.fileKiB), float64(s.heapInuse)/(1<<20), float64(s.gcGoal)/(1<<20), float64(s.stackInuse)/(1<<20), s.storeSize/1024, s.eventsSize/1024)
		if s.err != "" {
			fmt.Fprintf(&b, "  (%s)", s.err)
		}
		b.WriteByte('\n')
	}
	t.Logf("camd, sampled every 5 s and at rest after each phase:\n%s", b.String())
}

// maxOf returns the largest value of f over the samples of phase ("": of
// every phase).
func (m *monitor) maxOf(phase string, f func(sample) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	mx := 0
	for _, s := range m.samples {
		if phase == "" || s.phase == phase {
			mx = max(mx, f(s))
		}
	}
	return mx
}
