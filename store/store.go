package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout of the data file this camd writes and reads.
const SchemaVersion = 1

var (
	bucketMeta    = []byte("meta")
	bucketCameras = []byte("cameras")
	keySchema     = []byte("schema_version")
)

// Options configures Open.
type Options struct {
	// LockTimeout is how long Open waits for another holder of the file
	// before failing with ErrLocked. It defaults to 1 second.
	LockTimeout time.Duration
	// EventsMaxCount and EventsMaxAge bound the event history: Append
	// drops the oldest events beyond either. They default to
	// DefaultEventsMaxCount (10000) and DefaultEventsMaxAge (30 days).
	EventsMaxCount int
	EventsMaxAge   time.Duration
}

// Store is the open data file. Its methods are safe for concurrent use.
type Store struct {
	path    string
	pidPath string
	writes  atomic.Uint64

	evMaxCount  int
	evMaxAge    time.Duration
	eventWrites atomic.Uint64
	evMu        sync.Mutex
	evCh        chan struct{} // closed by the next Append; nil until asked for
	evPath      string
	evLock      sync.RWMutex // guards evDB against Close; scrub never takes it
	evDB        *bolt.DB     // the event history's own file (see events.go)

	mu sync.RWMutex // guards db against Close and scrub's swap
	db *bolt.DB
}

// Open opens the data file at path, creating it (0600, with a schema
// version) and its directory (0700) if they do not exist. It fails with an
// error wrapping ErrLocked, naming the file and the holder's pid when camd
// recorded it, when another Open holds the file for longer than
// o.LockTimeout; with ErrSchema when the file has another schema version;
// with ErrDamaged when it is not a camd data file (an empty file included)
// or is damaged; and with ErrNotRegular when path is a symbolic link or
// not a regular file. A file it refuses is left as it was.
func Open(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.EventsMaxCount <= 0 {
		o.EventsMaxCount = DefaultEventsMaxCount
	}
	if o.EventsMaxAge <= 0 {
		o.EventsMaxAge = DefaultEventsMaxAge
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open %s: create data dir: %w", path, err)
	}
	// Lstat, and every open below with O_NOFOLLOW (bbolt's through
	// Options.OpenFile), so that a link planted at path is refused rather
	// than followed to some other file, which camd would then chmod, read
	// as cameras or initialise.
	fresh := false
	if fi, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		fresh = true
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	} else if err := checkExisting(fi); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	pidPath := path + ".pid"
	created := false // only a file this Open created may be removed on failure
	fail := func(err error) (*Store, error) {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("open %s: %w%s", path, ErrLocked, holder(pidPath))
		case errors.Is(err, errReplaced):
			return nil, fmt.Errorf("open %s: %w (%v)%s", path, ErrLocked, err, holder(pidPath))
		case created:
			// Leave nothing half-made (a full disk, say) to be taken for a
			// foreign file on the next start.
			_ = os.Remove(path)
			return nil, fmt.Errorf("open %s: create data file: %w", path, err)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
			errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrInvalidMapping):
			return nil, fmt.Errorf("open %s: %w: %w", path, ErrDamaged, err)
		case errors.Is(err, syscall.ELOOP):
			// A link appeared at path after the Lstat above.
			return nil, fmt.Errorf("open %s: %w: it is a symbolic link", path, ErrNotRegular)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if !fresh {
		if err := precheck(path, o.LockTimeout); err != nil {
			return fail(err)
		}
	}
	var file *os.File
	var opened os.FileInfo
	db, err := boltOpen(path, bolt.Options{Timeout: o.LockTimeout}, func(f *os.File) error {
		// The file bbolt opened is checked again: a file put at path
		// after the checks above must not be initialised or read either.
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		opened = fi
		if fresh {
			created = true
		} else if err := checkExisting(fi); err != nil {
			return err
		}
		file = f
		return nil
	}, fresh)
	if err != nil && replaced(path, opened) {
		err = errReplaced
	}
	if err != nil {
		return fail(err)
	}
	if replaced(path, opened) {
		_ = db.Close()
		return fail(errReplaced)
	}
	s := &Store{path: path, pidPath: pidPath, db: db, evMaxCount: o.EventsMaxCount, evMaxAge: o.EventsMaxAge, evPath: EventsPath(path)}
	err = s.verify()
	if err == nil {
		err = s.checkSchema(fresh)
	}
	if err == nil {
		err = restrictMode(file)
	}
	if err == nil {
		// Only now, with the data file's lock held: no other camd is
		// using the history either.
		s.evDB, err = openEvents(s.evPath, o.LockTimeout)
	}
	if err == nil {
		err = s.moveOldHistory()
	}
	if err != nil {
		_ = db.Close()
		if s.evDB != nil {
			_ = s.evDB.Close()
		}
		if created {
			// A half-initialised new file (say the disk filled up) would
			// otherwise be taken for a foreign file on the next start.
			_ = os.Remove(path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The flock is the lock; the pid file only helps say who holds it.
	if f, err := os.OpenFile(pidPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|oNoFollow, 0o600); err == nil {
		_, _ = f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		_ = f.Close()
	}
	return s, nil
}

// errReplaced is Open's when the file it opened and locked is no longer
// the one at the path: a camd that rewrote the file (DeleteCamera's scrub)
// while this Open waited for the lock has renamed a new one over it, and
// holds that one's lock. The old file, emptied, must not be taken for a
// data file.
var errReplaced = errors.New("another camd replaced the data file while this one opened it")

// replaced reports whether opened (nil: nothing was opened) is no longer
// the file at path.
func replaced(path string, opened os.FileInfo) bool {
	if opened == nil {
		return false
	}
	pi, err := os.Lstat(path)
	return err != nil || !os.SameFile(opened, pi)
}

// checkExisting refuses an existing data file that is a link, is not a
// regular file, or is empty. bbolt would initialise an empty file as a new
// store, so camd would run with no cameras where the operator had some
// (the file emptied by a bad copy or restore); camd creates the file only
// where there is none.
func checkExisting(fi os.FileInfo) error {
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		return fmt.Errorf("%w: it is a symbolic link; camd follows no link to its data file: put the file itself there", ErrNotRegular)
	case !m.IsRegular():
		return fmt.Errorf("%w: its mode is %s", ErrNotRegular, m)
	case fi.Size() == 0:
		return fmt.Errorf("%w: it is empty (0 bytes); camd creates its data file only where there is none: remove the empty file to start with no cameras", ErrDamaged)
	}
	return nil
}

// restrictMode makes the open data file 0600 if it is looser: camera URLs
// carry passwords. It changes the open file (fchmod), not whatever path
// names by then.
func restrictMode(f *os.File) error {
	if f == nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("restrict mode to 0600: %w", err)
		}
	}
	return nil
}

