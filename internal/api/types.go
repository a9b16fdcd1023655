package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/stream"
)

// CameraJSON is a camera as the API shows it.
type CameraJSON struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// URL has any password replaced by "xxxxx".
	URL       string `json:"url"`
	Transport string `json:"transport"`
	// TransportActive is the transport the connection uses ("tcp" or
	// "udp"): for "auto", the one it settled on.
	TransportActive string `json:"transport_active,omitempty"`
	// TLSFingerprint, TLSCA and TLSInsecure are how an rtsps:// camera's
	// certificate is trusted (see AddRequest).
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	TLSCA          string `json:"tls_ca,omitempty"`
	TLSInsecure    bool   `json:"tls_insecure,omitempty"`
	// State is the live state: STOPPED, STARTING, RUNNING, RECONNECTING,
	// CRASHED or REFUSED (the camera refused us: see last_error).
	State string `json:"state"`
	// PersistedStatus is what survives a restart: running, crashed or stopped.
	PersistedStatus string `json:"persisted_status"`
	// Since is when the persisted status last changed (status_updated_at).
	Since time.Time `json:"since"`
	// StateSince is when the live state last changed.
	StateSince time.Time `json:"state_since"`

	FPS         float64   `json:"fps"`
	BitrateBPS  float64   `json:"bitrate_bps"`
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	Resolution  string    `json:"resolution,omitempty"`
	Codec       string    `json:"codec,omitempty"`
	Frames      uint64    `json:"frames"`
	Keyframes   uint64    `json:"keyframes"`
	Bytes       uint64    `json:"bytes"`
	LastFrameAt time.Time `json:"last_frame_at,omitzero"`
	// Audio says what became of each audio track: "opus (relayed)", or
	// "speex (not relayed: ...)" with the reason.
	Audio string `json:"audio,omitempty"`

	ReconnectsLastHour int    `json:"reconnects_last_hour"`
	StallsLastHour     int    `json:"stalls_last_hour"`
	ReconnectsTotal    uint64 `json:"reconnects_total"`
	StallsTotal        uint64 `json:"stalls_total"`
	Restarts           uint64 `json:"restarts"`
	Crashes            uint64 `json:"crashes"`
	StatusWrites       uint64 `json:"status_writes"`

	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// Relay is the relay's statistics for this camera, when camd relays.
	Relay any `json:"relay,omitempty"`
}

// cameraJSON converts a Manager view.
func cameraJSON(v device.View) CameraJSON {
	c := CameraJSON{
		Name:               v.Name,
		ID:                 v.ID,
		URL:                v.URL,
		Transport:          v.Transport,
		TransportActive:    v.TransportActive,
		TLSFingerprint:     v.TLS.Fingerprint,
		TLSCA:              v.TLS.CAFile,
		TLSInsecure:        v.TLS.Insecure,
		State:              v.State.String(),
		PersistedStatus:    v.Persisted,
		Since:              v.Since,
		StateSince:         v.StateSince,
		FPS:                v.FPS,
		BitrateBPS:         v.BitrateBPS,
		Width:              v.Width,
		Height:             v.Height,
		Codec:              v.Codec,
		Frames:             v.Frames,
		Keyframes:          v.Keyframes,
		Bytes:              v.Bytes,
		LastFrameAt:        v.LastFrameAt,
		Audio:              v.Audio,
		ReconnectsLastHour: v.ReconnectsLastHour,
		StallsLastHour:     v.StallsLastHour,
		ReconnectsTotal:    v.Reconnects,
		StallsTotal:        v.Stalls,
		Restarts:           v.Restarts,
		Crashes:            v.Crashes,
		StatusWrites:       v.StatusWrites,
		LastError:          v.LastError,
		LastErrorAt:        v.LastErrorAt,
	}
	if v.Width > 0 && v.Height > 0 {
		c.Resolution = fmt.Sprintf("%dx%d", v.Width, v.Height)
	}
	return c
}

// AddRequest is the body of POST /api/v1/cameras.
type AddRequest struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	Transport string `json:"transport,omitempty"`
	// TLSFingerprint pins an rtsps:// camera's certificate by its SHA-256
	// fingerprint (hex, colons allowed); TLSCA is the absolute path of a
	// PEM file of CAs its chain must verify against (the name is not
	// checked); TLSInsecure accepts any certificate. At most one is set;
	// with none the certificate must verify as for a browser.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	TLSCA          string `json:"tls_ca,omitempty"`
	TLSInsecure    bool   `json:"tls_insecure,omitempty"`
	// Start defaults to true: a camera added is a camera meant to run.
	Start *bool `json:"start,omitempty"`
}

// UpdateRequest is the body of PUT and PATCH /api/v1/cameras/{name}. For
// PUT, Name defaults to the camera's current name and Transport to tcp; for
// PATCH every field defaults to the camera's current value; a PATCH without
// a URL keeps the stored URL exactly, secrets included (the API only ever
// shows it redacted).
type UpdateRequest struct {
	Name      *string `json:"name,omitempty"`
	URL       *string `json:"url,omitempty"`
	Transport *string `json:"transport,omitempty"`
	// The TLS fields, as in AddRequest; for PATCH, set ones replace the
	// camera's and "" (false) clears one.
	TLSFingerprint *string `json:"tls_fingerprint,omitempty"`
	TLSCA          *string `json:"tls_ca,omitempty"`
	TLSInsecure    *bool   `json:"tls_insecure,omitempty"`
}

