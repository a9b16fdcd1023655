package device

import (
	"context"
	"log/slog"
	"time"

	"github.com/camd/camd/store"
	"github.com/camd/camd/stream"
)

// ReadFunc makes one connection attempt; stream.Read is the real one.
type ReadFunc func(ctx context.Context, o stream.Options) error

// Tap receives a camera's video as the supervisor reads it. The relay
// implements it. Methods are called from the reader's goroutine and must not
// block.
type Tap interface {
	// Info is called once per connection, when the video track is set up.
	Info(stream.Info)
	// Frame is called for every video access unit.
	Frame(stream.Frame)
	// Disconnected is called when a connection ends.
	Disconnected()
	// Close is called once when the camera is removed.
	Close()
}

// Config configures a Manager.
type Config struct {
	// Store persists cameras and statuses. Required. The Manager never
	// closes it: whoever opened it does.
	Store *store.Store
	// Settings are the supervision thresholds; zero fields take defaults.
	Settings Settings
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Read defaults to stream.Read.
	Read ReadFunc
	// NewTap, if set, is called once per camera to get its Tap.
	NewTap func(name string) Tap
	// StopTimeout bounds how long Close waits for all cameras. It defaults
	// to 5 seconds.
	StopTimeout time.Duration
	// LoopInterval is the period of the supervision loop (the one whose last
	// run is reported by LastLoop). It defaults to 1 second.
	LoopInterval time.Duration
}

// NewManager, Start, Close, Add, Update, Remove, StartCamera, StopCamera,
// RestartCamera, List, Get, Counts, Settings, SetSettings and LastLoop are
// the Manager's API; see manager_impl.go.
var _ = context.Background