// boltOpen is bolt.Open with a backstop for damaged files. bbolt trusts the
// pages its meta page names and panics (or faults, on memory past the end of
// a short file) where they are wrong. precheck catches the cases known to
// do that before the read-write open; should another slip through, the
// fault becomes a panic for this goroutine only and the panic an error
// wrapping ErrDamaged, instead of a crash. bbolt has no cleanup for a panic:
// the file it opened is closed here, but its memory map of the file cannot
// be reached, and that map keeps the file (and its lock) until the process
// exits, which camd does when Open fails.
//
// The file is opened without following a link (and, when create is set,
// only if it does not exist yet); check, if set, runs on it before bbolt
// reads it, and its error closes the file and fails the open.
func boltOpen(path string, opts bolt.Options, check func(*os.File) error, create bool) (db *bolt.DB, err error) {
	var f *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		flag |= oNoFollow
		if create {
			flag |= os.O_EXCL
		}
		var err error
		if f, err = os.OpenFile(name, flag, perm); err != nil {
			f = nil
			return nil, err
		}
		if check != nil {
			if err := check(f); err != nil {
				_ = f.Close()
				f = nil
				return nil, err
			}
		}
		return f, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				_ = f.Close()
			}
			db, err = nil, fmt.Errorf("%w: %s", ErrDamaged, oneLine(r))
		}
	}()
	return bolt.Open(path, 0o600, &opts)
}

// verify reads every page the file's buckets reach, so that damage found
// now is an error from Open rather than a panic in the running daemon. The
// file is small (camera records), so this costs little. bbolt's own
// tx.Check is not used: it runs on a goroutine of its own, where a panic
// cannot be recovered, and its messages print keys and values, which hold
// passwords.
func (s *Store) verify() error { return verifyDB(s.db, s.path) }

