package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// healthExit runs the camd binary's "health ARGS…" and returns its exit
// status and output.
func healthExit(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(camdBin(t), append([]string{"health"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, o.String(), e.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), o.String(), e.String()
	}
	t.Fatalf("camd health: %v", err)
	return 0, "", ""
}

// "camd health" exits 0 while /healthz is ok, 1 while the supervision loop
// hangs or no daemon answers, and 2 on a usage error; it needs no token.
func TestHealthCommand(t *testing.T) {
	t.Parallel()
	needLinux(t)
	hang := filepath.Join(t.TempDir(), "hang")
	cfg := filepath.Join(t.TempDir(), "camd.yaml")
	// The token is required (as in the container image), and health is
	// given none.
	if err := os.WriteFile(cfg, []byte("api:\n  require_token: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startCamd(t, t.TempDir(), []string{"CAMD_TESTHOOK_HANG_LOOP_FILE=" + hang}, "--config", cfg)
	env := []string{"CAMD_TOKEN=", "CAMD_API="}

	code, out, errOut := healthExit(t, env, "--api", p.api, "--data-dir", t.TempDir())
	if code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("health of a running daemon: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// $CAMD_API is honoured as by the other commands.
	if code, _, errOut := healthExit(t, []string{"CAMD_TOKEN=", "CAMD_API=" + p.api}, "--data-dir", t.TempDir()); code != 0 {
		t.Fatalf("health with CAMD_API: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = healthExit(t, env, "--api", p.api, "--json")
	if code != 0 || !strings.Contains(out, `"status": "ok"`) || !strings.Contains(out, `"http_status": 200`) {
		t.Fatalf("health --json: exit %d, %s", code, out)
	}

	if err := os.WriteFile(hang, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "health to fail while the loop hangs", func() bool {
		code, _, errOut = healthExit(t, env, "--api", p.api)
		return code != 0
	})
	if code != 1 || !strings.Contains(errOut, "unhealthy: the supervision loop has not run") {
		t.Fatalf("health of a hung daemon: exit %d, stderr %q", code, errOut)
	}
	_ = os.Remove(hang)
	testutil.WaitFor(t, 30*time.Second, "health to pass again", func() bool {
		code, _, _ = healthExit(t, env, "--api", p.api)
		return code == 0
	})

	code, _, errOut = healthExit(t, env, "--api", freeAddr(t))
	if code != 1 || !strings.Contains(errOut, "cannot reach the camd daemon") {
		t.Fatalf("health with no daemon: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"--frobnicate"}, {"extra"}, {"--timeout", "0s"}} {
		if code, _, errOut := healthExit(t, env, append([]string{"--api", p.api}, args...)...); code != 2 {
			t.Errorf("health %v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
	if code, out, _ := healthExit(t, env, "--help"); code != 0 || !strings.Contains(out, "/healthz") {
		t.Errorf("health --help: exit %d, stdout %q", code, out)
	}
}
