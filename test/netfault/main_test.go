package netfault

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/camd/camd/test/camdproc"

	"github.com/camd/camd/internal/testutil"
)

var (
	buildOnce sync.Once
	buildDir  string
	bin       camdproc.Bin
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
			testutil.SkipMissing(t, p.name, "apt-get install "+p.pkg)
		}
	}
}

// camdBinary builds ./cmd/camd once per test binary run and returns its
// path. It is built without cgo, so that it runs anywhere.
func camdBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, bin.Err = os.MkdirTemp("", "camd-netfault-")
		if bin.Err == nil {
			bin = camdproc.Build(buildDir)
		}
	})
	if bin.Err != nil {
		t.Fatal(bin.Err)
	}
	return bin.Path
}
