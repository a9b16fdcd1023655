package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/store"
)

// "camd run" on a data dir whose camd.db is empty, or a link (to a real
// data file, or to an empty one), exits non-zero with one line and leaves
// every file as it was (compared by hash), where an empty camd.db used to
// be taken for a new store and camd ran with no cameras.
func TestRunRefusesEmptyOrLinkedDataFile(t *testing.T) {
	t.Parallel()
	needLinux(t)
	elsewhere := t.TempDir()
	real := filepath.Join(elsewhere, "real.db")
	st, err := store.Open(real, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutCamera(store.Camera{ID: "1", Name: "door", URL: "rtsp://u:secret@127.0.0.1/x", Status: store.StatusRunning, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	empty := filepath.Join(elsewhere, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hash := func(p string) [32]byte {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}

	for _, tc := range []struct {
		name   string
		link   string // camd.db links here; "" for an empty regular file
		target string // the file whose bytes must not change
		want   string
	}{
		{"empty file", "", "", "it is empty (0 bytes)"},
		{"link to a data file", real, real, "it is a symbolic link"},
		{"link to an empty file", empty, empty, "it is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "camd.db")
			if tc.link != "" {
				if err := os.Symlink(tc.link, db); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(db, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			watched := db
			if tc.target != "" {
				watched = tc.target
			}
			before := hash(watched)
			p := startProc(t, nil, "run", "--data-dir", dir, "--api-listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0")
			code, _, ok := p.wait(20 * time.Second)
			out := p.stderr.String()
			if !ok || code == 0 || !oneLine(out) || !strings.Contains(out, db) || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d ok %v stderr %q, want a non-zero exit and one line naming %s and saying %q", code, ok, out, db, tc.want)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(out))
			if hash(watched) != before {
				t.Fatalf("%s changed", watched)
			}
			if tc.link != "" {
				if fi, err := os.Lstat(db); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Fatalf("the link was replaced: %v %v", fi, err)
				}
			}
		})
	}
}
