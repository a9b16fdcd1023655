package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

// camDaemon is a real API server over a real Manager and store, in this
// process.
type camDaemon struct {
	addr  string
	dir   string
	logs  *testutil.LogBuffer
	token string
}

func startCamDaemon(t *testing.T, requireToken bool) *camDaemon {
	t.Helper()
	d := &camDaemon{dir: t.TempDir(), logs: &testutil.LogBuffer{}}
	log := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(filepath.Join(d.dir, "camd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := device.NewManager(device.Config{Store: st, Logger: log, Settings: device.Settings{
		BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second, StallTimeout: 5 * time.Second,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Manager: m, Listen: "127.0.0.1:0", Version: "test", Logger: log}
	if requireToken {
		tok, err := api.EnsureToken(d.dir)
		if err != nil {
			t.Fatal(err)
		}
		d.token = tok
		cfg.Token = tok
		cfg.RequireToken = &requireToken
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.addr = srv.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("api Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("api Run did not return")
		}
		if err := m.Close(); err != nil {
			t.Errorf("manager close: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("store close: %v", err)
		}
	})
	return d
}

// camCLI runs "camd ARGS…" in this process and returns what it printed.
func camCLI(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), err
}

// camWait polls "camd camera show NAME --json" until the camera is in state
// want.
func camWait(t *testing.T, d *camDaemon, name, want string, timeout time.Duration) api.CameraJSON {
	t.Helper()
	var c api.CameraJSON
	deadline := time.Now().Add(timeout)
	for {
		out, errOut, err := camCLI("camera", "show", name, "--json", "--api", d.addr)
		if err == nil {
			c = api.CameraJSON{}
			if jerr := json.Unmarshal([]byte(out), &c); jerr != nil {
				t.Fatalf("show --json is not a camera: %v\n%s", jerr, out)
			}
			if c.State == want {
				return c
			}
		} else if !strings.Contains(errOut, "no such camera") {
			t.Fatalf("show %s: %v %s", name, err, errOut)
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s is %s after %s, want %s (last error %q)", name, c.State, timeout, want, c.LastError)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCLIDaemonNotRunning(t *testing.T) {
	addr := freeAddr(t)
	want := fmt.Sprintf(`camd: cannot reach the camd daemon at http://%s (connection refused); is "camd run" running? (set --api or CAMD_API)`+"\n", addr)
	for _, args := range [][]string{
		{"camera", "ls", "--api", addr},
		{"camera", "add", "cam1", "rtsp://u:secret@127.0.0.1/x", "--api", addr},
		{"camera", "show", "cam1", "--api", addr},
		{"camera", "rm", "cam1", "--api", "http://" + addr},
		{"camera", "stop", "--json", "cam1", "--api", addr},
		{"status", "--api", addr},
	} {
		out, errOut, err := camCLI(args...)
		if !errors.Is(err, errSilent) {
			t.Errorf("%v: error %v, want errSilent (exit 1 with the message already printed)", args, err)
		}
		if errOut != want || out != "" {
			t.Errorf("%v:\nstderr %q\nwant   %q\nstdout %q", args, errOut, want, out)
		}
	}
	// CAMD_API is where it looks when --api is not given; --api wins.
	t.Setenv("CAMD_API", addr)
	if _, errOut, _ := camCLI("status"); errOut != want {
		t.Errorf("with CAMD_API: %q", errOut)
	}
	d := startCamDaemon(t, false)
	t.Setenv("CAMD_API", addr)
	if _, errOut, err := camCLI("status", "--api", d.addr); err != nil {
		t.Errorf("--api over CAMD_API: %v %s", err, errOut)
	}
}

func TestCLICameraCommands(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true})
	d := startCamDaemon(t, false)
	a := []string{"--api", d.addr}
	cli := func(args ...string) (string, string, error) { return camCLI(append(args, a...)...) }

	out, errOut, err := cli("camera", "ls")
	if err != nil || !strings.Contains(out, "no cameras") {
		t.Errorf("ls with no cameras: %v %q %q", err, out, errOut)
	}

	// Flags after the positional arguments work too.
	out, errOut, err = cli("camera", "add", "cam1", s.URL(1))
	if err != nil || !strings.HasPrefix(out, "added cam1 "+s.URL(1)+" (tcp, ") {
		t.Fatalf("add: %v %q %q", err, out, errOut)
	}
	out, errOut, err = cli("camera", "add", "cam2", s.URL(2), "--stopped", "--transport", "auto")
	if err != nil || out != "added cam2 "+s.URL(2)+" (auto, STOPPED)\n" {
		t.Fatalf("add --stopped: %v %q %q", err, out, errOut)
	}
	camWait(t, d, "cam1", "RUNNING", 60*time.Second)

	out, errOut, err = cli("camera", "ls")
	if err != nil {
		t.Fatalf("ls: %v %s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME STATE SINCE FPS BITRATE RECONNECTS/H LAST-ERROR" {
		t.Fatalf("ls table:\n%s", out)
	}
	f1, f2 := strings.Fields(lines[1]), strings.Fields(lines[2])
	if f1[0] != "cam1" || f1[1] != "RUNNING" || !strings.HasSuffix(lines[1], " -") ||
		!(strings.Contains(lines[1], " ago ") || strings.Contains(lines[1], " just now ")) {
		t.Errorf("ls row of a running camera: %q", lines[1])
	}
	if f2[0] != "cam2" || f2[1] != "STOPPED" {
		t.Errorf("ls row of a stopped camera: %q", lines[2])
	}
	out, _, err = cli("camera", "ls", "--json")
	var list []api.CameraJSON
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Errorf("ls --json: %v %s", err, out)
	}

	out, _, err = cli("camera", "show", "cam1")
	for _, want := range []string{"Name:", "cam1", "State:", "RUNNING since", "URL:", s.URL(1), "Video:", "h264",
		"Audio:", "pcmu (not relayed: the relay is off)"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("show lacks %q: %v\n%s", want, err, out)
		}
	}

	if out, errOut, err = cli("camera", "stop", "cam1"); err != nil || out != "stopped cam1 (STOPPED)\n" {
		t.Errorf("stop: %v %q %q", err, out, errOut)
	}
	if out, errOut, err = cli("camera", "start", "cam2"); err != nil || !strings.HasPrefix(out, "started cam2 (") {
		t.Errorf("start: %v %q %q", err, out, errOut)
	}
	camWait(t, d, "cam2", "RUNNING", 60*time.Second)
	if out, errOut, err = cli("camera", "restart", "cam2", "--json"); err != nil || json.Unmarshal([]byte(out), new(api.CameraJSON)) != nil {
		t.Errorf("restart --json: %v %q %q", err, out, errOut)
	}
	camWait(t, d, "cam2", "RUNNING", 60*time.Second)
	if out, errOut, err = cli("camera", "rm", "cam2"); err != nil || out != "removed cam2\n" {
		t.Errorf("rm: %v %q %q", err, out, errOut)
	}

	// API errors print the API's one line.
	_, errOut, err = cli("camera", "show", "cam2")
	if !errors.Is(err, errSilent) || errOut != "camd: no such camera: \"cam2\"\n" {
		t.Errorf("show removed camera: %v %q", err, errOut)
	}
	_, errOut, err = cli("camera", "add", "cam1", s.URL(1))
	if !errors.Is(err, errSilent) || !strings.HasPrefix(errOut, "camd: a camera with that name already exists") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("duplicate add: %v %q", err, errOut)
	}
	_, errOut, err = cli("camera", "add", "bad name", s.URL(1))
	if !errors.Is(err, errSilent) || !strings.HasPrefix(errOut, "camd: invalid camera: name") {
		t.Errorf("bad name: %v %q", err, errOut)
	}

	out, errOut, err = cli("status")
	for _, want := range []string{"Version:", "test", "Cameras:", "1: 1 STOPPED, 0 STARTING, 0 RUNNING", "Open FDs:", "Memory:", "Stall timeout:", "5s", "Refused retry max:", "Read batch:"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("status lacks %q: %v %s\n%s", want, err, errOut, out)
		}
	}
	out, _, err = cli("status", "--json")
	var st api.DaemonStatus
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Settings.StallTimeout != 5 || st.Cameras.Total != 1 {
		t.Errorf("status --json: %v %s", err, out)
	}
}

