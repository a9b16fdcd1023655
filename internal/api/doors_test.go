package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
	"github.com/camd/camd/internal/testutil/simtest"
	"github.com/camd/camd/stream/sim"
)

// mounts gives the env the daemon's other routes: /metrics behind the
// token, /healthz, /readyz and the page public.
func mounts(c *Config) {
	text := func(s string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, s) })
	}
	c.Mount = map[string]http.Handler{"/metrics": text("metrics")}
	c.PublicMount = map[string]http.Handler{"/healthz": text("ok"), "/readyz": text("ready"), "/": text("page")}
}

// A DNS-rebinding page reaches the loopback API under its own name: every
// route answers 421 and nothing changes.
func TestHostCheckRefusesOtherNames(t *testing.T) {
	e := newEnv(t, mounts)
	e.add("cam1", deadURL, false)
	before := e.snapshot()
	_, port, _ := net.SplitHostPort(e.srv.Addr())

	type call struct{ method, path, ct, body string }
	calls := []call{
		{"GET", "/api/v1/cameras", "", ""},
		{"GET", "/api/v1/cameras/cam1", "", ""},
		{"GET", "/api/v1/status", "", ""},
		{"GET", "/api/v1/nope", "", ""},
		{"POST", "/api/v1/cameras", "application/json", `{"name":"evil","url":"rtsp://192.0.2.1/x"}`},
		{"PUT", "/api/v1/cameras/cam1", "application/json", `{"url":"rtsp://192.0.2.1/y"}`},
		{"PATCH", "/api/v1/cameras/cam1", "application/json", `{"url":"rtsp://192.0.2.1/z"}`},
		{"DELETE", "/api/v1/cameras/cam1", "", ""},
		{"POST", "/api/v1/cameras/cam1/start", "", ""},
		{"POST", "/api/v1/cameras/cam1/stop", "", ""},
		{"POST", "/api/v1/cameras/cam1/restart", "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/", "", ""},
		{"GET", "/index.html", "", ""},
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "EVIL.example.:" + port, "localhost.evil.example", "127.0.0.1.nip.io:" + port, "192.0.2.7:" + port} {
		for _, c := range calls {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := e.req(c.method, c.path, host, c.ct, body)
			if r.code != http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host %s: %d %s, want 421", c.method, c.path, host, r.code, r.body)
			}
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("requests with a foreign Host changed the store:\nbefore %s\nafter  %s", before, after)
	}

	// The names the API does answer to.
	for _, host := range []string{"", "localhost", "localhost:" + port, "LocalHost.:" + port, "127.0.0.1", "127.0.0.1:" + port,
		"127.4.5.6:" + port, "[::1]:" + port, "[::1]", "[::ffff:127.0.0.1]:" + port} {
		for _, path := range []string{"/api/v1/cameras", "/metrics", "/healthz", "/readyz", "/"} {
			if r := e.req("GET", path, host, "", nil); r.code != http.StatusOK {
				t.Errorf("GET %s with Host %q: %d %s", path, host, r.code, r.body)
			}
		}
	}
	if r := e.req("POST", "/api/v1/cameras/cam1/start", "localhost:"+port, "", nil); r.code != http.StatusOK {
		t.Errorf("start with Host localhost: %d %s", r.code, r.body)
	}
}

// With a token required any Host is accepted: the token is the guard.
func TestHostCheckOffWithToken(t *testing.T) {
	yes := true
	const tok = "0123456789abcdef0123"
	e := newEnv(t, mounts, func(c *Config) { c.RequireToken = &yes; c.Token = tok })
	for _, path := range []string{"/api/v1/cameras", "/metrics", "/healthz", "/"} {
		if r := e.req("GET", path, "camd.example.net", "", nil, "Authorization", "Bearer "+tok); r.code != http.StatusOK {
			t.Errorf("GET %s with a name and the token: %d %s", path, r.code, r.body)
		}
	}
	if r := e.req("GET", "/api/v1/cameras", "camd.example.net", "", nil); r.code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", r.code)
	}
}

