package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryDamagedPageIsRefusedCleanly damages each page of a real data
// file in turn, with zeros and with random bytes. Open must either work
// (the page was free, or the damage hit only a value's bytes, which the
// next read reports as ErrCorrupt) or fail with ErrDamaged: never panic,
// never change the file, never keep the file's lock or a descriptor.
func TestEveryDamagedPageIsRefusedCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	s, err := Open(orig, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 120; i++ {
		c := cam(strconv.Itoa(i), "n"+strconv.Itoa(i))
		c.LastError = strings.Repeat("e", 300)
		if err := s.PutCamera(c); err != nil {
			t.Fatal(err)
		}
	}
	// Some free pages, and a value spanning pages.
	for i := 0; i < 40; i++ {
		if err := s.DeleteCamera(strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	big := cam("big", "big")
	big.LastError = strings.Repeat("b", 20000)
	if err := s.PutCamera(big); err != nil {
		t.Fatal(err)
	}
	s.Close()
	whole, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := readMeta(f, 0)
	f.Close()
	if !ok {
		t.Fatal("cannot read the meta page of a fresh file")
	}
	ps := int(m.pageSize)

	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	r := rand.New(rand.NewPCG(3, 4))
	var opened, refused, corrupt int
	path := filepath.Join(dir, "camd.db")
	before := fds()
	for page := 0; page < len(whole)/ps && page < int(m.pgid)+2; page++ {
		for _, kind := range []string{"zeros", "random"} {
			damaged := bytes.Clone(whole)
			for i := page * ps; i < (page+1)*ps; i++ {
				if kind == "zeros" {
					damaged[i] = 0
				} else {
					damaged[i] = byte(r.Uint32())
				}
			}
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			switch {
			case err == nil:
				opened++
				if _, err := s.Cameras(); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("page %d %s: list: %v", page, kind, err)
					}
					corrupt++
				}
				if err := s.Close(); err != nil {
					t.Errorf("page %d %s: close: %v", page, kind, err)
				}
				continue
			case !errors.Is(err, ErrDamaged):
				t.Fatalf("page %d %s: %v", page, kind, err)
			}
			refused++
			if after, _ := os.ReadFile(path); !bytes.Equal(after, damaged) {
				t.Fatalf("page %d %s: file changed", page, kind)
			}
			// A lock kept by a leaked map would make this ErrLocked.
			if _, err := Open(path, Options{LockTimeout: 50e6}); !errors.Is(err, ErrDamaged) {
				t.Fatalf("page %d %s: second open: %v", page, kind, err)
			}
		}
	}
	if after := fds(); after > before {
		t.Errorf("open descriptors %d before, %d after", before, after)
	}
	t.Logf("%d pages of %d bytes: %d damaged copies refused, %d opened (%d of them then reported ErrCorrupt)", m.pgid, ps, refused, opened, corrupt)
}
