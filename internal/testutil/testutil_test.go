package testutil

import (
	"strings"
	"testing"
	"time"
)

func TestLogBufferLines(t *testing.T) {
	var b LogBuffer
	Logger(&b).Info("hello", "camera", "cam1")
	Logger(&b).Warn("bye", "camera", "cam2")
	if got := b.Lines("camera=cam2"); len(got) != 1 || !contains(got[0], "msg=bye") {
		t.Fatalf("lines %q", got)
	}
	if got := b.Lines(); len(got) != 2 {
		t.Fatalf("all lines %q", got)
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("poll gave up")
	}
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("poll of false returned true")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
