package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/devicetest"
	"github.com/camd/camd/store"
)

// env is a real api.Server on 127.0.0.1:0 over a real Manager and store.
type env struct {
	t    testing.TB
	st   *store.Store
	m    *device.Manager
	srv  *Server
	logs *testutil.LogBuffer
	base string
	hc   *http.Client
	done chan error
	stop context.CancelFunc
}

func newEnv(t testing.TB, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &testutil.LogBuffer{}}
	d := devicetest.Start(t, devicetest.Options{Logs: e.logs})
	e.st, e.m = d.Store, d.Manager
	e.serve(Config{}, mod...)
	return e
}

// serve starts the Server on the Manager with cfg, its Manager, listen
// address, version and logger filled in, and mod applied; it stops at
// cleanup, before the Manager and the store close.
func (e *env) serve(cfg Config, mod ...func(*Config)) {
	t := e.t
	t.Helper()
	cfg.Manager, cfg.Listen, cfg.Version, cfg.Logger = e.m, "127.0.0.1:0", "test", testutil.Logger(e.logs)
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.base = "http://" + srv.Addr()
	// A redirect is an answer to check, never to follow: the API has none.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}, CheckRedirect: noRedirect}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- srv.Run(ctx) }()
	t.Cleanup(e.close)
}

func (e *env) close() {
	if e.stop == nil {
		return
	}
	e.hc.CloseIdleConnections()
	e.stop()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Errorf("Run did not return 30 s after its context was cancelled")
	}
	e.stop = nil
}

// response is a decoded answer.
type response struct {
	code int
	hdr  http.Header
	body []byte
}

func (r response) errMsg() string {
	var eb errorBody
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error
}

func (r response) camera(t testing.TB) CameraJSON {
	t.Helper()
	var c CameraJSON
	if err := json.Unmarshal(r.body, &c); err != nil {
		t.Fatalf("decode camera %s: %v", r.body, err)
	}
	return c
}

// req sends a request with the given Host header (empty: the address),
// content type and headers, and checks that every error answer is the
// API's one-line JSON.
func (e *env) req(method, path, host, ct string, body []byte, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			e.t.Errorf("%s %s: %d with content type %q, want JSON", method, path, resp.StatusCode, ct)
		}
		var eb errorBody
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == "" || strings.Contains(eb.Error, "\n") {
			e.t.Errorf("%s %s: %d error body %q is not {\"error\": one line}", method, path, resp.StatusCode, b)
		}
	}
	return response{code: resp.StatusCode, hdr: resp.Header, body: b}
}

// do sends a raw request; body is sent as is with content type ct when
// body is not nil.
func (e *env) do(method, path, ct string, body []byte, hdr ...string) response {
	e.t.Helper()
	return e.req(method, path, "", ct, body, hdr...)
}

func (e *env) json(method, path string, v any) response {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(method, path, "application/json", b)
}

func (e *env) add(name, url string, start bool) CameraJSON {
	e.t.Helper()
	r := e.json("POST", "/api/v1/cameras", map[string]any{"name": name, "url": url, "start": start})
	if r.code != http.StatusCreated {
		e.t.Fatalf("add %s: %d %s", name, r.code, r.body)
	}
	return r.camera(e.t)
}

// snapshot is what the store and the Manager hold, for "nothing changed"
// checks.
func (e *env) snapshot() string {
	e.t.Helper()
	recs, err := e.st.Cameras()
	if err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, r.ID+" "+r.Name+" "+r.URL+" "+r.Transport+" "+string(r.Status))
	}
	for _, v := range e.m.List() {
		lines = append(lines, "live "+v.ID+" "+v.Name+" "+v.URL+" "+v.Transport)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
