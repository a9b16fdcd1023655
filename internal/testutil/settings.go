package testutil

import (
	"fmt"
	"reflect"
	"time"
)

// fastThresholds are the supervision thresholds tests run with: short,
// so that a stall, a debounce or a backoff takes seconds, not minutes.
var fastThresholds = map[string]time.Duration{
	"StallTimeout":      2 * time.Second,
	"FlapDebounce":      4 * time.Second,
	"CrashedAfter":      4 * time.Second,
	"ForceRestartAfter": 8 * time.Second,
	"BackoffMin":        100 * time.Millisecond,
	"BackoffMax":        time.Second,
	"ReadTimeout":       5 * time.Second,
}

// FastSettings returns device.Settings (T) with the tests' short
// thresholds; the other fields keep their defaults. It is generic because
// device's own tests import testutil, which therefore cannot import device.
// It panics if T lacks one of the fields, so that a renamed field fails
// every test that uses it rather than leaving a default in place.
func FastSettings[T any]() T {
	var s T
	v := reflect.ValueOf(&s).Elem()
	for name, d := range fastThresholds {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Type() != reflect.TypeFor[time.Duration]() {
			panic(fmt.Sprintf("testutil.FastSettings: %s has no time.Duration field %s", v.Type(), name))
		}
		f.SetInt(int64(d))
	}
	return s
}
