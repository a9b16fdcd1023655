package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
)

// fuzzEnv is a real Server over a real Manager and store whose cameras
// never touch the network: the fuzzer makes up host names.
type fuzzEnv struct {
	st   *store.Store
	m    *device.Manager
	srv  *Server
	h    http.Handler
	logs *testutil.LogBuffer
	// base holds the cameras every input starts from, by ID.
	base map[string]store.Camera
}

// idleRead stands in for stream.Read: it connects nowhere and waits to be
// cancelled.
func idleRead(ctx context.Context, _ stream.Options) error {
	<-ctx.Done()
	return ctx.Err()
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	fe := &fuzzEnv{logs: &testutil.LogBuffer{}, base: map[string]store.Camera{}}
	log := slog.New(slog.NewTextHandler(fe.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := store.Open(filepath.Join(tb.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	fe.st = st
	tb.Cleanup(func() { _ = st.Close() })
	// Nothing may change on its own while an input runs: no camera
	// stalls, crashes or is restarted during a fuzzing session.
	hour := time.Hour
	set := device.Settings{StallTimeout: hour, FlapDebounce: hour, CrashedAfter: hour, ForceRestartAfter: hour}
	m, err := device.NewManager(device.Config{Store: st, Settings: set, Logger: log, Read: idleRead})
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	fe.m = m
	tb.Cleanup(func() { _ = m.Close() })
	srv, err := New(Config{Manager: m, Listen: "127.0.0.1:0", Version: "fuzz", Logger: log, MaxBodyBytes: 4096})
	if err != nil {
		tb.Fatal(err)
	}
	fe.srv = srv
	// Run is never called: requests go straight to the handler.
	tb.Cleanup(func() { _ = srv.Close() })
	fe.h = srv.srv.Handler
	for _, c := range []struct {
		name, url string
		start     bool
	}{
		{"cam1", "rtsp://admin:base1secret@127.0.0.1:1/a", false},
		{"cam2", "rtsp://127.0.0.1:1/b", false},
		{"cam3", "rtsp://viewer:base3secret@127.0.0.1:1/c", true},
	} {
		v, err := m.Add(context.Background(), device.Spec{Name: c.name, URL: c.url}, c.start)
		if err != nil {
			tb.Fatal(err)
		}
		rec, err := st.Camera(v.ID)
		if err != nil {
			tb.Fatal(err)
		}
		fe.base[v.ID] = rec
	}
	return fe
}

// snapshot is what the store and the Manager hold.
func (fe *fuzzEnv) snapshot() (string, error) {
	recs, err := fe.st.Cameras()
	if err != nil {
		return "", err
	}
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("%s %q %q %s %s %d %q", r.ID, r.Name, r.URL, r.Transport, r.Status, r.StatusUpdatedAt.UnixNano(), r.LastError))
	}
	for _, v := range fe.m.List() {
		lines = append(lines, fmt.Sprintf("live %s %q %q %s", v.ID, v.Name, v.URL, v.Transport))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// restore brings the cameras back to the base set after an input changed
// them.
func (fe *fuzzEnv) restore() error {
	ctx := context.Background()
	for _, v := range fe.m.List() {
		b, ok := fe.base[v.ID]
		if !ok {
			if err := fe.m.Remove(ctx, v.Name); err != nil {
				return fmt.Errorf("restore: remove %q: %w", v.Name, err)
			}
			continue
		}
		rec, err := fe.st.Camera(v.ID)
		if err != nil {
			return err
		}
		if rec.Name != b.Name || rec.URL != b.URL || rec.Transport != b.Transport {
			if _, err := fe.m.Update(ctx, v.Name, device.Spec{Name: b.Name, URL: b.URL, Transport: b.Transport}); err != nil {
				return fmt.Errorf("restore: update %q: %w", v.Name, err)
			}
		}
	}
	return nil
}

// jsonText is s as it appears inside a JSON string.
func jsonText(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(buf.String()), `"`), `"`)
}

// strs collects every key and string value of a decoded JSON value.
func strs(v any, keys, vals *[]string, urls *[]string) {
	switch x := v.(type) {
	case string:
		*vals = append(*vals, x)
	case []any:
		for _, e := range x {
			strs(e, keys, vals, urls)
		}
	case map[string]any:
		for k, e := range x {
			*keys = append(*keys, k)
			if s, ok := e.(string); ok && strings.EqualFold(k, "url") {
				*urls = append(*urls, s)
			}
			strs(e, keys, vals, urls)
		}
	}
}

// FuzzCameraRequest sends arbitrary bodies to POST /api/v1/cameras and to
// PUT and PATCH /api/v1/cameras/{name}, through the real handler chain of a
// real Server, and checks that the API never answers 5xx or panics, that a
// rejected request changes nothing in the store or the Manager, that every
// error is a one-line JSON error, and that neither the response nor the
// log ever holds the password of a submitted URL.
//
// The first "PASSWORD" in the body is replaced by "Zq" + pw + "Qz"
// (JSON-escaped), a password the test can look for without mistaking
// ordinary words of a response for it.
func FuzzCameraRequest(f *testing.F) {
	seeds := []struct {
		op     uint8
		target string
		body   string
		pw     string
	}{
		{0, "", `{"name":"new1","url":"rtsp://user:PASSWORD@127.0.0.1:1/x","start":false}`, "secret"},
		{0, "", `{"name":"new2","url":"rtsps://user:PASSWORD@cam.example/x","transport":"udp"}`, "p@ss/w:rd"},
		{0, "", `{"name":"new3","url":"rtsp://user:PASSWORD@cam/x","transport":"auto","start":true}`, "a%40b"},
		{0, "", `{"name":"cam1","url":"rtsp://user:PASSWORD@127.0.0.1:1/x"}`, "dup"},
		{0, "", `{"name":"bad name","url":"rtsp://user:PASSWORD@127.0.0.1:1/x"}`, "secret"},
		{0, "", `{"name":"x","url":"http://user:PASSWORD@127.0.0.1:1/x"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@127.0.0.1:port/x"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@127.0.0.1:1/%zz"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@/x"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/a b"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x","transport":"sctp"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x","bogus":1}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x"}{}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x"`, "secret"},
		{0, "", `{"name":"x","url":["rtsp://user:PASSWORD@h/x"]}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x","start":"yes"}`, "secret"},
		{0, "", `{"name":"x","URL":"rtsp://user:PASSWORD@h/x","Start":false}`, "secret"},
		{0, "", `{"name":1e999,"url":"rtsp://user:PASSWORD@h/x"}`, "secret"},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x\u0000"}`, "secret"},
		{0, "", `[]`, ""},
		{0, "", `null`, ""},
		{0, "", ``, ""},
		{0, "", `{`, ""},
		{0, "", "\xff\xfe", ""},
		{0, "", `{"name":"x","url":"rtsp://user:PASSWORD@h/x"}`, "\"quote\\back\x01ctl\xffbad"},
		{0 | 6<<2, "", `{"name":"new1","url":"rtsp://user:PASSWORD@127.0.0.1:1/x"}`, "secret"},
		{0 | 7<<2, "", `{"name":"new1","url":"rtsp://user:PASSWORD@127.0.0.1:1/x"}`, "secret"},
		{1, "cam1", `{"name":"cam1","url":"rtsp://admin:PASSWORD@127.0.0.1:1/moved","transport":"udp"}`, "newsecret"},
		{1, "cam2", `{"url":"rtsp://u:PASSWORD@127.0.0.1:1/b"}`, "secret"},
		{1, "cam3", `{"name":"renamed","url":"rtsp://viewer:PASSWORD@127.0.0.1:1/c"}`, "secret"},
		{1, "cam1", `{"name":"cam2","url":"rtsp://admin:PASSWORD@127.0.0.1:1/a"}`, "secret"},
		{1, "cam1", `{}`, ""},
		{1, "nope", `{"url":"rtsp://u:PASSWORD@h/x"}`, "secret"},
		{1, "a/b", `{"url":"rtsp://u:PASSWORD@h/x"}`, "secret"},
		{1, "cam1", `{"url":"rtsp://u:PASSWORD@h/x","name":"../x"}`, "secret"},
		{2, "cam1", `{"transport":"udp"}`, ""},
		{2, "cam2", `{"transport":"udp"}`, ""},
		{2, "cam2", `{"name":"cam2b"}`, ""},
		{2, "cam1", `{"url":"rtsp://admin:PASSWORD@127.0.0.1:1/a2"}`, "secret2"},
		{2, "cam3", `{"name":"cam1"}`, ""},
		{2, "cam3", `{"url":null,"name":null,"transport":null}`, ""},
		{2, "cam2", `{"url":"rtsp://x:PASSWORD@h:99999/x#frag"}`, "secret"},
		{2, "", `{"url":"rtsp://u:PASSWORD@h/x"}`, "secret"},
	}
	for _, s := range seeds {
		f.Add(s.op, s.target, []byte(s.body), s.pw)
	}
	fe := newFuzzEnv(f)

	f.Fuzz(func(t *testing.T, op uint8, target string, body []byte, pw string) {
		marker := "Zq" + pw + "Qz"
		enc := jsonText(marker)
		// What a JSON decoder makes of the marker (invalid UTF-8 becomes
		// U+FFFD).
		var dec string
		if err := json.Unmarshal([]byte(`"`+enc+`"`), &dec); err != nil {
			t.Fatalf("marker %q does not round-trip: %v", marker, err)
		}
		body = bytes.Replace(body, []byte("PASSWORD"), []byte(enc), 1)

		method, path := "POST", "/api/v1/cameras"
		switch op % 3 {
		case 1:
			method, path = "PUT", "/api/v1/cameras/"+url.PathEscape(target)
		case 2:
			method, path = "PATCH", "/api/v1/cameras/"+url.PathEscape(target)
		}
		ct := "application/json"
		switch op >> 2 & 7 {
		case 5:
			ct = "application/json; charset=utf-8"
		case 6:
			ct = "text/plain"
		case 7:
			ct = `application/json; charset="`
		}

		before, err := fe.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		// Every input starts from the base set, even one that fails or
		// is skipped.
		defer func() {
			if now, err := fe.snapshot(); err != nil || now != before {
				if err := fe.restore(); err != nil {
					t.Error(err)
				}
			}
			if now, err := fe.snapshot(); err != nil || now != before {
				t.Errorf("cameras not restored (%v):\nwant:\n%s\nhave:\n%s", err, before, now)
			}
		}()
		logAt := len(fe.logs.String())
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		fe.h.ServeHTTP(rec, req)
		resp := rec.Result()
		out, _ := io.ReadAll(resp.Body)
		code := resp.StatusCode
		after, err := fe.snapshot()
		if err != nil {
			t.Fatal(err)
		}
		logs := fe.logs.String()[logAt:]

		if code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, code, out)
		}
		if code >= 300 {
			var eb errorBody
			if err := json.Unmarshal(out, &eb); err != nil || eb.Error == "" || strings.ContainsAny(eb.Error, "\n\r") || !utf8.ValidString(eb.Error) {
				t.Fatalf("%s %s %q: %d with error body %q, want {\"error\": one line}", method, path, body, code, out)
			}
			if before != after {
				t.Fatalf("%s %s %q was refused (%d %s) but changed the cameras:\nbefore:\n%s\nafter:\n%s", method, path, body, code, out, before, after)
			}
		} else {
			var c CameraJSON
			if err := json.Unmarshal(out, &c); err != nil || c.ID == "" {
				t.Fatalf("%s %s %q: %d with body %q, want a camera", method, path, body, code, out)
			}
			if method == "POST" && code == http.StatusCreated {
				var ar AddRequest
				_ = json.Unmarshal(body, &ar)
				if got, err := fe.st.Camera(c.ID); err != nil || got.Name != ar.Name || got.URL != ar.URL {
					t.Fatalf("POST %q answered %s but stored %+v, %v", body, out, got, err)
				}
			}
		}

		// The marker's two ends catch a password shown whole or in part.
		if markerIsPassword(target, body, enc, dec, code < 300) {
			for _, half := range []string{"Zq", "Qz"} {
				leak := ""
				switch {
				case bytes.Contains(out, []byte(half)):
					leak = fmt.Sprintf("response %s", out)
				case strings.Contains(logs, half):
					leak = fmt.Sprintf("log:\n%s", logs)
				default:
					continue
				}
				t.Fatalf("%s %s %q: password %q shown, whole or in part: %s", method, path, body, dec, leak)
			}
		}
	})
}