// tls applies the request's TLS fields to t.
func (r UpdateRequest) tls(t stream.CameraTLS) stream.CameraTLS {
	if r.TLSFingerprint != nil {
		t.Fingerprint = *r.TLSFingerprint
	}
	if r.TLSCA != nil {
		t.CAFile = *r.TLSCA
	}
	if r.TLSInsecure != nil {
		t.Insecure = *r.TLSInsecure
	}
	return t
}

// CameraCounts counts cameras, by live state.
type CameraCounts struct {
	Total int `json:"total"`
	// ByState holds every state name, zero counts included.
	ByState map[string]int `json:"by_state"`
}

// FDCounts are the daemon's open file descriptors by kind.
type FDCounts struct {
	Total   int `json:"total"`
	Sockets int `json:"sockets"`
	Files   int `json:"files"`
	Pipes   int `json:"pipes"`
	Events  int `json:"events"`
	Other   int `json:"other"`
	// Error says why the counts are missing where they cannot be taken.
	Error string `json:"error,omitempty"`
}

// Memory is the daemon's memory use.
type Memory struct {
	// RSSBytes is the resident set size, where the platform reports it
	// (Linux /proc/self/statm); 0 elsewhere.
	RSSBytes       uint64 `json:"rss_bytes,omitempty"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	GoSysBytes     uint64 `json:"go_sys_bytes"`
}

// SettingsJSON are the supervision settings in force, in seconds. Each
// field's JSON key is a key of device.SettingsTable (and of the config
// file's supervision section), which says what it does; 0 is "off" for a
// setting that can be turned off (read_batch).
type SettingsJSON struct {
	StallTimeout      float64 `json:"stall_timeout"`
	FlapDebounce      float64 `json:"flap_debounce"`
	CrashedAfter      float64 `json:"crashed_after"`
	ForceRestartAfter float64 `json:"force_restart_after"`
	BackoffMin        float64 `json:"backoff_min"`
	BackoffMax        float64 `json:"backoff_max"`
	RefusedRetry      float64 `json:"refused_retry"`
	RefusedRetryMax   float64 `json:"refused_retry_max"`
	ReadTimeout       float64 `json:"read_timeout"`
	ReadBatch         float64 `json:"read_batch"`
}

// settingsFields calls f with each setting of device.SettingsTable and the
// field of s that holds it (TestSettingsJSONIsTheTable checks the two
// agree key for key).
func (s *SettingsJSON) settingsFields(f func(st device.Setting, sec *float64)) {
	fields := map[string]*float64{
		"stall_timeout":       &s.StallTimeout,
		"flap_debounce":       &s.FlapDebounce,
		"crashed_after":       &s.CrashedAfter,
		"force_restart_after": &s.ForceRestartAfter,
		"backoff_min":         &s.BackoffMin,
		"backoff_max":         &s.BackoffMax,
		"refused_retry":       &s.RefusedRetry,
		"refused_retry_max":   &s.RefusedRetryMax,
		"read_timeout":        &s.ReadTimeout,
		"read_batch":          &s.ReadBatch,
	}
	for _, st := range device.SettingsTable() {
		sec, ok := fields[st.Key]
		if !ok {
			panic("api: SettingsJSON has no field for device.SettingsTable's " + st.Key)
		}
		f(st, sec)
	}
}

func settingsJSON(s device.Settings) SettingsJSON {
	var j SettingsJSON
	j.settingsFields(func(st device.Setting, sec *float64) {
		*sec = max(st.Get(s), 0).Seconds()
	})
	return j
}

// Durations converts back to device.Settings.
func (s SettingsJSON) Durations() device.Settings {
	var out device.Settings
	s.settingsFields(func(st device.Setting, sec *float64) {
		d := time.Duration(*sec * float64(time.Second))
		if d == 0 && st.CanTurnOff {
			d = -1
		}
		st.Set(&out, d)
	})
	return out
}

// DaemonStatus is the body of GET /api/v1/status.
type DaemonStatus struct {
	Version       string       `json:"version"`
	StartedAt     time.Time    `json:"started_at"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Cameras       CameraCounts `json:"cameras"`
	OpenFDs       FDCounts     `json:"open_fds"`
	Memory        Memory       `json:"memory"`
	Goroutines    int          `json:"goroutines"`
	// APIConnections is the number of open control API connections.
	APIConnections int          `json:"api_connections"`
	Settings       SettingsJSON `json:"settings"`
	// Extra holds the fields that Config.StatusExtra added, at the top
	// level of the JSON object.
	Extra map[string]json.RawMessage `json:"-"`
}

// daemonStatusFields is DaemonStatus without its methods, for the default
// encoding.
type daemonStatusFields DaemonStatus

// MarshalJSON puts Extra's fields next to the built-in ones; a built-in
// field wins over an Extra field of the same name.
func (d DaemonStatus) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(daemonStatusFields(d))
	if err != nil || len(d.Extra) == 0 {
		return base, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(base, &all); err != nil {
		return nil, err
	}
	for k, v := range d.Extra {
		if _, builtin := all[k]; !builtin {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

// UnmarshalJSON keeps fields it does not know in Extra.
func (d *DaemonStatus) UnmarshalJSON(b []byte) error {
	var f daemonStatusFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	known, err := json.Marshal(daemonStatusFields{})
	if err != nil {
		return err
	}
	var knownKeys map[string]json.RawMessage
	if err := json.Unmarshal(known, &knownKeys); err != nil {
		return err
	}
	for k := range knownKeys {
		delete(all, k)
	}
	*d = DaemonStatus(f)
	if len(all) > 0 {
		d.Extra = all
	}
	return nil
}

// errorBody is every error response: {"error": "one line"}.
type errorBody struct {
	Error string `json:"error"`
}
