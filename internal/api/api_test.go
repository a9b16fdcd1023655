package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

const deadURL = "rtsp://127.0.0.1:1/nothing"

func TestAddGetListDelete(t *testing.T) {
	e := newEnv(t)
	r := e.json("POST", "/api/v1/cameras", map[string]any{"name": "cam1", "url": deadURL, "start": false})
	if r.code != http.StatusCreated {
		t.Fatalf("add: %d %s", r.code, r.body)
	}
	if loc := r.hdr.Get("Location"); loc != "/api/v1/cameras/cam1" {
		t.Errorf("Location %q", loc)
	}
	c := r.camera(t)
	if c.Name != "cam1" || c.ID == "" || c.URL != deadURL || c.Transport != "tcp" || c.State != "STOPPED" || c.PersistedStatus != "stopped" {
		t.Errorf("added camera: %+v", c)
	}
	if c.Since.IsZero() || c.StateSince.IsZero() {
		t.Errorf("since fields missing: %+v", c)
	}
	// Every documented field is present in the JSON, zero values included.
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "id", "url", "transport", "state", "since", "state_since", "fps", "bitrate_bps",
		"reconnects_last_hour", "stalls_last_hour", "restarts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("camera JSON lacks %q: %s", k, r.body)
		}
	}

	e.add("cam0", deadURL, false)
	r = e.do("GET", "/api/v1/cameras", "", nil)
	var list []CameraJSON
	if err := json.Unmarshal(r.body, &list); err != nil || r.code != 200 {
		t.Fatalf("list: %d %s %v", r.code, r.body, err)
	}
	if len(list) != 2 || list[0].Name != "cam0" || list[1].Name != "cam1" {
		t.Errorf("list: %+v", list)
	}

	r = e.do("GET", "/api/v1/cameras/cam1", "", nil)
	if r.code != 200 || r.camera(t).ID != c.ID {
		t.Errorf("get: %d %s", r.code, r.body)
	}
	r = e.do("GET", "/api/v1/cameras/nope", "", nil)
	if r.code != http.StatusNotFound || !strings.Contains(r.errMsg(), "no such camera") {
		t.Errorf("get unknown: %d %s", r.code, r.body)
	}

	r = e.do("DELETE", "/api/v1/cameras/cam1", "", nil)
	if r.code != http.StatusNoContent {
		t.Errorf("delete: %d %s", r.code, r.body)
	}
	if r = e.do("GET", "/api/v1/cameras/cam1", "", nil); r.code != http.StatusNotFound {
		t.Errorf("get after delete: %d", r.code)
	}
	if r = e.do("DELETE", "/api/v1/cameras/cam1", "", nil); r.code != http.StatusNotFound {
		t.Errorf("delete twice: %d", r.code)
	}
	recs, err := e.st.Cameras()
	if err != nil || len(recs) != 1 || recs[0].Name != "cam0" {
		t.Errorf("store after delete: %+v %v", recs, err)
	}
}

