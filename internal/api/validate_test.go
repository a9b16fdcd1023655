package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every rejected request is a 4xx with a one-line JSON error (checked by
// env.do) and changes nothing in the store or the Manager.
func TestRejectedInputChangesNothing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	e.add("existing", "rtsp://user:pw@127.0.0.1:1/a", false)

	body := func(v map[string]any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cam := func(name, url string) []byte { return body(map[string]any{"name": name, "url": url, "start": false}) }
	const ok = "rtsp://127.0.0.1:1/x"
	longURL := "rtsp://127.0.0.1:1/" + strings.Repeat("a", 2048)
	const ctJSON = "application/json"

	cases := []struct {
		name         string
		method, path string
		ct           string
		body         []byte
		code         int
		msg          string
	}{
		{"http scheme", "POST", "/api/v1/cameras", ctJSON, cam("c", "http://127.0.0.1/x"), 400, "scheme"},
		{"file scheme", "POST", "/api/v1/cameras", ctJSON, cam("c", "file:///etc/passwd"), 400, "scheme"},
		{"no scheme", "POST", "/api/v1/cameras", ctJSON, cam("c", "127.0.0.1:554/x"), 400, ""},
		{"missing host", "POST", "/api/v1/cameras", ctJSON, cam("c", "rtsp:///x"), 400, "host"},
		{"missing host with port", "POST", "/api/v1/cameras", ctJSON, cam("c", "rtsp://:554/x"), 400, "host"},
		{"empty url", "POST", "/api/v1/cameras", ctJSON, cam("c", ""), 400, "url"},
		{"url with space", "POST", "/api/v1/cameras", ctJSON, cam("c", "rtsp://127.0.0.1/a b"), 400, "url"},
		{"url too long", "POST", "/api/v1/cameras", ctJSON, cam("c", longURL), 400, "longer"},
		{"empty name", "POST", "/api/v1/cameras", ctJSON, cam("", ok), 400, "name"},
		{"missing name", "POST", "/api/v1/cameras", ctJSON, body(map[string]any{"url": ok}), 400, "name"},
		{"name too long", "POST", "/api/v1/cameras", ctJSON, cam(strings.Repeat("n", 65), ok), 400, "longer"},
		{"name with space", "POST", "/api/v1/cameras", ctJSON, cam("front door", ok), 400, "name"},
		{"name with slash", "POST", "/api/v1/cameras", ctJSON, cam("a/b", ok), 400, "name"},
		{"name dot-dot", "POST", "/api/v1/cameras", ctJSON, cam("../x", ok), 400, "name"},
		{"name dot first", "POST", "/api/v1/cameras", ctJSON, cam(".hidden", ok), 400, "name"},
		{"name unicode", "POST", "/api/v1/cameras", ctJSON, cam("kamera-ü", ok), 400, "name"},
		{"name control char", "POST", "/api/v1/cameras", ctJSON, cam("a\nb", ok), 400, "name"},
		{"duplicate name", "POST", "/api/v1/cameras", ctJSON, cam("existing", ok), 409, "exists"},
		{"bad transport", "POST", "/api/v1/cameras", ctJSON, body(map[string]any{"name": "c", "url": ok, "transport": "http"}), 400, "transport"},
		{"unknown field", "POST", "/api/v1/cameras", ctJSON, body(map[string]any{"name": "c", "url": ok, "password": "x"}), 400, "unknown field"},
		{"trailing garbage", "POST", "/api/v1/cameras", ctJSON, append(cam("c", ok), []byte("xyz")...), 400, ""},
		{"second object", "POST", "/api/v1/cameras", ctJSON, append(cam("c", ok), cam("d", ok)...), 400, ""},
		{"malformed", "POST", "/api/v1/cameras", ctJSON, []byte(`{"name": "c", "url": `), 400, "malformed"},
		{"not an object", "POST", "/api/v1/cameras", ctJSON, []byte(`["c"]`), 400, ""},
		{"wrong type", "POST", "/api/v1/cameras", ctJSON, []byte(`{"name": "c", "url": 5}`), 400, "url"},
		{"empty body", "POST", "/api/v1/cameras", ctJSON, []byte{}, 400, "empty"},
		{"body too big", "POST", "/api/v1/cameras", ctJSON, body(map[string]any{"name": "c", "url": ok + "?" + strings.Repeat("a", 5000)}), 413, "larger"},
		{"text content type", "POST", "/api/v1/cameras", "text/plain", cam("c", ok), 415, "JSON"},
		{"form content type", "POST", "/api/v1/cameras", "application/x-www-form-urlencoded", []byte("name=c&url=" + ok), 415, "JSON"},
		{"no content type", "POST", "/api/v1/cameras", "", cam("c", ok), 415, "JSON"},
		{"put bad scheme", "PUT", "/api/v1/cameras/existing", ctJSON, body(map[string]any{"url": "http://127.0.0.1/x"}), 400, "scheme"},
		{"put bad name", "PUT", "/api/v1/cameras/existing", ctJSON, body(map[string]any{"name": "a b", "url": ok}), 400, "name"},
		{"put unknown field", "PUT", "/api/v1/cameras/existing", ctJSON, body(map[string]any{"url": ok, "start": true}), 400, "unknown field"},
		{"put wrong content type", "PUT", "/api/v1/cameras/existing", "text/plain", body(map[string]any{"url": ok}), 415, "JSON"},
		{"patch bad transport", "PATCH", "/api/v1/cameras/existing", ctJSON, body(map[string]any{"url": ok, "transport": "quic"}), 400, "transport"},
		{"patch too big", "PATCH", "/api/v1/cameras/existing", ctJSON, body(map[string]any{"url": ok + "?" + strings.Repeat("a", 5000)}), 413, "larger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			r := e.do(tc.method, tc.path, tc.ct, tc.body)
			if r.code != tc.code {
				t.Errorf("%d %s, want %d", r.code, r.body, tc.code)
			}
			if !strings.Contains(r.errMsg(), tc.msg) {
				t.Errorf("error %q does not mention %q", r.errMsg(), tc.msg)
			}
			if strings.Contains(string(r.body), "pw@") || strings.Contains(string(r.body), "aaaaaaaaaa") {
				t.Errorf("error echoes submitted input: %s", r.body)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("rejected request changed the store:\n%s\n---\n%s", before, after)
			}
		})
	}
	if n := len(e.m.List()); n != 1 {
		t.Errorf("%d cameras after rejected requests, want 1", n)
	}
}

// The validation rules are device's; this checks a URL with a password and
// a bad port is refused without the password in the answer.
func TestValidationErrorHidesPassword(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"rtsp://admin:hunter2@cam:notaport/x", "http://admin:hunter2@cam/x", "rtsp://admin:hunter2@/x", "rtsp://admin:hunter2@cam/%zz"} {
		r := e.json("POST", "/api/v1/cameras", map[string]any{"name": "c", "url": u})
		if r.code != http.StatusBadRequest {
			t.Errorf("%d for a bad URL", r.code)
		}
		if strings.Contains(string(r.body), "hunter2") {
			t.Errorf("error holds the password: %s", r.body)
		}
	}
	if strings.Contains(e.logs.String(), "hunter2") {
		t.Errorf("log holds the password:\n%s", e.logs.String())
	}
}
