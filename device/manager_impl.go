package device

import (
	"context"
	"errors"
	"time"
)

// Manager owns the set of camera supervisors.
type Manager struct{ cfg Config }

var errTODO = errors.New("not implemented yet")

// NewManager returns a Manager; call Start to load cameras from the store.
func NewManager(cfg Config) (*Manager, error) { return &Manager{cfg: cfg}, nil }

// Start loads every camera from the store and starts those whose persisted
// status is running or crashed (start-up recovery). It returns once every
// supervisor has been started (not once cameras are RUNNING).
func (m *Manager) Start(ctx context.Context) error { return errTODO }

// Close stops every camera concurrently (bounded by Config.StopTimeout),
// flushes pending status writes and returns once all supervisor goroutines
// have ended. Persisted statuses are kept as they are, so running cameras
// come back on the next start. It does not close the store.
func (m *Manager) Close() error { return errTODO }

// Add validates spec, stores the camera and, if start is true, starts it.
func (m *Manager) Add(ctx context.Context, spec Spec, start bool) (View, error) {
	return View{}, errTODO
}

// Update changes a camera's name, URL or transport; a running camera is
// restarted with the new settings.
func (m *Manager) Update(ctx context.Context, name string, spec Spec) (View, error) {
	return View{}, errTODO
}

// Remove stops a camera and deletes it from the store.
func (m *Manager) Remove(ctx context.Context, name string) error { return errTODO }

// StartCamera starts a camera and persists "running".
func (m *Manager) StartCamera(ctx context.Context, name string) (View, error) {
	return View{}, errTODO
}

// StopCamera stops a camera and persists "stopped" before returning.
func (m *Manager) StopCamera(ctx context.Context, name string) (View, error) {
	return View{}, errTODO
}

// RestartCamera closes a camera's connection and starts it afresh.
func (m *Manager) RestartCamera(ctx context.Context, name string) (View, error) {
	return View{}, errTODO
}

// List returns every camera's view, sorted by name.
func (m *Manager) List() []View { return nil }

// Get returns one camera's view.
func (m *Manager) Get(name string) (View, error) { return View{}, ErrNotFound }

// Counts returns how many cameras are in each state.
func (m *Manager) Counts() map[State]int { return nil }

// Settings returns the supervision settings in force, defaults filled in.
func (m *Manager) Settings() Settings { return m.cfg.Settings.withDefaults() }

// SetSettings changes the supervision settings of every camera without
// dropping any connection (SIGHUP).
func (m *Manager) SetSettings(s Settings) {}

// LastLoop returns when the supervision loop last ran; liveness checks and
// the systemd watchdog use it.
func (m *Manager) LastLoop() time.Time { return time.Time{} }

// Ready reports whether start-up recovery has finished.
func (m *Manager) Ready() bool { return false }
