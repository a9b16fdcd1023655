// Package gstcam runs a camera that camd's authors did not write, the
// GStreamer RTSP server, for tests: H.264 or H.265 with optional audio
// (Opus, G.711, AAC), Basic or Digest auth, rtsps, long GOPs and
// intra-refresh. It counts the logins the server saw, so that a test can
// tell how hard a client knocked.
//
// It needs Debian's /usr/bin/python3 with python3-gi and
// gir1.2-gst-rtsp-server-1.0 (and the GStreamer plugins for the codecs);
// Start skips the test without them, or fails it under CI=true. It is
// imported by _test.go files only.
package gstcam

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

//go:embed gstcam.py
var script []byte

// Python is the interpreter that has GStreamer's introspection data on
// Debian; a pyenv or venv python on PATH usually lacks gi.
const Python = "/usr/bin/python3"

// Options describe the camera. The zero value is a 320x240 25 fps H.264
// camera with a one-second GOP, no audio and no auth.
type Options struct {
	Path         string // default "/cam"
	Port         int    // default: a free port
	Codec        string // h264 (default), h265
	Audio        string // "", opus, pcmu, pcma, aac
	Width        int
	Height       int
	FPS          int
	GOP          int // frames between keyframes
	IntraRefresh bool
	User, Pass   string
	Digest       bool   // Digest auth instead of Basic
	TLSPEM       string // a PEM file holding certificate and key: serve rtsps
}

// Camera is a running GStreamer RTSP server.
type Camera struct {
	Port int

	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	authFail []time.Time // when each refused login was printed
	authOK   int
	requests map[string]int
	out      strings.Builder
}

// Available reports why the GStreamer RTSP server cannot run here, or "".
func Available() string {
	if _, err := os.Stat(Python); err != nil {
		return Python + " not found"
	}
	out, err := exec.Command(Python, "-c",
		"import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer").CombinedOutput()
	if err != nil {
		return "GStreamer RTSP server introspection missing (python3-gi, gir1.2-gst-rtsp-server-1.0): " +
			strings.TrimSpace(string(out))
	}
	return ""
}

// Start runs a camera and waits until it listens. The camera is stopped
// when the test ends.
func Start(t testing.TB, o Options) *Camera {
	t.Helper()
	if why := Available(); why != "" {
		testutil.SkipMissing(t, "gst-rtsp-server", why)
	}
	dir := t.TempDir()
	py := filepath.Join(dir, "gstcam.py")
	if err := os.WriteFile(py, script, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{py}
	add := func(k, v string) {
		if v != "" && v != "0" {
			args = append(args, k, v)
		}
	}
	add("--path", o.Path)
	add("--port", strconv.Itoa(o.Port))
	add("--codec", o.Codec)
	add("--audio", o.Audio)
	add("--width", strconv.Itoa(o.Width))
	add("--height", strconv.Itoa(o.Height))
	add("--fps", strconv.Itoa(o.FPS))
	add("--gop", strconv.Itoa(o.GOP))
	add("--user", o.User)
	add("--password", o.Pass)
	add("--tls-cert", o.TLSPEM)
	if o.IntraRefresh {
		args = append(args, "--intra-refresh")
	}
	if o.Digest {
		args = append(args, "--digest")
	}
	cmd := exec.Command(Python, args...)
	cmd.SysProcAttr = testutil.DieWithParent()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Camera{cmd: cmd, done: make(chan struct{}), requests: map[string]int{}}
	port := make(chan int, 1)
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.line(sc.Text(), port)
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(c.stop)
	select {
	case p := <-port:
		c.Port = p
	case <-c.done:
		t.Fatalf("GStreamer RTSP server ended before listening: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("GStreamer RTSP server did not listen within 30 s: %s", stderr.String())
	}
	return c
}

func (c *Camera) line(l string, port chan<- int) {
	f := strings.Fields(l)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.WriteString(l + "\n")
	switch {
	case len(f) == 2 && f[0] == "PORT":
		if p, err := strconv.Atoi(f[1]); err == nil {
			port <- p
		}
	case len(f) == 2 && f[0] == "AUTH" && f[1] == "fail":
		c.authFail = append(c.authFail, time.Now())
	case len(f) == 2 && f[0] == "AUTH" && f[1] == "ok":
		c.authOK++
	case len(f) == 3 && f[0] == "REQ":
		c.requests[f[1]]++
	}
}

// URL returns the camera's URL with the given credentials ("" for none).
func (c *Camera) URL(scheme, user, pass, path string) string {
	if path == "" {
		path = "/cam"
	}
	cred := ""
	if user != "" {
		cred = user + ":" + pass + "@"
	}
	return fmt.Sprintf("%s://%s127.0.0.1:%d%s", scheme, cred, c.Port, path)
}

// AuthFailures returns how many requests carried credentials that the
// server refused.
func (c *Camera) AuthFailures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.authFail)
}

// AuthFailureTimes returns when each refused login reached the server (as
// seen by the test, within milliseconds), so that a test can measure the
// gaps between a client's attempts.
func (c *Camera) AuthFailureTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.authFail...)
}

// Requests returns how many requests of method the server got.
func (c *Camera) Requests(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[method]
}

// Log returns what the server printed so far.
func (c *Camera) Log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// Stop ends the server and waits for it.
func (c *Camera) Stop() { c.stop() }

func (c *Camera) stop() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// SelfSigned writes a self-signed certificate for common name cn, with no
// subject alternative name (as cameras ship them), and its key into one PEM
// file in a test temp dir. It returns the file and the certificate's DER
// bytes.
func SelfSigned(t testing.TB, cn string) (pemFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
	pemFile = filepath.Join(t.TempDir(), cn+".pem")
	if err := os.WriteFile(pemFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return pemFile, der
}
