package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// proxy is another RTSP server measured as a proxy of the simulated
// cameras, as camd's relay is: it pulls every camera and serves it to the
// same readers.
type proxy struct {
	name, bin string
	// config returns the configuration file for n cameras of the
	// simulator at simAddr, served on rtspAddr.
	config func(simAddr, rtspAddr string, n int) string
	// args returns the command line after the binary.
	args func(cfgPath string) []string
	// versionArg prints the version.
	versionArg string
}

// proxies returns the systems of the comparison that were given.
func (b *bench) proxies() []proxy {
	var out []proxy
	if b.o.go2rtc != "" {
		out = append(out, proxy{name: "go2rtc", bin: b.o.go2rtc, config: go2rtcConfig,
			args: func(cfg string) []string { return []string{"-config", cfg} }, versionArg: "-version"})
	}
	if b.o.mediamtx != "" {
		out = append(out, proxy{name: "mediamtx", bin: b.o.mediamtx, config: mediamtxConfig,
			args: func(cfg string) []string { return []string{cfg} }, versionArg: "--version"})
	}
	return out
}

// go2rtcConfig serves camK from the simulator over RTSP only. Every other
// listener is off and WebRTC has no STUN server, so that go2rtc sends
// nothing beyond loopback; preload makes it pull each camera without a
// reader, as camd does.
func go2rtcConfig(simAddr, rtspAddr string, n int) string {
	var sb strings.Builder
	sb.WriteString("# Written by camdbench.\nlog:\n  level: warn\napi:\n  listen: \"\"\n")
	fmt.Fprintf(&sb, "rtsp:\n  listen: %q\n", rtspAddr)
	sb.WriteString("rtmp:\n  listen: \"\"\nsrtp:\n  listen: \"\"\nwebrtc:\n  listen: \"\"\n  ice_servers: []\n")
	sb.WriteString("streams:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "  cam%d: rtsp://%s/cam%d\n", i, simAddr, i)
	}
	sb.WriteString("preload:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "  cam%d:\n", i)
	}
	return sb.String()
}

// mediamtxConfig serves camK from the simulator over RTSP (TCP) only, every
// camera pulled at start (sourceOnDemand: no), every other server off.
func mediamtxConfig(simAddr, rtspAddr string, n int) string {
	var sb strings.Builder
	sb.WriteString("# Written by camdbench.\nlogLevel: warn\napi: no\nmetrics: no\npprof: no\nplayback: no\n")
	fmt.Fprintf(&sb, "rtsp: yes\nrtspTransports: [tcp]\nrtspAddress: %s\n", rtspAddr)
	sb.WriteString("rtmp: no\nhls: no\nwebrtc: no\nsrt: no\npaths:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "  cam%d:\n    source: rtsp://%s/cam%d\n    sourceOnDemand: no\n    rtspTransport: tcp\n", i, simAddr, i)
	}
	return sb.String()
}

// compareCounts parses -compare-n like -ab-n: empty means 64 where in ns,
// else every count of ns.
func compareCounts(s string, ns []int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		if slices.Contains(ns, 64) {
			return []int{64}, nil
		}
		return slices.Clone(ns), nil
	}
	out, err := parseNList(s)
	if err != nil {
		return nil, fmt.Errorf("-compare-n: %w", err)
	}
	for _, n := range out {
		if !slices.Contains(ns, n) {
			return nil, fmt.Errorf("-compare-n: %d is not one of the camera counts of -n", n)
		}
	}
	return out, nil
}

// proxyResult is one system of the comparison at one camera count.
type proxyResult struct {
	Name, Version string
	// Ingest is the proxy pulling every camera with no reader, R1 with one
	// reader per camera.
	Ingest, R1 *window
	Err        string
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a program that cannot be told to pick its own.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProxy writes the proxy's configuration for the simulator's cameras
// and starts it; it returns the process and the RTSP address it serves.
func (b *bench) startProxy(px proxy, simAddr string, n int) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(b.tmp, fmt.Sprintf("%s-%d.yml", px.name, n))
	if err := os.WriteFile(cfg, []byte(px.config(simAddr, addr, n)), 0o644); err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(b.tmp, fmt.Sprintf("%s-%d.log", px.name, n))
	// In the temp dir: go2rtc may write files (its secret) where it runs.
	p, err := b.procs.startIn(b.tmp, px.name, logPath, logPath, append([]string{px.bin}, px.args(cfg)...)...)
	if err != nil {
		return nil, "", err
	}
	return p, addr, nil
}

