package device

import (
	"fmt"
	"strings"
	"time"
)

// Settings are the supervision thresholds. Every number of the state machine's timed
// rules (docs/ARCHITECTURE.md#the-camera-state-machine) is one of these. The zero value of a field means its
// default; for ReadBatch, a negative value turns batching off.
//
// What each field does, its default and the range an operator may set it
// to are declared once, in SettingsTable, under the field's key (given
// below); the config file's supervision section, the API's settings object
// and packaging/camd.yaml's comments are derived from that table.
type Settings struct {
	StallTimeout      time.Duration // stall_timeout
	FlapDebounce      time.Duration // flap_debounce
	CrashedAfter      time.Duration // crashed_after
	ForceRestartAfter time.Duration // force_restart_after
	BackoffMin        time.Duration // backoff_min
	BackoffMax        time.Duration // backoff_max
	RefusedRetry      time.Duration // refused_retry
	RefusedRetryMax   time.Duration // refused_retry_max
	ReadTimeout       time.Duration // read_timeout
	ReadBatch         time.Duration // read_batch
}

// A Setting is one supervision threshold as operators see it.
type Setting struct {
	// Key names it in the config file's supervision section and in the
	// API's settings object.
	Key string
	// Default is what an unset (zero) value means.
	Default time.Duration
	// Min and Max are the range an operator may set it to; Max 0 means
	// the upper bound depends on another setting (RangeDoc says how).
	Min, Max time.Duration
	// CanTurnOff: "0s" in the config file, and 0 in the API, turn it off
	// (a negative value in Settings); unset means Default.
	CanTurnOff bool
	// Doc says what it does, for operators: packaging/camd.yaml's comment
	// above it, followed by the range.
	Doc string
	// RangeDoc replaces the "Range: MIN to MAX." written after Doc.
	RangeDoc string

	field func(*Settings) *time.Duration
}

// Get returns the setting's value in s.
func (st Setting) Get(s Settings) time.Duration { return *st.field(&s) }

// Set sets the setting's value in s.
func (st Setting) Set(s *Settings, d time.Duration) { *st.field(s) = d }

// Range is the sentence giving the setting's range, as the config file's
// comment ends.
func (st Setting) Range() string {
	if st.RangeDoc != "" {
		return st.RangeDoc
	}
	return fmt.Sprintf("Range: %s to %s.", FormatDuration(st.Min), FormatDuration(st.Max))
}

// DefaultReadBatch is Settings.ReadBatch's default.
const DefaultReadBatch = 100 * time.Millisecond

// MinReadBatch is the smallest ReadBatch other than off: a shorter one
// would wake every camera's reader hundreds of times a second.
const MinReadBatch = 10 * time.Millisecond

// MaxReadBatch is the largest Settings.ReadBatch allowed with readTimeout:
// a quarter of it. A connection counts as silent from the last batch read
// from it, so batches as far apart as ReadTimeout would drop a slow
// camera.
func MaxReadBatch(readTimeout time.Duration) time.Duration { return readTimeout / 4 }

