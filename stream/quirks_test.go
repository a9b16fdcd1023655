package stream_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/camd/camd/internal/procfd"
	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/stream"
	"github.com/pion/rtp"
)

// The RTSP quirks of real cameras that the reader must cope with, each
// played by rawCam and checked through Read's public API only, so that the
// same tests hold whatever RTSP client Read is built on.

// batches are the ReadBatch settings a quirk is checked with when it
// matters: every packet read as it comes, and batched reads (camd's
// default), where the video's packets are taken out of the byte stream.
var batches = []time.Duration{0, 100 * time.Millisecond}

func batchName(d time.Duration) string { return "batch=" + d.String() }

// quirkRead is one Read in the background and what it reported.
type quirkRead struct {
	cancel context.CancelFunc
	done   chan error

	mu         sync.Mutex
	infos      []stream.Info
	frames     int
	audio      int
	decodeErrs []string
	err        error
	returned   bool
}

// startQuirkRead runs Read with o (its callbacks replaced) over TCP; audio
// is asked for when withAudio is set.
func startQuirkRead(t *testing.T, o stream.Options, withAudio bool) *quirkRead {
	t.Helper()
	r := &quirkRead{done: make(chan error, 1)}
	o.Transport = stream.TransportTCP
	o.OnInfo = func(i stream.Info) {
		r.mu.Lock()
		r.infos = append(r.infos, i)
		r.mu.Unlock()
	}
	o.OnFrame = func(f stream.Frame) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.infos) == 0 {
			panic("frame before info")
		}
		if f.Size > 0 {
			r.frames++
		}
	}
	o.OnDecodeError = func(err error) {
		r.mu.Lock()
		r.decodeErrs = append(r.decodeErrs, err.Error())
		r.mu.Unlock()
	}
	if withAudio {
		o.OnAudio = func(track int, pkt *rtp.Packet, _ time.Time) {
			r.mu.Lock()
			if track == 0 && pkt.PayloadType == 0 && len(pkt.Payload) == 320 {
				r.audio++
			}
			r.mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		err := stream.Read(ctx, o)
		r.mu.Lock()
		r.err, r.returned = err, true
		r.mu.Unlock()
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			r.done <- err
		case <-time.After(10 * time.Second):
			t.Error("Read did not return after cancel")
		}
	})
	return r
}

func (r *quirkRead) counts() (frames, audio, decodeErrs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames, r.audio, len(r.decodeErrs)
}

// ended returns Read's error once it has returned.
func (r *quirkRead) ended() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.returned, r.err
}

// waitFrames polls until n frames came, failing the test if Read returns
// first or it takes longer than within.
func (r *quirkRead) waitFrames(t *testing.T, cam *rawCam, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		frames, _, _ := r.counts()
		if frames >= n {
			return
		}
		if ok, err := r.ended(); ok {
			t.Fatalf("Read returned after %d frames: %v\ncamera was sent: %s", frames, err, describeReqs(cam))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames in %v, want %d\ncamera was sent: %s", frames, within, n, describeReqs(cam))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running fails the test if Read has returned.
func (r *quirkRead) running(t *testing.T) {
	t.Helper()
	if ok, err := r.ended(); ok {
		t.Fatalf("Read returned: %v", err)
	}
}

// stop cancels Read and returns how long it took to return and its error.
func (r *quirkRead) stop(t *testing.T) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return time.Since(start), err
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return within 10 s of cancel")
		return 0, nil
	}
}

// describeReqs lists the requests a camera got, for failure messages.
func describeReqs(cam *rawCam) string {
	var b strings.Builder
	for _, r := range cam.Requests() {
		fmt.Fprintf(&b, "\n  #%d %s %s", r.Conn, r.Method, r.URL)
	}
	return b.String()
}

// exactFrames checks that Read reported exactly the frames the camera
// sent, once the camera has sent want and fallen silent.
func exactFrames(t *testing.T, r *quirkRead, cam *rawCam, want int) {
	t.Helper()
	r.waitFrames(t, cam, want, 15*time.Second)
	// Anything more would come with the next batch.
	time.Sleep(300 * time.Millisecond)
	if frames, _, _ := r.counts(); frames != want || cam.videoSent.Load() != int64(want) {
		t.Fatalf("Read reported %d frames, the camera sent %d (want %d)", frames, cam.videoSent.Load(), want)
	}
}

