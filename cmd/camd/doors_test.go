package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/testutil"
)

// "camd run" with api.tls_cert and api.tls_key in its config serves HTTPS;
// the CLI works with --ca or --fingerprint (or their variables) and says in
// one line what is wrong otherwise.
func TestRunAPIOverTLS(t *testing.T) {
	cert := testutil.NewCert(t, t.TempDir())
	cfg := writeConfig(t, t.TempDir(), "api:\n  tls_cert: "+cert.CertFile+"\n  tls_key: "+cert.KeyFile+"\n")
	p := startCamd(t, t.TempDir(), nil, "--config", cfg)
	t.Setenv("CAMD_CA", "")
	t.Setenv("CAMD_FINGERPRINT", "")
	t.Setenv("CAMD_API", "")
	sum := sha256.Sum256(cert.DER)
	fp := hex.EncodeToString(sum[:])
	url := "https://" + p.api
	if !strings.Contains(p.stderr.String(), " api="+url+" ") {
		t.Errorf("start line does not give %s:\n%s", url, p.stderr.String())
	}
	// The API logs its line from its own goroutine, after the start line.
	if !testutil.Poll(10*time.Second, func() bool {
		return strings.Contains(strings.ReplaceAll(strings.ToLower(p.stderr.String()), ":", ""), "tls_sha256="+fp)
	}) {
		t.Errorf("the certificate's fingerprint is not logged:\n%s", p.stderr.String())
	}

	ok := func(what string, args ...string) {
		t.Helper()
		if out, errOut, err := camCLI(args...); err != nil {
			t.Errorf("%s: %v %q %q", what, err, out, errOut)
		}
	}
	ok("add with --ca", "camera", "add", "door", "rtsp://127.0.0.1:1/x", "--stopped", "--api", url, "--ca", cert.CertFile)
	ok("ls with --fingerprint", "camera", "ls", "--api", url, "--fingerprint", fp)
	ok("status with --fingerprint in openssl's form", "status", "--api", url, "--fingerprint", api.Fingerprint(cert.DER))
	ok("start with --ca", "camera", "start", "door", "--api", url, "--ca", cert.CertFile)
	t.Setenv("CAMD_API", url)
	t.Setenv("CAMD_CA", cert.CertFile)
	ok("stop with CAMD_CA", "camera", "stop", "door")
	t.Setenv("CAMD_CA", "")
	t.Setenv("CAMD_FINGERPRINT", fp)
	ok("show with CAMD_FINGERPRINT", "camera", "show", "door")
	t.Setenv("CAMD_FINGERPRINT", "")
	t.Setenv("CAMD_API", "")

	other := testutil.NewCert(t, t.TempDir())
	osum := sha256.Sum256(other.DER)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", url}, "not trusted"},
		{[]string{"--api", url, "--ca", other.CertFile}, "not trusted"},
		{[]string{"--api", url, "--fingerprint", hex.EncodeToString(osum[:])}, "pinned fingerprint"},
		{[]string{"--api", url, "--fingerprint", "nothex"}, "fingerprint is not a SHA-256"},
		{[]string{"--api", url, "--ca", filepath.Join(t.TempDir(), "none.pem")}, "no such file"},
		{[]string{"--api", p.api}, "speaks HTTPS; use " + url},
		{[]string{"--api", "http://" + p.api}, "speaks HTTPS; use " + url},
	} {
		_, errOut, err := camCLI(append([]string{"camera", "ls"}, tc.args...)...)
		if err == nil || !oneLine(errOut) || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %v %q, want one line with %q", tc.args, err, errOut, tc.want)
		}
		if strings.Contains(tc.want, "trusted") && !strings.Contains(errOut, "--ca FILE or --fingerprint") {
			t.Errorf("%v: no hint: %q", tc.args, errOut)
		}
	}
}

// A token file of 5 bytes and an api.token that is a symlink stop "camd
// run" with one line; neither the file nor the symlink's target changes.
func TestRunRefusesBadTokenFile(t *testing.T) {
	short := t.TempDir()
	if err := os.WriteFile(api.TokenPath(short), []byte("abcde\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "theirs")
	if err := os.WriteFile(target, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	linked := t.TempDir()
	if err := os.Symlink(target, api.TokenPath(linked)); err != nil {
		t.Skipf("symlink: %v", err)
	}
	for _, tc := range []struct {
		dir, file, want string
	}{
		{short, api.TokenPath(short), "shorter than 16 bytes"},
		{linked, target, "is a symlink"},
	} {
		before := fileHash(t, tc.file)
		p := startProc(t, nil, "run", "--data-dir", tc.dir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0")
		code, _, done := p.wait(30 * time.Second)
		out := p.stderr.String()
		if !done || code == 0 || !oneLine(out) || !strings.Contains(out, tc.want) || !strings.Contains(out, api.TokenPath(tc.dir)) {
			t.Errorf("exit %d (exited %v), stderr %q, want one line with %q", code, done, out, tc.want)
		}
		if after := fileHash(t, tc.file); after != before {
			t.Errorf("%s changed: %s → %s", tc.file, before, after)
		}
	}
	if fi, err := os.Lstat(api.TokenPath(linked)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi, err)
	}
}

// fileHash is a file's mode and SHA-256.
func fileHash(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fi.Mode().String() + " " + hex.EncodeToString(sum[:])
}

// require_token: false off loopback without the second setting is refused
// with one line naming it (decided before anything is bound).
func TestRunNoTokenOffLoopbackRefused(t *testing.T) {
	cfg := writeConfig(t, t.TempDir(), "api:\n  listen: 0.0.0.0:0\n  require_token: false\n")
	p := startProc(t, nil, "run", "--config", cfg, "--data-dir", t.TempDir(), "--rtsp-listen", "127.0.0.1:0")
	code, _, done := p.wait(30 * time.Second)
	out := p.stderr.String()
	if !done || code == 0 || !oneLine(out) || !strings.Contains(out, "api.allow_no_token_off_loopback: true") {
		t.Errorf("exit %d (exited %v), stderr %q", code, done, out)
	}
}

// --token still works but warns that the process list shows it; CAMD_TOKEN
// does not warn.
func TestCLITokenFlagWarns(t *testing.T) {
	d := startCamDaemon(t, true)
	empty := t.TempDir()
	t.Setenv("CAMD_TOKEN", "")
	_, errOut, err := camCLI("status", "--api", d.addr, "--token", d.token, "--data-dir", empty)
	if err != nil || !strings.Contains(errOut, "--token is visible to other users") || !strings.Contains(errOut, "CAMD_TOKEN") {
		t.Errorf("--token: %v %q", err, errOut)
	}
	if strings.Contains(errOut, d.token) {
		t.Error("the token was printed")
	}
	t.Setenv("CAMD_TOKEN", d.token)
	if _, errOut, err := camCLI("status", "--api", d.addr, "--data-dir", empty); err != nil || errOut != "" {
		t.Errorf("CAMD_TOKEN: %v %q", err, errOut)
	}
}
