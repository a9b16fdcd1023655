package netfault

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "netfault: left behind: %s\n", strings.Join(left, ", "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// skipOrFail skips the test, or fails it under CI (CI=true), where every
// requirement is meant to be installed.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (required in CI)", msg)
	}
	t.Skip(msg)
}

// requireLab checks what building a lab needs: root, ip, ss and nft.
func requireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "network-fault tests need root (they create network namespaces and nftables rules)")
	}
	for _, p := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"ss", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(p.name); err != nil {
			skipOrFail(t, "%s is missing (apt-get install %s): %v", p.name, p.pkg, err)
		}
	}
}

// goTool finds the go command.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("go command not found in PATH or $GOROOT/bin")
}

// camdBinary builds ./cmd/camd once per test binary run and returns its
// path. It is built without cgo, so that it runs anywhere.
func camdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		var goBin string
		goBin, buildErr = goTool()
		if buildErr != nil {
			return
		}
		var out []byte
		out, buildErr = exec.Command(goBin, "env", "GOMOD").Output()
		if buildErr != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", buildErr)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("not inside the camd module (go env GOMOD = %q)", gomod)
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "camd-netfault-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "camd")
		cmd := exec.Command(goBin, "build", "-o", buildBin, "./cmd/camd")
		cmd.Dir = filepath.Dir(gomod)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/camd: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}