func TestHostCheckNames(t *testing.T) {
	for _, tc := range []struct {
		listen string
		yes    []string
		no     []string
	}{
		{"127.0.0.1:7654", []string{"127.0.0.1:7654", "localhost", "[::1]:1", "127.9.9.9"}, []string{"camd.lan", "10.0.0.2:7654", "[fe80::1]:7654", "localhost.example"}},
		{"camd.lan:7654", []string{"camd.lan:7654", "CAMD.LAN", "localhost:7654"}, []string{"other.lan:7654", "10.0.0.2"}},
		{"0.0.0.0:7654", []string{"10.0.0.2:7654", "[fe80::1]:7654", "localhost"}, []string{"camd.lan:7654", "evil.example"}},
		{":7654", []string{"192.168.1.9:7654"}, []string{"camd.lan"}},
		{"[::]:7654", []string{"[2001:db8::1]:7654"}, []string{"camd.lan"}},
		{"192.168.1.9:7654", []string{"192.168.1.9:7654"}, []string{"192.168.1.10:7654", "camd.lan"}},
	} {
		h := newHostCheck(tc.listen)
		for _, host := range tc.yes {
			if !h.allowed(host) {
				t.Errorf("listen %s: Host %s refused", tc.listen, host)
			}
		}
		for _, host := range tc.no {
			if h.allowed(host) {
				t.Errorf("listen %s: Host %s accepted", tc.listen, host)
			}
		}
	}
}

