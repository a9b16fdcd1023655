package daemon

import (
	"fmt"
	"time"

	"github.com/camd/camd/device"
)

// durationBound is the range an operator may set one duration setting to.
// An unset (0s) setting takes its default, which is inside the range.
type durationBound struct {
	key      string // as written in the config file
	min, max time.Duration
	get      func(Config) Duration
}

// durationBounds are the allowed ranges, documented next to each setting
// in packaging/camd.yaml: the supervision section's come from
// device.SettingsTable, the others are declared here. The minimums keep
// camd from spinning (reconnect, restart or count descriptors in a tight
// loop, or log as fast as it can) and the maximums keep detection and
// recovery from being turned off by a typo; each is far from the defaults
// in both directions.
var durationBounds = append(supervisionBounds(), []durationBound{
	{"relay.start_point_timeout", time.Second, 10 * time.Minute, func(c Config) Duration { return c.Relay.StartPointTimeout }},
	{"relay.describe_wait", time.Second, time.Minute, func(c Config) Duration { return c.Relay.DescribeWait }},
	{"fd.interval", 100 * time.Millisecond, time.Hour, func(c Config) Duration { return c.FD.Interval }},
	{"events.max_age", time.Hour, 8760 * time.Hour, func(c Config) Duration { return c.Events.MaxAge }},
	{"shutdown_deadline", time.Second, 10 * time.Minute, func(c Config) Duration { return c.ShutdownDeadline }},
	{"webhooks.timeout", time.Second, 5 * time.Minute, func(c Config) Duration { return c.Webhooks.Timeout }},
	{"webhooks.backoff_max", time.Second, 24 * time.Hour, func(c Config) Duration { return c.Webhooks.BackoffMax }},
	{"mqtt.state_interval", time.Second, time.Hour, func(c Config) Duration { return c.MQTT.StateInterval }},
}...)

// supervisionBounds are the ranges of device.SettingsTable with a fixed
// upper bound (read_batch's depends on read_timeout; Validate checks it).
func supervisionBounds() []durationBound {
	var bs []durationBound
	for _, st := range device.SettingsTable() {
		if st.Max == 0 {
			continue
		}
		bs = append(bs, durationBound{"supervision." + st.Key, st.Min, st.Max,
			func(c Config) Duration { return Duration(max(st.Get(c.Super.raw()), 0)) }})
	}
	return bs
}

// checkDurations refuses a duration setting outside its range, naming the
// setting and the range. read_batch's upper bound (a quarter of
// read_timeout) is checked by Validate.
func (c Config) checkDurations() error {
	for _, b := range durationBounds {
		if d := b.get(c).D(); d != 0 && (d < b.min || d > b.max) {
			return fmt.Errorf("%w: %s: %s is outside the allowed range %s to %s", ErrConfig, b.key, fmtDuration(d), fmtDuration(b.min), fmtDuration(b.max))
		}
	}
	if rb := c.Super.ReadBatch; rb != nil && *rb != 0 && rb.D() < device.MinReadBatch {
		return fmt.Errorf("%w: supervision.read_batch: %s is below the minimum %s (0s turns batching off)", ErrConfig, fmtDuration(rb.D()), fmtDuration(device.MinReadBatch))
	}
	return nil
}

// fmtDuration writes d as an operator would: "1h", not "1h0m0s".
func fmtDuration(d time.Duration) string { return device.FormatDuration(d) }
