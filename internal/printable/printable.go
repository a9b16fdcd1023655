// Package printable makes text that comes from elsewhere (a camera's error,
// an API answer) safe to show on a terminal: escape sequences in it could
// retitle the window, clear the screen or hide what follows.
package printable

import (
	"io"
	"unicode"
	"unicode/utf8"
)

// String returns s on one line with nothing a terminal would act on: tabs
// and line breaks become spaces; other C0 and C1 controls, DEL and Unicode
// format characters (bidi overrides, zero-width characters) are dropped;
// invalid UTF-8 becomes U+FFFD, since a lone 0x9B is CSI to an 8-bit
// terminal.
func String(s string) string {
	if clean(s) {
		return s
	}
	return string(filter(nil, []byte(s), false))
}

// clean reports whether s needs no change, so that the common case does not
// allocate.
func clean(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return false
			}
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// filter appends p to dst without controls. With keepLines, '\n' and '\t'
// are kept as they are (for multi-line output such as help and tables).
func filter(dst, p []byte, keepLines bool) []byte {
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && n <= 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case keepLines && (r == '\n' || r == '\t'):
			dst = append(dst, byte(r))
		case !keepLines && (r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'):
			dst = append(dst, ' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			// dropped
		default:
			dst = append(dst, p[:n]...)
		}
		p = p[n:]
	}
	return dst
}

// NewWriter returns a writer that passes text on to w without controls,
// keeping '\n' and '\t'; '\r' and the rest are dropped. Each Write must
// hold whole UTF-8 sequences, as fmt's and tabwriter's do.
func NewWriter(w io.Writer) io.Writer { return writer{w} }

type writer struct{ w io.Writer }

func (w writer) Write(p []byte) (int, error) {
	out := p
	if !clean(string(p)) || containsCR(p) {
		out = filter(make([]byte, 0, len(p)), p, true)
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func containsCR(p []byte) bool {
	for _, b := range p {
		if b == '\r' {
			return true
		}
	}
	return false
}