// TestQuirks plays each quirk against Read, then checks that nothing of
// the connections, goroutines or sockets, is left.
func TestQuirks(t *testing.T) {
	_, fdErr := procfd.Count()
	// Warm up so that lazily created runtime resources (netpoll, timers,
	// the batch clock) are in the baseline.
	t.Run("warmup", func(t *testing.T) {
		for _, b := range batches {
			cam := newRawCam(t, rawCamConfig{})
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
			r.waitFrames(t, cam, 5, 15*time.Second)
			r.stop(t)
		}
	})
	time.Sleep(200 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	fd0, _ := procfd.Count()

	if fdErr != nil {
		t.Logf("no descriptor counts on %s: %v; goroutines only", runtime.GOOS, fdErr)
		fd0 = procfd.Counts{Sockets: 1 << 30, Pipes: 1 << 30, Events: 1 << 30, Files: 1 << 30}
	}
	// The quirks run side by side, each with its own cameras; a cleanup
	// runs once every one of them has finished.
	t.Cleanup(func() { stream.WaitForBaseline(t, g0, fd0) })
	for _, q := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"auth", testQuirkAuth},
		{"control", testQuirkControlURLs},
		{"keepalive", testQuirkKeepalive},
		{"channels", testQuirkChannels},
		{"redirect", testQuirkRedirect},
		{"server-request", testQuirkServerRequest},
		{"audio", testQuirkAudio},
		{"teardown", testQuirkTeardown},
		{"tls", testQuirkTLS},
	} {
		t.Run(q.name, func(t *testing.T) {
			t.Parallel()
			q.run(t)
		})
	}
}

// 1. Basic, Digest MD5 (with and without qop) and Digest SHA-256 (RFC
// 7616, offered before MD5): the right password plays; a wrong one is a
// refusal that does not hold the password, after one try.
func testQuirkAuth(t *testing.T) {
	const user, pass, wrong = "admin", "right-pw", "Wr0ngPassw0rd"
	for _, mode := range []string{"basic", "digest", "digest-qop", "sha256"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, rawCamConfig{Auth: mode, User: user, Pass: pass})
			for _, b := range batches {
				t.Run(batchName(b), func(t *testing.T) {
					r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", user, pass), ReadBatch: b}, false)
					r.waitFrames(t, cam, 25, 15*time.Second)
				})
			}
			t.Run("wrong password", func(t *testing.T) {
				cam.mu.Lock()
				cam.authFail = 0
				cam.mu.Unlock()
				r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", user, wrong), ReadBatch: 100 * time.Millisecond}, false)
				var err error
				select {
				case err = <-r.done:
					r.done <- err
				case <-time.After(15 * time.Second):
					t.Fatal("Read with a wrong password still running after 15 s")
				}
				if !errors.Is(err, stream.ErrRefused) {
					t.Errorf("error %v is not a refusal", err)
				}
				if strings.Contains(err.Error(), wrong) {
					t.Errorf("error %q holds the password", err)
				}
				cam.mu.Lock()
				fails := cam.authFail
				cam.mu.Unlock()
				if fails != 1 {
					t.Errorf("the camera counted %d failed logins for one Read, want 1", fails)
				}
			})
		})
	}
}

