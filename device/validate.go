package device

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/camd/camd/stream"
)

// Limits on what an operator may submit.
const (
	MaxNameLen = 64
	MaxURLLen  = 2048
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks a Spec and returns it normalised (transport spelled out).
// Every error wraps ErrInvalid and never contains the URL's password.
func (sp Spec) Validate() (Spec, error) {
	if err := validateName(sp.Name); err != nil {
		return sp, err
	}
	if err := validateURL(sp.URL); err != nil {
		return sp, err
	}
	t, ok := stream.ParseTransport(sp.Transport)
	if !ok {
		return sp, fmt.Errorf("%w: transport must be tcp, udp or auto", ErrInvalid)
	}
	sp.Transport = t.String()
	if err := validateTLS(sp); err != nil {
		return sp, err
	}
	if sp.TLS.Fingerprint != "" {
		sp.TLS.Fingerprint, _ = stream.ParseFingerprint(sp.TLS.Fingerprint)
	}
	return sp, nil
}

func validateTLS(sp Spec) error {
	if sp.TLS.IsZero() {
		return nil
	}
	if !strings.HasPrefix(strings.ToLower(sp.URL), "rtsps://") {
		return fmt.Errorf("%w: tls_fingerprint, tls_ca and tls_insecure apply to rtsps:// cameras only", ErrInvalid)
	}
	if sp.TLS.CAFile != "" && !filepath.IsAbs(sp.TLS.CAFile) {
		return fmt.Errorf("%w: tls_ca must be an absolute path (the daemon reads it)", ErrInvalid)
	}
	if err := sp.TLS.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: name is required", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: name is longer than %d characters", ErrInvalid, MaxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w: name may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit", ErrInvalid)
	}
	return nil
}

// isScheme reports whether s is a short URL scheme (RFC 3986: a letter,
// then letters, digits, "+", "-" or "."), which is safe to quote: it holds
// no part of a password.
func isScheme(s string) bool {
	if s == "" || len(s) > 16 || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return false
	}
	return strings.TrimLeft(strings.ToLower(s), "abcdefghijklmnopqrstuvwxyz0123456789+-.") == ""
}

func validateURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: url is required", ErrInvalid)
	}
	if len(raw) > MaxURLLen {
		return fmt.Errorf("%w: url is longer than %d bytes", ErrInvalid, MaxURLLen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: url must not contain spaces or control characters", ErrInvalid)
	}
	// The scheme first: without it url.Parse reads a host as a path or
	// fails on the port, and "not a valid URL" does not say what is missing.
	if scheme, _, ok := strings.Cut(raw, "://"); !ok || !strings.EqualFold(scheme, "rtsp") && !strings.EqualFold(scheme, "rtsps") {
		if ok && isScheme(scheme) {
			return fmt.Errorf("%w: url must start with rtsp:// or rtsps:// (its scheme is %s)", ErrInvalid, strings.ToLower(scheme))
		}
		return fmt.Errorf("%w: url must start with rtsp:// or rtsps://", ErrInvalid)
	}
	// url.Parse errors quote the whole URL, password included, so they are
	// never passed on.
	u, err := url.Parse(raw)
	if err != nil {
		if unencodedCredentials(raw) {
			return fmt.Errorf("%w: url is not a valid URL: %s", ErrInvalid, encodeHint)
		}
		return fmt.Errorf("%w: url is not a valid URL", ErrInvalid)
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return fmt.Errorf("%w: url scheme must be rtsp or rtsps", ErrInvalid)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%w: url must name a host", ErrInvalid)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || strings.TrimLeft(p, "0123456789") != "" {
			if unencodedCredentials(raw) {
				return fmt.Errorf("%w: url port must be a number from 1 to 65535; %s", ErrInvalid, encodeHint)
			}
			return fmt.Errorf("%w: url port must be a number from 1 to 65535", ErrInvalid)
		}
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		// The RTSP client refuses fragments; the camera would be stored and
		// then fail forever.
		return fmt.Errorf("%w: url must not have a #fragment", ErrInvalid)
	}
	if !utf8.ValidString(raw) {
		return fmt.Errorf("%w: url is not valid UTF-8", ErrInvalid)
	}
	// "rtsp://u:p@ss/w@host/x" reads as password "p" at host "ss": camd
	// would dial the wrong host and could show the rest of the password
	// as a path. An '@' after the host with a user info is refused.
	if u.User != nil && strings.Contains(u.EscapedPath()+"?"+u.RawQuery, "@") {
		return fmt.Errorf("%w: url has an '@' after the host; %s", ErrInvalid, encodeHint)
	}
	return nil
}

// encodeHint says how to write a password that breaks a URL.
const encodeHint = "write '@', '/', '?', '#' and ':' in a user name or password as %40, %2F, %3F, %23 and %3A"

// unencodedCredentials reports whether raw looks like a URL whose user info
// holds a character that ends it early: an '@' after the first '/', '?' or
// '#' past the scheme.
func unencodedCredentials(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return false
	}
	end := strings.IndexAny(rest, "/?#")
	return end >= 0 && end < at
}
