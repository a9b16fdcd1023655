package stream

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

// redacted replaces a secret wherever camd shows a URL or an error.
const redacted = "xxxxx"

// RedactURL returns rawURL with every secret in it replaced by "xxxxx": the
// password of the user info, and the value of each path or query parameter
// whose key names a secret (see secretKey), as cheap cameras take
// "rtsp://cam/user=admin&password=X&channel=1" or "?token=X". The user
// name is kept because it helps an operator spot a wrong account.
//
// It works on strings that do not parse as URLs too (a typo in a camera URL
// must not leak the password into the error that reports the typo), and it
// never returns the input unchanged when it holds a password.
func RedactURL(rawURL string) string {
	spans := secretSpans(rawURL)
	if len(spans) == 0 {
		return rawURL
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(rawURL[last:sp[0]])
		b.WriteString(redacted)
		last = sp[1]
	}
	b.WriteString(rawURL[last:])
	return b.String()
}

// secretSpans returns the byte ranges of rawURL that hold secrets, in order
// and not overlapping: the user info's password (even an empty one) and the
// non-empty values of secret parameters after it.
func secretSpans(rawURL string) [][2]int {
	var spans [][2]int
	from := 0
	if i := strings.Index(rawURL, "://"); i >= 0 {
		from = i + 3
	}
	if start, end, ok := passwordSpan(rawURL); ok {
		spans = append(spans, [2]int{start, end})
		from = end
	}
	return append(spans, paramSpans(rawURL, from)...)
}

// paramSpans finds the values of secret parameters in rawURL[from:]. A
// parameter is "key=value" between any of '/', '?', '&', ';' and '#', so
// that the same rule covers the query and the path forms. Some firmwares
// chain parameters with '_' ("/user=admin_password=X_channel=1"), so a key
// is also looked for in the text between two '=': the value of the first
// secret key runs to the end of its parameter, which may hide some harmless
// text but never part of the secret.
func paramSpans(rawURL string, from int) [][2]int {
	var spans [][2]int
	i := from
	for i < len(rawURL) {
		end := strings.IndexAny(rawURL[i:], "/?&;#")
		if end < 0 {
			end = len(rawURL)
		} else {
			end += i
		}
		keyStart := i
		for j := i; j < end; j++ {
			if rawURL[j] != '=' {
				continue
			}
			if secretKey(rawURL[keyStart:j]) {
				if j+1 < end {
					spans = append(spans, [2]int{j + 1, end})
				}
				break
			}
			keyStart = j + 1
		}
		i = end + 1
	}
	return spans
}

// secretKey reports whether a parameter key names a secret. The key is
// unescaped and lower-cased; with '_', '-' and '.' taken out it is a secret
// when it contains "pass", "pwd", "psw", "token", "secret", "auth" or
// "credential", ends in "key", "sig" or "signature", or its last word is
// "pw". So "password", "Passwd", "access_token", "apiKey", "api_key",
// "X-Amz-Signature", "authbasic" and "admin_password" are secrets, while
// "keyframe", "key_frame", "keyint", "signal", "user" and "channel" are not.
// Keys merely ending in "key" ("monkey") are hidden too: showing too
// little is the safe side.
func secretKey(key string) bool {
	if k, err := url.QueryUnescape(key); err == nil {
		key = k
	}
	key = strings.ToLower(key)
	last := key
	if i := strings.LastIndexAny(key, "_-."); i >= 0 {
		last = key[i+1:]
	}
	n := strings.NewReplacer("_", "", "-", "", ".", "").Replace(key)
	if n == "" {
		return false
	}
	for _, w := range []string{"pass", "pwd", "psw", "token", "secret", "auth", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	for _, w := range []string{"key", "sig", "signature"} {
		if strings.HasSuffix(n, w) {
			return true
		}
	}
	return last == "pw" || n == "pw"
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
		// first '/' ("u:pa/ss@host"): the text before the '/' is then not
		// a host and port. When it is one, the user info has ended there
		// and an '@' further on belongs to the path
		// ("cam.lan/live/ch0:main@hd"), which must be shown as it is.
		if hostPort(rest[:authEnd]) {
			return 0, 0, false
		}
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

// hostPort reports whether an authority without '@' reads as a host with
// an optional numeric port, rather than as "user:pass" cut short by a '/'.
func hostPort(a string) bool {
	if strings.HasPrefix(a, "[") {
		return true
	}
	i := strings.LastIndex(a, ":")
	if i < 0 {
		return true
	}
	return strings.Trim(a[i+1:], "0123456789") == ""
}

// urlSecrets returns the secrets of rawURL as written and in the escaped
// and unescaped forms a library may print them in, longest first so that
// replacing one never leaves part of another.
func urlSecrets(rawURL string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, pw := range urlPassword(rawURL) {
		add(pw)
	}
	from := 0
	if _, end, ok := passwordSpan(rawURL); ok {
		from = end
	} else if i := strings.Index(rawURL, "://"); i >= 0 {
		from = i + 3
	}
	for _, sp := range paramSpans(rawURL, from) {
		v := rawURL[sp[0]:sp[1]]
		add(v)
		for _, unesc := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
			if u, err := unesc(v); err == nil {
				add(u)
				add(url.QueryEscape(u))
				add(url.PathEscape(u))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
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

// RedactError returns err with every occurrence of rawURL's secrets (see
// RedactURL) in its message replaced by "xxxxx". It returns err itself when
// rawURL has no secret, and nil for nil.
//
// The result deliberately does not Unwrap to err: errors.As on it could
// otherwise dig out a *url.Error or a library error whose message holds the
// password. errors.Is still works (context.Canceled, ErrNoVideo, ...).
func RedactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	pws := urlSecrets(rawURL)
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
