package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "camd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func cam(id, name string) Camera {
	return Camera{ID: id, Name: name, URL: "rtsp://user:secret@127.0.0.1/" + name, Status: StatusRunning, CreatedAt: time.Now()}
}

func TestRoundTrip(t *testing.T) {
	s, path := openTemp(t)
	for i, n := range []string{"zeta", "alpha", "mid"} {
		if err := s.PutCamera(cam(fmt.Sprint(i), n)); err != nil {
			t.Fatal(err)
		}
	}
	cams, err := s.Cameras()
	if err != nil {
		t.Fatal(err)
	}
	if len(cams) != 3 || cams[0].Name != "alpha" || cams[2].Name != "zeta" {
		t.Fatalf("cameras %+v", cams)
	}
	c, err := s.Camera("1")
	if err != nil || c.Name != "alpha" || c.URL != "rtsp://user:secret@127.0.0.1/alpha" {
		t.Fatalf("get: %+v %v", c, err)
	}
	if _, err := s.Camera("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.DeleteCamera("2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCamera("2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	s.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Cameras(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if cams, _ := s2.Cameras(); len(cams) != 2 {
		t.Fatalf("after reopen: %d cameras", len(cams))
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(filepath.Dir(path))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: file %v dir %v, want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
}

func TestLooseFileModeIsTightened(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func TestSetStatusesIsOneTransaction(t *testing.T) {
	s, _ := openTemp(t)
	var us []StatusUpdate
	for i := 0; i < 256; i++ {
		id := strconv.Itoa(i)
		if err := s.PutCamera(cam(id, "c"+id)); err != nil {
			t.Fatal(err)
		}
		us = append(us, StatusUpdate{ID: id, Status: StatusCrashed, At: time.Unix(1700000000, 0), LastError: "refused"})
	}
	us = append(us, StatusUpdate{ID: "gone", Status: StatusCrashed})
	before := s.WriteCount()
	if err := s.SetStatuses(us); err != nil {
		t.Fatal(err)
	}
	if d := s.WriteCount() - before; d != 1 {
		t.Fatalf("write transactions %d, want 1", d)
	}
	c, _ := s.Camera("17")
	if c.Status != StatusCrashed || c.LastError != "refused" || !c.StatusUpdatedAt.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("record %+v", c)
	}
	before = s.WriteCount()
	if err := s.SetStatuses([]StatusUpdate{{ID: "1", Status: StatusStopped}, {ID: "2", Status: "paused"}}); err == nil {
		t.Fatal("invalid status accepted")
	}
	if s.WriteCount() != before {
		t.Fatal("invalid batch wrote")
	}
	if c, _ := s.Camera("1"); c.Status != StatusCrashed {
		t.Fatalf("invalid batch changed a record: %s", c.Status)
	}
}

func TestReadsDoNotWrite(t *testing.T) {
	s, _ := openTemp(t)
	_ = s.PutCamera(cam("1", "a"))
	before := s.WriteCount()
	for i := 0; i < 100; i++ {
		_, _ = s.Cameras()
		_, _ = s.Camera("1")
	}
	if s.WriteCount() != before {
		t.Fatal("reads wrote")
	}
}

func TestOtherSchemaIsRejectedUntouched(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	// Rewrite the version with bbolt's own API through a raw Open.
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.db.Update(func(tx *boltTx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{0, 0, 0, 9})
	}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	before, _ := os.ReadFile(path)
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("got %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("file changed")
	}
}

func TestCorruptFileIsRejectedUntouched(t *testing.T) {
	// The front of a real data file, as a crash during its creation or a
	// bad copy could leave it.
	_, good := openTemp(t)
	head, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// A bigger file, cut at places where bbolt finds its meta pages intact
	// but what they point to missing.
	big := filepath.Join(t.TempDir(), "big.db")
	s, err := Open(big, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		c := cam(strconv.Itoa(i), "n"+strconv.Itoa(i))
		c.LastError = strings.Repeat("e", 500)
		if err := s.PutCamera(c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	whole, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for name, junk := range map[string][]byte{
		"text":        bytes.Repeat([]byte("not a database, rtsp://u:secret@x "), 500),
		"random":      random,
		"tiny":        []byte("rtsp://u:secret@x"),
		"zeros":       make([]byte, 16<<10),
		"truncated":   head[:100],
		"cut at 16k":  whole[:16<<10],
		"cut at 32k":  whole[:32<<10],
		"cut in half": whole[:len(whole)/2],
	} {
		path := filepath.Join(t.TempDir(), "camd.db")
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "secret") {
			t.Fatalf("%s: got %v", name, err)
		}
		if strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: error is not one line: %q", name, err)
		}
		t.Logf("%s: %v", name, err)
		after, _ := os.ReadFile(path)
		if !bytes.Equal(junk, after) {
			t.Fatalf("%s: file changed", name)
		}
	}
}

func TestSecondOpenInProcessIsLocked(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("took %s for a 200ms lock timeout", took)
	}
}

// TestHelperProcess holds a store open until its stdin closes.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv("CAMD_STORE_HOLD")
	if path == "" {
		t.Skip("helper process")
	}
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("HOLDING")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	s.Close()
	os.Exit(0)
}

