package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of the given size ("256k", "2m") on a fresh
// directory, for disk-full tests, and unmounts it when the test ends.
// Mounting needs root (CAP_SYS_ADMIN): elsewhere the test is skipped,
// except on CI (CI=true), where a skipped disk-full test would go unnoticed.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("the disk-full test mounts a tmpfs and needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		skip("cannot mount a tmpfs to fill up: %v", err)
	}
	// Registered after TempDir, so it runs before TempDir's removal, and
	// before everything the test registers later (a store on it, say).
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes to a new file in dir until the file system is full and
// returns the file's path; removing it makes room again.
func FillDisk(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}
