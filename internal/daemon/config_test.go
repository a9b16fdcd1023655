package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
)

// The shipped config documents every setting at its default: loading it
// must give exactly what no config gives.
func TestShippedConfigIsTheDefaults(t *testing.T) {
	c, err := LoadConfig(filepath.Join("..", "..", "packaging", "camd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, want := c.withDefaults(), Config{}.withDefaults()
	if len(got.Relay.Cameras) == 0 {
		got.Relay.Cameras = nil
	}
	if got.Settings() != want.Settings() {
		t.Fatalf("settings %+v, want %+v", got.Settings(), want.Settings())
	}
	got.Super = want.Super // compared through Settings, which fills defaults
	got.source = ""        // where it was read from
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("packaging/camd.yaml differs from the defaults:\n got %+v\nwant %+v", got, want)
	}
	if got.Settings() != device.DefaultSettings() {
		t.Fatalf("settings %+v, want %+v", got.Settings(), device.DefaultSettings())
	}
	// Every key of the struct appears in the file (commented or not).
	b, _ := os.ReadFile(filepath.Join("..", "..", "packaging", "camd.yaml"))
	for _, key := range yamlKeys(reflect.TypeOf(Config{})) {
		if !strings.Contains(string(b), key+":") {
			t.Errorf("packaging/camd.yaml does not document %q", key)
		}
	}
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if k == "" {
			continue
		}
		keys = append(keys, k)
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(f.Type)...)
		}
	}
	return keys
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("supervision:\n  stall_timeout: 90s\n  backoff_max: 2m\nlog:\n  level: debug\nshutdown_deadline: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings()
	if s.StallTimeout != 90*time.Second || s.BackoffMax != 2*time.Minute || s.FlapDebounce != 30*time.Second {
		t.Fatalf("settings %+v", s)
	}
	if c.withDefaults().ShutdownDeadline.D() != 3*time.Second || c.Log.Level != "debug" {
		t.Fatalf("config %+v", c)
	}
	if c, err := ParseConfig(nil); err != nil || !reflect.DeepEqual(c, Config{}) {
		t.Fatalf("empty config: %+v %v", c, err)
	}
}

// read_batch: absent is the default, 0s turns batching off (a negative
// Settings.ReadBatch, which the supervisor passes on as 0).
func TestParseConfigReadBatch(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                                    device.DefaultReadBatch,
		"supervision:\n  read_batch: 0s\n":    -1,
		"supervision:\n  read_batch: 250ms\n": 250 * time.Millisecond,
		// At most a quarter of read_timeout, which defaults to 10 s.
		"supervision:\n  read_batch: 2500ms\n":                    2500 * time.Millisecond,
		"supervision:\n  read_timeout: 20s\n  read_batch: 5s\n":   5 * time.Second,
		"supervision:\n  read_timeout: 1s\n  read_batch: 250ms\n": 250 * time.Millisecond,
	} {
		c, err := ParseConfig([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Settings().ReadBatch; got != want {
			t.Errorf("%q: ReadBatch %v, want %v", in, got, want)
		}
	}
}

func TestParseConfigRejects(t *testing.T) {
	for name, in := range map[string]string{
		"unknown key":      "supervision:\n  stall_timout: 90s\n",
		"unknown section":  "camera: {}\n",
		"bare number":      "supervision:\n  stall_timeout: 90\n",
		"negative":         "supervision:\n  stall_timeout: -5s\n",
		"bad level":        "log:\n  level: loud\n",
		"bad format":       "log:\n  format: xml\n",
		"bad listen":       "api:\n  listen: 7654\n",
		"bad relay":        "relay:\n  listen: nowhere\n",
		"backoff order":    "supervision:\n  backoff_min: 10s\n  backoff_max: 1s\n",
		"batch too long":   "supervision:\n  read_batch: 3s\n",
		"batch vs timeout": "supervision:\n  read_timeout: 2s\n  read_batch: 600ms\n",
		"negative fd":      "fd:\n  ceiling: -1\n",
		"two documents":    "log: {level: info}\n---\nlog: {level: debug}\n",
		"not yaml":         "log: [\n",
		"wrong type":       "api: 12\n",
	} {
		_, err := ParseConfig([]byte(in))
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is more than one line: %q", name, err)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(p, make([]byte, maxConfigBytes+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(p); !errors.Is(err, ErrConfig) {
		t.Fatalf("oversized file: %v", err)
	}
	p = filepath.Join(dir, "typo.yaml")
	_ = os.WriteFile(p, []byte("shutdown_dedline: 5s\n"), 0o600)
	if _, err := LoadConfig(p); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), p) {
		t.Fatalf("typo: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	d := DefaultDataDir()
	if os.Geteuid() == 0 {
		if d != "/var/lib/camd" {
			t.Fatalf("root: %s", d)
		}
		return
	}
	if d != "/x/state/camd" {
		t.Fatalf("user: %s", d)
	}
}

func FuzzParseConfig(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("..", "..", "packaging", "camd.yaml"))
	f.Add(b)
	f.Add([]byte("supervision:\n  stall_timeout: 90s\n"))
	f.Add([]byte("relay:\n  cameras:\n    a: {user: u, pass: p}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConfig(in)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not ErrConfig: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// Whatever is accepted is usable: defaults fill in, settings are sane.
		s := c.Settings()
		if s.StallTimeout <= 0 || s.BackoffMin <= 0 || s.BackoffMax < s.BackoffMin {
			t.Fatalf("accepted config gives unusable settings %+v", s)
		}
		if c.Validate() != nil {
			t.Fatal("accepted config does not validate")
		}
		for _, b := range durationBounds {
			if d := b.get(c).D(); d != 0 && (d < b.min || d > b.max) {
				t.Fatalf("accepted %s: %s, outside %s to %s", b.key, d, b.min, b.max)
			}
		}
	})
}
