package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/store"
)

// ErrDataDir is returned (wrapped, with the dir and the reason) by New for
// a data dir that others could write in and that camd may not tighten.
var ErrDataDir = errors.New("unsafe data dir")

// prepareDataDir creates the data dir (0700) if it is missing and makes
// sure that no one but camd's user (or root) can put files in it: whoever
// can could plant a link at camd.db or api.token, or a data file of their
// own. A dir writable by group or others is tightened to 0700 when it is
// camd's: owned by camd's user, not sticky, holding nothing but camd's
// files. Any other such dir (a shared one like /tmp, or one of another
// user's) is refused, since changing its mode would break whoever shares
// it. A dir owned by another user (not root) is refused whatever its mode:
// its owner can change it back at any time.
//
// A data dir that is itself a symbolic link is followed, and the dir it
// leads to is what is checked: moving /var/lib/camd to a bigger disk with
// a link is common, and only whoever can write the link's parent (root,
// for /var/lib) can change where it leads. Links inside the data dir are
// another matter: the store and the token refuse them.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if runtime.GOOS == "windows" {
		return nil // no Unix modes; the dir inherits the ACL of its parent
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s: %w: it is not a directory", dir, ErrDataDir)
	}
	owner, euid := fileOwner(fi), os.Geteuid()
	if owner != euid && owner != 0 {
		return fmt.Errorf("data dir %s: %w: it belongs to uid %d, not to camd's user (uid %d) or root, so its owner could replace camd's files: chown it to camd's user", dir, ErrDataDir, owner, euid)
	}
	mode := fi.Mode()
	if mode.Perm()&0o022 == 0 {
		return nil
	}
	why := ""
	switch {
	case owner != euid:
		why = fmt.Sprintf("it belongs to uid %d, not to camd's user (uid %d), so it is not camd's to change", owner, euid)
	case mode&os.ModeSticky != 0:
		why = "it has the sticky bit, so it is shared"
	default:
		if name := foreignFile(f); name != "" {
			why = fmt.Sprintf("it holds %q, which is not camd's, so it is shared", name)
		}
	}
	if why != "" {
		return fmt.Errorf("data dir %s: %w: it is writable by group or others (mode %04o) and %s: use a directory of camd's own, or chmod go-w it", dir, ErrDataDir, mode.Perm()|stickyBits(mode), why)
	}
	if err := f.Chmod(0o700); err != nil {
		return fmt.Errorf("data dir %s: tighten mode %04o to 0700: %w", dir, mode.Perm(), err)
	}
	log.Warn("the data dir was writable by group or others; tightened its mode to 0700", "data_dir", dir, "was", fmt.Sprintf("%04o", mode.Perm()))
	return nil
}

func stickyBits(m os.FileMode) os.FileMode {
	if m&os.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// foreignFile returns the name of an entry of the open dir f that is not
// one of camd's own files (the store, its pid file, the event history, the
// API token, and their temporary files), or "" if there is none.
func foreignFile(f *os.File) string {
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if !camdsFile(n) {
				return n
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ""
			}
			return "(unreadable)"
		}
	}
}

func camdsFile(name string) bool {
	for _, p := range []string{StoreFile, store.EventsPath(StoreFile), api.TokenFile} {
		if strings.HasPrefix(strings.TrimPrefix(name, "."), p) {
			return true
		}
	}
	return false
}