// 2. Where SETUP and PLAY go: the base URL is Content-Base, else
// Content-Location, else the DESCRIBE URL (RFC 2326 C.1.1); relative
// controls are appended to it with a "/" between (what cameras expect,
// rather than RFC 3986 resolution); an absolute control is used as is;
// "a=control:*" at session level names the base. The camera answers 404
// to a SETUP anywhere else.
func testQuirkControlURLs(t *testing.T) {
	cases := []struct {
		name string
		cfg  rawCamConfig
		play string // the aggregate URL PLAY must go to (trailing "/" optional)
	}{
		{name: "relative, no Content-Base",
			cfg:  rawCamConfig{VideoURL: "{root}/cam/trackID=1", Audio: true, AudioURL: "{root}/cam/trackID=2"},
			play: "{root}/cam"},
		{name: "Content-Base",
			cfg: rawCamConfig{ContentBase: "{root}/base/", VideoURL: "{root}/base/trackID=1",
				Audio: true, AudioURL: "{root}/base/trackID=2"},
			play: "{root}/base/"},
		{name: "Content-Base before Content-Location",
			cfg:  rawCamConfig{ContentBase: "{root}/base/", ContentLocation: "{root}/loc/", VideoURL: "{root}/base/trackID=1"},
			play: "{root}/base/"},
		{name: "Content-Location",
			cfg:  rawCamConfig{ContentLocation: "{root}/loc/", VideoURL: "{root}/loc/trackID=1"},
			play: "{root}/loc/"},
		{name: "absolute control",
			cfg: rawCamConfig{ContentBase: "{root}/base/", VideoControl: "{root}/other/track1", VideoURL: "{root}/other/track1",
				Audio: true, AudioControl: "{root}/other/track2", AudioURL: "{root}/other/track2"},
			play: "{root}/base/"},
		{name: "session control *",
			cfg:  rawCamConfig{SessionControl: "*", ContentBase: "{root}/base/", VideoURL: "{root}/base/trackID=1"},
			play: "{root}/base/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, tc.cfg)
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: 100 * time.Millisecond}, tc.cfg.Audio)
			r.waitFrames(t, cam, 10, 15*time.Second)
			var setups []string
			var play string
			for _, q := range cam.Requests() {
				switch q.Method {
				case base.Setup:
					setups = append(setups, q.URL)
				case base.Play:
					play = q.URL
				}
			}
			want := []string{cam.expand(tc.cfg.VideoURL)}
			if tc.cfg.Audio {
				want = append(want, cam.expand(tc.cfg.AudioURL))
			}
			if strings.Join(setups, " ") != strings.Join(want, " ") {
				t.Errorf("SETUPs went to %q, want %q", setups, want)
			}
			if p := cam.expand(tc.play); strings.TrimSuffix(play, "/") != strings.TrimSuffix(p, "/") {
				t.Errorf("PLAY went to %q, want %q", play, p)
			}
			if tc.cfg.Audio {
				if _, audio, _ := r.counts(); audio == 0 {
					t.Errorf("no audio packets")
				}
			}
		})
	}
}

