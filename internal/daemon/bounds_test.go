package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The two cases: stall_timeout 1ns (camd spun a core and wrote the
// log as fast as it could) and 2000000h (stall detection off) are refused
// at load, with the allowed range in the one-line message, and so are they
// by New and by Reload.
func TestStallTimeoutOutOfRange(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"1ns", "2000000h"} {
		p := filepath.Join(dir, "camd.yaml")
		if err := os.WriteFile(p, []byte("supervision:\n  stall_timeout: "+v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("%s: got %v, want ErrConfig", v, err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "supervision.stall_timeout: "+v+" is outside the allowed range 1s to 1h") {
			t.Fatalf("%s: message %q does not name the setting, the value and the range on one line", v, msg)
		}
		t.Logf("%s: %s", v, msg)

		d, _ := time.ParseDuration(v)
		c := Config{Super: SupervisionConfig{StallTimeout: Duration(d)}}
		if _, err := New(context.Background(), Options{Config: c, Stderr: &strings.Builder{}}); !errors.Is(err, ErrConfig) {
			t.Fatalf("%s: New: %v, want ErrConfig", v, err)
		}
	}
}

// Every bound: its ends are accepted, a nanosecond past either is refused
// with the setting and the range named.
func TestDurationBounds(t *testing.T) {
	for _, b := range durationBounds {
		for _, tc := range []struct {
			d  time.Duration
			ok bool
		}{{b.min, true}, {b.max, true}, {b.min - 1, false}, {b.max + 1, false}} {
			c := withDuration(t, b.key, tc.d)
			err := c.Validate()
			if tc.ok {
				// backoff_max's minimum is above backoff_min's default.
				if err != nil && !strings.Contains(err.Error(), "below backoff_min") {
					t.Errorf("%s: %s refused: %v", b.key, tc.d, err)
				}
				continue
			}
			want := b.key + ": " + fmtDuration(tc.d) + " is outside the allowed range " + fmtDuration(b.min) + " to " + fmtDuration(b.max)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %s: got %v, want %q", b.key, tc.d, err, want)
			}
		}
	}
	rb := Duration(time.Millisecond)
	if err := (Config{Super: SupervisionConfig{ReadBatch: &rb}}).Validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "read_batch: 1ms is below the minimum 10ms") {
		t.Errorf("read_batch 1ms: %v", err)
	}
	for _, ok := range []Duration{0, Duration(MinReadBatch)} {
		if err := (Config{Super: SupervisionConfig{ReadBatch: &ok}}).Validate(); err != nil {
			t.Errorf("read_batch %s: %v", ok.D(), err)
		}
	}
}

// withDuration returns a Config with the setting named key (as in the
// file) set to d, found by its yaml tags.
func withDuration(t *testing.T, key string, d time.Duration) Config {
	t.Helper()
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for _, part := range strings.Split(key, ".") {
		found := false
		for i := 0; i < v.NumField(); i++ {
			if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			t.Fatalf("no setting %s", key)
		}
	}
	v.Set(reflect.ValueOf(Duration(d)))
	return c
}

// Every duration setting of Config has a bound (a new one without a
// bound fails here), each bound holds its default, and packaging/camd.yaml
// gives each range in the comment just above the setting.
func TestEveryDurationIsBoundedAndDocumented(t *testing.T) {
	bounded := map[string]durationBound{}
	for _, b := range durationBounds {
		bounded[b.key] = b
	}
	durT := reflect.TypeOf(Duration(0))
	var walk func(t reflect.Type, prefix string) []string
	walk = func(t reflect.Type, prefix string) []string {
		var keys []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			k := strings.Split(f.Tag.Get("yaml"), ",")[0]
			switch {
			case k == "":
			case f.Type == durT:
				keys = append(keys, prefix+k)
			case f.Type.Kind() == reflect.Struct:
				keys = append(keys, walk(f.Type, prefix+k+".")...)
			}
		}
		return keys
	}
	keys := walk(reflect.TypeOf(Config{}), "")
	if len(keys) < 10 {
		t.Fatalf("found only %v", keys)
	}
	def := Config{}.withDefaults()
	set := def.Settings()
	defaults := map[string]time.Duration{
		"supervision.stall_timeout": set.StallTimeout, "supervision.flap_debounce": set.FlapDebounce,
		"supervision.crashed_after": set.CrashedAfter, "supervision.force_restart_after": set.ForceRestartAfter,
		"supervision.backoff_min": set.BackoffMin, "supervision.backoff_max": set.BackoffMax,
		"supervision.read_timeout": set.ReadTimeout, "supervision.refused_retry": set.RefusedRetry,
		"supervision.refused_retry_max": set.RefusedRetryMax,
	}
	yaml, err := os.ReadFile(filepath.Join("..", "..", "packaging", "camd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		b, ok := bounded[k]
		if !ok {
			t.Errorf("duration setting %s has no bound in durationBounds", k)
			continue
		}
		d, ok := defaults[k]
		if !ok {
			d = withDuration(t, k, 0).withDefaults().durationOf(t, k)
		}
		if d < b.min || d > b.max {
			t.Errorf("%s: default %s is outside its own range %s to %s", k, d, b.min, b.max)
		}
		want := "Range: " + fmtDuration(b.min) + " to " + fmtDuration(b.max) + "."
		if c := commentAbove(string(yaml), k); !strings.Contains(c, want) {
			t.Errorf("packaging/camd.yaml: the comment above %s does not say %q:\n%s", k, want, c)
		}
	}
	if c := commentAbove(string(yaml), "supervision.read_batch"); !strings.Contains(c, "Range: 0s, or "+fmtDuration(MinReadBatch)+" to a quarter") {
		t.Errorf("packaging/camd.yaml: read_batch's range is not documented:\n%s", c)
	}
}

func (c Config) durationOf(t *testing.T, key string) time.Duration {
	t.Helper()
	for _, b := range durationBounds {
		if b.key == key {
			return b.get(c).D()
		}
	}
	t.Fatalf("no bound %s", key)
	return 0
}

// commentAbove returns the comment lines just above the line of key
// ("section.name" or "name") in the YAML text of packaging/camd.yaml.
func commentAbove(text, key string) string {
	section, name, nested := strings.Cut(key, ".")
	if !nested {
		section, name = "", key
	}
	lines := strings.Split(text, "\n")
	in := section == ""
	for i, l := range lines {
		if section != "" && strings.HasPrefix(l, section+":") {
			in = true
			continue
		}
		want := name + ":"
		if nested {
			want = "  " + want
		}
		if !in || !strings.HasPrefix(l, want) {
			continue
		}
		var c []string
		for j := i - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "#"); j-- {
			c = append([]string{strings.TrimSpace(lines[j])}, c...)
		}
		return strings.Join(c, " ")
	}
	return ""
}
