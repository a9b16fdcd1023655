package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/camd/camd/stream"
)

// fakeCams stands in for stream.Read (Config.Read): the camera at each URL
// plays a frame every 40 ms (every) until a fault says otherwise. Run inside a
// synctest bubble (inBubble), a test watches minutes of supervision (stalls,
// debounces, backoffs) in milliseconds, and on an exact clock.
// fakeURL(i) names camera i.
type fakeCams struct {
	every time.Duration // between frames; set before the first read
	mu    sync.Mutex
	cams  map[string]*fakeCam
}

// fakeFault is what a fake camera does instead of playing.
type fakeFault int

const (
	fakeOK      fakeFault = iota
	fakeStall             // sessions open and describe the video, then send nothing
	fakeDown              // connection refused, as by a port nobody listens on
	fakeRefused           // the camera answers 401 (stream.ErrRefused)
	fakePanic             // the reader panics
)

type fakeCam struct {
	fault    fakeFault
	until    time.Time     // when fault ends; zero: when it is changed
	drop     chan struct{} // closed to end the sessions open now
	attempts []time.Time   // when each connection attempt began
	active   int           // sessions playing now
}

// maxFakeAttempts is more connection attempts than any test makes.
const maxFakeAttempts = 1000

func newFakeCams() *fakeCams {
	return &fakeCams{every: 40 * time.Millisecond, cams: map[string]*fakeCam{}}
}

func fakeURL(i int) string { return fmt.Sprintf("rtsp://127.0.0.1:1/cam%d", i) }

// cam returns the camera at url; callers hold mu.
func (fc *fakeCams) cam(url string) *fakeCam {
	c := fc.cams[url]
	if c == nil {
		c = &fakeCam{drop: make(chan struct{})}
		fc.cams[url] = c
	}
	return c
}

// faultOf returns c's fault now, clearing it once it has expired.
func (c *fakeCam) faultOf(now time.Time) fakeFault {
	if c.fault != fakeOK && !c.until.IsZero() && !now.Before(c.until) {
		c.fault, c.until = fakeOK, time.Time{}
	}
	return c.fault
}

// set gives the camera at url fault f, for d (0: until set again).
func (fc *fakeCams) set(url string, f fakeFault, d time.Duration) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	c := fc.cam(url)
	c.fault, c.until = f, time.Time{}
	if d > 0 {
		c.until = time.Now().Add(d)
	}
}

// drop ends every session of the camera at url, as a camera that reboots
// or a switch that blinks; its fault stays.
func (fc *fakeCams) drop(url string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	c := fc.cam(url)
	close(c.drop)
	c.drop = make(chan struct{})
}

// attempts returns when each connection attempt to url began.
func (fc *fakeCams) attempts(url string) []time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]time.Time(nil), fc.cam(url).attempts...)
}

// active returns how many sessions of url are playing.
func (fc *fakeCams) active(url string) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.cam(url).active
}

// read is the ReadFunc. A stalled session ends after the read timeout, as
// stream.Read's does when the connection falls silent.
func (fc *fakeCams) read(ctx context.Context, o stream.Options) error {
	fc.mu.Lock()
	c := fc.cam(o.URL)
	now := time.Now()
	c.attempts = append(c.attempts, now)
	fault, drop := c.faultOf(now), c.drop
	if len(c.attempts) > maxFakeAttempts {
		// A supervisor that retries without any delay would spin at one
		// instant of the fake clock, where no timer fires and the test
		// hangs: past this many attempts the camera stops answering, so
		// that time moves and the test fails on what it counts.
		fault = fakeStall
	}
	if fault == fakeOK || fault == fakeStall {
		c.active++
		defer func() { fc.mu.Lock(); c.active--; fc.mu.Unlock() }()
	}
	fc.mu.Unlock()
	switch fault {
	case fakeDown:
		return errors.New("dial tcp 127.0.0.1:554: connect: connection refused")
	case fakeRefused:
		return fmt.Errorf("%w: DESCRIBE: 401 Unauthorized", stream.ErrRefused)
	case fakePanic:
		panic("fake camera: reader panic")
	}
	o.OnInfo(stream.Info{Codec: stream.CodecH264})
	readTimeout := o.ReadTimeout
	if o.LiveReadTimeout != nil {
		readTimeout = o.LiveReadTimeout.Get()
	}
	tick := time.NewTicker(fc.every)
	defer tick.Stop()
	lastData := now
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-drop:
			return errors.New("fake camera: connection closed by the camera")
		case now := <-tick.C:
			fc.mu.Lock()
			f := c.faultOf(now)
			fc.mu.Unlock()
			if f == fakeStall {
				if readTimeout > 0 && now.Sub(lastData) >= readTimeout {
					return fmt.Errorf("fake camera: no data for %s", readTimeout)
				}
				continue
			}
			lastData = now
			o.OnFrame(stream.Frame{Time: now, Size: 1000, Key: n%25 == 0})
		}
	}
}

// fakeHarness starts a Manager on a temporary store whose cameras are
// fakeCams, with an events.Queue as OnEvent if ev is withEvents. Call it
// inside synctest.Test, so that the Manager's goroutines and timers are
// the bubble's.
func fakeHarness(t *testing.T, set Settings, ev ...eventsOpt) (*harness, *fakeCams) {
	t.Helper()
	fc := newFakeCams()
	h := openHarness(t, t.TempDir(), len(ev) > 0 && bool(ev[0]), set, func(c *Config) { c.Read = fc.read })
	return h, fc
}

// eventsOpt says whether fakeHarness puts an events.Queue in front of the
// store.
type eventsOpt bool

const withEvents eventsOpt = true
