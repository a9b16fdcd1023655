package store

import (
	"errors"
	"time"
)

// Status is a camera's persisted status: what camd should do with it after a
// restart.
type Status string

// Persisted statuses. Start-up recovery starts every camera whose status is
// StatusRunning or StatusCrashed; StatusStopped cameras stay stopped.
const (
	StatusStopped Status = "stopped"
	StatusRunning Status = "running"
	StatusCrashed Status = "crashed"
)

// Valid reports whether s is one of the persisted statuses.
func (s Status) Valid() bool {
	return s == StatusStopped || s == StatusRunning || s == StatusCrashed
}

// Camera is one camera's stored record.
type Camera struct {
	// ID is assigned by the caller and never changes.
	ID string `json:"id"`
	// Name is unique among cameras; it is the camera's path on the relay.
	Name string `json:"name"`
	// URL is the camera's RTSP URL, credentials included (stored 0600).
	URL string `json:"url"`
	// Transport is "tcp", "udp" or "auto"; "" means tcp.
	Transport string `json:"transport,omitempty"`
	// TLSFingerprint, TLSCA and TLSInsecure say how an rtsps:// camera's
	// certificate is trusted (stream.CameraTLS).
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	TLSCA          string `json:"tls_ca,omitempty"`
	TLSInsecure    bool   `json:"tls_insecure,omitempty"`
	// Status is the persisted status.
	Status Status `json:"status"`
	// StatusUpdatedAt is when Status last changed.
	StatusUpdatedAt time.Time `json:"status_updated_at"`
	// LastError is the last error seen, with any password removed.
	LastError string `json:"last_error,omitempty"`
	// CreatedAt is when the camera was added.
	CreatedAt time.Time `json:"created_at"`
}

// StatusUpdate changes one camera's persisted status.
type StatusUpdate struct {
	ID        string
	Status    Status
	At        time.Time
	LastError string
}

// Errors returned by the store.
var (
	// ErrLocked is returned by Open when another process (or another Open in
	// this one) holds the data file for longer than the lock timeout.
	ErrLocked = errors.New("data file is locked by another camd")
	// ErrSchema is returned by Open when the file was written by an
	// incompatible version of camd.
	ErrSchema = errors.New("data file has an unsupported schema version")
	// ErrNotFound is returned when no camera has the given ID.
	ErrNotFound = errors.New("camera not found")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("store is closed")
	// ErrDamaged is returned by Open when the file is not a bbolt file, or
	// is one whose pages are damaged or cut short. The file is left as it
	// is, for an operator to inspect or restore.
	ErrDamaged = errors.New("data file is damaged or is not a camd data file")
	// ErrNotRegular is returned by Open when the data file's path is a
	// symbolic link, a directory or any other non-regular file. Like a
	// damaged file, it is left as it is.
	ErrNotRegular = errors.New("data file is not a regular file")
	// ErrCorrupt is returned by the read methods and SetStatuses when a
	// stored camera record cannot be decoded. The error names the camera's ID
	// but never quotes the record, which holds the URL and its password.
	ErrCorrupt = errors.New("camera record is malformed")
)
