package device

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/camd/camd/internal/testutil"
)

// After an outage long enough for the backoff to grow to seconds, one
// camera coming back makes the others retry at once instead of waiting out
// their backoff; a camera still down is moved earlier at most once per
// BackoffMax.
func TestRecoveryOfOneCameraHurriesTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 8
		h, fc := fakeHarness(t, hurrySettings(30*time.Second))
		for i := 1; i <= n; i++ {
			h.add(fmt.Sprintf("cam%d", i), fakeURL(i), true)
		}
		h.waitAll(StateRunning, time.Second)

		// cam2..cam8 go down; cam8 stays down to the end.
		for i := 2; i <= n; i++ {
			fc.set(fakeURL(i), fakeDown, 0)
			fc.drop(fakeURL(i))
		}
		// 15 s of refused attempts: each camera now waits several seconds
		// (6.4-12.8 s with these settings) between attempts.
		time.Sleep(15 * time.Second)
		for i := 2; i < n; i++ {
			fc.set(fakeURL(i), fakeOK, 0)
		}
		cleared := time.Now()
		// cam1 drops and comes back within a fraction of a second.
		fc.drop(fakeURL(1))

		// Without the hurry each camera would wait out what is left of its
		// backoff: seconds. With it, cam1 is back after its first backoff
		// (at most 100 ms) and a frame, and the others after theirs.
		ok := testutil.Poll(500*time.Millisecond, func() bool {
			for i := 1; i < n; i++ {
				if h.get(fmt.Sprintf("cam%d", i)).State != StateRunning {
					return false
				}
			}
			return true
		})
		took := time.Since(cleared)
		for i := 2; i < n; i++ {
			name := fmt.Sprintf("cam%d", i)
			t.Logf("%s: %s, hurried %d time(s)", name, h.get(name).State, len(h.logs.Lines("another camera came back", "camera="+name+" ")))
		}
		if !ok {
			t.Fatalf("cam1..cam%d not all RUNNING %v after the others cleared and cam1 came back", n-1, took)
		}
		t.Logf("cam1..cam%d RUNNING %v after the fault cleared", n-1, took)

		// cam8 is still refused: it was hurried once, and a second recovery
		// (cam1 again) within BackoffMax does not hurry it again.
		synctest.Wait() // cam8 has handled the hurry
		kicks := func() int { return len(h.logs.Lines("another camera came back", fmt.Sprintf("camera=cam%d ", n))) }
		if k := kicks(); k != 1 {
			t.Fatalf("cam%d hurried %d times after the first recovery, want 1", n, k)
		}
		fc.drop(fakeURL(1))
		if !testutil.Poll(10*time.Second, func() bool {
			return h.trans.seen("cam1", StateRunning, StateReconnecting, StateRunning, StateReconnecting, StateRunning)
		}) {
			t.Fatalf("cam1 did not drop and come back twice: %v", h.trans.of("cam1"))
		}
		time.Sleep(500 * time.Millisecond)
		if k := kicks(); k != 1 {
			t.Fatalf("cam%d hurried %d times after a second recovery within BackoffMax, want 1", n, k)
		}
	})
}

// hurrySettings are the hurry tests' settings: a backoff that grows from
// 100 ms to backoffMax, and no forced restart (it resets the backoff).
func hurrySettings(backoffMax time.Duration) Settings {
	return Settings{
		StallTimeout:      5 * time.Second,
		FlapDebounce:      3 * time.Second,
		CrashedAfter:      3 * time.Second,
		ForceRestartAfter: 5 * time.Minute,
		BackoffMin:        100 * time.Millisecond,
		BackoffMax:        backoffMax,
		ReadTimeout:       2 * time.Second,
	}
}

// A camera hurried in one outage that came back is hurried again in its
// next outage, even within BackoffMax of the first: the once-per-BackoffMax
// limit is for a camera that stays down. (Without this, a camera hurried
// during the bench's drop test could wait out its whole backoff in the
// outage test that followed: the likely reason one of 256 cameras was back
// only 7.1 s after a 5 s outage.)
func TestHurriedAgainInTheNextOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, fc := fakeHarness(t, hurrySettings(time.Minute))
		h.add("cam1", fakeURL(1), true)
		h.add("cam2", fakeURL(2), true)
		h.waitAll(StateRunning, time.Second)
		hurried := func() int { return len(h.logs.Lines("another camera came back", "camera=cam2 ")) }

		for outage := 1; outage <= 2; outage++ {
			// cam2 is refused long enough for its backoff to reach seconds.
			fc.set(fakeURL(2), fakeDown, 0)
			fc.drop(fakeURL(2))
			time.Sleep(6 * time.Second)
			// cam1 drops and comes back: cam2, still refused, is hurried.
			fc.drop(fakeURL(1))
			if !testutil.Poll(10*time.Second, func() bool { return hurried() == outage }) {
				t.Fatalf("outage %d: cam2 hurried %d times in all, want %d (cam1: %v)", outage, hurried(), outage, h.trans.of("cam1"))
			}
			fc.set(fakeURL(2), fakeOK, 0)
			if !testutil.Poll(20*time.Second, func() bool { return h.get("cam2").State == StateRunning }) {
				t.Fatalf("outage %d: cam2 not RUNNING after its fault cleared: %s", outage, h.get("cam2").State)
			}
			if !testutil.Poll(10*time.Second, func() bool { return h.get("cam1").State == StateRunning }) {
				t.Fatalf("outage %d: cam1 not RUNNING after its drop: %s", outage, h.get("cam1").State)
			}
		}
	})
}
