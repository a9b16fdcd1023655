package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A typo in a key is reported with the file, the line, the key's path and
// the key that was probably meant, in the file's terms (no Go type names).
func TestConfigErrorNamesFileLineKeyAndSuggestion(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "camd.yaml")
	in := "log:\n  level: info\napi:\n  listen: 127.0.0.1:7654\nsupervison:\n  stall_timeout: 30s\n"
	if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(p)
	want := p + `:5: unknown key "supervison" (did you mean "supervision"?)`
	if !errors.Is(err, ErrConfig) || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}

	for in, want := range map[string]string{
		"supervision:\n  stal_timeout: 5s\n":                `line 2: unknown key "supervision.stal_timeout" (did you mean "supervision.stall_timeout"?)`,
		"stall_timeout: 5s\n":                               `line 1: unknown key "stall_timeout" (did you mean "supervision.stall_timeout"?)`,
		"camera: {}\n":                                      `line 1: unknown key "camera" (the sections are data_dir, log, api, relay, supervision, fd, events, shutdown_deadline, webhooks, mqtt)`,
		"relay:\n  cameras:\n    door: {user: u, pas: p}\n": `line 3: unknown key "relay.cameras.door.pas" (did you mean "relay.cameras.door.pass"?)`,
		"api:\n  max_conns: abc\n":                          `line 2: api.max_conns: "abc" is not a whole number`,
		"api: 12\n":                                         `line 1: api: want a section of keys`,
		"relay:\n  public: maybe\n":                         `line 2: relay.public: "maybe" is not true or false`,
		"supervision:\n  stall_timeout: 90\n":               `line 2: supervision.stall_timeout: "90" is not a duration like "30s"`,
		"log: [\n":                                          `line 1: not valid YAML`,
		"- 1\n":                                             `line 1: the file must be a mapping of keys`,
	} {
		_, err := ParseConfig([]byte(in))
		if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q:\ngot  %v\nwant %s…", in, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "daemon.") || strings.Contains(err.Error(), ":;") || strings.Contains(err.Error(), "\n")) {
			t.Errorf("%q: %q has a Go type name, a stray \":;\" or a newline", in, err)
		}
	}
	// YAML 1.1 booleans are still booleans.
	if c, err := ParseConfig([]byte("relay:\n  public: yes\n  user: u\n")); err != nil || !c.Relay.Public {
		t.Errorf("public: yes: %v %v", err, c.Relay.Public)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"supervison", "supervision", 1}, {"kitten", "sitting", 3}, {"log", "fd", 3}} {
		if got := levenshtein(c.a, c.b); got != c.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
