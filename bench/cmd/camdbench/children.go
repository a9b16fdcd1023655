package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
)

// simProc is a "camd sim" process.
type simProc struct {
	*proc
	n    int
	rtsp string // host:port
	ctl  string // http://host:port
	hc   *http.Client
}

var simLineRE = regexp.MustCompile(`^sim: rtsp on (\S+) \(cam1\.\.cam\d+\), control on (http://\S+)`)

func (b *bench) startSim(ctx context.Context, n int) (*simProc, error) {
	out := filepath.Join(b.tmp, fmt.Sprintf("sim-%d.out", n))
	errPath := filepath.Join(b.tmp, fmt.Sprintf("sim-%d.log", n))
	args := []string{"sim", "--cameras", strconv.Itoa(n), "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"}
	if !b.o.noStamp {
		args = append(args, "--stamp")
	}
	p, err := b.procs.start("camd sim", out, errPath, append([]string{b.o.camd}, args...)...)
	if err != nil {
		return nil, err
	}
	m, err := p.waitLine(ctx, out, simLineRE, 30*time.Second)
	if err != nil {
		p.stop(3 * time.Second)
		return nil, err
	}
	return &simProc{proc: p, n: n, rtsp: m[1], ctl: m[2],
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}, nil
}

func (s *simProc) url(cam int) string { return fmt.Sprintf("rtsp://%s/cam%d", s.rtsp, cam) }

// fault sets a fault on one camera.
func (s *simProc) fault(ctx context.Context, cam int, fault string) error {
	u := fmt.Sprintf("%s/cameras/%d/fault?fault=%s", s.ctl, cam, fault)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sim fault %s on cam%d: %s: %s", fault, cam, resp.Status, body)
	}
	return nil
}

// faultAll sets fault on cameras 1..count, concurrently (the control API
// takes one camera per request), and returns for each camera the time its
// request was sent: the fault took effect at or after that instant.
func (s *simProc) faultAll(ctx context.Context, count int, fault string) ([]time.Time, error) {
	sent := make([]time.Time, count)
	errs := make([]error, count)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sent[i] = time.Now()
				errs[i] = s.fault(ctx, i+1, fault)
			}
		}()
	}
	for i := range count {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// simCamStatus is one camera of the sim's GET /cameras.
type simCamStatus struct {
	Cam            int    `json:"cam"`
	Fault          string `json:"fault"`
	Sessions       int    `json:"sessions"`
	ActiveSessions int    `json:"active_sessions"`
}

func (s *simProc) status(ctx context.Context) ([]simCamStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ctl+"/cameras", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []simCamStatus
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("sim status: %w", err)
	}
	return out, nil
}

// camdProc is a "camd run" process.
type camdProc struct {
	*proc
	api, relay string
	c          *api.Client
	// upAt is when the bench saw the "camd started" line.
	upAt time.Time
}

var (
	startedLineRE = regexp.MustCompile(`.*msg="camd started".*`)
	apiAttrRE     = regexp.MustCompile(` api=http://(\S+)`)
	relayAttRE    = regexp.MustCompile(` relay=rtsp://(\S+)`)
)

// startCamd starts "camd run" on dataDir with the bench's config and waits
// for its "camd started" line.
func (b *bench) startCamd(ctx context.Context, dataDir, tag string) (*camdProc, error) {
	return b.startCamdWith(ctx, b.o.camd, b.cfgPath, dataDir, tag)
}

// startCamdWith starts the camd binary bin with the configuration file cfg.
func (b *bench) startCamdWith(ctx context.Context, bin, cfg, dataDir, tag string) (*camdProc, error) {
	logPath := filepath.Join(b.tmp, "camd-"+tag+".log")
	p, err := b.procs.start("camd run", logPath, logPath, bin, "run",
		"--data-dir", dataDir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0",
		"--config", cfg)
	if err != nil {
		return nil, err
	}
	m, err := p.waitLine(ctx, logPath, startedLineRE, 30*time.Second)
	if err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	cp := &camdProc{proc: p, upAt: time.Now()}
	if a := apiAttrRE.FindStringSubmatch(m[0]); a != nil {
		cp.api = a[1]
	}
	if r := relayAttRE.FindStringSubmatch(m[0]); r != nil {
		cp.relay = r[1]
	}
	if cp.api == "" || cp.relay == "" {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("camd started line without api= or relay=: %s", m[0])
	}
	cp.c = api.NewClient(cp.api, "")
	return cp, nil
}

// addCameras adds cam1..camN of the sim, started, with a few requests in
// flight at once.
func (c *camdProc) addCameras(ctx context.Context, sim *simProc) error {
	errs := make([]error, sim.n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				_, errs[i] = c.c.AddCamera(ctx, device.Spec{Name: fmt.Sprintf("cam%d", i+1), URL: sim.url(i + 1)}, true)
			}
		}()
	}
	for i := range sim.n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("add cam%d: %w", i+1, err)
		}
	}
	return nil
}

// pollCameras lists the cameras every 100 ms until done says the list is
// what the caller waits for, and returns the time of that list. It gives up
// after d with errTimeout (and the last list).
func (c *camdProc) pollCameras(ctx context.Context, d time.Duration, done func([]api.CameraJSON) bool) (time.Time, []api.CameraJSON, error) {
	deadline := time.Now().Add(d)
	var last []api.CameraJSON
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := c.c.Cameras(cctx)
		cancel()
		now := time.Now()
		if err == nil {
			last = list
			if done(list) {
				return now, list, nil
			}
		}
		if ctx.Err() != nil {
			return now, last, ctx.Err()
		}
		if c.exited() {
			return now, last, fmt.Errorf("camd exited while the bench polled it; last lines:\n%s", c.tail(20))
		}
		if now.After(deadline) {
			return now, last, errTimeout
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return now, last, err
		}
	}
}

// allRunning is a pollCameras condition: n cameras, every one RUNNING.
func allRunning(n int) func([]api.CameraJSON) bool {
	return func(list []api.CameraJSON) bool {
		if len(list) != n {
			return false
		}
		for _, c := range list {
			if c.State != "RUNNING" {
				return false
			}
		}
		return true
	}
}

// camIndex returns the 0-based index of "camK", or -1.
func camIndex(name string, n int) int {
	var k int
	if _, err := fmt.Sscanf(name, "cam%d", &k); err != nil || k < 1 || k > n {
		return -1
	}
	return k - 1
}
