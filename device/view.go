package device

import (
	"errors"
	"time"

	"github.com/camd/camd/stream"
)

// Spec is what an operator says about a camera.
type Spec struct {
	// Name is unique, 1–64 characters of [A-Za-z0-9._-], starting with a
	// letter or digit. It is the camera's path on the relay.
	Name string `json:"name"`
	// URL is rtsp:// or rtsps:// with a host; at most 2048 bytes.
	URL string `json:"url"`
	// Transport is "tcp" (the default), "udp" or "auto".
	Transport string `json:"transport,omitempty"`
	// TLS says how an rtsps:// camera's certificate is trusted; it is
	// refused for rtsp://. TLS.CAFile must be an absolute path.
	TLS stream.CameraTLS `json:"tls"`
}

// View is a camera as shown to operators: a snapshot, safe to hand out.
// URL has any password replaced by "xxxxx". Its JSON is the API's camera
// object (internal/api.CameraJSON) less what only the API adds (the
// resolution, the relay's stats); a test there keeps the two in step.
type View struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	Transport string `json:"transport"`
	// TLS is how the camera's certificate is trusted (nothing secret).
	// The API shows its fields at the top level, under their own tags
	// (tls_fingerprint, tls_ca, tls_insecure).
	TLS stream.CameraTLS `json:"-"`
	// TransportActive is the transport of the current or last connection
	// ("tcp" or "udp"), which for "auto" is the one it settled on.
	TransportActive string `json:"transport_active,omitempty"`
	State           State  `json:"state"`
	// Since is when the persisted status last changed (status_updated_at).
	Since time.Time `json:"since"`
	// StateSince is when the live state last changed.
	StateSince time.Time `json:"state_since"`
	// Persisted is the persisted status: running, crashed or stopped.
	Persisted string `json:"persisted_status"`

	Codec       string    `json:"codec,omitempty"`
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	FPS         float64   `json:"fps"`
	BitrateBPS  float64   `json:"bitrate_bps"`
	Frames      uint64    `json:"frames"`
	Keyframes   uint64    `json:"keyframes"`
	Bytes       uint64    `json:"bytes"`
	LastFrameAt time.Time `json:"last_frame_at,omitzero"`
	// Audio says what became of each audio track of the camera:
	// "opus (relayed)", or "speex (not relayed: ...)" with the reason.
	Audio string `json:"audio,omitempty"`

	ReconnectsLastHour int    `json:"reconnects_last_hour"`
	StallsLastHour     int    `json:"stalls_last_hour"`
	Reconnects         uint64 `json:"reconnects_total"`
	Stalls             uint64 `json:"stalls_total"`
	Restarts           uint64 `json:"restarts"`
	Crashes            uint64 `json:"crashes"`
	// StatusWrites counts persisted-status writes for this camera since camd started.
	StatusWrites uint64    `json:"status_writes"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
}

// Errors returned by the Manager.
var (
	// ErrNotFound is returned when no camera has the given name.
	ErrNotFound = errors.New("no such camera")
	// ErrExists is returned by Add and Update when the name is taken.
	ErrExists = errors.New("a camera with that name already exists")
	// ErrInvalid wraps every validation failure of a Spec.
	ErrInvalid = errors.New("invalid camera")
	// ErrClosed is returned after the Manager has been closed.
	ErrClosed = errors.New("manager is closed")
)
