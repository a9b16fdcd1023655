package testutil

import (
	"fmt"
	"time"
)

// fastThresholds are the supervision thresholds tests run with, by their
// keys in device.SettingsTable: short, so that a stall, a debounce or a
// backoff takes seconds, not minutes.
var fastThresholds = map[string]time.Duration{
	"stall_timeout":       2 * time.Second,
	"flap_debounce":       4 * time.Second,
	"crashed_after":       4 * time.Second,
	"force_restart_after": 8 * time.Second,
	"backoff_min":         100 * time.Millisecond,
	"backoff_max":         time.Second,
	"read_timeout":        5 * time.Second,
}

// keySetter is what *device.Settings does with a setting's key.
type keySetter interface {
	SetByKey(key string, d time.Duration) bool
}

// FastSettings returns device.Settings (T) with the tests' short
// thresholds; the other fields keep their defaults. It is generic because
// device's own tests import testutil, which therefore cannot import device.
// It panics if T does not know one of the keys, so that a renamed setting
// fails every test that uses it rather than leaving a default in place.
func FastSettings[T any, P interface {
	*T
	keySetter
}]() T {
	var s T
	for key, d := range fastThresholds {
		if !P(&s).SetByKey(key, d) {
			panic(fmt.Sprintf("testutil.FastSettings: %T has no setting %s", s, key))
		}
	}
	return s
}