// 3. A Session header with ";timeout=3": the reader keeps the session
// alive with GET_PARAMETER when the OPTIONS answer's Public lists it,
// with OPTIONS otherwise, at intervals shorter than the timeout; the
// camera drops a connection that lets it expire.
func testQuirkKeepalive(t *testing.T) {
	const timeout = 3
	for _, tc := range []struct {
		name, public string
		want         base.Method
	}{
		{"GET_PARAMETER offered", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER", base.GetParameter},
		{"OPTIONS only", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN", base.Options},
	} {
		for _, b := range batches {
			t.Run(tc.name+"/"+batchName(b), func(t *testing.T) {
				t.Parallel()
				cam := newRawCam(t, rawCamConfig{Timeout: timeout, Public: tc.public})
				r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
				r.waitFrames(t, cam, 5, 15*time.Second)
				// Run past two timeouts from PLAY, checking the stream
				// keeps going.
				var playAt time.Time
				for _, q := range cam.Requests() {
					if q.Method == base.Play {
						playAt = q.At
					}
				}
				for time.Since(playAt) < (2*timeout+1)*time.Second {
					time.Sleep(100 * time.Millisecond)
					r.running(t)
				}
				before, _, _ := r.counts()
				time.Sleep(time.Second)
				r.running(t)
				if after, _, _ := r.counts(); after <= before {
					t.Fatalf("no frames in the last second (%d in all)", after)
				}
				if n := cam.expired.Load(); n != 0 {
					t.Fatalf("the camera timed out %d sessions", n)
				}
				last := playAt
				var keepalives int
				var gaps []time.Duration
				for _, q := range cam.Requests() {
					if !q.At.After(playAt) {
						continue
					}
					if q.Method != tc.want {
						t.Errorf("keepalive %s, want %s", q.Method, tc.want)
					}
					if s := q.Header["Session"]; len(s) != 1 || !strings.HasPrefix(s[0], rawSession) {
						t.Errorf("keepalive %s without the session: Session %q", q.Method, s)
					}
					keepalives++
					gaps = append(gaps, q.At.Sub(last))
					last = q.At
				}
				gaps = append(gaps, time.Since(last))
				for _, g := range gaps {
					if g >= timeout*time.Second {
						t.Errorf("%v without a request, longer than the session timeout (%d s); gaps %v", g, timeout, gaps)
					}
				}
				if keepalives < 2 {
					t.Errorf("%d keepalives in %v", keepalives, time.Since(playAt))
				}
				t.Logf("%d %s keepalives, gaps %v", keepalives, tc.want, gaps)
			})
		}
	}
}

// 4. Interleaved channels the client did not ask for: the camera answers
// SETUP with 6-7, sends RTP on 6 and sender reports on 7; or it sends
// frames on an unknown channel and RTCP before the first RTP packet.
// Every frame is counted, nothing is an error.
func testQuirkChannels(t *testing.T) {
	const frames = 50
	for _, tc := range []struct {
		name string
		cfg  rawCamConfig
	}{
		{"server picks 6-7", rawCamConfig{Channel: 6, SenderReports: true, Frames: frames}},
		{"junk before RTP", rawCamConfig{Junk: true, SenderReports: true, Frames: frames}},
	} {
		for _, b := range batches {
			t.Run(tc.name+"/"+batchName(b), func(t *testing.T) {
				t.Parallel()
				cam := newRawCam(t, tc.cfg)
				r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
				exactFrames(t, r, cam, frames)
				r.running(t)
				r.mu.Lock()
				errs := r.decodeErrs
				r.mu.Unlock()
				if len(errs) != 0 {
					t.Errorf("decode errors: %q", errs)
				}
			})
		}
	}
}

// 5. DESCRIBE answered with a redirect: to another path on the same
// camera (with Digest auth, credentials kept) and to another camera.
func testQuirkRedirect(t *testing.T) {
	t.Run("same camera", func(t *testing.T) {
		t.Parallel()
		cam := newRawCam(t, rawCamConfig{Auth: "digest", User: "admin", Pass: "pw",
			Redirects: map[string]string{"/old": "{root}/cam"}})
		for _, b := range batches {
			t.Run(batchName(b), func(t *testing.T) {
				r := startQuirkRead(t, stream.Options{URL: cam.URL("/old", "admin", "pw"), ReadBatch: b}, false)
				r.waitFrames(t, cam, 10, 15*time.Second)
			})
		}
	})
	t.Run("other camera 301", func(t *testing.T) {
		t.Parallel()
		target := newRawCam(t, rawCamConfig{})
		first := newRawCam(t, rawCamConfig{RedirectStatus: 301,
			Redirects: map[string]string{"/cam": target.URL("/cam", "", "")}})
		for _, b := range batches {
			t.Run(batchName(b), func(t *testing.T) {
				r := startQuirkRead(t, stream.Options{URL: first.URL("/cam", "", ""), ReadBatch: b}, false)
				r.waitFrames(t, target, 10, 15*time.Second)
				for _, q := range first.Requests() {
					if q.Method != base.Options && q.Method != base.Describe {
						t.Errorf("the redirecting camera got %s %s", q.Method, q.URL)
					}
				}
			})
		}
	})
}

// 6. The camera sends requests of its own during PLAY (RFC 2326 §10 and
// RFC 7826 allow OPTIONS, ANNOUNCE, GET_PARAMETER and SET_PARAMETER from
// server to client), between RTP frames, some with a body. The client
// answers each with a response that carries the request's CSeq (any
// status: 200, or 501 for what it does not implement) and the stream goes
// on.
func testQuirkServerRequest(t *testing.T) {
	for _, m := range []base.Method{base.Options, base.GetParameter, base.SetParameter, base.Announce} {
		for _, b := range batches {
			t.Run(string(m)+"/"+batchName(b), func(t *testing.T) {
				t.Parallel()
				cam := newRawCam(t, rawCamConfig{ServerRequests: []base.Method{m, m}})
				r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
				// The requests go out after frames 10 and 15.
				r.waitFrames(t, cam, 40, 15*time.Second)
				r.running(t)
				testutil.WaitFor(t, 5*time.Second, "answers to both requests", func() bool {
					a := cam.Answers()
					_, ok1 := a["901"]
					_, ok2 := a["902"]
					return ok1 && ok2
				})
				t.Logf("answers by CSeq: %v", cam.Answers())
			})
		}
	}
}

// 7. Audio beside video, listed first in the SDP: OnAudio gets every
// audio packet, and only the video counts as frames.
func testQuirkAudio(t *testing.T) {
	const frames = 50
	for _, b := range batches {
		t.Run(batchName(b), func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, rawCamConfig{Audio: true, AudioFirst: true, Frames: frames})
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, true)
			exactFrames(t, r, cam, frames)
			testutil.WaitFor(t, 5*time.Second, "every audio packet", func() bool {
				_, audio, _ := r.counts()
				return audio >= frames
			})
			if _, audio, _ := r.counts(); audio != int(cam.audioSent.Load()) {
				t.Errorf("OnAudio got %d packets, the camera sent %d", audio, cam.audioSent.Load())
			}
			r.mu.Lock()
			info := r.infos[len(r.infos)-1]
			r.mu.Unlock()
			if len(info.Audio) != 1 || info.Audio[0].Codec != stream.CodecPCMU || info.Audio[0].NotRead != "" {
				t.Errorf("Info.Audio = %+v, want one PCMU track read", info.Audio)
			}
		})
	}
}

