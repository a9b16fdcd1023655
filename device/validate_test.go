package device

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/stream"
)

func TestValidate(t *testing.T) {
	long := "rtsp://h/" + strings.Repeat("a", MaxURLLen)
	for _, tc := range []struct {
		spec Spec
		ok   bool
	}{
		{Spec{Name: "cam1", URL: "rtsp://127.0.0.1:8554/cam1"}, true},
		{Spec{Name: "Front-door_2.hd", URL: "rtsps://user:pw@cam.local/stream", Transport: "udp"}, true},
		{Spec{Name: "", URL: "rtsp://h/x"}, false},
		{Spec{Name: strings.Repeat("a", MaxNameLen+1), URL: "rtsp://h/x"}, false},
		{Spec{Name: "a b", URL: "rtsp://h/x"}, false},
		{Spec{Name: "a/b", URL: "rtsp://h/x"}, false},
		{Spec{Name: "../x", URL: "rtsp://h/x"}, false},
		{Spec{Name: "-x", URL: "rtsp://h/x"}, false},
		{Spec{Name: "kamera-ü", URL: "rtsp://h/x"}, false},
		{Spec{Name: "x", URL: ""}, false},
		{Spec{Name: "x", URL: "http://h/x"}, false},
		{Spec{Name: "x", URL: "file:///etc/passwd"}, false},
		{Spec{Name: "x", URL: "rtsp:///nohost"}, false},
		{Spec{Name: "x", URL: "rtsp://h:port/x"}, false},
		{Spec{Name: "x", URL: "rtsp://h:65536/x"}, false},
		{Spec{Name: "x", URL: "rtsp://h:0/x"}, false},
		{Spec{Name: "x", URL: "rtsp://h:65535/x"}, true},
		{Spec{Name: "x", URL: "rtsp://h/x#frag"}, false},
		{Spec{Name: "x", URL: "rtsp://h/x\xff"}, false},
		{Spec{Name: "x", URL: "rtsps://user:p@ss/w:rd@cam.example/x"}, false},
		{Spec{Name: "x", URL: "rtsp://u:p@s?s@cam/x"}, false},
		{Spec{Name: "x", URL: "rtsp://u:p%40ss%2Fw@cam/x"}, true},
		{Spec{Name: "x", URL: "rtsp://cam/x?at=@"}, true},
		{Spec{Name: "x", URL: "rtsp://h/a b"}, false},
		{Spec{Name: "x", URL: long}, false},
		{Spec{Name: "x", URL: "rtsp://h/x", Transport: "sctp"}, false},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{Fingerprint: strings.Repeat("AB:", 31) + "AB"}}, true},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{Fingerprint: "AB:CD"}}, false},
		{Spec{Name: "x", URL: "rtsp://h/x", TLS: stream.CameraTLS{Insecure: true}}, false},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{Insecure: true}}, true},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{CAFile: "ca.pem"}}, false},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{CAFile: "/nonexistent/ca.pem"}}, false},
		{Spec{Name: "x", URL: "rtsps://h/x", TLS: stream.CameraTLS{Insecure: true, Fingerprint: strings.Repeat("ab", 32)}}, false},
	} {
		got, err := tc.spec.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.spec, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v does not wrap ErrInvalid", tc.spec, err)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), tc.spec.URL) && tc.spec.URL != "" {
				t.Errorf("error echoes the URL: %v", err)
			}
		} else if got.Transport == "" {
			t.Errorf("transport not normalised: %+v", got)
		}
	}
}

// TestValidateSaysToPercentEncode checks that a password holding a
// character that ends the user info early is refused with how to write it.
func TestValidateSaysToPercentEncode(t *testing.T) {
	for _, u := range []string{
		"rtsp://admin:pa/ss@192.0.2.10/stream1",
		"rtsp://admin:pa?ss@192.0.2.10/stream1",
		"rtsps://user:p@ss/w:rd@cam.example/x",
	} {
		_, err := Spec{Name: "x", URL: u}.Validate()
		if err == nil || !strings.Contains(err.Error(), "%40") || !strings.Contains(err.Error(), "%2F") {
			t.Errorf("%s: error %v, want it to say to percent-encode", u, err)
		}
	}
	// A URL that is wrong for another reason gets no such advice.
	if _, err := (Spec{Name: "x", URL: "rtsp://h:port/x"}).Validate(); err == nil || strings.Contains(err.Error(), "%40") {
		t.Errorf("rtsp://h:port/x: error %v, want a port error without encoding advice", err)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	min, max := 100*time.Millisecond, 2*time.Second
	for n := 1; n <= 10; n++ {
		want := min << (n - 1)
		if want > max {
			want = max
		}
		for i := 0; i < 50; i++ {
			d := backoff(n, min, max)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := crashBackoff(1, min, max); d != 0 {
		t.Errorf("first crash restart waits %v, want 0", d)
	}
	if d := crashBackoff(5, min, max); d < 400*time.Millisecond {
		t.Errorf("fifth crash restart waits %v", d)
	}
}

func TestStateNames(t *testing.T) {
	for _, s := range States {
		p, ok := ParseState(s.String())
		if !ok || p != s {
			t.Errorf("%v round trip: %v %v", s, p, ok)
		}
	}
	if State(99).String() != "UNKNOWN" {
		t.Error("unknown state name")
	}
}

// A URL without rtsp:// or rtsps:// says so, naming the scheme it has when
// that is one, and never quoting the rest.
func TestValidateURLScheme(t *testing.T) {
	for raw, want := range map[string]string{
		"127.0.0.1/cam":                 "url must start with rtsp:// or rtsps://",
		"127.0.0.1:554/cam":             "url must start with rtsp:// or rtsps://",
		"admin:secret@cam.local/stream": "url must start with rtsp:// or rtsps://",
		"http://u:secret@cam/x":         "url must start with rtsp:// or rtsps:// (its scheme is http)",
		"u:secret@rtsp://cam/x":         "url must start with rtsp:// or rtsps://",
	} {
		_, err := Spec{Name: "x", URL: raw}.Validate()
		if !errors.Is(err, ErrInvalid) || err.Error() != "invalid camera: "+want {
			t.Errorf("%q: %v, want %q", raw, err, want)
		}
	}
	if _, err := (Spec{Name: "x", URL: "RTSP://cam/x"}).Validate(); err != nil {
		t.Errorf("upper-case scheme: %v", err)
	}
}
