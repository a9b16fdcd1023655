package netfault

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camd/camd/device"
)

// faultTable is the nftables table (family inet, inside the namespace)
// that holds a test's fault rules.
const faultTable = "camdtest_fault"

// blackholeRules drop every packet of the camera's RTSP port, both ways.
func blackholeRules(port int) string {
	return fmt.Sprintf(`table inet %s {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport %d counter drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		tcp sport %d counter drop
	}
}
`, faultTable, port, port)
}

// resetRules answer every packet sent to the camera's RTSP port with a TCP
// reset: camd's ACKs of the stream, then its connection attempts.
func resetRules(port int) string {
	return fmt.Sprintf(`table inet %s {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport %d counter reject with tcp reset
	}
}
`, faultTable, port)
}

// faultCounters sums the packet counters of the fault table.
func (l *lab) faultCounters() int {
	l.t.Helper()
	out := run(l.t, "", "ip", "netns", "exec", l.ns, "nft", "list", "table", "inet", faultTable)
	n := 0
	for _, m := range regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(out, -1) {
		var k int
		fmt.Sscan(m[1], &k)
		n += k
	}
	return n
}

// TestBlackhole: nftables drops the camera's packets both ways. The TCP
// connection stays ESTABLISHED and silent; camd must leave RUNNING within
// the stall threshold + 1 s of the rule being in place, must not claim
// RUNNING while the blackhole lasts, and must be RUNNING again once the rule
// goes.
//
// "stall-watchdog" sets ReadTimeout far above StallTimeout, so only the
// supervisor's stall deadline can notice (RUNNING -> RECONNECTING, a stall
// counted). "read-timeout" uses a ReadTimeout below StallTimeout, as
// defaults do: whichever of the RTSP read timeout and the stall deadline
// fires first, the bound still holds.
func TestBlackhole(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		set  device.Settings
		// quietFor is how long to watch the silent, ESTABLISHED connection
		// before camd may have noticed.
		quietFor time.Duration
		stall    bool // the stall deadline must be what notices
	}{
		{"stall-watchdog", device.Settings{StallTimeout: 3 * time.Second, ReadTimeout: 30 * time.Second}, 2 * time.Second, true},
		{"read-timeout", device.Settings{StallTimeout: 3 * time.Second, ReadTimeout: 2 * time.Second}, 500 * time.Millisecond, false},
	}
	requireLab(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			c := startCamd(t, l, tc.set)
			c.flowing()
			conns := l.established()
			if len(conns) != 1 {
				t.Fatalf("want 1 ESTABLISHED connection to the camera before the fault, have %q", conns)
			}
			stallsBefore := c.view().Stalls

			// The clock starts before the command, so that the time nft
			// takes (longer on a loaded machine) counts against camd.
			t0 := time.Now()
			l.nsNft(blackholeRules(l.camPort))

			// Silent and ESTABLISHED: no frame arrives, the kernel has
			// not given up on the connection, camd has not noticed yet.
			time.Sleep(200 * time.Millisecond)
			f0 := c.view().Frames
			time.Sleep(tc.quietFor - 200*time.Millisecond)
			if evs := c.rec.since(t0); len(evs) > 0 {
				t.Fatalf("camera left RUNNING %s after the blackhole began, before it could be watched (changes %v)", ms(evs[0].at.Sub(t0)), evs)
			}
			if f1 := c.view().Frames; f1 != f0 {
				t.Errorf("%d frames arrived through the blackhole", f1-f0)
			}
			if now := l.established(); !slices.Contains(now, conns[0]) {
				t.Errorf("connection %s not ESTABLISHED %s into the blackhole (ESTABLISHED: %q)", conns[0], ms(time.Since(t0)), now)
			}

			e := c.waitEvent(t0, tc.set.StallTimeout+waitTimeout, "change away from RUNNING", leftRunning)
			lat := e.at.Sub(t0)
			v := c.view()
			t.Logf("blackhole: connection ESTABLISHED and silent for %s; camd left RUNNING after %s (threshold %s, %s); last error %q",
				ms(tc.quietFor), ms(lat), tc.set.StallTimeout, e, v.LastError)
			if limit := tc.set.StallTimeout + time.Second; lat > limit {
				t.Errorf("stall noticed after %s, want within %s (stall threshold + 1 s)", ms(lat), limit)
			}
			if tc.stall {
				if e.to != device.StateReconnecting || v.Stalls <= stallsBefore {
					t.Errorf("want the stall deadline to notice (RUNNING->RECONNECTING, a stall counted), got %s, stalls %d -> %d", e, stallsBefore, v.Stalls)
				}
			}

			// Hold the blackhole a while: camd keeps trying and must not
			// claim RUNNING.
			time.Sleep(time.Until(t0.Add(tc.set.StallTimeout + 3*time.Second)))
			held := time.Since(t0)
			if evs := c.rec.since(t0); slices.ContainsFunc(evs, toState(device.StateRunning)) {
				t.Errorf("camera RUNNING during the blackhole (states %s)", states(evs))
			}
			dropped := l.faultCounters()
			t1 := time.Now() // before: camd may be back before the command returns
			l.nsNftDelete(faultTable)
			t.Logf("blackhole held %s (%d packets dropped); states %s", ms(held), dropped, states(c.rec.since(t0)))

			e = c.waitEvent(t1, waitTimeout, "RUNNING after the blackhole", toState(device.StateRunning))
			c.flowing()
			t.Logf("blackhole removed: RUNNING again after %s", ms(e.at.Sub(t1)))
		})
	}
}

