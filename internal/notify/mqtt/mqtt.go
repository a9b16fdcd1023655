// Package mqtt publishes camd's cameras and events to an MQTT broker, with
// Home Assistant discovery.
//
// Topics, under a prefix (default camd/<hostname>):
//
//	<prefix>/availability     "online" / "offline", retained; "offline" is
//	                          the last will, so the broker says it when camd
//	                          dies without a goodbye
//	<prefix>/<camera>/state   retained JSON: {"state":"RUNNING",
//	                          "connectivity":"ON","fps":25,"bitrate_kbps":1800}
//	<prefix>/events           every event's JSON (events.Event), QoS 1
//
// connectivity is OFF only for a camera that is down (CRASHED, REFUSED) or
// stopped: a short flap (RECONNECTING) stays ON, as camd's debounce says.
//
// With discovery on, Home Assistant finds one device per camd box and, per
// camera, a connectivity binary_sensor and fps and bitrate sensors, all
// reading the state topic and unavailable when camd is offline.
//
// One goroutine owns the connection: it connects, publishes availability,
// discovery and every camera's state, then events from its cursor in the
// event log (moved only once the broker has acknowledged them) and state
// changes; when the connection is lost it reconnects with backoff and
// publishes the retained topics again.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/notify"
)

// CameraState is what is published of one camera.
type CameraState struct {
	Name    string
	State   string  // device.State's name: RUNNING, CRASHED, ...
	FPS     float64 // video frames per second
	Bitrate float64 // bits per second
}

// States gives the cameras' current states (device.Manager, adapted).
type States interface {
	States() []CameraState
}

// StatesFunc adapts a function to States.
type StatesFunc func() []CameraState

// States calls f.
func (f StatesFunc) States() []CameraState { return f() }

// Defaults used where a Config field is zero.
const (
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultStateInterval   = 30 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultBackoffMin      = time.Second
	DefaultBackoffMax      = 5 * time.Minute
)

// settleDelay is how long after a batch of events the states are read
// again.
const settleDelay = time.Second

// cursorName is the publisher's cursor in the event log.
const cursorName = "mqtt:events"

// ErrConfig is returned (wrapped, one line) by New for a bad setting.
var ErrConfig = errors.New("bad mqtt setting")

// Config configures a Publisher.
type Config struct {
	// Broker is mqtt://HOST[:1883] or mqtts://HOST[:8883].
	Broker string
	// User and Password, if User is set, log in to the broker.
	User, Password string
	// CAFile, if set, is a PEM file of the CAs trusted for mqtts://
	// instead of the system's.
	CAFile string
	// TopicPrefix defaults to camd/<hostname>.
	TopicPrefix string
	// Discovery publishes Home Assistant discovery messages.
	Discovery bool
	// DiscoveryPrefix defaults to homeassistant.
	DiscoveryPrefix string
	// NodeID names this camd box in discovery topics and unique ids. It
	// defaults to the hostname.
	NodeID string
	// ClientID defaults to camd-<node id>.
	ClientID string
	// StateInterval is how often fps and bitrate are published. It
	// defaults to DefaultStateInterval.
	StateInterval time.Duration
	// Timeout bounds a connection attempt and each publish. It defaults
	// to DefaultTimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the delay between connection
	// attempts.
	BackoffMin, BackoffMax time.Duration
	// Log is the event history. Required.
	Log events.Log
	// States gives the cameras' states. Required.
	States States
	// Version is published in the discovery device.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Publisher keeps a broker informed. Start it, then Close it.
type Publisher struct {
	cfg    Config
	log    *slog.Logger
	tls    *tls.Config
	broker string // scheme://host:port
	label  string // broker URL without credentials, for logs
	topics topics

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	start   sync.Once
	started bool // set under start

	mu        sync.Mutex
	connected bool
	published uint64 // events published since start
}

type topics struct {
	prefix, availability, events string
}

func (t topics) state(camera string) string { return t.prefix + "/" + camera + "/state" }

var idChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// New checks cfg. It connects to nothing (Start does).
func New(cfg Config) (*Publisher, error) {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(f, a...)) }
	if cfg.Log == nil || cfg.States == nil {
		return nil, bad("no event log or camera states")
	}
	if err := CheckBroker(cfg.Broker); err != nil {
		return nil, bad("broker: %v", err)
	}
	u, _ := url.Parse(cfg.Broker)
	p := &Publisher{cfg: cfg, done: make(chan struct{})}
	port := u.Port()
	if port == "" {
		port = "1883"
		if u.Scheme == "mqtts" {
			port = "8883"
		}
	}
	p.broker = u.Scheme + "://" + hostPort(u.Hostname(), port)
	p.label = p.broker
	if u.Scheme == "mqtts" {
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, bad("ca_file: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, bad("ca_file: %s holds no PEM certificate", cfg.CAFile)
			}
			p.tls.RootCAs = pool
		}
	}
	host, _ := os.Hostname()
	if cfg.NodeID == "" {
		cfg.NodeID = host
	}
	cfg.NodeID = strings.Trim(idChars.ReplaceAllString(cfg.NodeID, "_"), "_")
	if cfg.NodeID == "" {
		cfg.NodeID = "camd"
	}
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "camd/" + cfg.NodeID
	}
	if err := CheckTopicPrefix(cfg.TopicPrefix); err != nil {
		return nil, bad("topic_prefix: %v", err)
	}
	cfg.TopicPrefix = strings.TrimSuffix(cfg.TopicPrefix, "/")
	if cfg.DiscoveryPrefix == "" {
		cfg.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "camd-" + cfg.NodeID
	}
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = DefaultStateInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p.cfg = cfg
	p.log = cfg.Logger.With("broker", p.label)
	p.topics = topics{prefix: cfg.TopicPrefix, availability: cfg.TopicPrefix + "/availability", events: cfg.TopicPrefix + "/events"}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// CheckBroker checks a broker URL: mqtt:// or mqtts://, a host, an