// settingTable is SettingsTable. The minimums keep camd from spinning
// (reconnecting or restarting in a tight loop, or logging as fast as it
// can) and the maximums keep detection and recovery from being turned off
// by a typo; each is far from the default in both directions.
var settingTable = []Setting{
	{
		Key: "stall_timeout", Default: 60 * time.Second, Min: time.Second, Max: time.Hour,
		Doc:   "No video frame for this long: the stream is restarted from scratch.",
		field: func(s *Settings) *time.Duration { return &s.StallTimeout },
	},
	{
		Key: "flap_debounce", Default: 30 * time.Second, Min: time.Second, Max: time.Hour,
		Doc:   "A network flap shorter than this changes nothing and writes nothing.",
		field: func(s *Settings) *time.Duration { return &s.FlapDebounce },
	},
	{
		Key: "crashed_after", Default: 30 * time.Second, Min: time.Second, Max: time.Hour,
		Doc:   "Failing for longer than this: CRASHED, and the status is persisted.",
		field: func(s *Settings) *time.Duration { return &s.CrashedAfter },
	},
	{
		Key: "force_restart_after", Default: 60 * time.Second, Min: time.Second, Max: time.Hour,
		Doc: "Failing for longer than this: the connection attempt in flight, if any, " +
			"is abandoned and started afresh, and again every force_restart_after " +
			"while the camera keeps failing. A camera waiting between attempts that " +
			"fail to connect keeps waiting: its backoff is never reset by this.",
		field: func(s *Settings) *time.Duration { return &s.ForceRestartAfter },
	},
	{
		Key: "backoff_min", Default: time.Second, Min: 100 * time.Millisecond, Max: time.Minute,
		Doc: "Reconnect delays grow from backoff_min to backoff_max (with jitter). " +
			"When a camera comes back after failed attempts, the others waiting out " +
			"a delay retry after about backoff_min instead (each at most once per " +
			"backoff_max while it stays down): the network or the shared host is " +
			"likely back. backoff_max may not be below backoff_min.",
		field: func(s *Settings) *time.Duration { return &s.BackoffMin },
	},
	{
		Key: "backoff_max", Default: 30 * time.Second, Min: time.Second, Max: time.Hour,
		field: func(s *Settings) *time.Duration { return &s.BackoffMax },
	},
	{
		Key: "refused_retry", Default: 5 * time.Minute, Min: 10 * time.Second, Max: 24 * time.Hour,
		Doc: "A camera that refuses us (wrong password, no such path, video camd " +
			"cannot read, an untrusted certificate, an unknown host name) is " +
			"REFUSED and tried again after refused_retry, doubling up to " +
			"refused_retry_max: cameras that lock an account after failed logins " +
			"count every try. Changing or restarting the camera retries at once.",
		field: func(s *Settings) *time.Duration { return &s.RefusedRetry },
	},
	{
		Key: "refused_retry_max", Default: 30 * time.Minute, Min: 10 * time.Second, Max: 24 * time.Hour,
		Doc:   "refused_retry_max may not be below refused_retry.",
		field: func(s *Settings) *time.Duration { return &s.RefusedRetryMax },
	},
	{
		Key: "read_timeout", Default: 10 * time.Second, Min: time.Second, Max: 5 * time.Minute,
		Doc: "Bound on every RTSP request and read of a camera connection. A new value " +
			"(SIGHUP) reaches batched TCP connections at once; other connections, " +
			"and RTSP request timeouts, take it at their next connect.",
		field: func(s *Settings) *time.Duration { return &s.ReadTimeout },
	},
	{
		Key: "read_batch", Default: DefaultReadBatch, Min: MinReadBatch, CanTurnOff: true,
		Doc: "A streaming camera connection is read at most this often (or once " +
			"64 KiB are waiting) instead of once per packet, over TCP and TLS, and " +
			"its batch goes to relay readers in one write: far less CPU, for up to this " +
			"much delay before frames reach camd and the relay's readers. It applies " +
			"from a camera's next connection. 0s reads every packet as it arrives.",
		RangeDoc: "Range: 0s, or " + FormatDuration(MinReadBatch) + " to a quarter of read_timeout " +
			"(a connection counts as silent from the last batch read from it). " +
			"Linux only (elsewhere: 0s). " +
			"The trade-off, CPU saved against latency added (make bench, 64 " +
			"cameras, 2 cores; bench/RESULTS.md): ingest 0.032 % of a core per " +
			"camera at 100ms against 0.096 % at 0s, with one relay reader per " +
			"camera 0.044 % against 0.114 %; a frame reached a relay reader, from " +
			"the camera's send, in 48ms (p50) / 92ms (p99) at 100ms against " +
			"3ms / 10ms at 0s.",
		field: func(s *Settings) *time.Duration { return &s.ReadBatch },
	},
}

// SettingsTable returns every supervision setting, in the order the config
// file lists them.
func SettingsTable() []Setting { return append([]Setting(nil), settingTable...) }

// SetByKey sets the setting named key (a key of SettingsTable) to d, as
// Setting.Set does, and reports whether there is such a setting.
func (s *Settings) SetByKey(key string, d time.Duration) bool {
	st, ok := LookupSetting(key)
	if ok {
		st.Set(s, d)
	}
	return ok
}

// LookupSetting returns the setting named key.
func LookupSetting(key string) (Setting, bool) {
	for _, st := range settingTable {
		if st.Key == key {
			return st, true
		}
	}
	return Setting{}, false
}

// DefaultSettings returns the settings with every default filled in.
func DefaultSettings() Settings { return Settings{}.withDefaults() }

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings { return s.withDefaults() }

func (s Settings) withDefaults() Settings {
	for _, st := range settingTable {
		if d := st.field(&s); *d == 0 || *d < 0 && !st.CanTurnOff {
			*d = st.Default
		}
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

// FormatDuration writes d as an operator would: "1h", "5m", "90s",
// "100ms", not "1h0m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
