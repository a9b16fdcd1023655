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

	"github.com/camd/camd/internal/testutil"
)

func TestDiskFullLosesNothing(t *testing.T) {
	dir := testutil.MountTmpfs(t, "2m")
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
	filler := testutil.FillDisk(t, dir)

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
	dir := testutil.MountTmpfs(t, "1m")
	testutil.FillDisk(t, dir)
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
