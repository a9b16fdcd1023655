package testutil

import (
	"strconv"
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

func TestGoroutinesLabelled(t *testing.T) {
	stop := make(chan struct{})
	wait := func() { <-stop }
	// The profile lists the most common stack first, right after its
	// header: three alike goroutines are that block.
	Labelled("t", "a", func() {
		for range 3 {
			go wait()
		}
		go func() {
			go wait() // inherits the label from its parent
			wait()
		}()
	})
	Labelled("t", "ab", func() { go wait() })
	go wait()
	if !Poll(time.Second, func() bool { n, _ := GoroutinesLabelled("t", "a"); return n == 5 }) {
		n, stacks := GoroutinesLabelled("t", "a")
		t.Fatalf("%d goroutines labelled t=a, want 5:\n%s", n, stacks)
	}
	close(stop)
	if !Poll(5*time.Second, func() bool { n, _ := GoroutinesLabelled("t", "a"); return n == 0 }) {
		t.Fatal("goroutines that ended are still counted")
	}
}

func TestFastSettings(t *testing.T) {
	type settings struct {
		StallTimeout, FlapDebounce, CrashedAfter, ForceRestartAfter time.Duration
		BackoffMin, BackoffMax, ReadTimeout, Other                  time.Duration
	}
	s := FastSettings[settings]()
	if s.StallTimeout != 2*time.Second || s.BackoffMin != 100*time.Millisecond || s.ReadTimeout != 5*time.Second || s.Other != 0 {
		t.Fatalf("%+v", s)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a type without the fields")
		}
	}()
	FastSettings[struct{ StallTimeout time.Duration }]()
}

func TestWaitEvery(t *testing.T) {
	n := 0
	WaitEvery(t, time.Second, "all even", func() []int { n++; return []int{2, 4, n} }, func(i int) bool { return i%2 == 0 }, strconv.Itoa)
	if n != 2 {
		t.Fatalf("WaitEvery returned after %d lists, want 2", n)
	}
}
