package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/notify"
	"github.com/camd/camd/internal/notify/mqtt"
	"github.com/camd/camd/internal/notify/webhook"
)

// WebhooksConfig is the webhooks section (internal/notify/webhook).
type WebhooksConfig struct {
	// Hooks are the endpoints told of events. It defaults to none.
	Hooks []WebhookConfig `yaml:"hooks"`
	// Timeout bounds each delivery attempt. It defaults to 10 seconds.
	Timeout Duration `yaml:"timeout"`
	// BackoffMax caps the delay between attempts, which starts at 1
	// second and doubles. It defaults to 5 minutes.
	BackoffMax Duration `yaml:"backoff_max"`
}

// WebhookConfig is one endpoint.
type WebhookConfig struct {
	// URL is http:// or https://. Required.
	URL string `yaml:"url"`
	// Kinds, if set, are the only event kinds sent (e.g. down, up).
	Kinds []string `yaml:"kinds"`
	// Cameras, if set, are the only cameras whose events are sent.
	Cameras []string `yaml:"cameras"`
	// Secret, if set, signs each request (X-Camd-Signature).
	Secret string `yaml:"secret"`
}

// MQTTConfig is the MQTT section (internal/notify/mqtt).
type MQTTConfig struct {
	// Broker is mqtt://HOST[:PORT] or mqtts://HOST[:PORT]. It defaults to
	// "" (MQTT off).
	Broker string `yaml:"broker"`
	// User and Pass log in to the broker when User is set.
	User string `yaml:"user"`
	Pass string `yaml:"pass"`
	// CAFile is a PEM file of the CAs trusted for mqtts://. It defaults
	// to "" (the system's).
	CAFile string `yaml:"ca_file"`
	// TopicPrefix defaults to "" meaning camd/<hostname>.
	TopicPrefix string `yaml:"topic_prefix"`
	// Discovery publishes Home Assistant discovery. It defaults to true.
	Discovery *bool `yaml:"discovery"`
	// DiscoveryPrefix defaults to homeassistant.
	DiscoveryPrefix string `yaml:"discovery_prefix"`
	// StateInterval is how often fps and bitrate are published. It
	// defaults to 30 seconds.
	StateInterval Duration `yaml:"state_interval"`
}

// notifiers are the Daemon's webhooks and MQTT publisher.
type notifiers struct {
	webhooks *webhook.Notifier // nil without hooks
	mqtt     *mqtt.Publisher   // nil without a broker
}

// Defaults of the webhooks and mqtt sections.
const (
	DefaultWebhookTimeout    = webhook.DefaultTimeout
	DefaultWebhookBackoffMax = webhook.DefaultBackoffMax
	DefaultMQTTStateInterval = mqtt.DefaultStateInterval
)

func (w WebhooksConfig) withDefaults() WebhooksConfig {
	if w.Timeout == 0 {
		w.Timeout = Duration(DefaultWebhookTimeout)
	}
	if w.BackoffMax == 0 {
		w.BackoffMax = Duration(DefaultWebhookBackoffMax)
	}
	return w
}

func (m MQTTConfig) withDefaults() MQTTConfig {
	if m.Discovery == nil {
		on := true
		m.Discovery = &on
	}
	if m.DiscoveryPrefix == "" {
		m.DiscoveryPrefix = mqtt.DefaultDiscoveryPrefix
	}
	if m.StateInterval == 0 {
		m.StateInterval = Duration(DefaultMQTTStateInterval)
	}
	return m
}

// checkNotify checks the webhooks and mqtt sections; the messages name the
// setting, never a secret.
func (c Config) checkNotify() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	seen := map[string]bool{}
	for i, h := range c.Webhooks.Hooks {
		key := fmt.Sprintf("webhooks.hooks[%d]", i)
		label, err := webhook.CheckURL(h.URL)
		if err != nil {
			return bad("%s.%v", key, err)
		}
		if seen[h.URL] {
			return bad("%s.url: %s is listed twice", key, label)
		}
		seen[h.URL] = true
		for _, k := range h.Kinds {
			if !slices.Contains(notify.Kinds, events.Kind(k)) {
				return bad("%s.kinds: %q is not an event kind (%v)", key, k, notify.Kinds)
			}
		}
	}
	m := c.MQTT
	if m.Broker == "" {
		if m.User != "" || m.Pass != "" || m.CAFile != "" || m.TopicPrefix != "" {
			return bad("mqtt: user, pass, ca_file and topic_prefix need mqtt.broker")
		}
		return nil
	}
	if err := mqtt.CheckBroker(m.Broker); err != nil {
		return bad("mqtt.broker: %v", err)
	}
	if err := mqtt.CheckTopicPrefix(m.TopicPrefix); err != nil {
		return bad("mqtt.topic_prefix: %v", err)
	}
	if m.Pass != "" && m.User == "" {
		return bad("mqtt.pass is set without mqtt.user")
	}
	return nil
}

