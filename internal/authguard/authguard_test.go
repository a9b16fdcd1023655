package authguard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/internal/testutil"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newGuard(c *clock, buf *testutil.LogBuffer) *Guard {
	return New(Config{Door: "relay", Logger: testutil.Logger(buf), now: c.now})
}

func TestDelayGrowsAfterFreeTries(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := newGuard(c, &testutil.LogBuffer{})
	var got []time.Duration
	for range 12 {
		got = append(got, g.Failed("192.0.2.1:5000"))
	}
	want := []time.Duration{0, 0, 0, 0, 0,
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	// Another port of the same host is the same client; another host is not.
	if d := g.Failed("192.0.2.1:6000"); d != 5*time.Second {
		t.Fatalf("same host, other port: delay %v, want 5s", d)
	}
	if d := g.Failed("192.0.2.2:5000"); d != 0 {
		t.Fatalf("other host: delay %v, want 0", d)
	}
	g.Succeeded("192.0.2.1:1")
	if d := g.Failed("192.0.2.1:5000"); d != 0 {
		t.Fatalf("after a success: delay %v, want 0", d)
	}
	// Forgotten after ForgetAfter.
	for range 10 {
		g.Failed("192.0.2.3:1")
	}
	c.t = c.t.Add(DefaultForgetAfter + time.Second)
	if d := g.Failed("192.0.2.3:1"); d != 0 {
		t.Fatalf("after ForgetAfter: delay %v, want 0", d)
	}
}

func TestIPv6KeyedByPrefix(t *testing.T) {
	g := newGuard(&clock{t: time.Unix(1e9, 0)}, &testutil.LogBuffer{})
	for i := range 10 {
		g.Failed(fmt.Sprintf("[2001:db8::%x]:80", i+1))
	}
	if n := g.Failures("[2001:db8::ffff]:1"); n != 10 {
		t.Fatalf("a /64 counts as one client: %d failures, want 10", n)
	}
	if n := g.Failures("[2001:db8:0:1::1]:1"); n != 0 {
		t.Fatalf("another /64: %d failures, want 0", n)
	}
}

func TestLogRateLimited(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var buf testutil.LogBuffer
	g := newGuard(c, &buf)
	for range 101 {
		g.Failed("192.0.2.1:5000")
		c.t = c.t.Add(10 * time.Millisecond)
	}
	lines := buf.Lines("relay: authentication failed")
	// 101 failures over 1 s of clock: the first, and one a second later
	// that folds the other 100.
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 101 failures in 1 s, want 2:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[1], "failures=100") || !strings.Contains(lines[0], "client=192.0.2.1") {
		t.Fatalf("log lines do not count the folded failures or name the client:\n%s", buf.String())
	}
}

func TestTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	g := New(Config{Logger: testutil.Logger(&testutil.LogBuffer{}), MaxClients: 8, now: c.now})
	for i := range 100 {
		g.Failed(fmt.Sprintf("198.51.100.%d:1", i))
		c.t = c.t.Add(time.Millisecond)
	}
	if n := len(g.clients); n > 8 {
		t.Fatalf("%d clients remembered, bound is 8", n)
	}
	if g.Failures("198.51.100.99:1") != 1 {
		t.Fatal("the latest client was evicted")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	g := New(Config{Logger: testutil.Logger(&testutil.LogBuffer{}), FreeTries: 1, BaseDelay: time.Hour, MaxDelay: time.Hour})
	g.Failed("192.0.2.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Wait(ctx, "192.0.2.1:1"); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not end with its context")
	}
}
