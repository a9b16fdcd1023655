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

// knowsAll stands in for device.Settings, which testutil cannot import:
// it takes every key and records it.
type knowsAll struct{ set map[string]time.Duration }

func (k *knowsAll) SetByKey(key string, d time.Duration) bool {
	if k.set == nil {
		k.set = map[string]time.Duration{}
	}
	k.set[key] = d
	return true
}

// knowsNone has no settings at all.
type knowsNone struct{}

func (*knowsNone) SetByKey(string, time.Duration) bool { return false }

func TestFastSettings(t *testing.T) {
	s := FastSettings[knowsAll]()
	if s.set["stall_timeout"] != 2*time.Second || s.set["backoff_min"] != 100*time.Millisecond || s.set["read_timeout"] != 5*time.Second || len(s.set) != 7 {
		t.Fatalf("%+v", s.set)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a type without the settings")
		}
	}()
	FastSettings[knowsNone]()
}

func TestWaitEvery(t *testing.T) {
	n := 0
	WaitEvery(t, time.Second, "all even", func() []int { n++; return []int{2, 4, n} }, func(i int) bool { return i%2 == 0 }, strconv.Itoa)
	if n != 2 {
		t.Fatalf("WaitEvery returned after %d lists, want 2", n)
	}
}