func TestAddStartsByDefault(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/api/v1/cameras", "application/json; charset=utf-8", []byte(`{"name":"cam1","url":"`+deadURL+`","transport":"udp"}`))
	if r.code != http.StatusCreated {
		t.Fatalf("add: %d %s", r.code, r.body)
	}
	c := r.camera(t)
	if c.PersistedStatus != "running" || c.Transport != "udp" {
		t.Errorf("camera added without start flag: %+v", c)
	}
	// The supervisor takes a moment to leave STOPPED.
	ok := testutil.Poll(20*time.Second, func() bool {
		c = e.do("GET", "/api/v1/cameras/cam1", "", nil).camera(t)
		return c.State != "STOPPED"
	})
	if !ok {
		t.Errorf("camera added without start flag stays STOPPED")
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	orig := e.add("cam1", "rtsp://user:pw@127.0.0.1:1/a", false)

	// PUT replaces; the name defaults to the path's.
	r := e.json("PUT", "/api/v1/cameras/cam1", map[string]any{"url": "rtsp://127.0.0.1:2/b", "transport": "auto"})
	if r.code != 200 {
		t.Fatalf("put: %d %s", r.code, r.body)
	}
	c := r.camera(t)
	if c.ID != orig.ID || c.Name != "cam1" || c.URL != "rtsp://127.0.0.1:2/b" || c.Transport != "auto" {
		t.Errorf("after put: %+v", c)
	}

	// PATCH renames and keeps the rest.
	r = e.json("PATCH", "/api/v1/cameras/cam1", map[string]any{"name": "door"})
	if r.code != 200 {
		t.Fatalf("patch: %d %s", r.code, r.body)
	}
	c = r.camera(t)
	if c.ID != orig.ID || c.Name != "door" || c.URL != "rtsp://127.0.0.1:2/b" || c.Transport != "auto" {
		t.Errorf("after patch: %+v", c)
	}
	rec, err := e.st.Camera(orig.ID)
	if err != nil || rec.Name != "door" || rec.URL != "rtsp://127.0.0.1:2/b" {
		t.Errorf("store after patch: %+v %v", rec, err)
	}

	// A PATCH without a URL keeps the stored one byte for byte, secrets
	// and ':…@' in the path included, never the redacted view of it.
	for _, u := range []string{
		"rtsp://u:secret@127.0.0.1:2/b",
		"rtsp://127.0.0.1:2/user=admin&password=secret&channel=1?token=secret2",
		"rtsp://127.0.0.1:2/live/ch0:main@hd",
	} {
		r = e.json("PUT", "/api/v1/cameras/door", map[string]any{"url": u})
		if r.code != 200 || strings.Contains(string(r.body), "secret") {
			t.Fatalf("put with password: %d %s", r.code, r.body)
		}
		r = e.json("PATCH", "/api/v1/cameras/door", map[string]any{"transport": "udp"})
		if r.code != http.StatusOK || strings.Contains(string(r.body), "secret") || r.camera(t).Transport != "udp" {
			t.Errorf("transport-only patch of %s: %d %s", u, r.code, r.body)
		}
		rec, _ = e.st.Camera(orig.ID)
		if rec.URL != u || rec.Transport != "udp" {
			t.Errorf("transport-only patch: stored URL is %s (%s), want %s", rec.URL, rec.Transport, u)
		}
	}
	before := e.snapshot()
	r = e.json("PATCH", "/api/v1/cameras/door", map[string]any{"url": ""})
	if r.code != http.StatusBadRequest || !strings.Contains(r.errMsg(), "url must not be empty") {
		t.Errorf("patch with an empty url: %d %s", r.code, r.body)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused patch changed the store:\n%s\n---\n%s", before, after)
	}

	if r = e.json("PUT", "/api/v1/cameras/nope", map[string]any{"url": deadURL}); r.code != http.StatusNotFound {
		t.Errorf("put unknown: %d %s", r.code, r.body)
	}
	if r = e.json("PATCH", "/api/v1/cameras/nope", map[string]any{"url": deadURL}); r.code != http.StatusNotFound {
		t.Errorf("patch unknown: %d %s", r.code, r.body)
	}
	e.add("other", deadURL, false)
	before = e.snapshot()
	if r = e.json("PATCH", "/api/v1/cameras/door", map[string]any{"name": "other", "url": deadURL}); r.code != http.StatusConflict {
		t.Errorf("rename onto another camera: %d %s", r.code, r.body)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused rename changed the store:\n%s\n---\n%s", before, after)
	}
}

func (e *env) waitState(name, want string, d time.Duration) CameraJSON {
	e.t.Helper()
	var c CameraJSON
	ok := testutil.Poll(d, func() bool {
		r := e.do("GET", "/api/v1/cameras/"+name, "", nil)
		if r.code != 200 {
			return false
		}
		c = r.camera(e.t)
		return c.State == want
	})
	if !ok {
		e.t.Fatalf("camera %s is %s after %s, want %s (last error %q)", name, c.State, d, want, c.LastError)
	}
	return c
}

func TestStartStopRestart(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	e := newEnv(t)
	e.add("cam1", s.URL(1), false)

	r := e.do("POST", "/api/v1/cameras/cam1/start", "", nil)
	if r.code != 200 {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	if c := r.camera(t); c.PersistedStatus != "running" {
		t.Errorf("after start: %+v", c)
	}
	c := e.waitState("cam1", "RUNNING", 60*time.Second)
	// Frames take a moment to show in the rates.
	testutil.Poll(20*time.Second, func() bool {
		c = e.do("GET", "/api/v1/cameras/cam1", "", nil).camera(t)
		return c.FPS > 0 && c.BitrateBPS > 0 && c.Codec != ""
	})
	if c.FPS <= 0 || c.BitrateBPS <= 0 || c.Codec == "" || c.Resolution == "" || c.Width == 0 {
		t.Errorf("running camera lacks stats: %+v", c)
	}

	r = e.do("POST", "/api/v1/cameras/cam1/restart", "", nil)
	if r.code != 200 {
		t.Fatalf("restart: %d %s", r.code, r.body)
	}
	e.waitState("cam1", "RUNNING", 60*time.Second)
	if c := e.do("GET", "/api/v1/cameras/cam1", "", nil).camera(t); c.Restarts == 0 {
		t.Errorf("restart not counted: %+v", c)
	}

	r = e.do("POST", "/api/v1/cameras/cam1/stop", "", nil)
	if r.code != 200 {
		t.Fatalf("stop: %d %s", r.code, r.body)
	}
	e.waitState("cam1", "STOPPED", 30*time.Second)
	rec, err := e.st.Camera(c.ID)
	if err != nil || rec.Status != "stopped" {
		t.Errorf("stop not persisted: %+v %v", rec, err)
	}

	for _, a := range []string{"start", "stop", "restart"} {
		if r := e.do("POST", "/api/v1/cameras/nope/"+a, "", nil); r.code != http.StatusNotFound {
			t.Errorf("%s unknown camera: %d %s", a, r.code, r.body)
		}
		if r := e.do("GET", "/api/v1/cameras/cam1/"+a, "", nil); r.code != http.StatusMethodNotAllowed || r.hdr.Get("Allow") != "POST" {
			t.Errorf("GET %s: %d Allow=%q", a, r.code, r.hdr.Get("Allow"))
		}
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.StatusExtra = func() map[string]any { return map[string]any{"relay_readers": 3, "version": "shadowed"} }
	})
	e.add("a", deadURL, false)
	e.add("b", deadURL, false)
	r := e.do("GET", "/api/v1/status", "", nil)
	if r.code != 200 {
		t.Fatalf("status: %d %s", r.code, r.body)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "uptime_seconds", "started_at", "cameras", "open_fds", "memory", "goroutines", "settings", "relay_readers"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q: %s", k, r.body)
		}
	}
	var st DaemonStatus
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "test" {
		t.Errorf("version %q: StatusExtra must not override built-in fields", st.Version)
	}
	if string(st.Extra["relay_readers"]) != "3" || len(st.Extra) != 1 {
		t.Errorf("extra fields: %v", st.Extra)
	}
	if st.Cameras.Total != 2 || st.Cameras.ByState["STOPPED"] != 2 || len(st.Cameras.ByState) != len(device.States) {
		t.Errorf("camera counts: %+v", st.Cameras)
	}
	for _, s := range device.States {
		if _, ok := st.Cameras.ByState[s.String()]; !ok {
			t.Errorf("by_state lacks %s", s)
		}
	}
	if st.OpenFDs.Error == "" && (st.OpenFDs.Total == 0 || st.OpenFDs.Sockets == 0) {
		t.Errorf("open fds: %+v", st.OpenFDs)
	}
	if st.Memory.HeapAllocBytes == 0 || st.Goroutines == 0 || st.UptimeSeconds < 0 || st.StartedAt.IsZero() {
		t.Errorf("status: %+v", st)
	}
	if st.Settings.StallTimeout != 2 || st.Settings.Durations().StallTimeout != 2*time.Second {
		t.Errorf("settings: %+v", st.Settings)
	}
	// A SIGHUP changes settings; status shows the ones in force.
	set := testutil.FastSettings[device.Settings]()
	set.StallTimeout = 7 * time.Second
	e.m.SetSettings(set)
	r = e.do("GET", "/api/v1/status", "", nil)
	if err := json.Unmarshal(r.body, &st); err != nil || st.Settings.StallTimeout != 7 {
		t.Errorf("settings after change: %+v %v", st.Settings, err)
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	e.add("cam", "rtsp://127.0.0.1:1/x", false)
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/api/v1/nope", 404, ""},
		{"GET", "/api/v2/cameras", 404, ""},
		{"GET", "/nope", 404, ""},
		{"GET", "/api/v1/cameras/a/b/c", 404, ""},
		{"DELETE", "/api/v1/cameras", 405, "GET, HEAD, POST"},
		{"POST", "/api/v1/cameras/x", 405, "GET, HEAD, PUT, PATCH, DELETE"},
		{"POST", "/api/v1/status", 405, "GET, HEAD"},
		// Paths ServeMux would redirect with an empty body.
		{"GET", "/api", 404, ""},
		{"PATCH", "/api/v1/cameras/.", 404, ""},
		{"GET", "/api/v1/cameras/cam/../cam", 404, ""},
		{"DELETE", "/api/v1/cameras/%2E%2E", 404, ""},
		{"GET", "/api/v1//cameras", 404, ""},
		{"GET", "/api/v1/cameras/cam//", 404, ""},
	} {
		r := e.do(tc.method, tc.path, "", nil)
		if r.code != tc.code || r.hdr.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow=%q, want %d Allow=%q (%s)", tc.method, tc.path, r.code, r.hdr.Get("Allow"), tc.code, tc.allow, r.body)
		}
	}
}

