package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
)

// secretSettings names the settings of c that hold a password.
func (c Config) secretSettings() []string {
	var keys []string
	if c.Relay.Pass != "" {
		keys = append(keys, "relay.pass")
	}
	for name, cr := range c.Relay.Cameras {
		if cr.Pass != "" {
			keys = append(keys, "relay.cameras."+name+".pass")
		}
	}
	if c.MQTT.Pass != "" {
		keys = append(keys, "mqtt.pass")
	}
	for i, h := range c.Webhooks.Hooks {
		if h.Secret != "" {
			keys = append(keys, fmt.Sprintf("webhooks.hooks[%d].secret", i))
		}
	}
	sort.Strings(keys)
	return keys
}

// warnReadableSecrets logs a WARN when c was loaded from a file that every
// user may read and that holds a password. The packages install the config
// 0640 root:camd; an edit with another tool, or a copy, can leave it 0644.
// It is a warning rather than a refusal so that a config that worked keeps
// working; the log names the settings, never their values.
func (c Config) warnReadableSecrets(log *slog.Logger) {
	if c.source == "" || runtime.GOOS == "windows" {
		return
	}
	keys := c.secretSettings()
	if len(keys) == 0 {
		return
	}
	fi, err := os.Stat(c.source)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	log.Warn("the config file holds a password and every user can read it: chmod o-r it (camd's packages install it 0640 root:camd)",
		"config", c.source, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "settings", strings.Join(keys, ","))
}