// A web page's cross-site request cannot change anything, whatever simple
// content type it uses; the camera keeps its state.
func TestCrossSiteChangesRefused(t *testing.T) {
	s := simtest.Start(t, sim.Config{Cameras: 1, NoUDP: true})
	e := newEnv(t)
	e.add("on", s.URL(1), true)
	e.add("off", deadURL, false)
	e.waitState("on", "RUNNING", 60*time.Second)
	before := e.snapshot()

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("a", "b")
	_ = mw.Close()
	bodies := []struct{ ct, body string }{
		{"", ""},
		{"text/plain", "x"},
		{"application/x-www-form-urlencoded", "a=b"},
		{mw.FormDataContentType(), mp.String()},
	}
	browsers := [][]string{
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost:8080"},
		{"Origin", "http://evil.example"},
		{"Origin", "null"},
	}
	actions := []struct{ cam, action string }{{"on", "stop"}, {"off", "start"}, {"on", "restart"}, {"off", "restart"}}
	for _, b := range bodies {
		for _, hdr := range browsers {
			for _, a := range actions {
				var body []byte
				if b.body != "" {
					body = []byte(b.body)
				}
				r := e.req("POST", "/api/v1/cameras/"+a.cam+"/"+a.action, "", b.ct, body, hdr...)
				if r.code != http.StatusForbidden {
					t.Errorf("%s %s with %q %v: %d %s, want 403", a.action, a.cam, b.ct, hdr, r.code, r.body)
				}
			}
			// Every other change too.
			for _, c := range []struct{ method, path string }{
				{"POST", "/api/v1/cameras"}, {"PUT", "/api/v1/cameras/on"}, {"PATCH", "/api/v1/cameras/on"}, {"DELETE", "/api/v1/cameras/on"},
			} {
				if r := e.req(c.method, c.path, "", "text/plain", []byte(`{"name":"x","url":"rtsp://192.0.2.1/x"}`), hdr...); r.code != http.StatusForbidden {
					t.Errorf("%s %s cross-site: %d, want 403", c.method, c.path, r.code)
				}
			}
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("cross-site requests changed the store:\nbefore %s\nafter  %s", before, after)
	}
	on := e.do("GET", "/api/v1/cameras/on", "", nil).camera(t)
	if on.State != "RUNNING" || on.PersistedStatus != "running" || on.Restarts != 0 {
		t.Errorf("camera on after cross-site stop/restart: state %s, persisted %s, restarts %d", on.State, on.PersistedStatus, on.Restarts)
	}
	off := e.do("GET", "/api/v1/cameras/off", "", nil).camera(t)
	if off.State != "STOPPED" || off.PersistedStatus != "stopped" {
		t.Errorf("camera off after cross-site start/restart: state %s, persisted %s", off.State, off.PersistedStatus)
	}
	// A cross-site read is not refused (the browser keeps the answer from
	// the page).
	if r := e.req("GET", "/api/v1/cameras", "", "", nil, "Sec-Fetch-Site", "cross-site"); r.code != http.StatusOK {
		t.Errorf("cross-site GET: %d", r.code)
	}

	// The status page's own fetches and the CLI's requests still work.
	port := e.srv.Addr()
	if r := e.req("POST", "/api/v1/cameras/on/stop", "", "", nil, "Sec-Fetch-Site", "same-origin", "Origin", "http://"+port); r.code != http.StatusOK {
		t.Errorf("same-origin stop: %d %s", r.code, r.body)
	}
	if r := e.req("POST", "/api/v1/cameras/off/start", "", "", nil, "Origin", "http://"+port); r.code != http.StatusOK {
		t.Errorf("same-origin start (Origin only): %d %s", r.code, r.body)
	}
	c := NewClient(e.srv.Addr(), "")
	defer c.CloseIdleConnections()
	if _, err := c.StartCamera(context.Background(), "on"); err != nil {
		t.Errorf("client start: %v", err)
	}
}

// A wrong token is logged at most once a second and answered later and
// later; a request without a token is neither.
func TestWrongTokensSlowedAndLogged(t *testing.T) {
	yes := true
	const tok = "right-token-0123456789"
	e := newEnv(t, func(c *Config) { c.RequireToken = &yes; c.Token = tok; c.MaxConns = 200 })
	start := time.Now()
	var wg sync.WaitGroup
	for range 99 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", e.base+"/api/v1/cameras", nil)
			req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
			resp, err := e.hc.Do(req)
			if err != nil {
				t.Errorf("wrong token: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("wrong token: %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	t0 := time.Now()
	r := e.do("GET", "/api/v1/cameras", "", nil, "Authorization", "Bearer wrong-token-0123456789")
	took := time.Since(t0)
	elapsed := time.Since(start)
	if r.code != http.StatusUnauthorized {
		t.Fatalf("100th wrong token: %d", r.code)
	}
	if took < 2*time.Second {
		t.Errorf("the 100th wrong token was answered in %s; want it slowed (several seconds)", took)
	}
	lines := e.logs.Lines("control API: authentication failed")
	if len(lines) == 0 {
		t.Fatal("wrong tokens not logged")
	}
	if max := int(elapsed/time.Second) + 1; len(lines) > max {
		t.Errorf("%d log lines in %s, want at most one a second:\n%s", len(lines), elapsed, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "wrong-token") || strings.Contains(l, tok) {
			t.Errorf("a token was logged: %s", l)
		}
	}
	t.Logf("100 wrong tokens: %d log lines in %s; the 100th answered in %s", len(lines), elapsed.Round(time.Millisecond), took.Round(time.Millisecond))

	// No token at all guesses nothing: not slowed, not logged.
	yes2 := true
	e2 := newEnv(t, func(c *Config) { c.RequireToken = &yes2; c.Token = tok })
	t1 := time.Now()
	for range 20 {
		if r := e2.do("GET", "/api/v1/cameras", "", nil); r.code != http.StatusUnauthorized {
			t.Fatalf("no token: %d", r.code)
		}
	}
	if d := time.Since(t1); d > 5*time.Second {
		t.Errorf("20 requests without a token took %s", d)
	}
	if got := len(e2.logs.Lines("authentication failed")); got != 0 {
		t.Errorf("requests without a token were logged as failures (%d lines)", got)
	}
}

// Connections over the cap are closed as soon as they are accepted, and
// OpenConns counts the open ones.
func TestMaxConns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxConns = 3 })
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Each held connection has had one answer and is idle in keep-alive,
	// which the server keeps for a minute (a connection that never sent a
	// request would be dropped after ReadHeaderTimeout).
	for range 3 {
		c, err := net.Dial("tcp", e.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "3 open connections", func() bool { return e.srv.OpenConns() == 3 })
	over, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	// It is closed without an answer; a served one would answer 404.
	_ = over.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(over, "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(over), nil); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
			err = errors.New(resp.Status)
		}
		t.Errorf("a connection over the cap was not closed at once: %v", err)
	}
	if n := e.srv.OpenConns(); n != 3 {
		t.Errorf("OpenConns %d, want 3", n)
	}
	testutil.WaitFor(t, 10*time.Second, "cap WARN", func() bool { return len(e.logs.Lines("connection cap reached")) == 1 })
	// A freed slot serves again.
	held[0].Close()
	held = held[1:]
	testutil.WaitFor(t, 10*time.Second, "2 open connections", func() bool { return e.srv.OpenConns() == 2 })
	if r := e.do("GET", "/api/v1/status", "", nil); r.code != http.StatusOK {
		t.Errorf("status after a slot freed: %d", r.code)
	}
	e.hc.CloseIdleConnections()
	for _, c := range held {
		c.Close()
	}
	held = nil
	testutil.WaitFor(t, 10*time.Second, "no open connections", func() bool { return e.srv.OpenConns() == 0 })
}

func TestNoTokenOffLoopbackRefused(t *testing.T) {
	no := false
	e := newEnv(t) // for its Manager
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		_, err := New(Config{Manager: e.m, Listen: listen, RequireToken: &no})
		if !errors.Is(err, ErrNoTokenOffLoopback) {
			t.Errorf("listen %s without a token: %v", listen, err)
		}
	}
	if !listenOffLoopback("0.0.0.0:1") || listenOffLoopback("127.0.0.1:1") || listenOffLoopback("[::1]:1") || listenOffLoopback("localhost:1") {
		t.Error("listenOffLoopback")
	}
}

