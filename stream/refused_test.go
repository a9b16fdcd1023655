package stream

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/gstcam"
)

// TestRefusals reads GStreamer RTSP servers that refuse camd in each way
// that retrying at once does not cure, and one that is merely down.
func TestRefusals(t *testing.T) {
	t.Parallel()
	digest := gstcam.Start(t, gstcam.Options{User: "admin", Pass: "right", Digest: true})
	basic := gstcam.Start(t, gstcam.Options{User: "admin", Pass: "right"})
	cases := []struct {
		name    string
		url     string
		refused bool
		want    string
	}{
		{"digest wrong password", digest.URL("rtsp", "admin", "wrong", ""), true, "401"},
		{"digest no credentials", digest.URL("rtsp", "", "", ""), true, "401"},
		{"basic wrong password", basic.URL("rtsp", "admin", "wrong", ""), true, "401"},
		{"missing path", digest.URL("rtsp", "admin", "right", "/nope"), true, "404"},
		{"connection refused", "rtsp://" + closedPort(t) + "/cam", false, "refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startRead(t, newRecorder().options(tc.url))
			err := r.wait(t, 30*time.Second)
			if errors.Is(err, ErrRefused) != tc.refused {
				t.Fatalf("errors.Is(%q, ErrRefused) = %v, want %v", err, !tc.refused, tc.refused)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Fatalf("error %q holds the password", err)
			}
		})
	}
	// One Read is one login: the client does not try a refused password
	// again (the 404 case logs in with the right one).
	testutil.WaitFor(t, 5*time.Second, "the digest server's count", func() bool { return digest.AuthFailures() >= 1 })
	if n := digest.AuthFailures(); n != 1 {
		t.Fatalf("the digest server counted %d failed logins for one Read with a wrong password", n)
	}
}

// TestRefusalKinds covers the refusals that need no server.
func TestRefusalKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.DNSError{Err: "no such host", Name: "cam.invalid", IsNotFound: true}, true},
		{&net.DNSError{Err: "server misbehaving", Name: "cam.lan", IsTemporary: true}, false},
		{ErrNoVideo, true},
		{ErrUnsupportedCodec, true},
		{ErrCertificate, true},
		{ErrReadTimeout, false},
		{errors.New("EOF"), false},
	} {
		if got := errors.Is(refusal(tc.err), ErrRefused); got != tc.want {
			t.Errorf("refusal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if refusal(nil) != nil {
		t.Error("refusal(nil) != nil")
	}
}

// TestCameraCertificates reads an rtsps:// GStreamer camera whose
// self-signed certificate names only "camera.local" (no address), as
// cameras ship them.
func TestCameraCertificates(t *testing.T) {
	t.Parallel()
	pemFile, der := gstcam.SelfSigned(t, "camera.local")
	cam := gstcam.Start(t, gstcam.Options{TLSPEM: pemFile})
	url := cam.URL("rtsps", "", "", "")
	fp := Fingerprint(der)

	t.Run("unverified", func(t *testing.T) {
		r := startRead(t, newRecorder().options(url))
		err := r.wait(t, 30*time.Second)
		if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrCertificate) {
			t.Fatalf("error %v is not a certificate refusal", err)
		}
		if !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "tls_fingerprint") {
			t.Fatalf("error %q does not give the fingerprint %s and how to pin it", err, fp)
		}
	})
	t.Run("pinned", func(t *testing.T) {
		rec := newRecorder()
		o := rec.options(url)
		o.TLS.Fingerprint = strings.ToLower(strings.ReplaceAll(fp, ":", ""))
		startRead(t, o)
		rec.waitFrames(t, 25, 30*time.Second)
	})
	t.Run("insecure", func(t *testing.T) {
		rec := newRecorder()
		o := rec.options(url)
		o.TLS.Insecure = true
		startRead(t, o)
		rec.waitFrames(t, 25, 30*time.Second)
	})
	t.Run("other certificate on the same address", func(t *testing.T) {
		_, otherDER := gstcam.SelfSigned(t, "camera.local")
		o := newRecorder().options(url)
		o.TLS.Fingerprint = Fingerprint(otherDER)
		err := startRead(t, o).wait(t, 30*time.Second)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), fp) {
			t.Fatalf("a pinned other certificate: error %v, want a refusal naming %s", err, fp)
		}
	})
}