func TestListenBusy(t *testing.T) {
	e := newEnv(t)
	_, err := New(Config{Manager: e.m, Listen: e.srv.Addr()})
	want := fmt.Sprintf("api: listen %s: address already in use", e.srv.Addr())
	if err == nil || err.Error() != want {
		t.Fatalf("second server on a busy port: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error does not wrap EADDRINUSE: %v", err)
	}
	// The first server is unaffected.
	if r := e.do("GET", "/api/v1/status", "", nil); r.code != 200 {
		t.Errorf("first server after the clash: %d", r.code)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a Manager succeeded")
	}
	e := newEnv(t)
	yes := true
	_, err := New(Config{Manager: e.m, Listen: "127.0.0.1:0", RequireToken: &yes})
	if err == nil || !strings.Contains(err.Error(), "token is required") {
		t.Errorf("required token without a token: %v", err)
	}
	// A mount that collides with an API route is an error, not a panic,
	// and leaves no listener behind.
	_, err = New(Config{Manager: e.m, Listen: "127.0.0.1:0", Mount: map[string]http.Handler{"GET /api/v1/status": http.NotFoundHandler()}})
	if err == nil {
		t.Error("colliding mount accepted")
	}
}

func TestCloseWithoutRun(t *testing.T) {
	e := newEnv(t)
	s, err := New(Config{Manager: e.m, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The port is free again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	ln.Close()
	if err := s.Run(t.Context()); err == nil {
		t.Error("Run after Close succeeded")
	}
}
