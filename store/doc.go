// Package store keeps camd's camera configuration and persisted status in a
// single bbolt file, and the event history in a second one beside it.
//
// The file is opened once for the life of the process and closed once at
// exit; it is also camd's single-instance lock. Writes happen only when
// something changes (a camera is added, updated or removed, or a persisted
// status changes), never as a heartbeat: read methods use read-only
// transactions, and SetStatuses writes nothing when no record changes.
// WriteCount counts committed write transactions so that tests can prove it.
//
// Caveats:
//
//   - bbolt holds an exclusive flock on the file while it is open, so a
//     second Open of the same file, from this process or another, waits for
//     Options.LockTimeout and then fails with ErrLocked. The flock is the
//     only lock. The pid file next to the data file ("camd.db.pid") only
//     names the holder in that error; it is written after Open succeeds,
//     removed by Close, and a stale one (its process gone) is ignored. A
//     stale pid file whose pid has been reused by an unrelated process may
//     name the wrong process.
//   - The file is created 0600 and its directory 0700, because camera URLs
//     carry passwords; an existing file that is looser is chmod'ed to 0600
//     once Open has accepted it, an existing directory is left as it is.
//     No error from this package contains a camera's URL or a stored
//     record's bytes.
//   - Open follows no link at the file's path: a link, or anything but a
//     regular file, is refused with ErrNotRegular, and every open of the
//     path uses O_NOFOLLOW (where the system has it).
//   - bbolt is copy-on-write: a deleted or replaced record stays, as it
//     was, in pages marked free. DeleteCamera (and Scrub, which the Manager
//     calls when a URL changes) therefore rewrites the file with bbolt's
//     Compact into "camd.db.compact", locked before it is renamed over
//     camd.db, so that an old URL and its password are not left readable.
//     The old file is emptied before its lock is released; a camd that
//     opened the path just before the rename and then waited for the lock
//     finds, once it has the lock, that the file it holds is no longer the
//     one at the path, and Open returns ErrLocked.
//   - Open refuses, with ErrDamaged, a file that is not a bbolt file or
//     whose pages are damaged or cut short, or that is empty (bbolt would
//     take it for a new store), and with ErrSchema one written with another
//     schema version. Either way the file is not modified. To
//     check, Open opens the file twice: read-only under a shared lock to
//     check what bbolt would otherwise trust, then read-write, reading every
//     record once; the file holds only camera records, so this is cheap.
//   - A failed write (a full disk, an I/O error) returns the error, and
//     bbolt's atomic commit means everything committed before is intact;
//     the same Store can write again once the cause is gone.
//   - The event history (events.Log) is kept in a bbolt file of its own,
//     EventsPath ("camd-events.db" next to "camd.db"), opened, checked and
//     closed with the data file, so that the rewrite above copies only the
//     cameras, whatever the history holds, and event writes do not queue
//     behind camera writes. Its records carry no passwords. A history an
//     earlier camd kept in the data file is moved there by Open.
//   - Store methods are safe for concurrent use. bbolt allows one write
//     transaction at a time, so concurrent writers queue.
package store