func TestCLIUsage(t *testing.T) {
	addr := freeAddr(t)
	for _, args := range [][]string{{"camera", "--help"}, {"camera", "help"}} {
		out, _, err := camCLI(args...)
		if err != nil || !strings.Contains(out, "add NAME URL") {
			t.Errorf("%v: %v %q", args, err, out)
		}
	}
	for _, args := range [][]string{{"camera", "ls", "--help"}, {"camera", "add", "-h"}, {"camera", "show", "--help"}, {"status", "--help"}, {"camera", "rm", "x", "--help"}} {
		out, errOut, err := camCLI(args...)
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "Usage: camd") || !strings.Contains(out, "-json") || errOut != "" {
			t.Errorf("%v: %v %q %q", args, err, out, errOut)
		}
	}
	for _, args := range [][]string{
		{"camera"}, {"camera", "frobnicate"}, {"camera", "add", "onlyname"},
		{"camera", "add", "a", "rtsp://u:secret@h/x", "extra"}, {"camera", "show"}, {"camera", "ls", "x"},
		{"camera", "ls", "--bogus"}, {"status", "x"},
	} {
		_, errOut, err := camCLI(append(args, "--api", addr)...)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errOut, "Usage: camd") {
			t.Errorf("%v: %v %q, want usage and exit status 2", args, err, errOut)
		}
		if strings.Contains(errOut, "secret") || strings.Contains(errOut, "rtsp://") {
			t.Errorf("%v: usage error echoes the URL: %q", args, errOut)
		}
	}
}

