package printable

import (
	"bytes"
	"fmt"
	"testing"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain text": "plain text",
		"bad status code: 400 (\x1b]0;x\x07 \x1b[2J)": "bad status code: 400 (]0;x [2J)",
		"two\nlines\r\tand tab":                       "two lines  and tab",
		"c1 \u009b31m csi":                            "c1 31m csi",
		"del\x7f":                                     "del",
		"bidi \u202eevil\u202c":                       "bidi evil",
		"lone \x9b byte":                              "lone \ufffd byte",
		"café ✓":                                      "café ✓",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	n, err := fmt.Fprintf(w, "NAME\tERR\n%s\r\n", "cam \x1b[2J\x1b]0;x\x07 \u009b")
	if err != nil || n != len("NAME\tERR\n")+len("cam \x1b[2J\x1b]0;x\x07 \u009b\r\n") {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got, want := b.String(), "NAME\tERR\ncam [2J]0;x \n"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}
