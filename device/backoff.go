package device

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay before retry number n (1-based) of a failing
// camera: min doubling up to max, with jitter so that many cameras behind one
// switch do not reconnect in lock-step. The delay is uniform in [d/2, d].
func backoff(n int, min, max time.Duration) time.Duration {
	if n < 1 {
		n = 1
	}
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// crashBackoff returns the delay before restarting a reader after its n-th
// consecutive crash: the first restart is immediate, later ones back off so
// that a crash loop cannot spin a core.
func crashBackoff(n int, min, max time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return backoff(n-1, min, max)
}
