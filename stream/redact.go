package stream

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces a password wherever camd shows a URL or an error.
const redacted = "xxxxx"

// RedactURL returns rawURL with the password, if any, replaced by "xxxxx".
// The user name is kept because it helps an operator spot a wrong account.
//
// It works on strings that do not parse as URLs too (a typo in a camera URL
// must not leak the password into the error that reports the typo), and it
// never returns the input unchanged when it holds a password.
func RedactURL(rawURL string) string {
	start, end, ok := passwordSpan(rawURL)
	if !ok {
		return rawURL
	}
	return rawURL[:start] + redacted + rawURL[end:]
}

// passwordSpan finds the password in "scheme://user:password@host/..." by
// hand rather than with net/url, so that it also works on malformed URLs.
// The user info ends at the last '@' before the path, as in net/url, because
// unescaped '@' in passwords is common in hand-typed camera URLs.
func passwordSpan(rawURL string) (start, end int, ok bool) {
	rest := rawURL
	off := 0
	if i := strings.Index(rest, "://"); i >= 0 {
		off = i + 3
		rest = rest[off:]
	}
	// The authority ends at the first '/', '?' or '#' after the last '@'
	// that precedes it; search the '@' in the part before any path first.
	authEnd := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authEnd = i
	}
	at := strings.LastIndex(rest[:authEnd], "@")
	if at >= 0 {
		// There is a user info. A password holding '@' and then '/', '?'
		// or '#' ("u:p@ss/w@host") reads like a path holding '@'; taking
		// the last '@' hides too much in the second case rather than part
		// of a password in the first. device.Validate refuses both.
		at = strings.LastIndex(rest, "@")
	} else {
		// A password holding '/' (unescaped) pushes the '@' past the
		// first '/'; look for it in the whole string then.
		at = strings.LastIndex(rest, "@")
		if at < 0 {
			return 0, 0, false
		}
	}
	userinfo := rest[:at]
	colon := strings.Index(userinfo, ":")
	if colon < 0 {
		return 0, 0, false
	}
	return off + colon + 1, off + at, true
}

// urlPassword returns the password of rawURL as written and, when it
// differs, unescaped; either may appear in an error from a library.
func urlPassword(rawURL string) []string {
	start, end, ok := passwordSpan(rawURL)
	if !ok || start == end {
		return nil
	}
	pw := rawURL[start:end]
	out := []string{pw}
	if u, err := url.PathUnescape(pw); err == nil && u != pw {
		out = append(out, u)
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if p, set := u.User.Password(); set && p != pw {
			out = append(out, p)
			// net/url escapes it again when it prints the URL.
			if e := url.UserPassword("", p).String(); len(e) > 2 {
				out = append(out, e[2:len(e)-1])
			}
		}
	}
	return out
}

// RedactError returns err with every occurrence of rawURL's password in its
// message replaced by "xxxxx". It returns err itself when rawURL has no
// password, and nil for nil.
//
// The result deliberately does not Unwrap to err: errors.As on it could
// otherwise dig out a *url.Error or a library error whose message holds the
// password. errors.Is still works (context.Canceled, ErrNoVideo, ...).
func RedactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	pws := urlPassword(rawURL)
	if len(pws) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	// Replace the whole URL first, so that a short password does not turn
	// unrelated words in the message into xxxxx where it can be avoided.
	clean = strings.ReplaceAll(clean, rawURL, RedactURL(rawURL))
	for _, pw := range pws {
		clean = strings.ReplaceAll(clean, pw, redacted)
	}
	if clean == msg {
		// Even when the message is clean, wrapped errors further down the
		// chain may not be: hide them from errors.As all the same.
		return &redactedError{msg: msg, orig: err}
	}
	return &redactedError{msg: clean, orig: err}
}

// redactedError carries a password-free message and answers errors.Is for
// the original error without exposing it to errors.As or Unwrap.
type redactedError struct {
	msg  string
	orig error
}

func (e *redactedError) Error() string { return e.msg }

// Is lets errors.Is see through to the original chain (sentinels and
// context errors hold no password).
func (e *redactedError) Is(target error) bool { return errors.Is(e.orig, target) }
