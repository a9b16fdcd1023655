package device

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
)

// FuzzSpecValidate checks Spec.Validate against the rules documented on
// Spec and in validate.go, not just that it does not panic: whatever it
// accepts has a valid name, an rtsp:// or rtsps:// URL with a host, within
// the length limits, that the RTSP client can parse; whatever it rejects is
// an ErrInvalid whose message quotes neither the URL nor its password; and
// the URL shown for an accepted camera (stream.RedactURL, View.URL) has the
// password and secret parameters, and only those, replaced.
func FuzzSpecValidate(f *testing.F) {
	for _, sd := range []struct{ name, url, transport string }{
		{"cam1", "rtsp://127.0.0.1:8554/cam1", ""},
		{"Front-door_2.hd", "rtsps://user:pw@cam.local/stream", "udp"},
		{"a", "rtsp://user:s3cr3t-Pass@192.168.1.10:554/Streaming/Channels/101?transportmode=unicast", "auto"},
		{"x", "rtsp://admin:p%40ss%2Fw0rd@cam/x", "tcp"},
		{"x", "rtsp://admin:p@ss@cam/x", ""},
		{"x", "rtsp://admin:@cam/x", ""},
		{"x", "rtsp://admin@cam/x", ""},
		{"x", "rtsp://:pw@cam/x", ""},
		{"x", "rtsp://u:pw@[::1]:554/x", ""},
		{"x", "rtsp://[fe80::1%25eth0]/x", ""},
		{"x", "RTSP://Cam/x", ""},
		{"x", "rtsp://h/x#frag", ""},
		{"x", "rtsp://h:/x", ""},
		{"x", "rtsp://h:99999999/x", ""},
		{"x", "rtsp://u:1/ss@h/x", ""},
		{"x", "rtsp://cam.lan/live/ch0:main@hd", ""},
		{"x", "rtsp://u:pw@h/user=admin&password=X1&channel=1?token=Y2&keyframe=1", ""},
		{"x", "rtsp://h/user=admin_password=X1_channel=1.sdp?apiKey=Z3", ""},
		{"x", "rtsp://u:1?q@h/x", ""},
		{"x", "rtsp://h/a%20b", ""},
		{"x", "rtsp://h/a b", ""},
		{"x", "rtsp://h/\x00", ""},
		{"x", "rtsp://h/\x7f", ""},
		{"x", "rtsp://u:pw@h/%zz", ""},
		{"x", "rtsp://u:p%zz@h/x", ""},
		{"x", "rtsp:///nohost", ""},
		{"x", "rtsp://:554/x", ""},
		{"x", "rtsp:h/x", ""},
		{"x", "rtsp:/h/x", ""},
		{"x", "rtsp://h:port/x", ""},
		{"x", "rtsp://h:+1/x", ""},
		{"x", "http://u:pw@h/x", ""},
		{"x", "file:///etc/passwd", ""},
		{"x", "//h/x", ""},
		{"x", "rtsp", ""},
		{"x", "", ""},
		{"x", "rtsp://h/" + strings.Repeat("a", MaxURLLen-9), ""},
		{"x", "rtsp://h/" + strings.Repeat("a", MaxURLLen-8), ""},
		{"x", "rtsp://h/x", "sctp"},
		{"x", "rtsp://h/x", "TCP"},
		{"", "rtsp://h/x", ""},
		{strings.Repeat("n", MaxNameLen), "rtsp://h/x", ""},
		{strings.Repeat("n", MaxNameLen+1), "rtsp://h/x", ""},
		{"a b", "rtsp://h/x", ""},
		{"a/b", "rtsp://h/x", ""},
		{"../x", "rtsp://h/x", ""},
		{".x", "rtsp://h/x", ""},
		{"-x", "rtsp://h/x", ""},
		{"x\n", "rtsp://h/x", ""},
		{"kamera-ü", "rtsp://h/x", ""},
		{"\xff", "rtsp://h/\xff", ""},
	} {
		f.Add(sd.name, sd.url, sd.transport)
	}

	// A Manager that is never started: it lets the test build a camera's
	// View exactly as operators see it, without running anything.
	st, err := store.Open(filepath.Join(f.TempDir(), "camd.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	m, err := NewManager(Config{Store: st})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, name, rawURL, transport string) {
		in := Spec{Name: name, URL: rawURL, Transport: transport}
		got, err := in.Validate()
		if err != nil {
			checkRejection(t, in, err)
			return
		}
		checkName(t, got.Name)
		if got.Name != name || got.URL != rawURL {
			t.Fatalf("Validate changed the name or URL: %+v → %+v", in, got)
		}
		switch got.Transport {
		case "tcp", "udp", "auto":
		default:
			t.Fatalf("transport %q accepted as %q", transport, got.Transport)
		}
		if transport == "" && got.Transport != "tcp" {
			t.Fatalf("empty transport normalised to %q, want tcp", got.Transport)
		}
		if again, err := got.Validate(); err != nil || again != got {
			t.Fatalf("Validate is not idempotent: %+v → %+v, %v", got, again, err)
		}
		u := checkURL(t, rawURL)

		// What operators are shown.
		v := newSupervisor(m, store.Camera{ID: "id", Name: got.Name, URL: got.URL, Transport: got.Transport}).view(time.Now())
		if red := stream.RedactURL(rawURL); v.URL != red {
			t.Fatalf("View.URL %q differs from RedactURL %q", v.URL, red)
		}
		checkRedacted(t, rawURL, u, v.URL)
	})
}

