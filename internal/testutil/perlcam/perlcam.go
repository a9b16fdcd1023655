// Package perlcam runs a second camera that camd's authors did not write,
// Debian's rtsp-server-perl (RTSP::Server), for tests. It is a relay: ffmpeg
// publishes a clip to it with ANNOUNCE and RECORD over UDP, and it serves
// readers over UDP only (a SETUP without client_port gets 400). It has no
// authentication: it accepts any credentials or none.
//
// The server takes its RTSP ports and the first of its RTP ports on the
// command line, so Start picks free ones on 127.0.0.1. It hands out RTP
// ports upwards from there, two per stream per SETUP, and goes back to its
// built-in 20000 whenever a connection closes while nothing is published;
// Start therefore touches neither RTSP port before ffmpeg has published,
// and watches /proc/net instead.
//
// It needs rtsp-server-perl and ffmpeg; Start skips the test without them,
// or fails it under CI=true. It is imported by _test.go files only.
package perlcam

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// Program is the server's command, from Debian's rtsp-server-perl package.
const Program = "rtsp-server-perl"

// rtpPorts is how many UDP ports from the first RTP port are checked to be
// free: the publisher's two per stream and two per stream for each reader's
// SETUP, with room for a few reconnections.
const rtpPorts = 40

// Options describe the camera.
type Options struct {
	Path string // default "/cam"
	// Clip is a raw H.264 or H.265 stream (Annex B) at 25 fps that ffmpeg
	// publishes in a loop.
	Clip string
}

// Camera is a running rtsp-server-perl with ffmpeg publishing to it.
type Camera struct {
	Port       int // readers' RTSP port
	SourcePort int // the publisher's RTSP port
	RTPPort    int // the first RTP port
	path       string

	srv, feed *exec.Cmd
	srvDone   chan struct{}
	feedDone  chan struct{}
	srvLog    testutil.LogBuffer
	feedLog   testutil.LogBuffer
}

// Start runs the server, has ffmpeg publish o.Clip to it and waits until
// the stream is published. The camera is stopped when the test ends.
func Start(t testing.TB, o Options) *Camera {
	t.Helper()
	need := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (.ci/run installs it): %v", name, err)
			}
			t.Skipf("%s not installed: %v", name, err)
		}
		return p
	}
	server, ffmpeg := need(Program), need("ffmpeg")
	if o.Path == "" {
		o.Path = "/cam"
	}
	dir := t.TempDir()
	// ffmpeg cannot seek in a raw stream to loop it; a container it can.
	clip := filepath.Join(dir, "clip.mkv")
	if out, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-fflags", "+genpts", "-r", "25",
		"-i", o.Clip, "-c", "copy", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg remuxing %s: %v: %s", o.Clip, err, out)
	}

	c := &Camera{path: o.Path}
	t.Cleanup(c.stop)
	var err error
	for try := 0; ; try++ {
		if err = c.startServer(server, dir); err == nil {
			break
		}
		// The ports were free when picked; someone may have taken one since.
		if try == 2 {
			t.Fatalf("%s: %v\n%s", Program, err, c.srvLog.String())
		}
	}

	c.feed = exec.Command(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-i", clip, "-c", "copy",
		"-f", "rtsp", "-rtsp_transport", "udp", c.url(c.SourcePort, "", "", ""))
	c.feed.SysProcAttr = testutil.DieWithParent()
	c.feed.Stdout, c.feed.Stderr = &c.feedLog, &c.feedLog
	if err := c.feed.Start(); err != nil {
		t.Fatal(err)
	}
	c.feedDone = make(chan struct{})
	go func() { _ = c.feed.Wait(); close(c.feedDone) }()
	// RECORD binds the first RTP port: from then on the stream is there.
	published := testutil.Poll(20*time.Second, func() bool {
		select {
		case <-c.feedDone:
			return false
		default:
		}
		return bound("/proc/net/udp", c.RTPPort, false)
	})
	if !published {
		t.Fatalf("ffmpeg did not publish to %s within 20 s\nffmpeg: %s\nserver: %s", Program, c.feedLog.String(), c.srvLog.String())
	}
	return c
}