// waitListening waits until addr accepts TCP connections while p runs.
func waitListening(ctx context.Context, p *proc, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v); last lines:\n%s", p.name, p.waitErr, p.tail(10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v", p.name, addr, d)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// proxyVersion is the first line of the proxy's version output.
func proxyVersion(px proxy) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, px.bin, px.versionArg).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil && line == "" {
		return px.bin
	}
	return px.bin + ": " + line
}

// proxyWindows measures one proxy of the simulator's cameras: a window
// with every camera pulled and no reader, then one with a reader per
// camera (the bench's readers, as for camd's relay).
func (b *bench) proxyWindows(ctx context.Context, sim *simProc, px proxy) *proxyResult {
	n := sim.n
	r := &proxyResult{Name: px.name, Version: proxyVersion(px)}
	b.logf("N=%d: %s as a proxy of %d cameras", n, px.name, n)
	p, addr, err := b.startProxy(px, sim.rtsp, n)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer p.stop(5 * time.Second)
	if err := waitListening(ctx, p, addr, 30*time.Second); err != nil {
		r.Err = err.Error()
		return r
	}
	measureProxy := func(rs []*reader) (*window, error) {
		m0 := markReaders(rs, true)
		w, err := measure(ctx, []int{p.pid()}, sim.pid(), b.o.steady, b.cores)
		if err != nil {
			return nil, err
		}
		m1 := markReaders(rs, false)
		readerWindow(&w, rs, m0, m1)
		if p.exited() {
			return nil, fmt.Errorf("%s exited during the window; last lines:\n%s", px.name, p.tail(10))
		}
		return &w, nil
	}

	// Ingest: every camera must have the proxy's session before the window.
	var notPulled []string
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*100*time.Millisecond)
	for {
		st, err := sim.status(ctx)
		notPulled = notPulled[:0]
		if err == nil {
			for _, c := range st {
				if c.ActiveSessions < 1 {
					notPulled = append(notPulled, "cam"+strconv.Itoa(c.Cam))
				}
			}
		}
		if err == nil && len(st) == n && len(notPulled) == 0 {
			break
		}
		if time.Now().After(deadline) || p.exited() || sleep(ctx, 500*time.Millisecond) != nil {
			break
		}
	}
	switch {
	case ctx.Err() != nil:
		return r
	case len(notPulled) > 0:
		r.Err = fmt.Sprintf("without readers %s did not pull %d of %d cameras (e.g. %s); no ingest-only window", px.name, len(notPulled), n, notPulled[0])
	default:
		if err := sleep(ctx, b.o.settle); err != nil {
			return r
		}
		b.logf("N=%d: steady window, %s ingest only, %v", n, px.name, b.o.steady)
		if r.Ingest, err = measureProxy(nil); err != nil {
			r.Err = err.Error()
			return r
		}
	}

	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("rtsp://%s/cam%d", addr, i+1)
	}
	b.logf("N=%d: connecting %d readers to %s", n, n, px.name)
	rs, took, err := startReaders(ctx, urls)
	if err != nil {
		r.Err = strings.TrimPrefix(r.Err+"; ", "; ") + "readers: " + err.Error()
		return r
	}
	defer closeReaders(rs)
	if err := sleep(ctx, b.o.settle); err != nil {
		return r
	}
	b.logf("N=%d: steady window, %s with 1 reader per camera, %v", n, px.name, b.o.steady)
	w, err := measureProxy(rs)
	if err != nil {
		r.Err = strings.TrimPrefix(r.Err+"; ", "; ") + err.Error()
		return r
	}
	w.ReaderConnect = summarize(took)
	r.R1 = w
	return r
}
