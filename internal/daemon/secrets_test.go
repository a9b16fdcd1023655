//go:build !windows

package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/camd/camd/internal/testutil"
)

const warnReadable = "the config file holds a password and every user can read it"

// A config file that holds a password and that every user may read gets
// a WARN naming the file and the settings (never the password) at start
// and at every reload; a 0640 one, or a readable one without a password,
// gets none.
func TestWarnReadableConfigWithPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const secret = "Hunter2-relay"
	withPass := "relay:\n  listen: 127.0.0.1:0\n  user: viewer\n  pass: " + secret + "\n  cameras:\n    door: {user: u, pass: " + secret + "x}\n"
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		warn       bool
	}{
		{"readable.yaml", withPass, 0o644, true},
		{"private.yaml", withPass, 0o640, false},
		{"nopass.yaml", "relay:\n  listen: 127.0.0.1:0\n", 0o644, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(write(tc.name, tc.body, tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			c.DataDir = t.TempDir()
			c.API.Listen = "127.0.0.1:0"
			c.Super = testConfig("").Super
			c.FD = testConfig("").FD
			logs := &testutil.LogBuffer{}
			d, err := New(context.Background(), Options{Config: c, Stderr: logs})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- d.Run(context.Background()) }()
			defer func() {
				d.Stop(nil)
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			check := func(when string, from int) {
				t.Helper()
				var line string
				for _, l := range strings.Split(logs.String()[from:], "\n") {
					if strings.Contains(l, warnReadable) {
						line = l
					}
				}
				if (line != "") != tc.warn {
					t.Fatalf("%s: warned %v, want %v; log:\n%s", when, line != "", tc.warn, logs.String())
				}
				if strings.Contains(logs.String(), secret) {
					t.Fatalf("%s: the log holds the password:\n%s", when, logs.String())
				}
				if tc.warn && (!strings.Contains(line, "level=WARN") || !strings.Contains(line, "mode=0644") ||
					!strings.Contains(line, "settings=relay.cameras.door.pass,relay.pass") || !strings.Contains(line, tc.name)) {
					t.Fatalf("%s: the warning does not name the level, file, mode and settings: %s", when, line)
				}
			}
			check("start", 0)
			from := len(logs.String())
			if err := d.Reload(c); err != nil {
				t.Fatal(err)
			}
			check("reload", from)
		})
	}
}