// 8. Stopping a playing Read sends TEARDOWN, and returns promptly even
// when the camera has stopped reading its socket, or when that socket is
// full and the client cannot write at all.
func testQuirkTeardown(t *testing.T) {
	const prompt = 2 * time.Second
	sawTeardown := func(cam *rawCam) bool {
		for _, q := range cam.Requests() {
			if q.Method == base.Teardown {
				return true
			}
		}
		return false
	}
	for _, b := range batches {
		t.Run("camera reading/"+batchName(b), func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, rawCamConfig{})
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
			r.waitFrames(t, cam, 10, 15*time.Second)
			d, err := r.stop(t)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if d > prompt {
				t.Errorf("Read returned %v after cancel, want under %v", d, prompt)
			}
			testutil.WaitFor(t, 5*time.Second, "TEARDOWN at the camera", func() bool { return sawTeardown(cam) })
		})
		t.Run("camera not reading/"+batchName(b), func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, rawCamConfig{RcvBuf: 4096})
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
			r.waitFrames(t, cam, 10, 15*time.Second)
			cam.Pause()
			time.Sleep(300 * time.Millisecond) // the client reads what was in flight
			d, err := r.stop(t)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if d > prompt {
				t.Errorf("Read returned %v after cancel, want under %v", d, prompt)
			}
			cam.Resume()
			testutil.WaitFor(t, 5*time.Second, "TEARDOWN in the camera's socket", func() bool { return sawTeardown(cam) })
		})
		t.Run("socket full/"+batchName(b), func(t *testing.T) {
			t.Parallel()
			cam := newRawCam(t, rawCamConfig{RcvBuf: 4096})
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "", ""), ReadBatch: b}, false)
			r.waitFrames(t, cam, 10, 15*time.Second)
			// A client that keeps reading and drops the answers it cannot
			// write never stalls the camera; it must still stop promptly.
			fs := time.Now()
			if cam.Flood(10 * time.Second) {
				t.Logf("the camera's requests stalled after %v", time.Since(fs))
			} else {
				t.Logf("the camera's requests did not stall in %v", time.Since(fs))
			}
			d, err := r.stop(t)
			t.Logf("Read returned after %v: %v", d, err)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if d > prompt {
				t.Errorf("Read returned %v after cancel, want under %v", d, prompt)
			}
		})
	}
}

// 9. rtsps:// with Digest auth and a pinned self-signed certificate.
func testQuirkTLS(t *testing.T) {
	cert := testutil.NewCert(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cam := newRawCam(t, rawCamConfig{Auth: "digest-qop", User: "admin", Pass: "pw",
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}})
	for _, b := range batches {
		t.Run(batchName(b), func(t *testing.T) {
			t.Parallel()
			r := startQuirkRead(t, stream.Options{URL: cam.URL("/cam", "admin", "pw"), ReadBatch: b,
				TLS: stream.CameraTLS{Fingerprint: stream.Fingerprint(cert.DER)}}, false)
			r.waitFrames(t, cam, 25, 15*time.Second)
		})
	}
}
