package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/store"
	"github.com/camd/camd/stream/relay"
)

// Config is camd run's configuration: the YAML file, then flags on top.
// The zero value of every field means its default, so camd runs with no
// config file at all. packaging/camd.yaml documents every field with its
// default and must stay in step with this struct (a test checks it).
type Config struct {
	// DataDir holds the store (camd.db) and the API token. It defaults to
	// DefaultDataDir().
	DataDir string            `yaml:"data_dir"`
	Log     LogConfig         `yaml:"log"`
	API     APIConfig         `yaml:"api"`
	Relay   RelayConfig       `yaml:"relay"`
	Super   SupervisionConfig `yaml:"supervision"`
	FD      FDConfig          `yaml:"fd"`
	Events  EventsConfig      `yaml:"events"`
	// ShutdownDeadline bounds shutdown: once it has begun, the process
	// exits within this long whatever hangs, non-zero if it had to cut
	// shutdown short. It defaults to 10 seconds.
	ShutdownDeadline Duration `yaml:"shutdown_deadline"`

	// Webhooks and MQTT tell others of events; both are off by default.
	Webhooks WebhooksConfig `yaml:"webhooks"`
	MQTT     MQTTConfig     `yaml:"mqtt"`

	// source is the file LoadConfig read, for the warning about a
	// readable file holding a password.
	source string
}

// LogConfig is the logging section.
type LogConfig struct {
	// Level is debug, info, warn or error. It defaults to info.
	Level string `yaml:"level"`
	// Format is text or json. It defaults to text.
	Format string `yaml:"format"`
}

// APIConfig is the control API section.
type APIConfig struct {
	// Listen is the control API's TCP address. It defaults to
	// 127.0.0.1:7654.
	Listen string `yaml:"listen"`
	// RequireToken forces (true) or waives (false) the bearer token. Unset,
	// it is required exactly when Listen is not a loopback address.
	RequireToken *bool `yaml:"require_token"`
	// AllowNoTokenOffLoopback must be true for RequireToken false to stand
	// on an address that is not loopback; camd then WARNs at every start.
	// It defaults to false (such a config is refused).
	AllowNoTokenOffLoopback bool `yaml:"allow_no_token_off_loopback"`
	// TLSCert and TLSKey are PEM files; with both set the API speaks only
	// HTTPS. They default to "" (plain HTTP, with a WARN off loopback).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxConns caps open client connections; more are closed at once. It
	// defaults to 64.
	MaxConns int `yaml:"max_conns"`
}

// RelayConfig is the RTSP relay section.
type RelayConfig struct {
	// Listen is the relay's RTSP (TCP) address. It defaults to
	// 127.0.0.1:8554. "off" disables the relay.
	Listen string `yaml:"listen"`
	// UDPRTPAddress, when set (e.g. 127.0.0.1:8000), also serves readers
	// over UDP (RTP on it, RTCP on the next port). It defaults to "" (TCP
	// only).
	UDPRTPAddress string `yaml:"udp_rtp_address"`
	// User and Pass, when User is set, are required of every reader.
	User string `yaml:"user"`
	Pass string `yaml:"pass"`
	// Cameras overrides User and Pass per camera name.
	Cameras map[string]Credentials `yaml:"cameras"`
	// DescribeWait is how long a reader of a camera that is not streaming
	// yet waits for its codec parameters. It defaults to 5 seconds.
	DescribeWait Duration `yaml:"describe_wait"`
	// Public serves the relay off loopback without credentials (with a
	// WARN at every start). It defaults to false: off loopback, camd
	// refuses to start unless User is set.
	Public bool `yaml:"public"`
	// MaxConns caps the open reader connections; more are closed at once.
	// It defaults to 256.
	MaxConns int `yaml:"max_conns"`
	// AllowTunnel accepts RTSP over HTTP and WebSocket (same-origin
	// WebSocket only). It defaults to false.
	AllowTunnel bool `yaml:"allow_tunnel"`
	// TLSCert and TLSKey, both set, are PEM files: the relay then serves
	// RTSPS (rtsps://) only. They default to "" (plain RTSP).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// StartPointTimeout is how long a camera's stream may go without a
	// keyframe or recovery point before the camera's relay stats say so
	// and its readers start at any frame. It defaults to 30 seconds.
	StartPointTimeout Duration `yaml:"start_point_timeout"`
}

