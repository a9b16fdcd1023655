package device

import "time"

// Settings are the supervision thresholds. Every number of the state
// machine's timed rules (docs/ARCHITECTURE.md#the-camera-state-machine) is one of these. The zero value of a field means its default.
type Settings struct {
	// StallTimeout: a camera with no video frame for this long is restarted
	// from scratch. It defaults to 60 seconds.
	StallTimeout time.Duration `yaml:"stall_timeout" json:"stall_timeout"`
	// FlapDebounce: a failure shorter than this writes nothing and is not
	// reported as down. It defaults to 30 seconds.
	FlapDebounce time.Duration `yaml:"flap_debounce" json:"flap_debounce"`
	// CrashedAfter: a camera failing for longer than this is CRASHED and the
	// status is persisted. It defaults to 30 seconds.
	CrashedAfter time.Duration `yaml:"crashed_after" json:"crashed_after"`
	// ForceRestartAfter: a camera failing for longer than this has its
	// connection attempt in flight, if any, abandoned and started afresh,
	// and again every ForceRestartAfter while it keeps failing. It is for a
	// session that went bad: a camera waiting out its backoff between
	// attempts that fail to connect is left to wait (the backoff is never
	// reset by it). It defaults to 60 seconds.
	ForceRestartAfter time.Duration `yaml:"force_restart_after" json:"force_restart_after"`
	// BackoffMin is the first reconnect delay. It defaults to 1 second.
	BackoffMin time.Duration `yaml:"backoff_min" json:"backoff_min"`
	// BackoffMax caps the reconnect delay. A camera coming back after failed
	// attempts hurries the others' next attempt, each at most once per
	// BackoffMax while it stays down. It defaults to 30 seconds.
	BackoffMax time.Duration `yaml:"backoff_max" json:"backoff_max"`
	// RefusedRetry is the first delay before a camera that refused us
	// (StateRefused: wrong password, no such path…) is tried again; each
	// refusal in a row doubles it up to RefusedRetryMax. Cameras that lock
	// an account after failed logins count every try. They default to 5
	// and 30 minutes.
	RefusedRetry    time.Duration `yaml:"refused_retry" json:"refused_retry"`
	RefusedRetryMax time.Duration `yaml:"refused_retry_max" json:"refused_retry_max"`
	// ReadTimeout bounds every RTSP request and read of the camera
	// connection. It defaults to 10 seconds.
	ReadTimeout time.Duration `yaml:"read_timeout" json:"read_timeout"`
	// ReadBatch: a playing TCP camera connection is read at most every
	// ReadBatch (or once 64 KiB are queued) instead of once per packet,
	// and (over rtsp://, not rtsps://) camd parses the video packets of a
	// batch itself rather than through the RTSP client: together that
	// saves most of camd's CPU. Frames reach camd and the relay's readers
	// up to ReadBatch later. It applies from a camera's next
	// connection, and only on Linux. It defaults to 100 milliseconds; a
	// negative value reads every packet as it arrives. It is at most a
	// quarter of ReadTimeout (a larger value is lowered to that): a
	// connection counts as silent from the last batch read from it, so
	// batches as far apart as ReadTimeout would drop a slow camera.
	ReadBatch time.Duration `yaml:"read_batch" json:"read_batch"`
}

// DefaultReadBatch is Settings.ReadBatch's default.
const DefaultReadBatch = 100 * time.Millisecond

// MaxReadBatch is the largest Settings.ReadBatch allowed with readTimeout:
// a quarter of it.
func MaxReadBatch(readTimeout time.Duration) time.Duration { return readTimeout / 4 }

// DefaultSettings returns the settings with every default filled in.
func DefaultSettings() Settings { return Settings{}.withDefaults() }

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings { return s.withDefaults() }

func (s Settings) withDefaults() Settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.StallTimeout, 60*time.Second)
	def(&s.FlapDebounce, 30*time.Second)
	def(&s.CrashedAfter, 30*time.Second)
	def(&s.ForceRestartAfter, 60*time.Second)
	def(&s.BackoffMin, time.Second)
	def(&s.BackoffMax, 30*time.Second)
	def(&s.RefusedRetry, 5*time.Minute)
	def(&s.RefusedRetryMax, 30*time.Minute)
	def(&s.ReadTimeout, 10*time.Second)
	if s.ReadBatch == 0 {
		s.ReadBatch = DefaultReadBatch
	}
	s.ReadBatch = min(s.ReadBatch, MaxReadBatch(s.ReadTimeout))
	if s.BackoffMax < s.BackoffMin {
		s.BackoffMax = s.BackoffMin
	}
	if s.RefusedRetryMax < s.RefusedRetry {
		s.RefusedRetryMax = s.RefusedRetry
	}
	return s
}
