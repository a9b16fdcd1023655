//go:build unix

package store

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fileState is what a refused Open must leave unchanged: a file's bytes
// (by hash), its mode and its size.
type fileState struct {
	sum  [32]byte
	mode os.FileMode
	size int64
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{sha256.Sum256(b), fi.Mode(), fi.Size()}
}

// wantRefused checks that err is one line naming path and wrapping want.
func wantRefused(t *testing.T, err error, path string, want error, says string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("Open: got %v, want %v", err, want)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, says) {
		t.Fatalf("Open: %q is not one line naming %s and saying %q", msg, path, says)
	}
	t.Logf("refused: %s", msg)
}

// A 0-byte camd.db is refused, not initialised as a new store (which would
// run camd with no cameras where the operator had some), and is left as it
// was: still 0 bytes, same mode, and no pid file written.
func TestOpenRefusesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "camd.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	before := stateOf(t, path)
	_, err := Open(path, Options{})
	wantRefused(t, err, path, ErrDamaged, "empty (0 bytes)")
	if after := stateOf(t, path); after != before {
		t.Fatalf("the refused file changed: %+v, was %+v", after, before)
	}
	if _, err := os.Lstat(path + ".pid"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a pid file was written for a refused file: %v", err)
	}
}

// A camd.db that is a symbolic link is refused whatever it points to: a
// real data file (not read, not chmod-ed), an empty file (not
// initialised), or nothing (nothing created at the target).
func TestOpenRefusesSymlink(t *testing.T) {
	elsewhere := t.TempDir()
	real := filepath.Join(elsewhere, "real.db")
	s, err := Open(real, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCamera(cam("1", "door")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(real, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(elsewhere, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(elsewhere, "missing.db")

	for _, target := range []string{real, empty, missing} {
		t.Run(filepath.Base(target), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "camd.db")
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			var before fileState
			if target != missing {
				before = stateOf(t, target)
			}
			_, err := Open(path, Options{})
			wantRefused(t, err, path, ErrNotRegular, "symbolic link")
			if target == missing {
				if _, err := os.Lstat(missing); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("Open created the link's target: %v", err)
				}
				return
			}
			if after := stateOf(t, target); after != before {
				t.Fatalf("the link's target changed: %+v, was %+v", after, before)
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("the link itself was replaced: %v %v", fi, err)
			}
		})
	}
}

// A directory or a FIFO at the data file's path is refused with one line
// (a FIFO would otherwise block the open).
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "camd.db")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	wantRefused(t, err, dir, ErrNotRegular, "its mode is d")
	fifo := filepath.Join(t.TempDir(), "camd.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err = Open(fifo, Options{})
	wantRefused(t, err, fifo, ErrNotRegular, "its mode is p")
}

// The open that bbolt makes does not follow a link either: a link put at
// the path after Open's own check (simulated by calling the open directly)
// fails with ELOOP rather than being followed.
func TestBoltOpenFollowsNoLink(t *testing.T) {
	if oNoFollow == 0 {
		t.Skip("no O_NOFOLLOW here")
	}
	target := filepath.Join(t.TempDir(), "target.db")
	path := filepath.Join(t.TempDir(), "camd.db")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	db, err := boltOpen(path, bolt.Options{Timeout: time.Second}, nil, false)
	if err == nil {
		db.Close()
		t.Fatal("boltOpen followed the link")
	}
	if !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("boltOpen: %v, want ELOOP", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link's target was created: %v", err)
	}
}
