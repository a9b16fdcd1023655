package main

// Process tests of the relay's doors (issue 20): camd as a process, its
// relay flooded, starved of descriptors, probed without credentials.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// startCamdNOFILE starts "camd run" through sh with its limit on open
// files (soft and hard, so that Go cannot raise it) at nofile, and waits
// until it is up.
func startCamdNOFILE(t *testing.T, nofile int, dataDir string, args ...string) *camdProc {
	t.Helper()
	sh := testutil.NeedTool(t, "sh")
	full := append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), camdBin(t),
		"run", "--data-dir", dataDir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0"}, args...)
	p := startCmd(t, exec.Command(sh, full...), nil, full[3:])
	p.dataDir = dataDir
	p.waitStarted()
	return p
}

// openIdle opens n TCP connections to addr that send nothing, stopping at
// the first that fails. Connections the kernel completes but camd has not
// accepted count: that is the point.
func openIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Logf("connection %d to %s: %v", i+1, addr, err)
			break
		}
		conns = append(conns, c)
	}
	return conns
}

// ffprobeOK runs ffprobe once on url and reports whether it found an H.264
// stream.
func ffprobeOK(ffprobe, url string, d time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-timeout", "5000000",
		"-select_streams", "v:0", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url).CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) == "h264", strings.TrimSpace(string(out))
}

// TestRelaySurvivesFDExhaustion: camd limited to 300 open files, 500 idle
// relay connections, then all closed: the relay plays again within 15 s,
// camd is up, and one line says the relay ran out.
func TestRelaySurvivesFDExhaustion(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "relay:\n  max_conns: 10000\n")
	p := startCamdNOFILE(t, 300, filepath.Join(dir, "data"), "--config", cfg)
	addCameras(t, p, s, 1)
	waitRunning(t, p, 1, 60*time.Second)
	url := "rtsp://" + p.relay + "/cam1"
	if ok, out := ffprobeOK(ffprobe, url, 30*time.Second); !ok {
		t.Fatalf("ffprobe before the flood: %s", out)
	}

	conns := openIdle(t, p.relay, 500)
	if len(conns) < 500 {
		t.Errorf("only %d of 500 connections to the relay opened", len(conns))
	}
	if !testutil.Poll(30*time.Second, func() bool { return strings.Contains(p.stderr.String(), "relay: cannot accept connections") }) {
		t.Error("no line about the relay's accept failures within 30 s")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	closed := time.Now()
	var out string
	ok := testutil.Poll(15*time.Second, func() bool {
		var ok bool
		ok, out = ffprobeOK(ffprobe, url, 10*time.Second)
		return ok
	})
	if !ok {
		t.Fatalf("no relay reader played within 15 s of closing the connections (last ffprobe: %s)", out)
	}
	t.Logf("a reader played %s after the connections closed", time.Since(closed).Round(time.Millisecond))
	for _, l := range p.stderr.Lines("level=ERROR") {
		t.Logf("camd: %s", l)
	}
	if p.exited() {
		t.Fatalf("camd exited: %v", p.waitErr)
	}
	if _, err := p.client().Cameras(context.Background()); err != nil {
		t.Errorf("API after the flood: %v", err)
	}
	if n := len(p.stderr.Lines("relay: cannot accept connections")); n != 1 {
		t.Errorf("%d lines about the relay's accept failures, want 1", n)
	}
}

// TestRelayClosesSilentConn: a relay connection that sends nothing is
// closed by camd within 15 s.
func TestRelayClosesSilentConn(t *testing.T) {
	t.Parallel()
	p := startCamd(t, t.TempDir(), nil)
	c, err := net.DialTimeout("tcp", p.relay, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("silent relay connection still open after %s", time.Since(start).Round(time.Millisecond))
	}
	t.Logf("closed after %s (%v)", time.Since(start).Round(time.Millisecond), err)
}