// checkName checks an accepted name against the documented rules.
func checkName(t *testing.T, name string) {
	t.Helper()
	if name == "" || len(name) > MaxNameLen {
		t.Fatalf("name of %d bytes accepted", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum || !alnum && c != '.' && c != '_' && c != '-' {
			t.Fatalf("name %q accepted: byte %d (%q) not allowed there", name, i, c)
		}
	}
}

// checkURL checks an accepted URL against the documented rules and returns
// it parsed.
func checkURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	if raw == "" || len(raw) > MaxURLLen {
		t.Fatalf("URL of %d bytes accepted", len(raw))
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			t.Fatalf("URL %q with a space or control character accepted", raw)
		}
	}
	lower := strings.ToLower(raw)
	if !strings.HasPrefix(lower, "rtsp://") && !strings.HasPrefix(lower, "rtsps://") {
		t.Fatalf("URL %q accepted without rtsp:// or rtsps://", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("URL %q accepted but does not parse: %v", raw, err)
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		t.Fatalf("URL %q accepted with scheme %q", raw, u.Scheme)
	}
	if u.Hostname() == "" || u.Opaque != "" {
		t.Fatalf("URL %q accepted without a host", raw)
	}
	for _, c := range u.Port() {
		if c < '0' || c > '9' {
			t.Fatalf("URL %q accepted with port %q", raw, u.Port())
		}
	}
	// The reader must be able to use what was accepted; otherwise the
	// camera is stored and then fails forever with "parse URL".
	if _, err := base.ParseURL(raw); err != nil {
		t.Fatalf("URL %q accepted but the RTSP client refuses it: %v", raw, err)
	}
	return u
}

// checkRedacted checks the URL shown for an accepted URL: nothing but the
// password changed, and the password (as written or unescaped) is gone.
func checkRedacted(t *testing.T, raw string, u *url.URL, shown string) {
	t.Helper()
	pw, hasPW := "", false
	if u.User != nil {
		pw, hasPW = u.User.Password()
	}
	if !hasPW {
		if shown == raw {
			return
		}
		// Redaction may over-reach on URLs without a password whose path
		// or query holds an '@' (it errs on the side of hiding); what it
		// shows must still hold no part of the real user info.
		if !strings.Contains(shown, "xxxxx") {
			t.Fatalf("URL without a password %q shown changed as %q", raw, shown)
		}
		return
	}
	s, err := url.Parse(shown)
	if err != nil {
		t.Fatalf("shown URL %q (of %q) does not parse: %v", shown, raw, err)
	}
	if s.User == nil {
		t.Fatalf("shown URL %q (of %q) lost the user info", shown, raw)
	}
	if p, set := s.User.Password(); !set || p != "xxxxx" {
		t.Fatalf("shown URL %q (of %q) has password %q, want xxxxx", shown, raw, p)
	}
	// Path and query change only where secret parameters are redacted,
	// which is what RedactURL does to the URL without its user info.
	rest := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		rest += "?" + u.RawQuery
	}
	r, err := url.Parse(stream.RedactURL(rest))
	if err != nil {
		t.Fatalf("redacted %q does not parse: %v", rest, err)
	}
	if s.User.Username() != u.User.Username() || s.Scheme != u.Scheme || s.Host != u.Host ||
		s.EscapedPath() != r.EscapedPath() || s.RawQuery != r.RawQuery || s.Fragment != u.Fragment {
		t.Fatalf("shown URL %q changed more than the password and secret parameters of %q", shown, raw)
	}
	// The password text itself is gone, unless the same text occurs in the
	// URL outside the password (say a password equal to the host).
	rawPW := rawPassword(raw)
	outside := strings.Replace(raw, ":"+rawPW+"@", ":@", 1)
	for _, p := range []string{pw, rawPW} {
		if len(p) < 3 || strings.Trim(p, "x") == "" || strings.Contains(outside, p) {
			continue
		}
		if strings.Contains(shown, p) {
			t.Fatalf("shown URL %q still holds the password %q of %q", shown, p, raw)
		}
	}
}

// rawPassword returns the password of an accepted URL as written: between
// the first ':' and the last '@' of the authority.
func rawPassword(raw string) string {
	rest := raw[strings.Index(raw, "://")+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// checkRejection checks the error of a rejected Spec: it wraps ErrInvalid
// and quotes neither the URL nor its password.
func checkRejection(t *testing.T, in Spec, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("%+v: error %v does not wrap ErrInvalid", in, err)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("%+v: error %q is not one line of text", in, msg)
	}
	// The messages are fixed text; its longest word has 10 letters, so a
	// longer run of non-space input found in it was echoed.
	echoed := func(s string) bool {
		return len(s) > 10 && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' }) && strings.Contains(msg, s)
	}
	if echoed(in.URL) {
		t.Fatalf("%+v: error %q quotes the URL", in, msg)
	}
	if start, end := strings.Index(in.URL, "://"), strings.LastIndex(in.URL, "@"); start >= 0 && end > start {
		if _, pw, ok := strings.Cut(in.URL[start+3:end], ":"); ok && echoed(pw) {
			t.Fatalf("%+v: error %q quotes the password", in, msg)
		}
	}
}