// newNotifiers makes the configured webhooks and MQTT publisher over the
// event history; they start with startNotifiers.
func (d *Daemon) newNotifiers(log events.Log, version string) error {
	cfg := d.cfg
	if len(cfg.Webhooks.Hooks) > 0 || cfg.MQTT.Broker != "" {
		if log == nil {
			return fmt.Errorf("%w: webhooks and mqtt need the event history, which this store does not keep", ErrConfig)
		}
	}
	if len(cfg.Webhooks.Hooks) > 0 {
		var hooks []webhook.Hook
		for _, h := range cfg.Webhooks.Hooks {
			wh := webhook.Hook{URL: h.URL, Cameras: h.Cameras, Secret: h.Secret}
			for _, k := range h.Kinds {
				wh.Kinds = append(wh.Kinds, events.Kind(k))
			}
			hooks = append(hooks, wh)
		}
		n, err := webhook.New(webhook.Config{Hooks: hooks, Log: log, Timeout: cfg.Webhooks.Timeout.D(),
			BackoffMax: cfg.Webhooks.BackoffMax.D(), Version: version, Logger: d.log})
		if err != nil {
			return err
		}
		d.webhooks = n
	}
	if m := cfg.MQTT; m.Broker != "" {
		p, err := mqtt.New(mqtt.Config{Broker: m.Broker, User: m.User, Password: m.Pass, CAFile: m.CAFile,
			TopicPrefix: m.TopicPrefix, Discovery: *m.Discovery, DiscoveryPrefix: m.DiscoveryPrefix,
			StateInterval: m.StateInterval.D(), Log: log, States: managerStates(d.m), Version: version, Logger: d.log})
		if err != nil {
			return err
		}
		d.mqtt = p
	}
	return nil
}

// managerStates gives the MQTT publisher the cameras' live states.
func managerStates(m *device.Manager) mqtt.States {
	return mqtt.StatesFunc(func() []mqtt.CameraState {
		var out []mqtt.CameraState
		for _, v := range m.List() {
			out = append(out, mqtt.CameraState{Name: v.Name, State: v.State.String(), FPS: v.FPS, Bitrate: v.BitrateBPS})
		}
		return out
	})
}

// startNotifiers starts delivery in the background; it never blocks.
func (d *Daemon) startNotifiers() {
	if d.webhooks != nil {
		d.webhooks.Start()
	}
	if d.mqtt != nil {
		d.mqtt.Start()
	}
}

// closeNotifiers stops delivery (requests in flight are cancelled; what
// was not delivered goes after the next start). It runs before the store
// closes.
func (d *Daemon) closeNotifiers() {
	t0 := time.Now()
	if d.webhooks != nil {
		_ = d.webhooks.Close()
	}
	if d.mqtt != nil {
		_ = d.mqtt.Close()
	}
	if d.webhooks != nil || d.mqtt != nil {
		d.log.Debug("notifiers stopped", "took", time.Since(t0).Round(time.Millisecond))
	}
}

// notifyCollectors are the notifiers' metrics.
func (d *Daemon) notifyCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	if d.webhooks != nil {
		cs = append(cs, d.webhooks.Collector())
	}
	if d.mqtt != nil {
		cs = append(cs, d.mqtt.Collector())
	}
	return cs
}

// eventLog is the store as the event history, nil for a store that does
// not keep one.
func (d *Daemon) eventLog() events.Log {
	if l, ok := any(d.st).(events.Log); ok {
		return l
	}
	return nil
}

// notifyChanges names the notifier sections that differ (they take effect
// at the next restart).
func notifyChanges(prev, next Config) []string {
	var out []string
	if !reflect.DeepEqual(prev.Webhooks, next.Webhooks) {
		out = append(out, "webhooks")
	}
	if !reflect.DeepEqual(prev.MQTT, next.MQTT) {
		out = append(out, "mqtt")
	}
	return out
}
