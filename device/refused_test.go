package device

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream"
	"github.com/camd/camd/stream/sim"
)

// refusedSettings are the defaults scaled down by 150 (refusals, 5 min to
// 30 min) and 30 (the rest), so that a 12 s watch stands for a long one.
func refusedSettings() Settings {
	return Settings{
		StallTimeout:      2 * time.Second,
		FlapDebounce:      time.Second,
		CrashedAfter:      time.Second,
		ForceRestartAfter: 2 * time.Second,
		BackoffMin:        250 * time.Millisecond,
		BackoffMax:        2 * time.Second,
		ReadTimeout:       5 * time.Second,
		RefusedRetry:      2 * time.Second,
		RefusedRetryMax:   12 * time.Second,
	}
}

// TestRefusingCameraIsNotHammered watches a GStreamer RTSP server that
// refuses camd's password, and one that does not have the path: each is
// REFUSED and says why, with one login per try, and a PATCH with the right
// URL brings it back at once. (TestRefusedCameraRetriesOnItsSchedule
// watches the refusal schedule itself, on a fake clock.)
func TestRefusingCameraIsNotHammered(t *testing.T) {
	t.Parallel()
	cam := gstcam.Start(t, gstcam.Options{User: "admin", Pass: "right", Digest: true})
	h := newHarness(t, refusedSettings())
	h.add("pw", cam.URL("rtsp", "admin", "wrong", ""), true)
	h.add("path", cam.URL("rtsp", "admin", "right", "/nope"), true)

	v := h.waitState("pw", StateRefused, 10*time.Second)
	if !strings.Contains(v.LastError, "401") {
		t.Fatalf("refused camera's last error %q does not say 401", v.LastError)
	}
	v = h.waitState("path", StateRefused, 10*time.Second)
	if !strings.Contains(v.LastError, "404") {
		t.Fatalf("refused camera's last error %q does not say 404", v.LastError)
	}
	tries := h.get("pw").Reconnects
	if n := cam.AuthFailures(); n > int(tries) {
		t.Errorf("the camera counted %d failed logins in %d tries; want one a try", n, tries)
	}
	if strings.Contains(h.logs.String(), "forcing a full restart") {
		t.Errorf("a refused camera between attempts got a forced restart:\n%s", h.logs.String())
	}

	fixed := time.Now()
	if _, err := h.m.Update(context.Background(), "pw", Spec{Name: "pw", URL: cam.URL("rtsp", "admin", "right", "")}); err != nil {
		t.Fatal(err)
	}
	h.waitState("pw", StateRunning, 10*time.Second)
	t.Logf("RUNNING %v after the PATCH", time.Since(fixed).Round(time.Millisecond))
}

// TestDownCameraBacksOff watches a camera whose port refuses connections:
// not a refusal (a rebooting camera does that for a while), so it backs off
// to BackoffMax and is CRASHED after the debounce, and the forced restarts
// do not reset its backoff.
func TestDownCameraBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fc := fakeHarness(t, refusedSettings())
		fc.set(fakeURL(1), fakeDown, 0)
		h.add("down", fakeURL(1), true)
		h.waitState("down", StateCrashed, 10*time.Second)
		start := h.get("down").Reconnects
		time.Sleep(12 * time.Second)
		// BackoffMax 2 s, jittered to [1 s, 2 s]: at most 12 tries in 12 s.
		// Resetting the backoff at each forced restart (every 2 s) gave about
		// 25.
		if n := h.get("down").Reconnects - start; n > 12 {
			t.Errorf("%d attempts in 12 s against a port that refuses; want at most 12 (BackoffMax 2 s)", n)
		}
		if v := h.get("down"); v.State != StateCrashed {
			t.Errorf("state %s, want CRASHED (connection refused is not a refusal)", v.State)
		}
	})
}

// TestViewShowsTransportInUse checks that a camera on "auto" shows the
// transport it settled on (the simulator offers UDP, which auto prefers).
func TestViewShowsTransportInUse(t *testing.T) {
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	h := newHarness(t, testutil.FastSettings[Settings]())
	if _, err := h.m.Add(context.Background(), Spec{Name: "cam1", URL: sm.URL(1), Transport: "auto"}, true); err != nil {
		t.Fatal(err)
	}
	v := h.waitState("cam1", StateRunning, 20*time.Second)
	if v.Transport != "auto" || v.TransportActive != "udp" {
		t.Fatalf("transport %q, in use %q; want auto, using udp", v.Transport, v.TransportActive)
	}
}