func TestShortTokenRefused(t *testing.T) {
	e := newEnv(t)
	yes := true
	if _, err := New(Config{Manager: e.m, Listen: "127.0.0.1:0", RequireToken: &yes, Token: "short"}); !errors.Is(err, ErrTokenTooShort) {
		t.Errorf("a 5-byte token: %v", err)
	}
}

// fileState is a file's hash, mode and kind, for "nothing changed".
func fileState(t *testing.T, p string) string {
	t.Helper()
	li, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return li.Mode().String() + " " + hex.EncodeToString(sum[:])
}

// A short token file and a token "file" that is a symlink are refused with
// one line, and neither they nor a symlink's target are changed.
func TestTokenFileRefused(t *testing.T) {
	short := t.TempDir()
	if err := os.WriteFile(TokenPath(short), []byte("abcde\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := fileState(t, TokenPath(short))
	_, err := EnsureToken(short)
	if !errors.Is(err, ErrTokenTooShort) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "abcde") {
		t.Errorf("a 5-byte token file: %v", err)
	}
	if after := fileState(t, TokenPath(short)); after != before {
		t.Errorf("the short token file changed: %s → %s", before, after)
	}

	// A symlink to a file someone else controls, with a token-like content
	// and a mode that EnsureToken would tighten.
	other := t.TempDir()
	target := filepath.Join(other, "theirs")
	if err := os.WriteFile(target, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{target, filepath.Join(other, "missing")} {
		dir := t.TempDir()
		if err := os.Symlink(link, TokenPath(dir)); err != nil {
			t.Skipf("symlink: %v", err)
		}
		tb := fileState(t, target)
		lb, _ := os.Readlink(TokenPath(dir))
		_, err := EnsureToken(dir)
		if err == nil || !strings.Contains(err.Error(), "symlink") || strings.Contains(err.Error(), "\n") {
			t.Errorf("api.token → %s: %v", link, err)
		}
		if _, err := ReadToken(dir); err == nil {
			t.Errorf("ReadToken followed a symlink to %s", link)
		}
		if ta := fileState(t, target); ta != tb {
			t.Errorf("the symlink's target changed: %s → %s", tb, ta)
		}
		if la, err := os.Readlink(TokenPath(dir)); err != nil || la != lb {
			t.Errorf("the symlink changed: %q %v", la, err)
		}
		if _, err := os.Lstat(filepath.Join(other, "missing")); err == nil {
			t.Error("a token was written through a dangling symlink")
		}
	}

	// A directory is not a token either.
	d := t.TempDir()
	if err := os.Mkdir(TokenPath(d), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureToken(d); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("api.token a directory: %v", err)
	}
}

// Over TLS the client accepts the configured certificate through a CA file
// or a pinned fingerprint, and nothing else; plain HTTP to the TLS port is
// Go's clean 400, which the client turns into one line.
func TestTLS(t *testing.T) {
	cert := testutil.NewCert(t, t.TempDir())
	e := newEnv(t, func(c *Config) { c.TLSCert, c.TLSKey = cert.CertFile, cert.KeyFile })
	addr := e.srv.Addr()
	ctx := context.Background()
	sum := sha256.Sum256(cert.DER)
	fp := hex.EncodeToString(sum[:])
	if got := e.srv.TLSFingerprint(); strings.ReplaceAll(strings.ToLower(got), ":", "") != fp {
		t.Errorf("TLSFingerprint %s, want %s", got, fp)
	}
	if e.srv.URL() != "https://"+addr {
		t.Errorf("URL %s", e.srv.URL())
	}
	testutil.WaitFor(t, 10*time.Second, "listening line with the fingerprint", func() bool {
		return len(e.logs.Lines("control API listening", "url=https://"+addr, "tls_sha256="+e.srv.TLSFingerprint())) == 1
	})

	good := map[string]ClientTLS{
		"ca":                 {CAFile: cert.CertFile},
		"fingerprint":        {Fingerprint: fp},
		"fingerprint colons": {Fingerprint: e.srv.TLSFingerprint()},
		"openssl form":       {Fingerprint: "sha256 Fingerprint=" + e.srv.TLSFingerprint()},
		"both":               {CAFile: cert.CertFile, Fingerprint: fp},
	}
	for name, tc := range good {
		c, err := NewClientTLS("https://"+addr, "", tc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := c.Status(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// localhost is in the certificate too.
		_, port, _ := net.SplitHostPort(addr)
		if c2, _ := NewClientTLS("https://localhost:"+port, "", tc); c2 != nil {
			if _, err := c2.Cameras(ctx); err != nil {
				t.Errorf("%s via localhost: %v", name, err)
			}
			c2.CloseIdleConnections()
		}
		c.CloseIdleConnections()
	}

	other := testutil.NewCert(t, t.TempDir())
	osum := sha256.Sum256(other.DER)
	bad := map[string]struct {
		tls  ClientTLS
		want string
	}{
		"system CAs":        {ClientTLS{}, "not trusted"},
		"other CA":          {ClientTLS{CAFile: other.CertFile}, "not trusted"},
		"other fingerprint": {ClientTLS{Fingerprint: hex.EncodeToString(osum[:])}, "pinned fingerprint"},
		"pin and wrong CA":  {ClientTLS{CAFile: other.CertFile, Fingerprint: fp}, "not trusted"},
	}
	for name, tc := range bad {
		c, err := NewClientTLS("https://"+addr, "", tc.tls)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = c.Status(ctx)
		var ue *UnreachableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", name, err, tc.want)
		}
		c.CloseIdleConnections()
	}
	for _, tc := range []ClientTLS{{CAFile: filepath.Join(t.TempDir(), "none.pem")}, {CAFile: cert.KeyFile}, {Fingerprint: "abc"}} {
		c, err := NewClientTLS("https://"+addr, "", tc)
		if err == nil {
			t.Errorf("%+v accepted", tc)
			continue
		}
		if _, cerr := c.Status(ctx); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%+v: the client's calls say %v, want %v", tc, cerr, err)
		}
	}

	// Plain HTTP to the TLS port: Go's 400, and one line from the client.
	resp, err := e.hc.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP to the TLS port: %d %q", resp.StatusCode, body)
	}
	plain := NewClient(addr, "")
	_, err = plain.Status(ctx)
	var ae *Error
	if !errors.As(err, &ae) || ae.Message != "the daemon at http://"+addr+" speaks HTTPS; use https://"+addr {
		t.Errorf("plain client: %v", err)
	}
	plain.CloseIdleConnections()
	// And the other way round: https to a plain-HTTP API.
	pe := newEnv(t)
	c, _ := NewClientTLS("https://"+pe.srv.Addr(), "", ClientTLS{Fingerprint: fp})
	_, err = c.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not speak HTTPS") {
		t.Errorf("https to a plain API: %v", err)
	}
	c.CloseIdleConnections()
	testutil.WaitFor(t, 10*time.Second, "no open connections", func() bool { return e.srv.OpenConns() == 0 })
}