func TestCLIToken(t *testing.T) {
	d := startCamDaemon(t, true)
	t.Setenv("CAMD_TOKEN", "")
	empty := t.TempDir()

	_, errOut, err := camCLI("camera", "ls", "--api", d.addr, "--data-dir", empty)
	if !errors.Is(err, errSilent) || !strings.HasPrefix(errOut, "camd: missing or wrong API token") || !strings.Contains(errOut, "--token") {
		t.Errorf("without token: %v %q", err, errOut)
	}
	if strings.Contains(errOut, d.token) {
		t.Error("the token was printed")
	}
	// From the data dir's token file.
	if _, errOut, err := camCLI("camera", "ls", "--api", d.addr, "--data-dir", d.dir); err != nil {
		t.Errorf("with --data-dir: %v %q", err, errOut)
	}
	if _, errOut, err := camCLI("status", "--api", d.addr, "--token", d.token, "--data-dir", empty); err != nil {
		t.Errorf("with --token: %v %q", err, errOut)
	}
	if _, _, err := camCLI("status", "--api", d.addr, "--token", "wrong", "--data-dir", d.dir); err == nil {
		t.Error("--token must win over the token file")
	}
	t.Setenv("CAMD_TOKEN", d.token)
	if _, errOut, err := camCLI("status", "--api", d.addr, "--data-dir", empty); err != nil {
		t.Errorf("with CAMD_TOKEN: %v %q", err, errOut)
	}
}