// markerIsPassword reports whether the marker, and only the marker, stands
// in the body where no response or log may show it: anywhere in a body
// value when the request is refused (errors never echo values other than
// the names of existing cameras), in the password of a URL when it is
// accepted. Its two ends, "Zq" and "Qz", must occur nowhere else (not in a
// key, which errors name, nor in the path, whose camera name a 404 echoes).
func markerIsPassword(target string, body []byte, enc, dec string, accepted bool) bool {
	var keys, vals, urls []string
	var parsed any
	if json.Unmarshal(body, &parsed) == nil {
		strs(parsed, &keys, &vals, &urls)
	} else if accepted || !bytes.Contains(body, []byte(enc)) {
		return false
	} else {
		vals = []string{string(body)}
	}
	for _, half := range []string{"Zq", "Qz"} {
		n := 0
		for _, s := range vals {
			n += strings.Count(s, half)
		}
		if n != 1 || strings.Contains(target, half) || strings.Contains(strings.Join(keys, "\x00"), half) {
			return false
		}
	}
	if !accepted {
		return true
	}
	// The URL as an operator would type it: scheme://user:password@host...
	for _, s := range urls {
		i := strings.Index(s, ":"+dec+"@")
		if i < 0 {
			continue
		}
		scheme, user, ok := strings.Cut(s[:i], "://")
		if ok && scheme != "" && !strings.ContainsAny(user, ":/?#@") {
			return true
		}
	}
	return false
}