func TestSecondOpenFromAnotherProcessIsLocked(t *testing.T) {
	s, path := openTemp(t)
	s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "CAMD_STORE_HOLD="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	// A loaded machine may take a while to start the helper, but a helper
	// that never answers must not hang the test.
	said := make(chan string, 1)
	go func() { line, _ := bufio.NewReader(stdout).ReadString('\n'); said <- line }()
	select {
	case line := <-said:
		if !strings.HasPrefix(line, "HOLDING") {
			t.Fatalf("helper said %q", line)
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("helper did not open the store within 2 minutes")
	}
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 300 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("got %v", err)
	}
	t.Logf("refused after %s: %v", took, err)
	want := fmt.Sprintf("pid %d", cmd.Process.Pid)
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the file and %s", err, want)
	}
	if took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	stdin.Close()
	_ = cmd.Wait()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("after the holder exited: %v", err)
	}
	s2.Close()
}

func TestOpenCloseLeaksNoFDs(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc/self/fd to count descriptors on this platform")
	}
	count := func() int {
		e, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(e)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "camd.db")

	// The failure paths, each of which opens the file before failing:
	// another schema, a damaged file, and a file held by another Open.
	schema := filepath.Join(dir, "schema.db")
	s, err := Open(schema, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *boltTx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{0, 0, 0, 9})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	damaged := filepath.Join(dir, "damaged.db")
	s, err = Open(damaged, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		c := cam(strconv.Itoa(i), strconv.Itoa(i))
		c.LastError = strings.Repeat("e", 1000)
		if err := s.PutCamera(c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if err := os.Truncate(damaged, 32<<10); err != nil {
		t.Fatal(err)
	}
	held, err := Open(filepath.Join(dir, "held.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	before := count()
	for i := 0; i < 100; i++ {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutCamera(cam("1", "a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			continue
		}
		// Each failure also proves the lock was let go: a leaked lock
		// would turn the next one into ErrLocked.
		if _, err := Open(schema, Options{}); !errors.Is(err, ErrSchema) {
			t.Fatalf("schema: %v", err)
		}
		if _, err := Open(damaged, Options{}); !errors.Is(err, ErrDamaged) {
			t.Fatalf("damaged: %v", err)
		}
		if _, err := Open(held.Path(), Options{LockTimeout: 10 * time.Millisecond}); !errors.Is(err, ErrLocked) {
			t.Fatalf("held: %v", err)
		}
	}
	if after := count(); after > before {
		t.Errorf("open descriptors %d before, %d after", before, after)
	}
}

func BenchmarkSetStatuses(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "camd.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var us []StatusUpdate
	for i := 0; i < 64; i++ {
		id := strconv.Itoa(i)
		_ = s.PutCamera(cam(id, id))
		us = append(us, StatusUpdate{ID: id, Status: StatusRunning, At: time.Now()})
	}
	// Every record changes every time, as when a switch blinks: one
	// transaction rewriting 64 records, fsync included.
	at := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range us {
			us[j].Status = []Status{StatusRunning, StatusCrashed}[i%2]
			us[j].At = at.Add(time.Duration(i) * time.Millisecond)
		}
		if err := s.SetStatuses(us); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMalformedRecordHidesPassword(t *testing.T) {
	s, path := openTemp(t)
	if err := s.PutCamera(cam("1", "a")); err != nil {
		t.Fatal(err)
	}
	// A record whose status is the wrong type, and one that is cut short:
	// both carry the password, and json errors can quote what they read.
	for _, raw := range []string{
		`{"id":"1","url":"rtsp://user:secret@h/x","status":{"secret":1}}`,
		`{"id":"1","url":"rtsp://user:secret@h/x","status":"running`,
		`rtsp://user:secret@h/x`,
	} {
		if err := s.db.Update(func(tx *boltTx) error {
			return tx.Bucket(bucketCameras).Put([]byte("1"), []byte(raw))
		}); err != nil {
			t.Fatal(err)
		}
		_, err1 := s.Cameras()
		_, err2 := s.Camera("1")
		err3 := s.SetStatuses([]StatusUpdate{{ID: "1", Status: StatusCrashed}})
		for _, err := range []error{err1, err2, err3} {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: got %v, want ErrCorrupt", raw, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows the password: %v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"1"`) {
				t.Errorf("error does not name the file and the camera: %v", err)
			}
		}
	}
}

func TestSetStatusesThatChangeNothingDoNotWrite(t *testing.T) {
	s, _ := openTemp(t)
	at := time.Unix(1700000000, 0)
	if err := s.PutCamera(cam("1", "a")); err != nil {
		t.Fatal(err)
	}
	u := []StatusUpdate{{ID: "1", Status: StatusCrashed, At: at, LastError: "refused"}}
	if err := s.SetStatuses(u); err != nil {
		t.Fatal(err)
	}
	before := s.WriteCount()
	for _, batch := range [][]StatusUpdate{nil, u, {{ID: "gone", Status: StatusRunning}}} {
		if err := s.SetStatuses(batch); err != nil {
			t.Fatal(err)
		}
	}
	if d := s.WriteCount() - before; d != 0 {
		t.Fatalf("%d write transactions for batches that change nothing", d)
	}
	// A new time alone is a change: the UI shows "down since".
	u[0].At = at.Add(time.Second)
	if err := s.SetStatuses(u); err != nil {
		t.Fatal(err)
	}
	if d := s.WriteCount() - before; d != 1 {
		t.Fatalf("%d write transactions, want 1", d)
	}
}

func TestEmptyStoreListsNoCameras(t *testing.T) {
	s, _ := openTemp(t)
	cams, err := s.Cameras()
	if err != nil || cams == nil || len(cams) != 0 {
		t.Fatalf("got %#v, %v; want an empty non-nil list", cams, err)
	}
}

func TestMethodsAfterCloseReturnErrClosed(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.PutCamera(cam("1", "a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, e1 := s.Cameras()
	_, e2 := s.Camera("1")
	e3 := s.PutCamera(cam("2", "b"))
	e4 := s.DeleteCamera("1")
	e5 := s.SetStatuses([]StatusUpdate{{ID: "1", Status: StatusStopped}})
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("method %d after Close: %v", i, err)
		}
	}
}

func TestPidFileFollowsTheLock(t *testing.T) {
	s, path := openTemp(t)
	b, err := os.ReadFile(path + ".pid")
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file %q, %v", b, err)
	}
	s.Close()
	if _, err := os.Stat(path + ".pid"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after Close: %v", err)
	}
	// A stale pid file (a camd that was killed) names a dead process: it is
	// neither reported nor in the way.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	if err := os.WriteFile(path+".pid", []byte(strconv.Itoa(dead)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// (Only checkable while the pid has not been reused.)
	if h := holder(path + ".pid"); h != "" && !processAlive(dead) {
		t.Errorf("dead pid reported: %q", h)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("stale pid file blocked Open: %v", err)
	}
	defer s2.Close()
	if b, _ := os.ReadFile(path + ".pid"); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file not rewritten: %q", b)
	}
}

func TestExistingDirModeIsKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil { // past the umask
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "camd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v, want the operator's 0750 kept", di.Mode().Perm())
	}
}

func TestFileWithoutCamerasBucketIsRejected(t *testing.T) {
	s, path := openTemp(t)
	if err := s.db.Update(func(tx *boltTx) error { return tx.DeleteBucket(bucketCameras) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, _ := os.ReadFile(path)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("file changed")
	}
}