// A camera URL's password appears in no CLI output, API response or log
// line, on success and on every error path.
func TestCLISecretNeverShown(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 2, NoUDP: true, User: "user", Pass: "secret"})
	d := startCamDaemon(t, false)
	url := strings.Replace(s.URL(1), "rtsp://", "rtsp://user:secret@", 1)
	wrong := strings.Replace(s.URL(2), "rtsp://", "rtsp://user:secretwrong@", 1)
	a := []string{"--api", d.addr}

	var all strings.Builder
	cli := func(args ...string) error {
		out, errOut, err := camCLI(append(args, a...)...)
		all.WriteString(out)
		all.WriteString(errOut)
		if err != nil {
			all.WriteString(err.Error())
		}
		return err
	}
	if err := cli("camera", "add", "cam1", url); err != nil {
		t.Fatalf("add: %v\n%s", err, all.String())
	}
	c := camWait(t, d, "cam1", "RUNNING", 60*time.Second)
	if c.URL != strings.Replace(url, "secret", "xxxxx", 1) {
		t.Errorf("URL shown as %q", c.URL)
	}
	// A camera whose password is wrong fails, and its error is shown.
	_ = cli("camera", "add", "cam2", wrong)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, _, _ := camCLI(append([]string{"camera", "show", "cam2", "--json"}, a...)...)
		var c2 api.CameraJSON
		if json.Unmarshal([]byte(out), &c2) == nil && c2.LastError != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"camera", "add", "cam1", url},                                     // duplicate
		{"camera", "add", "cam 3", url},                                    // bad name
		{"camera", "add", "cam3", strings.Replace(url, "rtsp", "http", 1)}, // bad scheme
		{"camera", "add", "cam3", url + "/" + strings.Repeat("x", 2100)},   // too long
		{"camera", "add", "cam3", url, "--transport", "carrier-pigeon"},
		{"camera", "add", "cam3", url, "extra"},
		{"camera", "ls"}, {"camera", "ls", "--json"},
		{"camera", "show", "cam1"}, {"camera", "show", "cam1", "--json"},
		{"camera", "show", "cam2"}, {"camera", "show", "cam2", "--json"},
		{"camera", "restart", "cam1"}, {"camera", "stop", "cam1", "--json"}, {"camera", "start", "cam1"},
		{"status"}, {"status", "--json"},
		{"camera", "rm", "cam2"},
	} {
		_ = cli(args...)
	}
	camWait(t, d, "cam1", "RUNNING", 60*time.Second)
	// The same through the API client directly.
	cl := api.NewClient(d.addr, "")
	defer cl.CloseIdleConnections()
	for _, path := range []string{"/api/v1/cameras", "/api/v1/cameras/cam1", "/api/v1/status"} {
		b, err := cl.Do(context.Background(), "GET", path, nil)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	_, err := cl.UpdateCamera(context.Background(), "cam1", device.Spec{URL: "ftp://user:secret@h/x"})
	if err == nil {
		t.Error("update to an ftp URL accepted")
	} else {
		all.WriteString(err.Error())
	}

	if strings.Contains(all.String(), "secret") {
		t.Errorf("the password was shown:\n%s", all.String())
	}
	logs := d.logs.String()
	if strings.Contains(logs, "secret") {
		t.Errorf("the password was logged:\n%s", logs)
	}
	if !strings.Contains(all.String(), "user:xxxxx@") || !strings.Contains(logs, "api request") {
		t.Errorf("test saw too little: output\n%s\nlogs\n%s", all.String(), logs)
	}
}

// TestCameraTableLastError checks that camera ls shows the last error of a
// camera that is down, and not that of a camera that runs again.
func TestCameraTableLastError(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	writeCameraTable(&b, []api.CameraJSON{
		{Name: "up", State: "RUNNING", LastError: "no video frame for 1m0s", StateSince: now},
		{Name: "door", State: "REFUSED", LastError: "describe: bad status code: 401 (Unauthorized)", StateSince: now},
	}, now)
	lines := strings.Split(b.String(), "\n")
	if strings.Contains(lines[1], "no video frame") || !strings.HasSuffix(strings.TrimSpace(lines[1]), "-") {
		t.Errorf("a RUNNING camera shows its old error:\n%s", b.String())
	}
	if !strings.Contains(lines[2], "401") {
		t.Errorf("a REFUSED camera does not show why:\n%s", b.String())
	}
}

// TestCLIAddUntrustedCertificate adds an rtsps:// GStreamer camera whose
// self-signed certificate does not verify: camera add says so with the
// fingerprint and the flag that pins it, and the pinned camera runs.
func TestCLIAddUntrustedCertificate(t *testing.T) {
	pemFile, der := gstcam.SelfSigned(t, "camera.local")
	cam := gstcam.Start(t, gstcam.Options{TLSPEM: pemFile})
	d := startCamDaemon(t, false)
	url := cam.URL("rtsps", "", "", "")
	_, errOut, err := camCLI("camera", "add", "door", url, "--api", d.addr)
	if err != nil {
		t.Fatalf("add: %v %s", err, errOut)
	}
	fp := stream.Fingerprint(der)
	if !strings.Contains(errOut, fp) || !strings.Contains(errOut, "--tls-fingerprint") {
		t.Fatalf("add of an untrusted rtsps camera does not give its fingerprint %s and the flag:\n%s", fp, errOut)
	}
	if _, errOut, err := camCLI("camera", "rm", "door", "--api", d.addr); err != nil {
		t.Fatalf("rm: %v %s", err, errOut)
	}
	if _, errOut, err := camCLI("camera", "add", "door", url, "--tls-fingerprint", fp, "--api", d.addr); err != nil || errOut != "" {
		t.Fatalf("add --tls-fingerprint: %v %s", err, errOut)
	}
	camWait(t, d, "door", "RUNNING", 30*time.Second)
	out, _, err := camCLI("camera", "show", "door", "--api", d.addr)
	if err != nil || !strings.Contains(out, "certificate pinned") {
		t.Fatalf("show: %v\n%s", err, out)
	}
}
