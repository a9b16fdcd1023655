package observe

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/devicetest"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// scrape GETs /metrics from h.
func scrape(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	return string(b)
}

// sample returns the value of the series name{labels} (labels as written
// by the exposition format, e.g. `camera="cam1",state="RUNNING"`).
func sample(text, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// metricsEnv is two simulator cameras on a real Manager, an FD watch and
// the metrics handler.
func metricsEnv(t *testing.T) (*env, *sim.Server, http.Handler) {
	t.Helper()
	s := simtest.Start(t, sim.Config{Cameras: 2})
	e := newEnv(t)
	e.add("cam1", s.URL(1), "")
	e.add("cam2", strings.Replace(s.URL(2), "rtsp://", "rtsp://admin:hunter2@", 1), "udp")
	fd := NewFDWatch(FDWatchConfig{Interval: 50 * time.Millisecond, Logger: testutil.Logger(&testutil.LogBuffer{}), CamerasConnected: ConnectedCameras(e.m)})
	runWatch(t, fd)
	waitFirstCount(t, fd)
	h := MetricsHandler(MetricsConfig{
		Manager:      e.m,
		FD:           fd,
		StoreWrites:  e.st.WriteCount,
		RelayReaders: func(string) int { return 2 },
		Version:      "v1.2.3-test",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return e, s, h
}

func TestMetricsPromtoolCheckIsClean(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testutil.SkipMissing(t, "promtool", "apt-get install prometheus")
	}
	e, _, h := metricsEnv(t)
	devicetest.WaitAll(t, e.m, device.StateRunning, 60*time.Second)
	text := scrape(t, h)

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}

	for _, series := range []string{
		`camd_build_info{version="v1.2.3-test"}`,
		`camd_camera_state{camera="cam1",state="RUNNING"}`,
		`camd_camera_relay_readers{camera="cam1"}`,
		`camd_cameras{state="RUNNING"}`,
		`camd_open_fds{kind="sockets"}`,
		`camd_expected_fds`,
		`camd_fds_degraded`,
		`camd_store_write_transactions_total`,
		`process_open_fds`,
		`go_goroutines`,
	} {
		if _, ok := sample(text, series); !ok {
			t.Errorf("no series %s", series)
		}
	}
	for _, cam := range []string{"cam1", "cam2"} {
		lbl := `{camera="` + cam + `"}`
		for _, name := range []string{"frames_total", "keyframes_total", "bytes_total", "last_frame_timestamp_seconds", "fps", "bitrate_bytes_per_second"} {
			if v, ok := sample(text, "camd_camera_"+name+lbl); !ok || v <= 0 {
				t.Errorf("camd_camera_%s%s = %v, %v; want > 0 for a RUNNING camera", name, lbl, v, ok)
			}
		}
		for _, name := range []string{"reconnects_total", "stalls_total", "restarts_total", "crashes_total"} {
			if _, ok := sample(text, "camd_camera_"+name+lbl); !ok {
				t.Errorf("no camd_camera_%s%s", name, lbl)
			}
		}
		ones := 0
		for _, st := range device.States {
			v, ok := sample(text, `camd_camera_state{camera="`+cam+`",state="`+st.String()+`"}`)
			if !ok {
				t.Errorf("%s: no state series for %s", cam, st)
			}
			ones += int(v)
		}
		if ones != 1 {
			t.Errorf("%s: %d state series at 1, want exactly 1", cam, ones)
		}
	}
	if ts, _ := sample(text, `camd_camera_last_frame_timestamp_seconds{camera="cam1"}`); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last frame timestamp %v is not recent", ts)
	}
	if strings.Contains(text, "hunter2") || strings.Contains(text, "rtsp://") {
		t.Error("metrics reveal a camera URL")
	}
}

