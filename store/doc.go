// Package store keeps camd's camera configuration and persisted status in a
// single bbolt file.
//
// The file is opened once for the life of the process and closed once at
// exit; it is also camd's single-instance lock. Writes happen only when
// something changes (a camera is added, updated or removed, or a persisted
// status changes), never as a heartbeat.
//
// Caveats: bbolt holds an exclusive flock on the file while it is open, so a
// second Open of the same file (from this or another process) waits for the
// lock timeout and then fails with ErrLocked. The file is created 0600 and
// its directory 0700 because camera URLs carry credentials.
package store
