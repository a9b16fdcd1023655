package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountSmallTmpfs mounts a tmpfs of the given size on a fresh directory and
// unmounts it when the test ends. It skips the test where mounting is not
// permitted (not root, or no CAP_SYS_ADMIN in a container).
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill up (%v): the disk-full test needs root or CAP_SYS_ADMIN", err)
	}
	// Registered after TempDir, so it runs before TempDir's removal.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
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

func TestDiskFullLosesNothing(t *testing.T) {
	dir := mountSmallTmpfs(t, "2m")
	path := filepath.Join(dir, "data", "camd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Unix(1700000000, 0)
	for i := 0; i < 20; i++ {
		id := strconv.Itoa(i)
		if err := s.PutCamera(cam(id, "c"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetStatuses([]StatusUpdate{{ID: "3", Status: StatusCrashed, At: at, LastError: "refused"}}); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)

	// Writes big enough to need fresh pages must fail, wrapped, naming the
	// file, without the password.
	big := strings.Repeat("x", 256<<10)
	var us []StatusUpdate
	for i := 0; i < 20; i++ {
		us = append(us, StatusUpdate{ID: strconv.Itoa(i), Status: StatusStopped, At: at.Add(time.Hour), LastError: big})
	}
	before := s.WriteCount()
	err = s.SetStatuses(us)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("set statuses on a full disk: %v", err)
	}
	t.Logf("the error on a full disk reads: %v", err)
	c := cam("new", "new")
	c.LastError = big
	if err := s.PutCamera(c); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put camera on a full disk: %v", err)
	}
	if s.WriteCount() != before {
		t.Fatal("failed writes were counted")
	}

	// Nothing stored is lost, in this handle ...
	check := func(s *Store) {
		t.Helper()
		cams, err := s.Cameras()
		if err != nil || len(cams) != 20 {
			t.Fatalf("after the full disk: %d cameras, %v", len(cams), err)
		}
		c, err := s.Camera("3")
		if err != nil || c.Status != StatusCrashed || c.LastError != "refused" || !c.StatusUpdatedAt.Equal(at) {
			t.Fatalf("camera 3 after the full disk: %+v %v", c, err)
		}
	}
	check(s)
	// ... and the same handle writes again once there is room (the
	// persister retries rather than reopening).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatuses([]StatusUpdate{{ID: "4", Status: StatusCrashed, At: at}}); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	// ... and on disk, read by a fresh Open.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2)
	if c, _ := s2.Camera("4"); c.Status != StatusCrashed {
		t.Fatalf("camera 4: %+v", c)
	}
}

func TestOpenOnAFullDiskLeavesNoFile(t *testing.T) {
	dir := mountSmallTmpfs(t, "1m")
	fill(t, dir)
	path := filepath.Join(dir, "camd.db")
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("open on a full disk: %v", err)
	}
	t.Logf("the error on a full disk reads: %v", err)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a half-made data file was left behind: %v", err)
	}
}