// TestClientConnsDoNotCrossFDCeiling: with fd.ceiling 100, 200 idle client
// connections (relay and API) do not make camd exit.
func TestClientConnsDoNotCrossFDCeiling(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "fd:\n  ceiling: 100\n  interval: 200ms\n")
	p := startCamd(t, filepath.Join(dir, "data"), nil, "--config", cfg)
	if n := len(openIdle(t, p.relay, 100)) + len(openIdle(t, p.api, 100)); n != 200 {
		t.Fatalf("only %d of 200 client connections opened", n)
	}
	// The API closes idle connections after 5 s (ReadHeaderTimeout), the
	// relay after 10 s: hold them for 4 s, twenty counts.
	time.Sleep(4 * time.Second)
	if code, _, exited := p.wait(time.Second); exited {
		t.Fatalf("camd exited with %d with 200 idle client connections open", code)
	}
	if lines := p.stderr.Lines("ceiling crossed"); len(lines) > 0 {
		t.Errorf("ceiling crossed: %q", lines)
	}
	// The watch did count them: its own descriptors stay within bounds,
	// and the API answers once its idle connections are closed (5 s after
	// they opened, which a loaded machine can put after this point: until
	// then its connection cap turns new ones away).
	var apiErr error
	if !testutil.Poll(15*time.Second, func() bool {
		_, apiErr = p.client().Cameras(context.Background())
		return apiErr == nil
	}) {
		t.Errorf("API: %v", apiErr)
	}
}

// TestRelayOffLoopbackNeedsCredentials: a relay bound off loopback with no
// credentials is refused before anything listens, with one line naming the
// setting; relay.public: true starts it with a WARN (shown on loopback, so
// that the test never listens beyond it).
func TestRelayOffLoopbackNeedsCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProc(t, nil, "run", "--data-dir", filepath.Join(dir, "data"), "--api-listen", "127.0.0.1:0",
		"--rtsp-listen", "0.0.0.0:0")
	code, _, ok := p.wait(30 * time.Second)
	if !ok {
		t.Fatal("camd with an open relay off loopback did not exit")
	}
	out := p.stderr.String()
	if code == 0 || !oneLine(out) || !strings.Contains(out, "relay.user") || !strings.Contains(out, "relay.public") {
		t.Fatalf("exit %d, stderr %q: want non-zero and one line naming relay.user and relay.public", code, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))

	cfg := writeConfig(t, dir, "relay:\n  public: true\n")
	p = startCamd(t, filepath.Join(dir, "data2"), nil, "--config", cfg)
	if n := len(p.stderr.Lines("level=WARN", "relay.public is set")); n != 1 {
		t.Errorf("%d WARN lines about relay.public, want 1", n)
	}
}

// TestRelayTLSProcess: with relay.tls_cert and relay.tls_key camd serves
// the relay as rtsps://, and ffprobe reads a camera through it.
func TestRelayTLSProcess(t *testing.T) {
	t.Parallel()
	ffprobe := testutil.NeedTool(t, "ffprobe")
	dir := t.TempDir()
	tc := testutil.NewCert(t, t.TempDir())
	cert, key := tc.CertFile, tc.KeyFile
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	cfg := writeConfig(t, dir, fmt.Sprintf("relay:\n  tls_cert: %s\n  tls_key: %s\n  user: viewer\n  pass: tls-relay-pass\n", cert, key))
	p := startCamd(t, filepath.Join(dir, "data"), nil, "--config", cfg)
	m := regexp.MustCompile(`msg="camd started".* relay=rtsps://(\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no rtsps:// relay in the start line:\n%s", p.stderr.String())
	}
	addCameras(t, p, s, 1)
	waitRunning(t, p, 1, 60*time.Second)
	url := "rtsps://viewer:tls-relay-pass@" + m[1] + "/cam1"
	var out string
	if !testutil.Poll(60*time.Second, func() bool {
		var ok bool
		ok, out = ffprobeOK(ffprobe, url, 20*time.Second)
		return ok
	}) {
		t.Fatalf("ffprobe %s: %s", strings.Replace(url, "tls-relay-pass", "xxxxx", 1), out)
	}
	if strings.Contains(p.stderr.String(), "tls-relay-pass") {
		t.Error("the relay password reached the log")
	}
}
