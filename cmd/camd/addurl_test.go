package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd/camd/internal/api"
)

// "camd camera add NAME -" and "--url-file F": the URL is taken as written
// but for one trailing newline, an empty one is refused with one line, and
// neither the URL nor the file's content is echoed in an error.
func TestCLIAddURLFromStdinAndFile(t *testing.T) {
	d := startCamDaemon(t, false)
	a := []string{"--api", d.addr}
	cl := api.NewClient(d.addr, "")
	defer cl.CloseIdleConnections()
	withStdin := func(in string, args ...string) (string, string, error) {
		old := cliStdin
		cliStdin = strings.NewReader(in)
		defer func() { cliStdin = old }()
		return camCLI(append(args, a...)...)
	}
	urlOf := func(name string) string {
		c, err := cl.Camera(context.Background(), name)
		if err != nil {
			t.Fatalf("camera %s: %v", name, err)
		}
		return c.URL
	}

	for name, in := range map[string]string{"lf": "rtsp://127.0.0.1:1/lf\n", "crlf": "rtsp://127.0.0.1:1/crlf\r\n", "none": "rtsp://127.0.0.1:1/none"} {
		if out, errOut, err := withStdin(in, "camera", "add", name, "-", "--stopped"); err != nil {
			t.Errorf("add %s from stdin: %v %q %q", name, err, out, errOut)
		} else if got := urlOf(name); got != "rtsp://127.0.0.1:1/"+name {
			t.Errorf("add %s from stdin: URL %q", name, got)
		}
	}
	for _, in := range []string{"", "\n"} {
		_, errOut, err := withStdin(in, "camera", "add", "empty", "-")
		if code := (exitError{}); !errors.As(err, &code) || code.code != 2 || errOut != "camd: no URL in stdin (it is empty)\n" {
			t.Errorf("empty stdin %q: %v %q", in, err, errOut)
		}
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "door.url")
	if err := os.WriteFile(file, []byte("rtsp://admin:FileSecret@127.0.0.1:1/door\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := camCLI(append([]string{"camera", "add", "door", "--url-file", file, "--stopped"}, a...)...)
	if err != nil || !strings.Contains(out, "added door rtsp://admin:xxxxx@127.0.0.1:1/door ") {
		t.Errorf("add --url-file: %v %q %q", err, out, errOut)
	}
	for _, args := range [][]string{
		{"camera", "add", "door2", "--url-file", filepath.Join(dir, "missing.url")},
		{"camera", "add", "door2", "rtsp://127.0.0.1:1/x", "--url-file", file},
		{"camera", "add", "door2", "--url-file", dir},
	} {
		_, errOut, err := camCLI(append(args, a...)...)
		last := errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
		if err == nil || !strings.HasPrefix(last, "camd: ") || strings.Contains(errOut, "FileSecret") {
			t.Errorf("%v: %v %q", args, err, errOut)
		}
	}
	if cams, err := cl.Cameras(context.Background()); err != nil || len(cams) != 4 {
		t.Errorf("cameras after the refused adds: %d %v", len(cams), err)
	}
}

// The CLI prints no control character whatever the daemon sends: here a
// daemon stand-in answers with escapes in a camera's fields and in an error.
func TestCLIStripsControlCharacters(t *testing.T) {
	const esc = `\u001b]0;x\u0007\u001b[2J\u009b2J\r\u202e`
	cam := `{"name":"cam` + esc + `","id":"1","url":"rtsp://h/` + esc + `","transport":"tcp","state":"RECONNECTING",` +
		`"persisted_status":"running","last_error":"bad status code: 400 (` + esc + `)","last_error_at":"2026-01-01T00:00:00Z"}`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cameras", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("[" + cam + "]"))
	})
	mux.HandleFunc("GET /api/v1/cameras/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(cam))
	})
	mux.HandleFunc("GET /api/v1/cameras/bad", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"no such camera ` + esc + `"}`))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var all strings.Builder
	for _, args := range [][]string{{"camera", "ls"}, {"camera", "show", "ok"}, {"camera", "show", "bad"}, {"camera", "ls", "--json"}} {
		out, errOut, _ := camCLI(append(args, "--api", ln.Addr().String())...)
		all.WriteString(out + errOut)
	}
	if !strings.Contains(all.String(), "]0;x") || !strings.Contains(all.String(), "no such camera") {
		t.Fatalf("the CLI showed too little:\n%s", all.String())
	}
	if m := controlRE.FindAllString(all.String(), -1); len(m) > 0 || strings.Contains(all.String(), "\u202e") {
		t.Errorf("the CLI printed control characters %q:\n%q", m, all.String())
	}
}