// Credentials are a reader's user and password for one camera.
type Credentials struct {
	User string `yaml:"user"`
	Pass string `yaml:"pass"`
}

// SupervisionConfig holds the state machine's thresholds
// (docs/ARCHITECTURE.md#the-camera-state-machine).
// SIGHUP applies changes to running cameras without dropping them. Each
// field's yaml key is a key of device.SettingsTable, which gives its
// default, its range and its documentation; an unset field takes the
// default.
type SupervisionConfig struct {
	StallTimeout      Duration `yaml:"stall_timeout"`
	FlapDebounce      Duration `yaml:"flap_debounce"`
	CrashedAfter      Duration `yaml:"crashed_after"`
	ForceRestartAfter Duration `yaml:"force_restart_after"`
	BackoffMin        Duration `yaml:"backoff_min"`
	BackoffMax        Duration `yaml:"backoff_max"`
	RefusedRetry      Duration `yaml:"refused_retry"`
	RefusedRetryMax   Duration `yaml:"refused_retry_max"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	// ReadBatch is a pointer because "0s" (off) differs from unset.
	ReadBatch *Duration `yaml:"read_batch"`
}

// raw returns the settings as written, in device.Settings' terms: 0 where
// unset (the default), negative for "0s" of read_batch, which 0s turns
// off. Fields are matched to the table by their yaml keys
// (TestSupervisionConfigIsTheTable checks every key is here).
func (s SupervisionConfig) raw() device.Settings {
	var out device.Settings
	set := func(key string, d time.Duration) {
		st, ok := device.LookupSetting(key)
		if !ok {
			panic("daemon: supervision." + key + " is not in device.SettingsTable")
		}
		st.Set(&out, d)
	}
	set("stall_timeout", s.StallTimeout.D())
	set("flap_debounce", s.FlapDebounce.D())
	set("crashed_after", s.CrashedAfter.D())
	set("force_restart_after", s.ForceRestartAfter.D())
	set("backoff_min", s.BackoffMin.D())
	set("backoff_max", s.BackoffMax.D())
	set("refused_retry", s.RefusedRetry.D())
	set("refused_retry_max", s.RefusedRetryMax.D())
	set("read_timeout", s.ReadTimeout.D())
	if s.ReadBatch != nil {
		d := s.ReadBatch.D()
		if d == 0 {
			d = -1
		}
		set("read_batch", d)
	}
	return out
}

// FDConfig is the file-descriptor watchdog section.
type FDConfig struct {
	// Interval is how often descriptors are counted. It defaults to 5
	// seconds.
	Interval Duration `yaml:"interval"`
	// Ceiling, when above 0, shuts camd down (non-zero exit, so its
	// supervisor restarts it) once it has this many descriptors open. It
	// defaults to 0 (off).
	Ceiling int `yaml:"ceiling"`
}

// EventsConfig is the event history section.
type EventsConfig struct {
	// MaxCount bounds how many events the history keeps; the oldest are
	// dropped first. It defaults to 10000.
	MaxCount int `yaml:"max_count"`
	// MaxAge: older events are dropped. It defaults to 720h (30 days).
	MaxAge Duration `yaml:"max_age"`
}

// Bounds of events.max_count.
const (
	minEventsMaxCount = 100
	maxEventsMaxCount = 1000000
)

// Duration is a time.Duration written as a Go duration string ("90s",
// "1m30s") in YAML.
type Duration time.Duration

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration like \"30s\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Defaults used where a field is zero; those of what another package
// runs are that package's.
const (
	DefaultAPIListen        = api.DefaultListen
	DefaultRelayListen      = relay.DefaultListen
	DefaultShutdownDeadline = 10 * time.Second
	DefaultFDInterval       = 5 * time.Second
	DefaultDescribeWait     = relay.DefaultDescribeWait
	DefaultAPIMaxConns      = api.DefaultMaxConns
	DefaultRelayMaxConns    = relay.DefaultMaxConns
	maxRelayMaxConns        = 1 << 20
	DefaultStartPoint       = relay.DefaultStartPointTimeout
)

// maxAPIConns bounds api.max_conns: each connection is a descriptor.
const maxAPIConns = 10000

// ErrConfig is returned (wrapped, with the file and the reason) by
// LoadConfig and Config.Validate for a config that cannot be used.
var ErrConfig = errors.New("bad config")

// maxConfigBytes bounds the config file: anything larger is a mistake.
const maxConfigBytes = 1 << 20

// LoadConfig reads a YAML config file. Unknown keys are errors, so a typo
// never silently leaves a default in force.
func LoadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return Config{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrConfig, path, maxConfigBytes)
	}
	c, err := ParseConfig(b)
	if ce := (*ConfigError)(nil); errors.As(err, &ce) {
		ce.File = path
		return Config{}, ce
	}
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	c.source = path
	return c, nil
}

// ParseConfig decodes and validates a YAML config. An empty document is
// the all-defaults config.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, syntaxError(err)
	}
	// A second document is almost certainly a mistake.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Config{}, &ConfigError{Line: extra.Line, Msg: "more than one YAML document (a line \"---\" starts a second one)"}
	}
	if doc.Kind != 0 {
		if err := checkConfigNode(&doc); err != nil {
			return Config{}, err
		}
		if err := doc.Decode(&c); err != nil {
			return Config{}, syntaxError(err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func oneLine(s string) string {
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Join(strings.Fields(s), " ")
}

// Validate checks the values that have a fixed vocabulary or form.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level: %v", err)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		return bad("log.format: %q is not text or json", c.Log.Format)
	}
	if c.API.Listen != "" {
		if err := checkHostPort(c.API.Listen); err != nil {
			return bad("api.listen: %v", err)
		}
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return bad("api.tls_cert and api.tls_key: set both or neither")
	}
	if c.API.MaxConns < 0 || c.API.MaxConns > maxAPIConns {
		return bad("api.max_conns: %d is outside 1 to %d (0 is the default, %d)", c.API.MaxConns, maxAPIConns, DefaultAPIMaxConns)
	}
	if c.Relay.Listen != "" && c.Relay.Listen != "off" {
		if err := checkHostPort(c.Relay.Listen); err != nil {
			return bad("relay.listen: %v", err)
		}
	}
	if c.Relay.UDPRTPAddress != "" {
		if err := checkHostPort(c.Relay.UDPRTPAddress); err != nil {
			return bad("relay.udp_rtp_address: %v", err)
		}
	}
	if c.Relay.MaxConns < 0 || c.Relay.MaxConns > maxRelayMaxConns {
		return bad("relay.max_conns: %d is not between 1 and %d (0: the default, %d)", c.Relay.MaxConns, maxRelayMaxConns, DefaultRelayMaxConns)
	}
	if (c.Relay.TLSCert == "") != (c.Relay.TLSKey == "") {
		return bad("relay.tls_cert and relay.tls_key must be set together")
	}
	if n := c.Events.MaxCount; n != 0 && (n < minEventsMaxCount || n > maxEventsMaxCount) {
		return bad("events.max_count: %d is outside the allowed range %d to %d", n, minEventsMaxCount, maxEventsMaxCount)
	}
	if c.FD.Ceiling < 0 {
		return bad("fd.ceiling: %d is negative", c.FD.Ceiling)
	}
	if err := c.checkDurations(); err != nil {
		return err
	}
	if err := c.checkNotify(); err != nil {
		return err
	}
	s := c.Super
	if s.BackoffMax != 0 && s.BackoffMin != 0 && s.BackoffMax < s.BackoffMin {
		return bad("supervision.backoff_max (%s) is below backoff_min (%s)", s.BackoffMax.D(), s.BackoffMin.D())
	}
	if s.RefusedRetryMax != 0 && s.RefusedRetry != 0 && s.RefusedRetryMax < s.RefusedRetry {
		return bad("supervision.refused_retry_max (%s) is below refused_retry (%s)", s.RefusedRetryMax.D(), s.RefusedRetry.D())
	}
	if s.ReadBatch != nil {
		rt := c.Settings().ReadTimeout
		if b := s.ReadBatch.D(); b > device.MaxReadBatch(rt) {
			return bad("supervision.read_batch (%s) is above a quarter of read_timeout (%s): a camera read that seldom could be dropped as silent", b, rt)
		}
	}
	return nil
}

// ErrRelayOpen is returned (wrapped, one line) by New for a relay that
// would serve every camera off loopback to anyone.
var ErrRelayOpen = errors.New("the relay would serve every camera to anyone who can reach it")

// checkRelayExposure refuses a relay listening off loopback with no
// credentials, unless relay.public says that is meant.
func (c Config) checkRelayExposure() error {
	r := c.Relay
	if r.Listen == "off" || r.User != "" || r.Public || isLoopback(r.Listen) {
		return nil
	}
	return fmt.Errorf("%w: relay.listen %s is not a loopback address and relay.user is not set; set relay.user and relay.pass, or relay.public: true to serve without credentials",
		ErrRelayOpen, r.Listen)
}

// isLoopback reports whether the host of addr ("host:port") is loopback
// only: "localhost" or a loopback IP. An empty host or a wildcard is every
// interface; another name may resolve anywhere.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkHostPort(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", a)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", a)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// withDefaults fills every zero field with its default.
func (c Config) withDefaults() Config {
	c.Webhooks, c.MQTT = c.Webhooks.withDefaults(), c.MQTT.withDefaults()
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.API.Listen == "" {
		c.API.Listen = DefaultAPIListen
	}
	if c.API.MaxConns == 0 {
		c.API.MaxConns = DefaultAPIMaxConns
	}
	if c.Relay.Listen == "" {
		c.Relay.Listen = DefaultRelayListen
	}
	if c.Relay.MaxConns == 0 {
		c.Relay.MaxConns = DefaultRelayMaxConns
	}
	if c.Relay.DescribeWait == 0 {
		c.Relay.DescribeWait = Duration(DefaultDescribeWait)
	}
	if c.Relay.StartPointTimeout == 0 {
		c.Relay.StartPointTimeout = Duration(DefaultStartPoint)
	}
	if c.ShutdownDeadline == 0 {
		c.ShutdownDeadline = Duration(DefaultShutdownDeadline)
	}
	if c.FD.Interval == 0 {
		c.FD.Interval = Duration(DefaultFDInterval)
	}
	if c.Events.MaxCount == 0 {
		c.Events.MaxCount = store.DefaultEventsMaxCount
	}
	if c.Events.MaxAge == 0 {
		c.Events.MaxAge = Duration(store.DefaultEventsMaxAge)
	}
	return c
}

// Settings returns the supervision settings, defaults filled in.
func (c Config) Settings() device.Settings { return c.Super.raw().WithDefaults() }

// DefaultDataDir is where camd keeps its data when not told: /var/lib/camd
// for root on Linux; otherwise the per-user state dir
// ($XDG_STATE_HOME/camd or ~/.local/state/camd on Linux and other Unixes,
// ~/Library/Application Support/camd on macOS, %LocalAppData%\camd on
// Windows). The installed services pass --data-dir explicitly.
func DefaultDataDir() string {
	switch runtime.GOOS {
	case "windows":
		if d, err := os.UserCacheDir(); err == nil { // %LocalAppData%
			return filepath.Join(d, "camd")
		}
		return filepath.Join(os.TempDir(), "camd")
	case "darwin":
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, "Library", "Application Support", "camd")
		}
	default:
		if os.Geteuid() == 0 && runtime.GOOS == "linux" {
			return "/var/lib/camd"
		}
		if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "camd")
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "state", "camd")
		}
	}
	return filepath.Join(os.TempDir(), "camd")
}