func TestTLSBadFiles(t *testing.T) {
	e := newEnv(t)
	cert := testutil.NewCert(t, t.TempDir())
	for _, tc := range []struct{ cert, key string }{
		{cert.CertFile, ""},
		{"", cert.KeyFile},
		{filepath.Join(t.TempDir(), "nope.pem"), cert.KeyFile},
		{cert.KeyFile, cert.CertFile},
	} {
		_, err := New(Config{Manager: e.m, Listen: "127.0.0.1:0", TLSCert: tc.cert, TLSKey: tc.key})
		if err == nil || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "PRIVATE") {
			t.Errorf("cert %q key %q: %v", tc.cert, tc.key, err)
		}
	}
}

// Off loopback, a waived token and plain HTTP are each a WARN at every
// start. Tests bind only loopback, so the server is told it is off
// loopback after New.
func TestOffLoopbackWarnings(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		requireToken, tls bool
		want              []string
	}{
		{false, false, []string{"no token is required off loopback", "without TLS"}},
		{true, false, []string{"without TLS"}},
		{true, true, nil},
	} {
		logs := &testutil.LogBuffer{}
		cfg := Config{Manager: e.m, Listen: "127.0.0.1:0", Token: "0123456789abcdef", RequireToken: &tc.requireToken,
			AllowNoTokenOffLoopback: true, Logger: testutil.Logger(logs)}
		if tc.tls {
			cert := testutil.NewCert(t, t.TempDir())
			cfg.TLSCert, cfg.TLSKey = cert.CertFile, cert.KeyFile
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.offLoopback = true
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		testutil.WaitFor(t, 10*time.Second, "listening line", func() bool { return len(logs.Lines("control API listening")) == 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		warns := logs.Lines("level=WARN")
		if len(warns) != len(tc.want) {
			t.Errorf("token %v, TLS %v: WARN lines %q, want %q", tc.requireToken, tc.tls, warns, tc.want)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(warns[i], w) {
				t.Errorf("WARN %q lacks %q", warns[i], w)
			}
		}
	}
}
