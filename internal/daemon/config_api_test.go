package daemon

import (
	"errors"
	"strings"
	"testing"
)

func TestParseConfigAPIDoors(t *testing.T) {
	for in, want := range map[string]string{
		"api:\n  tls_cert: /c.pem\n":  "set both or neither",
		"api:\n  tls_key: /k.pem\n":   "set both or neither",
		"api:\n  max_conns: -1\n":     "api.max_conns",
		"api:\n  max_conns: 100000\n": "api.max_conns",
	} {
		_, err := ParseConfig([]byte(in))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line with %q", in, err, want)
		}
	}
	c, err := ParseConfig([]byte("api:\n  tls_cert: /c.pem\n  tls_key: /k.pem\n  max_conns: 8\n  allow_no_token_off_loopback: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.withDefaults().API; a.TLSCert != "/c.pem" || a.TLSKey != "/k.pem" || a.MaxConns != 8 || !a.AllowNoTokenOffLoopback {
		t.Errorf("api section %+v", a)
	}
	if n := (Config{}).withDefaults().API.MaxConns; n != DefaultAPIMaxConns {
		t.Errorf("default max_conns %d", n)
	}
}