// startServer picks ports and runs the server until it listens on both.
func (c *Camera) startServer(server, dir string) error {
	var err error
	if c.Port, err = freeTCP(); err != nil {
		return err
	}
	if c.SourcePort, err = freeTCP(); err != nil {
		return err
	}
	if c.RTPPort, err = freeUDPRange(rtpPorts); err != nil {
		return err
	}
	c.srv = exec.Command(server,
		"--clientport", strconv.Itoa(c.Port), "--client_listen_address", "127.0.0.1",
		"--serverport", strconv.Itoa(c.SourcePort), "--source_listen_address", "127.0.0.1",
		"--rtp_start_port", strconv.Itoa(c.RTPPort), "--loglevel", "3")
	// The script adds ./lib to Perl's path; run it where there is none.
	c.srv.Dir = dir
	c.srv.SysProcAttr = testutil.DieWithParent()
	c.srv.Stdout, c.srv.Stderr = &c.srvLog, &c.srvLog
	if err := c.srv.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = c.srv.Wait(); close(done) }()
	c.srvDone = done
	ok := testutil.Poll(20*time.Second, func() bool {
		select {
		case <-done:
			return false
		default:
		}
		return bound("/proc/net/tcp", c.Port, true) && bound("/proc/net/tcp", c.SourcePort, true)
	})
	if !ok {
		c.stopServer()
		return fmt.Errorf("did not listen on 127.0.0.1:%d and :%d", c.Port, c.SourcePort)
	}
	return nil
}

// URL returns the readers' URL with the given credentials ("" for none)
// and path ("" for the published one).
func (c *Camera) URL(user, pass, path string) string { return c.url(c.Port, user, pass, path) }

func (c *Camera) url(port int, user, pass, path string) string {
	if path == "" {
		path = c.path
	}
	cred := ""
	if user != "" {
		cred = user + ":" + pass + "@"
	}
	return fmt.Sprintf("rtsp://%s127.0.0.1:%d%s", cred, port, path)
}

// Log returns what the server and ffmpeg printed so far. The server's
// informational lines reach it only when the server exits (Perl buffers
// its stdout into a pipe); its warnings and errors at once.
func (c *Camera) Log() string {
	return "server:\n" + c.srvLog.String() + "ffmpeg:\n" + c.feedLog.String()
}

func (c *Camera) stop() {
	if c.feed != nil && c.feed.Process != nil {
		// ffmpeg ends an RTSP publication with TEARDOWN on SIGINT.
		_ = c.feed.Process.Signal(syscall.SIGINT)
		select {
		case <-c.feedDone:
		case <-time.After(5 * time.Second):
			_ = c.feed.Process.Kill()
			<-c.feedDone
		}
		c.feed = nil
	}
	c.stopServer()
}

func (c *Camera) stopServer() {
	if c.srv == nil || c.srv.Process == nil {
		return
	}
	// The server ends its main loop on SIGINT.
	_ = c.srv.Process.Signal(syscall.SIGINT)
	select {
	case <-c.srvDone:
	case <-time.After(5 * time.Second):
		_ = c.srv.Process.Kill()
		<-c.srvDone
	}
	c.srv = nil
}

func freeTCP() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freeUDPRange returns the first of n consecutive UDP ports on 127.0.0.1
// that are free now, below Linux's ephemeral range so that the kernel does
// not hand them to others meanwhile.
func freeUDPRange(n int) (int, error) {
	for range 50 {
		first := 20000 + 2*rand.N((32000-20000-n)/2)
		var held []net.PacketConn
		ok := true
		for p := first; p < first+n && ok; p++ {
			pc, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, pc)
		}
		for _, pc := range held {
			pc.Close()
		}
		if ok {
			return first, nil
		}
	}
	return 0, fmt.Errorf("no %d free UDP ports in a row on 127.0.0.1", n)
}

// bound reports whether /proc/net/tcp or /proc/net/udp lists a socket on
// 127.0.0.1:port (listening, for TCP).
func bound(table string, port int, listen bool) bool {
	f, err := os.Open(table)
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 3 && fs[1] == want && (!listen || fs[3] == "0A") {
			return true
		}
	}
	return false
}