// TestNewReadTimeoutReachesLiveConnection lowers read_timeout (as SIGHUP
// does) while a camera plays, then silences the camera: the connection
// that was already playing ends at the new timeout, not the old one.
func TestNewReadTimeoutReachesLiveConnection(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("batched reads, which check the read timeout themselves, are Linux-only")
	}
	sm := simtest.Start(t, sim.Config{Cameras: 1})
	set := testutil.FastSettings[Settings]()
	set.ReadTimeout = time.Minute
	set.StallTimeout = time.Minute
	h := newHarness(t, set)
	h.add("cam1", sm.URL(1), true)
	h.waitState("cam1", StateRunning, 20*time.Second)
	set.ReadTimeout = time.Second
	h.m.SetSettings(set)
	if err := sm.SetFault(1, sim.FaultStall, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	silent := time.Now()
	var v View
	if !testutil.Poll(20*time.Second, func() bool { v = h.get("cam1"); return v.Reconnects > 0 }) {
		t.Fatalf("the silent camera's connection did not end within 20 s (state %s, last error %q)", v.State, v.LastError)
	}
	if !strings.Contains(v.LastError, "no data for 1s") {
		t.Fatalf("last error %q, want the new read timeout's", v.LastError)
	}
	t.Logf("connection ended %v after the camera fell silent", time.Since(silent).Round(time.Millisecond))
}

// TestCameraCertificatePinned adds an rtsps:// GStreamer camera whose
// self-signed certificate names only "camera.local": refused with its
// fingerprint, RUNNING once the fingerprint is pinned, and refused again
// when another certificate answers on the same address.
func TestCameraCertificatePinned(t *testing.T) {
	t.Parallel()
	pemFile, der := gstcam.SelfSigned(t, "camera.local")
	cam := gstcam.Start(t, gstcam.Options{TLSPEM: pemFile})
	h := newHarness(t, refusedSettings())
	url := cam.URL("rtsps", "", "", "")
	h.add("tls", url, true)
	v := h.waitState("tls", StateRefused, 20*time.Second)
	fp := stream.Fingerprint(der)
	if !strings.Contains(v.LastError, fp) {
		t.Fatalf("last error %q does not give the certificate's fingerprint %s", v.LastError, fp)
	}
	if _, err := h.m.Update(context.Background(), "tls", Spec{Name: "tls", URL: url, TLS: stream.CameraTLS{Fingerprint: fp}}); err != nil {
		t.Fatal(err)
	}
	h.waitState("tls", StateRunning, 20*time.Second)

	// Another certificate on the same address: a camera swapped, or
	// someone posing as it.
	cam.Stop()
	otherPEM, _ := gstcam.SelfSigned(t, "camera.local")
	gstcam.Start(t, gstcam.Options{TLSPEM: otherPEM, Port: cam.Port})
	v = h.waitState("tls", StateRefused, 30*time.Second)
	if !strings.Contains(v.LastError, "not the pinned") {
		t.Fatalf("last error %q does not say the certificate is not the pinned one", v.LastError)
	}
}

// TestRefusedCameraRetriesOnItsSchedule watches two refused cameras for 12 s
// (six forced-restart periods): each gets a try at the start and at most
// three more on the refusal schedule (2 s, 4 s, 8 s, each jittered down to
// half), stays REFUSED, persisted crashed, and gets no forced restart. A
// PATCH with a URL that works brings it back at once.
func TestRefusedCameraRetriesOnItsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := refusedSettings()
		h, fc := fakeHarness(t, set)
		fc.set(fakeURL(1), fakeRefused, 0)
		fc.set(fakeURL(2), fakeRefused, 0)
		h.add("pw", fakeURL(1), true)
		h.add("path", fakeURL(2), true)
		h.waitState("pw", StateRefused, time.Second)
		h.waitState("path", StateRefused, time.Second)
		time.Sleep(12 * time.Second)
		for i, name := range []string{"pw", "path"} {
			at := fc.attempts(fakeURL(i + 1))
			if len(at) > 4 {
				t.Errorf("camera %s tried %d times in 12 s; want at most 4 (a try, then the refusal schedule)", name, len(at))
			}
			// Each gap is within the schedule: RefusedRetry doubling, each
			// jittered down to at most half.
			step := set.RefusedRetry
			for k := 1; k < len(at); k++ {
				if gap := at[k].Sub(at[k-1]); gap < step/2 || gap > step {
					t.Errorf("camera %s: try %d came %v after the one before; the schedule says %v to %v", name, k+1, gap, step/2, step)
				}
				step = min(2*step, set.RefusedRetryMax)
			}
			if len(at) < 3 {
				t.Errorf("camera %s tried %d times in 12 s; the schedule has it try again", name, len(at))
			}
			if v := h.get(name); v.State != StateRefused || v.Persisted != "crashed" {
				t.Errorf("camera %s: state %s, persisted %s; want REFUSED, persisted crashed", name, v.State, v.Persisted)
			}
		}
		if strings.Contains(h.logs.String(), "forcing a full restart") {
			t.Errorf("a refused camera between attempts got a forced restart:\n%s", h.logs.String())
		}

		fixed := time.Now()
		if _, err := h.m.Update(context.Background(), "pw", Spec{Name: "pw", URL: fakeURL(3)}); err != nil {
			t.Fatal(err)
		}
		h.waitState("pw", StateRunning, time.Second)
		if took := time.Since(fixed); took > 2*fc.every {
			t.Errorf("RUNNING %v after the PATCH, want at once", took)
		}
	})
}
