package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camd/camd/internal/api"
)

// A daemon that requires the token prints it when it creates it (the
// container image's first start), and never again.
func TestRunPrintsNewToken(t *testing.T) {
	needLinux(t)
	cfg := filepath.Join(t.TempDir(), "camd.yaml")
	if err := os.WriteFile(cfg, []byte("api:\n  require_token: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startCamd(t, dir, nil, "--config", cfg)
	tok, err := api.ReadToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	p.waitLog(30*time.Second, "API token created")
	line := grepLine(p.stderr.String(), "API token created")
	if !strings.Contains(line, "token="+tok) {
		t.Fatalf("first start does not print the token; log:\n%s", p.stderr.String())
	}
	stop := func(p *camdProc) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatal("camd did not exit after SIGTERM")
		}
	}
	stop(p)
	p = startCamd(t, dir, nil, "--config", cfg)
	if strings.Contains(p.stderr.String(), tok) {
		t.Fatalf("second start prints the token again:\n%s", p.stderr.String())
	}
	stop(p)
	// On loopback without require_token, the CLI reads the file: no print.
	dir = t.TempDir()
	p = startCamd(t, dir, nil)
	if strings.Contains(p.stderr.String(), "API token created") {
		t.Fatalf("a loopback daemon prints its token:\n%s", p.stderr.String())
	}
	stop(p)
}
