package daemon

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
)

var update = flag.Bool("update", false, "rewrite packaging/camd.yaml's supervision section from device.SettingsTable")

// shippedConfig is packaging/camd.yaml.
var shippedConfig = filepath.Join("..", "..", "packaging", "camd.yaml")

// packaging/camd.yaml's supervision section is SupervisionYAML: every
// setting at the table's default, under the table's documentation and
// range. go test ./internal/daemon -run TestShippedSupervisionSection
// -update rewrites it after a change to device.SettingsTable.
func TestShippedSupervisionSection(t *testing.T) {
	b, err := os.ReadFile(shippedConfig)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start, end, ok := yamlSection(text, "supervision")
	if !ok {
		t.Fatalf("%s has no supervision section", shippedConfig)
	}
	want := SupervisionYAML()
	if got := text[start:end]; got != want {
		if *update {
			if err := os.WriteFile(shippedConfig, []byte(text[:start]+want+text[end:]), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the supervision section of %s", shippedConfig)
			return
		}
		t.Errorf("%s: the supervision section is not device.SettingsTable's (run this test with -update):\n got:\n%s\nwant:\n%s", shippedConfig, got, want)
	}
}

// yamlSection returns where the top-level section name starts and ends
// in text: from its "name:" line to the blank line after it.
func yamlSection(text, name string) (start, end int, ok bool) {
	if strings.HasPrefix(text, name+":\n") {
		start = 0
	} else if i := strings.Index(text, "\n"+name+":\n"); i >= 0 {
		start = i + 1
	} else {
		return 0, 0, false
	}
	end = strings.Index(text[start:], "\n\n")
	if end < 0 {
		return start, len(text), true
	}
	return start, start + end + 1, true
}

// The supervision section has exactly device.SettingsTable's keys, and
// each reaches its own field of device.Settings: a file setting every key
// to a different value gives those values back through the table.
func TestSupervisionConfigIsTheTable(t *testing.T) {
	var yml strings.Builder
	yml.WriteString("supervision:\n")
	want := map[string]time.Duration{}
	for i, st := range device.SettingsTable() {
		// Distinct values inside every range, read_batch below a quarter
		// of read_timeout and each maximum above its minimum.
		d := st.Min + time.Duration(i+1)*10*time.Millisecond
		if st.Key == "read_timeout" {
			d = time.Minute
		}
		want[st.Key] = d
		fmt.Fprintf(&yml, "  %s: %s\n", st.Key, d)
	}
	c, err := ParseConfig([]byte(yml.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, yml.String())
	}
	s := c.Settings()
	for _, st := range device.SettingsTable() {
		if got := st.Get(s); got != want[st.Key] {
			t.Errorf("supervision.%s: %s set, Settings has %s", st.Key, want[st.Key], got)
		}
	}
	keys := yamlKeys(reflect.TypeOf(SupervisionConfig{}))
	if len(keys) != len(device.SettingsTable()) {
		t.Errorf("SupervisionConfig has keys %v; device.SettingsTable has %d settings", keys, len(device.SettingsTable()))
	}
	// read_batch's 0s is off, not the default.
	c, err = ParseConfig([]byte("supervision:\n  read_batch: 0s\n"))
	if err != nil || c.Settings().ReadBatch >= 0 {
		t.Errorf("read_batch 0s: %v, ReadBatch %s; want off (negative)", err, c.Settings().ReadBatch)
	}
}