// TestLinkDownUp: the host's end of the link goes down, then up again. camd
// must go RECONNECTING while it is down and RUNNING once it is back.
func TestLinkDownUp(t *testing.T) {
	t.Parallel()
	set := device.Settings{StallTimeout: 3 * time.Second, ReadTimeout: 2 * time.Second}
	l := newLab(t)
	c := startCamd(t, l, set)
	c.flowing()
	recBefore := c.view().Reconnects

	run(t, "", "ip", "link", "set", l.hostIf, "down")
	t0 := time.Now()
	left := c.waitEvent(t0, waitTimeout, "change away from RUNNING", leftRunning)
	e := c.waitEvent(t0, waitTimeout, "RECONNECTING", toState(device.StateReconnecting))
	lat := e.at.Sub(t0)
	t.Logf("link down: left RUNNING after %s (%s), RECONNECTING after %s (stall threshold %s, read timeout %s)",
		ms(left.at.Sub(t0)), left, ms(lat), set.StallTimeout, set.ReadTimeout)
	// Order of magnitude only: the read timeout or the stall deadline
	// notices, then attempts fail at once.
	if limit := 3 * (set.StallTimeout + set.ReadTimeout); lat > limit {
		t.Errorf("RECONNECTING %s after the link went down, want well within %s", ms(lat), limit)
	}

	// Keep it down a while: attempts fail, nothing may leave by another
	// interface (the guard), the camera must not claim RUNNING.
	time.Sleep(2 * time.Second)
	v := c.view()
	if v.State == device.StateRunning || slices.ContainsFunc(c.rec.since(t0), toState(device.StateRunning)) {
		t.Errorf("camera RUNNING while its link is down (states %s)", states(c.rec.since(t0)))
	}
	t.Logf("link down for %s: state %s, %d failed attempts, last error %q, guard rejected %s packets",
		ms(time.Since(t0)), v.State, v.Reconnects-recBefore, v.LastError, l.guardRejects())

	t1 := time.Now() // before: camd may be back before the command returns
	run(t, "", "ip", "link", "set", l.hostIf, "up")
	e = c.waitEvent(t1, waitTimeout, "RUNNING after the link came up", toState(device.StateRunning))
	c.flowing()
	t.Logf("link up: RUNNING again after %s; states %s", ms(e.at.Sub(t1)), states(c.rec.since(t0)))
}

// TestTCPReset: the camera's side answers camd's packets with TCP resets.
// camd must be RECONNECTING at once, well before its stall threshold or
// read timeout could have told it, and RUNNING again once resets stop.
func TestTCPReset(t *testing.T) {
	t.Parallel()
	set := device.Settings{StallTimeout: 6 * time.Second, ReadTimeout: 10 * time.Second}
	l := newLab(t)
	c := startCamd(t, l, set)
	c.flowing()

	// The clock starts before the command: a reset can end the connection
	// before nft has returned, and an event before t0 would go unseen.
	t0 := time.Now()
	l.nsNft(resetRules(l.camPort))
	e := c.waitEvent(t0, waitTimeout, "change away from RUNNING", leftRunning)
	lat := e.at.Sub(t0)
	v := c.view()
	t.Logf("tcp reset: %s after %s (stall threshold %s, read timeout %s); last error %q",
		e, ms(lat), set.StallTimeout, set.ReadTimeout, v.LastError)
	if e.to != device.StateReconnecting {
		t.Errorf("left RUNNING for %s, want RECONNECTING", e.to)
	}
	if limit := set.StallTimeout / 3; lat > limit {
		t.Errorf("RECONNECTING %s after the resets began, want within %s (well under the stall threshold %s)", ms(lat), limit, set.StallTimeout)
	}
	if !strings.Contains(v.LastError, "reset") {
		t.Errorf("last error %q does not name the reset", v.LastError)
	}

	// Attempts while the resets last are refused at once.
	recBefore := v.Reconnects
	time.Sleep(2 * time.Second)
	v = c.view()
	if v.State == device.StateRunning || slices.ContainsFunc(c.rec.since(t0), toState(device.StateRunning)) {
		t.Errorf("camera RUNNING while every packet is reset (states %s)", states(c.rec.since(t0)))
	}
	resets := l.faultCounters()
	t1 := time.Now() // before: camd may be back before the command returns
	l.nsNftDelete(faultTable)
	t.Logf("tcp reset held 2s: %d more failed attempts, %d resets sent, last error %q", v.Reconnects-recBefore, resets, v.LastError)

	e = c.waitEvent(t1, waitTimeout, "RUNNING after the resets stopped", toState(device.StateRunning))
	c.flowing()
	t.Logf("resets stopped: RUNNING again after %s", ms(e.at.Sub(t1)))
}