// optional port, no credentials (they are settings of their own).
func CheckBroker(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Hostname() == "" || u.Path != "" && u.Path != "/" {
		return errors.New("want mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
	}
	if u.User != nil {
		return errors.New("give the user and password as settings of their own, not in the URL")
	}
	return nil
}

// CheckTopicPrefix checks a topic prefix ("" is the default).
func CheckTopicPrefix(p string) error {
	if strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "/") || p != "" && strings.TrimSuffix(p, "/") == "" {
		return fmt.Errorf("%q: no +, # or leading /", p)
	}
	return nil
}

func hostPort(h, port string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + port
	}
	return h + ":" + port
}

// TopicPrefix is the prefix in use.
func (p *Publisher) TopicPrefix() string { return p.cfg.TopicPrefix }

// NodeID is the node id in use.
func (p *Publisher) NodeID() string { return p.cfg.NodeID }

// Connected reports whether the broker connection is up.
func (p *Publisher) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

func (p *Publisher) setConnected(b bool) {
	p.mu.Lock()
	p.connected = b
	p.mu.Unlock()
}

// Start starts the publisher's goroutine. It never blocks.
func (p *Publisher) Start() {
	p.start.Do(func() {
		p.started = true
		go p.run()
	})
}

// Close says "offline" to the broker if it is connected, disconnects and
// waits for the goroutine, within about Timeout.
func (p *Publisher) Close() error {
	p.cancel()
	p.start.Do(func() {}) // no Start after Close
	if p.started {
		<-p.done
	}
	return nil
}

