package daemon

import (
	"errors"
	"strings"
	"testing"
)

// TestRelayExposure: off loopback the relay needs credentials or an
// explicit relay.public; on loopback it needs neither.
func TestRelayExposure(t *testing.T) {
	for _, tc := range []struct {
		relay RelayConfig
		ok    bool
	}{
		{RelayConfig{Listen: "127.0.0.1:8554"}, true},
		{RelayConfig{Listen: "localhost:8554"}, true},
		{RelayConfig{Listen: "[::1]:8554"}, true},
		{RelayConfig{Listen: "127.0.0.2:8554"}, true},
		{RelayConfig{Listen: "off"}, true},
		{RelayConfig{Listen: "0.0.0.0:8554"}, false},
		{RelayConfig{Listen: ":8554"}, false},
		{RelayConfig{Listen: "[::]:8554"}, false},
		{RelayConfig{Listen: "192.168.1.10:8554"}, false},
		{RelayConfig{Listen: "cam-box.lan:8554"}, false},
		{RelayConfig{Listen: "0.0.0.0:8554", Cameras: map[string]Credentials{"a": {User: "u", Pass: "p"}}}, false},
		{RelayConfig{Listen: "0.0.0.0:8554", User: "viewer", Pass: "x"}, true},
		{RelayConfig{Listen: "0.0.0.0:8554", Public: true}, true},
	} {
		c := Config{Relay: tc.relay}.withDefaults()
		err := c.checkRelayExposure()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok=%v", tc.relay, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrRelayOpen) || strings.Contains(err.Error(), "\n") ||
				!strings.Contains(err.Error(), "relay.user") || !strings.Contains(err.Error(), "relay.public") {
				t.Errorf("%+v: error %q should be one line naming relay.user and relay.public", tc.relay, err)
			}
		}
	}
}

func TestRelayDoorSettingsValidated(t *testing.T) {
	for _, in := range []string{
		"relay:\n  max_conns: -1\n",
		"relay:\n  max_conns: 100000000\n",
		"relay:\n  tls_cert: /x/cert.pem\n",
		"relay:\n  tls_key: /x/key.pem\n",
	} {
		if _, err := ParseConfig([]byte(in)); !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one-line ErrConfig", in, err)
		}
	}
	c, err := ParseConfig([]byte("relay:\n  max_conns: 10\n  allow_tunnel: true\n  public: true\n  tls_cert: c.pem\n  tls_key: k.pem\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.withDefaults().Relay; r.MaxConns != 10 || !r.AllowTunnel || !r.Public || r.TLSCert != "c.pem" {
		t.Errorf("parsed %+v", r)
	}
	if got := (Config{}).withDefaults().Relay.MaxConns; got != DefaultRelayMaxConns {
		t.Errorf("default max_conns %d", got)
	}
}
