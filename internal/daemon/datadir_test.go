//go:build !windows

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func modeOf(t *testing.T, dir string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (os.ModePerm | os.ModeSticky)
}

// A data dir of camd's own that group or others can write in is tightened
// to 0700, with a WARN saying so; one that is already private is left as
// it is.
func TestDataDirOfCamdsOwnIsTightened(t *testing.T) {
	for _, tc := range []struct {
		mode  os.FileMode
		files []string
		want  os.FileMode
	}{
		{0o770, nil, 0o700},
		{0o777, []string{"camd.db", "camd.db.pid", "camd-events.db", "api.token", ".api.token.tmp123"}, 0o700},
		{0o750, []string{"camd.db"}, 0o750}, // readable only: left alone
		{0o700, nil, 0o700},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		mkdirMode(t, dir, tc.mode)
		for _, f := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		logs := &testutil.LogBuffer{}
		if err := prepareDataDir(dir, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatalf("%04o: %v", tc.mode, err)
		}
		if got := modeOf(t, dir); got != tc.want {
			t.Errorf("%04o: mode %04o after, want %04o", tc.mode, got, tc.want)
		}
		warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "tightened its mode to 0700")
		if warned != (tc.want != tc.mode) {
			t.Errorf("%04o: warned %v; log:\n%s", tc.mode, warned, logs.String())
		}
	}
}

// A data dir that others can write in and that is shared (sticky, or
// holding files that are not camd's) is refused with one line and its
// mode is not changed; so is one owned by another user.
func TestSharedDataDirIsRefused(t *testing.T) {
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	check := func(name, dir string, want os.FileMode, says string) {
		t.Helper()
		err := prepareDataDir(dir, log)
		if !errors.Is(err, ErrDataDir) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), says) {
			t.Fatalf("%s: got %v, want one line naming %s and saying %q", name, err, dir, says)
		}
		t.Logf("%s: %v", name, err)
		if got := modeOf(t, dir); got != want {
			t.Fatalf("%s: mode changed to %04o", name, got)
		}
	}

	shared := filepath.Join(t.TempDir(), "shared")
	mkdirMode(t, shared, 0o777)
	if err := os.WriteFile(filepath.Join(shared, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("foreign file", shared, 0o777, `holds "notes.txt"`)

	sticky := filepath.Join(t.TempDir(), "tmp")
	mkdirMode(t, sticky, 0o777|os.ModeSticky)
	check("sticky", sticky, 0o777|os.ModeSticky, "sticky bit")

	// A link to a shared dir: the dir it leads to is what is checked.
	link := filepath.Join(t.TempDir(), "camd")
	if err := os.Symlink(shared, link); err != nil {
		t.Fatal(err)
	}
	check("link to a shared dir", link, 0o777, `holds "notes.txt"`)

	if os.Geteuid() != 0 {
		t.Log("not root: the other-owner cases need chown")
		return
	}
	other := filepath.Join(t.TempDir(), "other")
	mkdirMode(t, other, 0o700)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	check("owned by another user", other, 0o700, "belongs to uid 65534")
}

// A data dir that is a link to a private dir is followed: camd's files
// land in the dir it leads to.
func TestLinkedDataDirIsFollowed(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	mkdirMode(t, real, 0o700)
	link := filepath.Join(t.TempDir(), "camd")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(link)
	d, err := New(context.Background(), Options{Config: cfg, Stderr: &testutil.LogBuffer{}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	d.Stop(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(real, StoreFile)); err != nil {
		t.Fatalf("no store in the linked dir: %v", err)
	}
}

// New refuses a shared data dir before it creates anything in it.
func TestNewRefusesSharedDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	mkdirMode(t, dir, 0o777)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Options{Config: testConfig(dir), Stderr: &testutil.LogBuffer{}})
	if !errors.Is(err, ErrDataDir) {
		t.Fatalf("New: %v, want ErrDataDir", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || modeOf(t, dir) != 0o777 {
		t.Fatalf("New changed the refused dir: %v, mode %04o", ents, modeOf(t, dir))
	}
}
