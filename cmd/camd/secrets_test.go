package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/store"
)

// controlRE matches what a terminal acts on: C0 controls but '\n', DEL, and
// C1 controls in UTF-8.
var controlRE = regexp.MustCompile(`[\x00-\x09\x0b-\x1f\x7f\x{80}-\x{9f}]`)

// cmdlinesHolding returns the /proc/PID/cmdline files that hold s.
func cmdlinesHolding(s string) []string {
	var found []string
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, p)
		}
	}
	return found
}

// Cameras whose URLs carry secrets in the user info, a query password=, a
// path password= and a ?token= after a ':…@' path segment, added with the
// URL on stdin (checking every /proc/*/cmdline while the CLI waits for it)
// and from a file, and whose camera answers with escapes in its error: no
// secret in the log, the CLI's output, the API or the status page; no
// control character from the CLI; a transport-only PATCH keeps each stored
// URL byte for byte; and after "camd camera rm" the removed camera's
// secrets are not in camd.db.
func TestRunSecretsAndControlsNeverShown(t *testing.T) {
	t.Parallel()
	needLinux(t)
	addr := testutil.EscapingCamera(t)
	dir := t.TempDir()
	p := startCamd(t, dir, nil, "--log-level", "debug")
	bin := camdBin(t)
	urls := map[string]string{
		"query": "rtsp://admin:Qsecret1@" + addr + "/cam/realmonitor?channel=1&password=Qsecret2",
		"path":  "rtsp://" + addr + "/user=admin&password=Qsecret3&channel=1",
		"at":    "rtsp://" + addr + "/live/ch0:main@hd?token=Qsecret4",
	}
	secrets := []string{"Qsecret1", "Qsecret2", "Qsecret3", "Qsecret4"}
	var shown strings.Builder
	cli := func(stdin io.Reader, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--api", p.api)...)
		cmd.Stdin = stdin
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		fmt.Fprintf(&shown, "$ camd %s\n%s%s", strings.Join(args, " "), o.String(), e.String())
		if err != nil {
			t.Errorf("camd %s: %v\n%s", strings.Join(args, " "), err, e.String())
		}
		return o.String()
	}

	// "camd camera add query -": the URL comes on a pipe that is written
	// only once every command line has been read, so the check cannot miss
	// the CLI process.
	add := exec.Command(bin, "camera", "add", "query", "-", "--api", p.api)
	in, err := add.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var addOut bytes.Buffer
	add.Stdout, add.Stderr = &addOut, &addOut
	if err := add.Start(); err != nil {
		t.Fatal(err)
	}
	// Until the child has exec'd, its cmdline is empty or the parent's.
	var own []byte
	if !testutil.Poll(10*time.Second, func() bool {
		own, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", add.Process.Pid))
		return err == nil && bytes.Contains(own, []byte("camera\x00add\x00query\x00-\x00"))
	}) {
		t.Errorf("the CLI's cmdline is %q (%v)", own, err)
	}
	for _, s := range secrets {
		if found := cmdlinesHolding(s); len(found) > 0 {
			t.Errorf("%s is in %v", s, found)
		}
	}
	if _, err := io.WriteString(in, urls["query"]+"\n"); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := add.Wait(); err != nil {
		t.Fatalf("camera add query -: %v\n%s", err, addOut.String())
	}
	shown.WriteString(addOut.String())

	// "camd camera add path - < path.url" and "--url-file at.url".
	for name, u := range urls {
		if err := os.WriteFile(filepath.Join(dir, name+".url"), []byte(u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "path.url"))
	if err != nil {
		t.Fatal(err)
	}
	cli(f, "camera", "add", "path", "-")
	f.Close()
	cli(nil, "camera", "add", "at", "--url-file", filepath.Join(dir, "at.url"))

	c := p.client()
	defer c.CloseIdleConnections()
	for name := range urls {
		testutil.WaitFor(t, 30*time.Second, name+" to record the camera's 400", func() bool {
			cam, err := c.Camera(context.Background(), name)
			return err == nil && strings.Contains(cam.LastError, "400")
		})
		raw, err := c.Do(context.Background(), "PATCH", api.CameraPath(name), map[string]string{"transport": "udp"})
		if err != nil {
			t.Fatalf("transport-only PATCH of %s: %v", name, err)
		}
		shown.Write(raw)
	}
	if cam, err := c.Camera(context.Background(), "at"); err != nil || !strings.Contains(cam.URL, "/live/ch0:main@hd?token=xxxxx") {
		t.Errorf("the ':…@' URL is shown as %q (%v)", cam.URL, err)
	}

	var term strings.Builder // what the CLI prints for a terminal
	for _, args := range [][]string{{"camera", "ls"}, {"camera", "show", "query"}, {"camera", "show", "path"},
		{"camera", "show", "at"}, {"status"}} {
		term.WriteString(cli(nil, args...))
	}
	for _, args := range [][]string{{"camera", "ls", "--json"}, {"camera", "show", "at", "--json"}, {"status", "--json"}} {
		cli(nil, args...)
	}
	if !strings.Contains(term.String(), "]0;x") {
		t.Errorf("the camera's error is not shown:\n%s", term.String())
	}
	if m := controlRE.FindAllString(term.String(), -1); len(m) > 0 {
		t.Errorf("the CLI printed control characters %q:\n%q", m, term.String())
	}
	// The API, and the status page with the data it loads.
	for _, path := range []string{"/", "/api/v1/cameras", "/api/v1/cameras/query", "/api/v1/cameras/path",
		"/api/v1/cameras/at", "/api/v1/status", "/metrics"} {
		resp, err := http.Get("http://" + p.api + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&shown, "GET %s %d\n%s\n", path, resp.StatusCode, b)
	}

	cli(nil, "camera", "rm", "query")
	db := filepath.Join(dir, "camd.db")
	grep := func(when string) {
		t.Helper()
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"Qsecret1", "Qsecret2"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s: the removed camera's %s is in camd.db", when, s)
			}
		}
		if !bytes.Contains(b, []byte("Qsecret3")) {
			t.Errorf("%s: a kept camera's URL is not in camd.db: the check sees nothing", when)
		}
	}
	grep("camd running")
	p.signal(syscall.SIGTERM)
	if code, _, ok := p.wait(15 * time.Second); !ok || code != 0 {
		t.Fatalf("exit %d ok %v", code, ok)
	}
	grep("camd stopped")

	all := shown.String() + p.stderr.String()
	if !strings.Contains(all, "xxxxx") || !strings.Contains(all, `"last_error"`) || !strings.Contains(p.stderr.String(), "camera removed") {
		t.Fatalf("the outputs checked look empty:\n%s", all)
	}
	for _, s := range secrets {
		for _, l := range strings.Split(all, "\n") {
			if strings.Contains(l, s) {
				t.Errorf("%s shown: %s", s, l)
			}
		}
	}
	if m := controlRE.FindAllString(p.stderr.String(), -1); len(m) > 0 {
		t.Errorf("the log holds control characters %q", m)
	}

	// The stored URLs, read from the file: byte for byte as added.
	st, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cams, err := st.Cameras()
	if err != nil || len(cams) != 2 {
		t.Fatalf("store: %d cameras, %v", len(cams), err)
	}
	for _, cam := range cams {
		if cam.URL != urls[cam.Name] || cam.Transport != "udp" {
			t.Errorf("stored %s: %q %s, want %q udp", cam.Name, cam.URL, cam.Transport, urls[cam.Name])
		}
	}
}