func TestMetricsStateSeriesFollowAStall(t *testing.T) {
	e, s, h := metricsEnv(t)
	devicetest.WaitAll(t, e.m, device.StateRunning, 60*time.Second)
	running := `camd_camera_state{camera="cam1",state="RUNNING"}`
	if v, _ := sample(scrape(t, h), running); v != 1 {
		t.Fatalf("%s = %v before the stall", running, v)
	}
	if err := s.SetFault(1, sim.FaultStall, 0); err != nil {
		t.Fatal(err)
	}
	var text string
	// StallTimeout is 2 s.
	if !testutil.Poll(30*time.Second, func() bool { text = scrape(t, h); v, _ := sample(text, running); return v == 0 }) {
		t.Fatalf("%s still 1 30 s after the camera stalled", running)
	}
	other := ""
	for _, st := range device.States {
		if v, _ := sample(text, `camd_camera_state{camera="cam1",state="`+st.String()+`"}`); v == 1 {
			other = st.String()
		}
	}
	t.Logf("stalled camera's state series: %s", other)
	if other == "" || other == "RUNNING" {
		t.Errorf("no other state at 1 while stalled")
	}
	if err := s.SetFault(1, sim.FaultNone, 0); err != nil {
		t.Fatal(err)
	}
	if !testutil.Poll(60*time.Second, func() bool { text = scrape(t, h); v, _ := sample(text, running); return v == 1 }) {
		t.Fatalf("%s not back to 1 60 s after the stall cleared", running)
	}
	if v, _ := sample(text, `camd_camera_stalls_total{camera="cam1"}`); v < 1 {
		t.Errorf("camd_camera_stalls_total = %v after a stall", v)
	}
	if v, _ := sample(text, `camd_camera_state{camera="cam2",state="RUNNING"}`); v != 1 {
		t.Errorf("cam2, never stalled, is not RUNNING: %v", v)
	}
}

func TestCheckNOFILE(t *testing.T) {
	logs := &testutil.LogBuffer{}
	log := testutil.Logger(logs)
	checkNOFILE(256, 4096, 64, log)
	warns := logs.Lines("level=WARN", "limit on open files")
	if len(warns) != 1 || !strings.Contains(warns[0], "need=576") || !strings.Contains(warns[0], "soft_limit=256") {
		t.Errorf("256 for 64 cameras: %q", logs)
	}
	logs2 := &testutil.LogBuffer{}
	checkNOFILE(1024, 4096, 64, testutil.Logger(logs2))
	if w := logs2.Lines("level=WARN"); len(w) != 0 {
		t.Errorf("1024 for 64 cameras warned: %q", w)
	}
	CheckNOFILE(64, log) // the real limit: must not panic
}

// Scrapes and health checks leave no descriptor or goroutine behind.
func TestScrapesLeakNothing(t *testing.T) {
	e, _, h := metricsEnv(t)
	devicetest.WaitAll(t, e.m, device.StateRunning, 60*time.Second)
	healthz, readyz := HealthHandlers(e.m, 100*time.Millisecond, nil)
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.Handle("/healthz", healthz)
	mux.Handle("/readyz", readyz)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	hit := func(n int) {
		for i := range n {
			path := []string{"/metrics", "/healthz", "/readyz"}[i%3]
			resp, err := client.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", path, resp.StatusCode)
			}
		}
	}
	hit(30) // warm up: lazily opened things open now
	settle := func() (int, int) {
		var fds, gs int
		prev, same := -1, 0
		testutil.Poll(20*time.Second, func() bool {
			c, err := procfd.Count()
			if err != nil {
				t.Fatal(err)
			}
			fds, gs = c.Total, runtime.NumGoroutine()
			if fds+gs*1000 == prev {
				same++
			} else {
				prev, same = fds+gs*1000, 0
			}
			return same >= 25
		})
		return fds, gs
	}
	fd0, g0 := settle()
	hit(600)
	fd1, g1 := settle()
	t.Logf("600 requests: FDs %d → %d, goroutines %d → %d", fd0, fd1, g0, g1)
	if fd1 > fd0+5 {
		t.Errorf("FDs %d → %d after 600 requests", fd0, fd1)
	}
	if g1 > g0+10 {
		t.Errorf("goroutines %d → %d after 600 requests", g0, g1)
	}
}
