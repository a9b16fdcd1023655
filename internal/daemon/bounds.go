package daemon

import (
	"fmt"
	"strings"
	"time"
)

// durationBound is the range an operator may set one duration setting to.
// An unset (0s) setting takes its default, which is inside the range.
type durationBound struct {
	key      string // as written in the config file
	min, max time.Duration
	get      func(Config) Duration
}

// MinReadBatch is the smallest read_batch other than 0s (off): a shorter
// one would wake every camera's reader hundreds of times a second.
const MinReadBatch = 10 * time.Millisecond

// durationBounds are the allowed ranges, documented next to each setting
// in packaging/camd.yaml. The minimums keep camd from spinning (reconnect,
// restart or count descriptors in a tight loop, or log as fast as it can)
// and the maximums keep detection and recovery from being turned off by a
// typo; each is far from the defaults in both directions.
var durationBounds = []durationBound{
	{"supervision.stall_timeout", time.Second, time.Hour, func(c Config) Duration { return c.Super.StallTimeout }},
	{"supervision.flap_debounce", time.Second, time.Hour, func(c Config) Duration { return c.Super.FlapDebounce }},
	{"supervision.crashed_after", time.Second, time.Hour, func(c Config) Duration { return c.Super.CrashedAfter }},
	{"supervision.force_restart_after", time.Second, time.Hour, func(c Config) Duration { return c.Super.ForceRestartAfter }},
	{"supervision.backoff_min", 100 * time.Millisecond, time.Minute, func(c Config) Duration { return c.Super.BackoffMin }},
	{"supervision.backoff_max", time.Second, time.Hour, func(c Config) Duration { return c.Super.BackoffMax }},
	{"supervision.refused_retry", 10 * time.Second, 24 * time.Hour, func(c Config) Duration { return c.Super.RefusedRetry }},
	{"supervision.refused_retry_max", 10 * time.Second, 24 * time.Hour, func(c Config) Duration { return c.Super.RefusedRetryMax }},
	{"supervision.read_timeout", time.Second, 5 * time.Minute, func(c Config) Duration { return c.Super.ReadTimeout }},
	{"relay.start_point_timeout", time.Second, 10 * time.Minute, func(c Config) Duration { return c.Relay.StartPointTimeout }},
	{"relay.describe_wait", time.Second, time.Minute, func(c Config) Duration { return c.Relay.DescribeWait }},
	{"fd.interval", 100 * time.Millisecond, time.Hour, func(c Config) Duration { return c.FD.Interval }},
	{"events.max_age", time.Hour, 8760 * time.Hour, func(c Config) Duration { return c.Events.MaxAge }},
	{"shutdown_deadline", time.Second, 10 * time.Minute, func(c Config) Duration { return c.ShutdownDeadline }},
	{"webhooks.timeout", time.Second, 5 * time.Minute, func(c Config) Duration { return c.Webhooks.Timeout }},
	{"webhooks.backoff_max", time.Second, 24 * time.Hour, func(c Config) Duration { return c.Webhooks.BackoffMax }},
	{"mqtt.state_interval", time.Second, time.Hour, func(c Config) Duration { return c.MQTT.StateInterval }},
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
	if rb := c.Super.ReadBatch; rb != nil && *rb != 0 && rb.D() < MinReadBatch {
		return fmt.Errorf("%w: supervision.read_batch: %s is below the minimum %s (0s turns batching off)", ErrConfig, fmtDuration(rb.D()), fmtDuration(MinReadBatch))
	}
	return nil
}

// fmtDuration writes d as an operator would: "1h", "5m", "90s", "100ms",
// not "1h0m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
