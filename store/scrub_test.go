package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// A deleted camera's URL is nowhere in the file, free pages included, while
// the store is open and after it is closed; the other cameras survive, and
// another Open is still refused while the store holds the file.
func TestDeleteCameraLeavesNoSecretInFile(t *testing.T) {
	s, path := openTemp(t)
	gone := Camera{ID: "gone", Name: "door", URL: "rtsp://admin:GoneSecret1@10.0.0.5/user=admin&password=GoneSecret2", Status: StatusRunning, CreatedAt: time.Now()}
	if err := s.PutCamera(gone); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := s.PutCamera(cam(fmt.Sprint(i), fmt.Sprintf("cam%d", i))); err != nil {
			t.Fatal(err)
		}
		// Status writes leave more old copies of every record behind.
		if err := s.SetStatuses([]StatusUpdate{{ID: "gone", Status: StatusCrashed, At: time.Now(), LastError: fmt.Sprint("error ", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte("GoneSecret1")) {
		t.Fatal("the test's secret is not in the file before the delete: the test checks nothing")
	}
	if err := s.DeleteCamera("gone"); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"GoneSecret1", "GoneSecret2"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: %q is still in %s", when, secret, path)
			}
		}
		if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the compaction's temporary file is left: %v", when, err)
		}
	}
	check("store open")
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open after the rewrite: %v, want ErrLocked", err)
	}
	// The store goes on working on the new file.
	if err := s.PutCamera(cam("new", "new")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCamera("0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("store closed")
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	cams, err := s2.Cameras()
	if err != nil || len(cams) != 20 {
		t.Fatalf("after reopening: %d cameras, %v", len(cams), err)
	}
	if _, err := s2.Camera("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted camera found: %v", err)
	}
	if c, err := s2.Camera("new"); err != nil || c.URL != cam("new", "new").URL {
		t.Errorf("camera written after the rewrite: %+v %v", c, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode after the rewrite: %v %v", fi.Mode(), err)
	}
}

// A camd that opens the data file while another rewrites it (a delete's
// scrub) waits for the lock on the file it opened, which the rename leaves
// emptied and unlinked: once it has the lock it must refuse, as locked,
// rather than take the emptied file for a damaged or a new one.
func TestOpenDuringScrubIsRefusedAsLocked(t *testing.T) {
	s, path := openTemp(t)
	for i := range 3 {
		if err := s.PutCamera(cam(fmt.Sprint(i), fmt.Sprintf("cam%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		other, err := Open(path, Options{LockTimeout: 20 * time.Second})
		if err == nil {
			other.Close()
		}
		done <- err
	}()
	// Let the second Open reach its wait for the lock on the current file.
	time.Sleep(500 * time.Millisecond)
	if err := s.DeleteCamera("0"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("Open during a scrub: %v, want ErrLocked", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open during a scrub did not return")
	}
	cams, err := s.Cameras()
	if err != nil || len(cams) != 2 {
		t.Fatalf("the store after the scrub: %d cameras, %v; want 2", len(cams), err)
	}
}