// verifyDB is verify for the bbolt file db opened at path.
func verifyDB(db *bolt.DB, path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s", ErrDamaged, oneLine(r))
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		// A file cut short (a bad copy, a full disk under another tool) is
		// shorter than its meta page says.
		if fi.Size() < tx.Size() {
			return fmt.Errorf("%w: file is %d bytes, its meta page says %d", ErrDamaged, fi.Size(), tx.Size())
		}
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
	})
}

// walk reads every key and value in b and its nested buckets. The values
// are summed only so that their bytes (overflow pages included) are read.
func walk(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walk(nb)
			}
			return nil
		}
		_ = crc32.ChecksumIEEE(v)
		return nil
	})
}

// oneLine renders a recovered panic value as one line of text. bbolt's
// panic messages name pages and page types, never keys or values.
func oneLine(r any) string {
	return strings.Join(strings.Fields(fmt.Sprint(r)), " ")
}

// holder describes the process named in the pid file, if it is alive.
func holder(pidPath string) string {
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !processAlive(pid) {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

func (s *Store) checkSchema(fresh bool) error {
	var found []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			found = bytes.Clone(b.Get(keySchema))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if found == nil {
		if !fresh && !s.empty() {
			return fmt.Errorf("%w: no schema version in a non-empty file", ErrSchema)
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketCameras); err != nil {
				return err
			}
			return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
		})
	}
	if len(found) != 4 {
		return fmt.Errorf("%w: malformed schema version", ErrSchema)
	}
	if v := binary.BigEndian.Uint32(found); v != SchemaVersion {
		return fmt.Errorf("%w: file has version %d, this camd reads version %d", ErrSchema, v, SchemaVersion)
	}
	// Every method assumes the cameras bucket; a file without one was not
	// written by this schema, whatever its version key says.
	missing := false
	_ = s.db.View(func(tx *bolt.Tx) error { missing = tx.Bucket(bucketCameras) == nil; return nil })
	if missing {
		return fmt.Errorf("%w: version %d file has no cameras bucket", ErrSchema, SchemaVersion)
	}
	return nil
}

// empty reports whether the file has no buckets at all.
func (s *Store) empty() bool {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	})
	return n == 0
}

// Path returns the data file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file and releases the lock. It is safe to call more than
// once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	// Remove the pid file while the flock is still held: once it is
	// released the next camd may write its own, which must survive.
	_ = os.Remove(s.pidPath)
	s.evLock.Lock()
	evErr := s.evDB.Close()
	s.evDB = nil
	s.evLock.Unlock()
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	if evErr != nil {
		return fmt.Errorf("close %s: %w", s.evPath, evErr)
	}
	return nil
}

func (s *Store) view(fn func(*bolt.Bucket) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Bucket(bucketCameras)) })
}

func (s *Store) update(what string, fn func(*bolt.Bucket) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	wrote := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx.Bucket(bucketCameras)); err != nil {
			return err
		}
		wrote = true
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	if wrote {
		s.writes.Add(1)
	}
	return nil
}

// errNoChange rolls back a write transaction that would change nothing, so
// that it costs no disk write and is not counted.
var errNoChange = errors.New("no change")

// WriteCount returns how many write transactions committed since Open. The
// schema write of a brand-new file is not counted, nor is a SetStatuses call
// that changed nothing (it rolls back instead of committing).
func (s *Store) WriteCount() uint64 { return s.writes.Load() }

func decode(id string, v []byte) (Camera, error) {
	var c Camera
	if err := json.Unmarshal(v, &c); err != nil {
		// json errors may quote parts of the input, which holds the URL and
		// its password, so the json error itself is deliberately dropped.
		return Camera{}, fmt.Errorf("camera %q: %w", id, ErrCorrupt)
	}
	return c, nil
}