// run connects and reconnects until Close.
func (p *Publisher) run() {
	defer close(p.done)
	bo := notify.Backoff{Min: p.cfg.BackoffMin, Max: p.cfg.BackoffMax}
	var cur uint64
	var logged error
	for {
		c, err := notify.StartCursor(p.cfg.Log, cursorName)
		if err == nil {
			cur = c
			break
		}
		if logged == nil {
			p.log.Error("mqtt: reading its cursor in the event log failed; retrying", "err", err)
		}
		logged = err
		if !notify.Sleep(p.ctx, bo.Next()) {
			return
		}
	}
	bo.Reset()
	var down time.Time // when the broker became unreachable; zero while fine
	first := true
	for {
		c, lost, err := p.connect()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if down.IsZero() {
				down = time.Now()
				p.log.Warn("mqtt: cannot connect to the broker; retrying with backoff (logged again when connected)", "err", err)
			}
			if !notify.Sleep(p.ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		switch {
		case first:
			p.log.Info("mqtt: connected", "topic_prefix", p.cfg.TopicPrefix, "discovery", p.cfg.Discovery)
		case !down.IsZero():
			p.log.Info("mqtt: connected again", "down_for", time.Since(down).Round(time.Second).String())
		}
		first = false
		p.setConnected(true)
		err = p.session(c, lost, &cur)
		p.setConnected(false)
		if p.ctx.Err() != nil {
			p.goodbye(c)
			return
		}
		c.Disconnect(0)
		down = time.Now()
		p.log.Warn("mqtt: connection to the broker lost; reconnecting with backoff (logged again when connected)", "err", err)
		if !notify.Sleep(p.ctx, bo.Next()) {
			return
		}
	}
}

// connect makes one connection attempt, bounded by Timeout and by Close.
func (p *Publisher) connect() (paho.Client, <-chan error, error) {
	lost := make(chan error, 1)
	o := paho.NewClientOptions().
		AddBroker(p.broker).
		SetClientID(p.cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(p.cfg.Timeout).
		SetWriteTimeout(p.cfg.Timeout).
		SetKeepAlive(30*time.Second).
		SetPingTimeout(p.cfg.Timeout).
		SetOrderMatters(false).
		SetWill(p.topics.availability, "offline", 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if p.cfg.User != "" {
		o.SetUsername(p.cfg.User).SetPassword(p.cfg.Password)
	}
	if p.tls != nil {
		o.SetTLSConfig(p.tls)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-p.ctx.Done():
		c.Disconnect(0)
		return nil, nil, p.ctx.Err()
	}
	if err := tok.Error(); err != nil {
		c.Disconnect(0)
		return nil, nil, err
	}
	return c, lost, nil
}

// session publishes until the connection is lost (its error) or Close
// (nil).
func (p *Publisher) session(c paho.Client, lost <-chan error, cur *uint64) error {
	if err := p.publish(c, p.topics.availability, true, []byte("online")); err != nil {
		return err
	}
	st := newStateSet()
	if err := p.refresh(c, st, true); err != nil {
		return err
	}
	tick := time.NewTicker(p.cfg.StateInterval)
	defer tick.Stop()
	// An event may be appended just before the camera's state changes
	// (up is emitted as the first frame arrives): states are read again
	// a little after each batch of events.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		changed := p.cfg.Log.Changed()
		evs, err := p.cfg.Log.After(*cur, events.Filter{}, 100)
		if err != nil {
			p.log.Warn("mqtt: reading the event log failed", "err", err)
		}
		if first := firstID(evs); first > *cur+1 && *cur > 0 {
			p.log.Warn("mqtt: the event history dropped events before they were published", "lost", first-*cur-1)
		}
		for _, e := range evs {
			b, _ := json.Marshal(e)
			if err := p.publish(c, p.topics.events, false, b); err != nil {
				return err
			}
			*cur = e.ID
			p.mu.Lock()
			p.published++
			p.mu.Unlock()
		}
		if len(evs) > 0 {
			if err := p.cfg.Log.SetCursor(cursorName, *cur); err != nil {
				p.log.Warn("mqtt: saving its cursor failed; events may be published again after a restart", "err", err)
			}
			if err := p.refresh(c, st, false); err != nil {
				return err
			}
			settle.Reset(settleDelay)
			if len(evs) == 100 {
				continue
			}
		}
		select {
		case <-changed:
		case <-tick.C:
			if err := p.refresh(c, st, false); err != nil {
				return err
			}
		case <-settle.C:
			if err := p.refresh(c, st, false); err != nil {
				return err
			}
		case err := <-lost:
			return err
		case <-p.ctx.Done():
			return nil
		}
	}
}

func firstID(evs []events.Event) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[0].ID
}

// publish sends one QoS 1 message and waits for the broker's
// acknowledgement, bounded by Timeout and Close.
func (p *Publisher) publish(c paho.Client, topic string, retained bool, payload []byte) error {
	tok := c.Publish(topic, 1, retained, payload)
	t := time.NewTimer(p.cfg.Timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("publish to %s: no acknowledgement within %s", topic, p.cfg.Timeout)
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// goodbye publishes "offline" (the will is only for an unclean end) and
// disconnects, within a second.
func (p *Publisher) goodbye(c paho.Client) {
	tok := c.Publish(p.topics.availability, 1, true, []byte("offline"))
	tok.WaitTimeout(time.Second)
	c.Disconnect(250)
}

// stateSet is what was last published, per camera.
type stateSet struct {
	payload   map[string]string
	discovery map[string]bool
}

func newStateSet() *stateSet {
	return &stateSet{payload: map[string]string{}, discovery: map[string]bool{}}
}

// statePayload is the JSON of <prefix>/<camera>/state.
type statePayload struct {
	State        string  `json:"state"`
	Connectivity string  `json:"connectivity"`
	FPS          float64 `json:"fps"`
	BitrateKbps  float64 `json:"bitrate_kbps"`
}

// Connectivity is the binary sensor's payload for a state: OFF for a
// camera that is down or stopped, ON otherwise.
func Connectivity(state string) string {
	switch state {
	case "CRASHED", "REFUSED", "STOPPED":
		return "OFF"
	}
	return "ON"
}

// refresh publishes the states (and discovery) that changed; all with
// force. Cameras that are gone get their retained topics cleared.
func (p *Publisher) refresh(c paho.Client, st *stateSet, force bool) error {
	now := map[string]bool{}
	for _, cs := range p.cfg.States.States() {
		now[cs.Name] = true
		if p.cfg.Discovery && (force || !st.discovery[cs.Name]) {
			for _, m := range p.discoveryMessages(cs.Name) {
				if err := p.publish(c, m.topic, true, m.payload); err != nil {
					return err
				}
			}
			st.discovery[cs.Name] = true
		}
		b, _ := json.Marshal(statePayload{
			State:        cs.State,
			Connectivity: Connectivity(cs.State),
			FPS:          round(cs.FPS, 2),
			BitrateKbps:  round(cs.Bitrate/1000, 1),
		})
		if !force && st.payload[cs.Name] == string(b) {
			continue
		}
		if err := p.publish(c, p.topics.state(cs.Name), true, b); err != nil {
			return err
		}
		st.payload[cs.Name] = string(b)
	}
	for name := range st.payload {
		if now[name] {
			continue
		}
		if err := p.publish(c, p.topics.state(name), true, nil); err != nil {
			return err
		}
		if st.discovery[name] {
			for _, m := range p.discoveryMessages(name) {
				if err := p.publish(c, m.topic, true, nil); err != nil {
					return err
				}
			}
		}
		delete(st.payload, name)
		delete(st.discovery, name)
	}
	return nil
}

func round(x float64, digits int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	f := math.Pow(10, float64(digits))
	return math.Round(x*f) / f
}

type message struct {
	topic   string
	payload []byte
}

// discoveryMessages are a camera's Home Assistant discovery configs.
func (p *Publisher) discoveryMessages(camera string) []message {
	node := p.cfg.NodeID
	obj := strings.Trim(idChars.ReplaceAllString(camera, "_"), "_")
	device := map[string]any{
		"identifiers":  []string{"camd_" + node},
		"name":         "camd " + node,
		"manufacturer": "camd",
		"model":        "camd camera daemon",
		"sw_version":   p.cfg.Version,
	}
	base := func(key, name string) map[string]any {
		return map[string]any{
			"name":                  camera + " " + name,
			"unique_id":             "camd_" + node + "_" + obj + "_" + key,
			"object_id":             "camd_" + obj + "_" + key,
			"state_topic":           p.topics.state(camera),
			"availability_topic":    p.topics.availability,
			"payload_available":     "online",
			"payload_not_available": "offline",
			"device":                device,
			"origin":                map[string]any{"name": "camd", "sw_version": p.cfg.Version},
		}
	}
	conn := base("connectivity", "connectivity")
	conn["device_class"] = "connectivity"
	conn["value_template"] = "{{ value_json.connectivity }}"
	conn["payload_on"] = "ON"
	conn["payload_off"] = "OFF"
	fps := base("fps", "fps")
	fps["value_template"] = "{{ value_json.fps }}"
	fps["unit_of_measurement"] = "fps"
	fps["state_class"] = "measurement"
	br := base("bitrate", "bitrate")
	br["value_template"] = "{{ value_json.bitrate_kbps }}"
	br["unit_of_measurement"] = "kbit/s"
	br["device_class"] = "data_rate"
	br["state_class"] = "measurement"
	dp := p.cfg.DiscoveryPrefix
	mk := func(component, key string, v map[string]any) message {
		b, _ := json.Marshal(v)
		return message{topic: dp + "/" + component + "/" + node + "/" + obj + "_" + key + "/config", payload: b}
	}
	return []message{
		mk("binary_sensor", "connectivity", conn),
		mk("sensor", "fps", fps),
		mk("sensor", "bitrate", br),
	}
}