// Cameras returns every camera, sorted by name.
func (s *Store) Cameras() ([]Camera, error) {
	// Non-nil so that an empty list encodes as [] rather than null.
	cams := []Camera{}
	err := s.view(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			c, err := decode(string(k), v)
			if err != nil {
				return err
			}
			cams = append(cams, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list cameras in %s: %w", s.path, err)
	}
	sort.Slice(cams, func(i, j int) bool { return cams[i].Name < cams[j].Name })
	return cams, nil
}

// Camera returns one camera; ErrNotFound if there is none with that ID.
func (s *Store) Camera(id string) (Camera, error) {
	var c Camera
	err := s.view(func(b *bolt.Bucket) error {
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var err error
		c, err = decode(id, v)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) {
			return Camera{}, fmt.Errorf("get camera %s: %w", id, err)
		}
		return Camera{}, fmt.Errorf("get camera %s in %s: %w", id, s.path, err)
	}
	return c, nil
}

// PutCamera inserts or replaces a camera by ID, in one write transaction.
func (s *Store) PutCamera(c Camera) error {
	if c.ID == "" {
		return errors.New("put camera: empty id")
	}
	if !c.Status.Valid() {
		return fmt.Errorf("put camera %s: invalid status %q", c.ID, c.Status)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("put camera %s: %w", c.ID, err)
	}
	return s.update("put camera "+c.ID, func(b *bolt.Bucket) error { return b.Put([]byte(c.ID), v) })
}

// ErrNotScrubbed is wrapped by DeleteCamera's error when the camera was
// deleted but the file could not be rewritten without its old bytes.
var ErrNotScrubbed = errors.New("camera deleted, but its old record may still be in the file's free pages")

// DeleteCamera deletes a camera; ErrNotFound if there is none with that ID.
// It then rewrites the file so that the camera's URL, password included, is
// not left readable in it (see scrub); if that fails the camera is deleted
// all the same and the error wraps ErrNotScrubbed.
func (s *Store) DeleteCamera(id string) error {
	err := s.update("delete camera "+id, func(b *bolt.Bucket) error {
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return err
	}
	if err := s.scrub(); err != nil {
		return fmt.Errorf("delete camera %s in %s: %w: %w", id, s.path, ErrNotScrubbed, err)
	}
	return nil
}

// Scrub rewrites the data file as DeleteCamera does, so that values
// replaced by earlier writes (a camera's old URL) are not left in it.
func (s *Store) Scrub() error {
	if err := s.scrub(); err != nil {
		return fmt.Errorf("rewrite %s: %w", s.path, err)
	}
	return nil
}

// scrub replaces the data file with a compacted copy holding only the live
// records. bbolt is copy-on-write: a deleted or overwritten value stays, as
// it was, in pages that are merely marked free, and overwriting it first
// only adds another free copy. A copy made with bbolt's Compact never had
// those pages. The copy is locked (by its own bbolt handle) before it is
// renamed over the file, so no other camd can take the path's lock between
// the two; the old file, now unlinked, is emptied before its lock is let go,
// so that a camd that opened it just before the rename finds nothing in it.
func (s *Store) scrub() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	tmp := s.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	drop := func(err error) error {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := bolt.Compact(dst, s.db, 0); err != nil {
		return drop(err)
	}
	old, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return drop(err)
	}
	defer old.Close()
	if err := os.Rename(tmp, s.path); err != nil {
		return drop(err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	// Nothing reads the old file's memory map from here on: s.mu is held
	// and Close only unmaps it.
	_ = old.Truncate(0)
	_ = s.db.Close()
	s.db = dst
	return nil
}

// SetStatuses applies every update in one write transaction: it sets
// Status, StatusUpdatedAt (to At) and LastError. Updates for cameras that no
// longer exist are skipped, and so are updates that match what is stored;
// when nothing is left to change, nothing is written. An invalid status
// fails the whole call before anything is written.
func (s *Store) SetStatuses(us []StatusUpdate) error {
	for _, u := range us {
		if !u.Status.Valid() {
			return fmt.Errorf("set statuses: camera %s: invalid status %q", u.ID, u.Status)
		}
	}
	if len(us) == 0 {
		return nil
	}
	return s.update("set statuses", func(b *bolt.Bucket) error {
		changed := 0
		for _, u := range us {
			v := b.Get([]byte(u.ID))
			if v == nil {
				continue
			}
			c, err := decode(u.ID, v)
			if err != nil {
				return err
			}
			if c.Status == u.Status && c.StatusUpdatedAt.Equal(u.At) && c.LastError == u.LastError {
				continue
			}
			c.Status, c.StatusUpdatedAt, c.LastError = u.Status, u.At, u.LastError
			nv, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode camera %s: %w", u.ID, err)
			}
			if err := b.Put([]byte(u.ID), nv); err != nil {
				return fmt.Errorf("camera %s: %w", u.ID, err)
			}
			changed++
		}
		if changed == 0 {
			return errNoChange
		}
		return nil
	})
}
