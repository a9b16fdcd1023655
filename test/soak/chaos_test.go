package soak

// The soak's load: simulated camera faults on a random schedule, relay
// readers and API clients that come and go, and raw connections that are
// opened and dropped. Every worker undoes what it did to camd's camera set
// before it returns (starts what it stopped, removes what it added), so
// that the rest state after each phase is comparable.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/test/camdproc"
)

// stats counts what the load did; safe for concurrent use.
type stats struct {
	mu       sync.Mutex
	faults   map[string]int
	apiCalls map[string]int
	// problems are API answers the load did not expect (first 20 kept),
	// and serverErrors the 5xx among them.
	problems     []string
	nProblems    int
	serverErrors int

	readers, readerFails, describeOnly atomic.Int64
	packets                            atomic.Int64
	rawConns, apiClients               atomic.Int64
	readerErrs                         map[string]int
}

func newStats() *stats {
	return &stats{faults: map[string]int{}, apiCalls: map[string]int{}, readerErrs: map[string]int{}}
}

func (s *stats) fault(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

func (s *stats) call(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiCalls[kind]++
	if err == nil {
		return
	}
	s.nProblems++
	var ae *api.Error
	if errors.As(err, &ae) && ae.StatusCode >= 500 {
		s.serverErrors++
	}
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf("%s: %v", kind, err))
	}
}

func (s *stats) readerErr(err error) {
	msg := err.Error()
	// Keep the kind of error, not the addresses in it.
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 60 {
		msg = msg[i+2:]
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	s.mu.Lock()
	s.readerErrs[msg]++
	s.mu.Unlock()
}

func renderCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, " %s=%d", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func (s *stats) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("faults: %s\nAPI calls (%d clients): %s; unexpected answers %d (5xx %d)\n"+
		"relay readers: %d sessions played (%d packets), %d stopped after DESCRIBE, %d failed (%s)\nraw connections opened and dropped: %d",
		renderCounts(s.faults), s.apiClients.Load(), renderCounts(s.apiCalls), s.nProblems, s.serverErrors,
		s.readers.Load(), s.packets.Load(), s.describeOnly.Load(), s.readerFails.Load(), renderCounts(s.readerErrs), s.rawConns.Load())
}

// load is one phase's workers.
type load struct {
	sim     *camdproc.Sim
	api     string
	relay   string
	cams    int
	st      *stats
	seed    uint64
	phase   uint64
	stopped sync.Map // base camera names some API client has stopped
}

// run runs every worker until ctx is done and they have cleaned up.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	spawn := func(stream uint64, f func(context.Context, *rand.Rand)) {
		wg.Add(1)
		rnd := rand.New(rand.NewPCG(l.seed, l.phase*1000+stream))
		go func() { defer wg.Done(); f(ctx, rnd) }()
	}
	spawn(1, l.faulter)
	for i := range 6 {
		spawn(10+uint64(i), l.reader)
	}
	for i := range 3 {
		spawn(20+uint64(i), func(ctx context.Context, rnd *rand.Rand) { l.apiClient(ctx, rnd, i) })
	}
	spawn(30, l.rawConns)
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// faulter gives a random camera a random fault about twice a second, for
// 1–12 s: stall, drop (one-shot or for a while), refuse, garbage or no
// video. About a fifth of the cameras are faulty at any time.
func (l *load) faulter(ctx context.Context, rnd *rand.Rand) {
	kinds := []string{"stall", "drop", "drop-timed", "refuse", "garbage", "no-video"}
	for sleepCtx(ctx, time.Duration(250+rnd.IntN(500))*time.Millisecond) {
		cam := 1 + rnd.IntN(l.cams)
		kind := kinds[rnd.IntN(len(kinds))]
		d := time.Duration(1000+rnd.IntN(11000)) * time.Millisecond
		fault := kind
		switch kind {
		case "drop":
			d = 0
		case "drop-timed":
			fault = "drop"
		}
		if err := l.sim.Fault(ctx, cam, fault, d); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.st.call("sim fault", err)
			continue
		}
		l.st.fault(kind)
	}
}

// reader plays a random camera from the relay for 1–8 s, or only asks for
// its description, again and again.
func (l *load) reader(ctx context.Context, rnd *rand.Rand) {
	for sleepCtx(ctx, time.Duration(rnd.IntN(500))*time.Millisecond) {
		url := fmt.Sprintf("rtsp://%s/cam%d", l.relay, 1+rnd.IntN(l.cams))
		hold := time.Duration(1000+rnd.IntN(7000)) * time.Millisecond
		describeOnly := rnd.IntN(5) == 0
		n, err := readOnce(ctx, url, hold, describeOnly)
		l.st.packets.Add(n)
		switch {
		case err != nil && ctx.Err() == nil:
			l.st.readerFails.Add(1)
			l.st.readerErr(err)
		case err != nil:
		case describeOnly:
			l.st.describeOnly.Add(1)
		default:
			l.st.readers.Add(1)
		}
	}
}

// readOnce is one relay reader: DESCRIBE, and unless describeOnly, SETUP
// and PLAY for hold. It returns the RTP packets received.
func readOnce(ctx context.Context, url string, hold time.Duration, describeOnly bool) (int64, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return 0, err
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 10 * time.Second, OnDecodeError: func(error) {}}
	if err := c.Start(); err != nil {
		return 0, err
	}
	defer c.Close()
	// Close the client as soon as the phase ends, whatever step it is in.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	desc, _, err := c.Describe(u)
	if err != nil {
		return 0, fmt.Errorf("describe: %w", err)
	}
	if describeOnly {
		return 0, nil
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return 0, fmt.Errorf("setup: %w", err)
	}
	var n atomic.Int64
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) { n.Add(1) })
	if _, err := c.Play(nil); err != nil {
		return 0, fmt.Errorf("play: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return n.Load(), nil
		}
		// The relay ends a reader's session when its camera goes away
		// (a stop, a restart): not a failure of the reader.
		_ = err
		return n.Load(), nil
	case <-time.After(hold):
	case <-ctx.Done():
	}
	c.Close()
	<-done
	return n.Load(), nil
}

// apiClient is a stream of API clients: each makes 1–8 requests of every
// kind, including writes (restarts, stops and starts of the 64 cameras,
// adds, updates and removes of extra ones) and requests it gives up on,
// then goes away.
func (l *load) apiClient(ctx context.Context, rnd *rand.Rand, w int) {
	var mine []string   // base cameras this worker stopped
	var extras []string // extra cameras this worker added
	seq := 0
	base := func() string { return fmt.Sprintf("cam%d", 1+rnd.IntN(l.cams)) }
	defer func() {
		// Leave the camera set as it was, even though the phase is over.
		cl := api.NewClient(l.api, "")
		defer cl.CloseIdleConnections()
		c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, n := range mine {
			_, err := cl.StartCamera(c, n)
			l.st.call("start", err)
			l.stopped.Delete(n)
		}
		for _, n := range extras {
			l.st.call("remove", cl.RemoveCamera(c, n))
		}
	}()
	for sleepCtx(ctx, time.Duration(50+rnd.IntN(450))*time.Millisecond) {
		cl := api.NewClient(l.api, "")
		l.st.apiClients.Add(1)
		for range 1 + rnd.IntN(8) {
			if ctx.Err() != nil {
				break
			}
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			var err error
			kind := ""
			switch r := rnd.IntN(24); {
			case r < 5:
				kind = "list"
				_, err = cl.Cameras(c)
			case r < 8:
				kind = "get"
				_, err = cl.Camera(c, base())
			case r < 10:
				kind = "status"
				_, err = cl.Status(c)
			case r < 11:
				kind = "metrics"
				_, err = cl.Do(c, http.MethodGet, "/metrics", nil)
			case r < 13:
				n := base()
				if _, stopped := l.stopped.Load(n); stopped {
					break // a restart would start it
				}
				kind = "restart"
				_, err = cl.RestartCamera(c, n)
			case r < 15:
				n := base()
				if len(mine) >= 2 {
					break
				}
				if _, loaded := l.stopped.LoadOrStore(n, w); loaded {
					break
				}
				kind = "stop"
				mine = append(mine, n)
				_, err = cl.StopCamera(c, n)
			case r < 17:
				if len(mine) == 0 {
					break
				}
				kind = "start"
				n := mine[0]
				mine = mine[1:]
				_, err = cl.StartCamera(c, n)
				l.stopped.Delete(n)
			case r < 19:
				if len(extras) >= 3 {
					break
				}
				kind = "add"
				seq++
				n := fmt.Sprintf("extra%d-%d", w, seq)
				_, err = cl.AddCamera(c, device.Spec{Name: n, URL: l.sim.URL(1 + rnd.IntN(l.cams))}, rnd.IntN(3) != 0)
				if err == nil {
					extras = append(extras, n)
				}
			case r < 20:
				if len(extras) == 0 {
					break
				}
				kind = "update"
				_, err = cl.UpdateCamera(c, extras[rnd.IntN(len(extras))], device.Spec{URL: l.sim.URL(1 + rnd.IntN(l.cams))})
			case r < 22:
				if len(extras) == 0 {
					break
				}
				kind = "remove"
				i := rnd.IntN(len(extras))
				err = cl.RemoveCamera(c, extras[i])
				if err == nil {
					extras = append(extras[:i], extras[i+1:]...)
				}
			default:
				// A client that gives up before the answer.
				kind = "abandoned"
				ac, acancel := context.WithTimeout(ctx, time.Duration(rnd.IntN(3000))*time.Microsecond)
				_, _ = cl.Cameras(ac)
				acancel()
			}
			cancel()
			if kind != "" {
				if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.As(err, new(*api.UnreachableError))) {
					err = nil // the phase ended under it
				}
				l.st.call(kind, err)
			}
		}
		cl.CloseIdleConnections()
	}
}

// rawConns opens connections to the API and the relay and drops them: at
// once, halfway through a request, or after an RTSP OPTIONS.
func (l *load) rawConns(ctx context.Context, rnd *rand.Rand) {
	for sleepCtx(ctx, time.Duration(200+rnd.IntN(400))*time.Millisecond) {
		addr := l.api
		if rnd.IntN(2) == 0 {
			addr = l.relay
		}
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			l.st.call("raw dial", err)
			continue
		}
		l.st.rawConns.Add(1)
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		switch rnd.IntN(3) {
		case 0:
		case 1:
			if addr == l.api {
				_, _ = io.WriteString(conn, "GET /api/v1/cameras HTTP/1.1\r\nHost: 127.0.0.1\r\n")
			} else {
				_, _ = io.WriteString(conn, "DESCRIBE rtsp://"+l.relay+"/cam1 RTSP/1.0\r\n")
			}
			sleepCtx(ctx, time.Duration(rnd.IntN(2000))*time.Millisecond)
		case 2:
			if addr == l.api {
				_, _ = io.WriteString(conn, "GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			} else {
				_, _ = io.WriteString(conn, "OPTIONS rtsp://"+l.relay+"/cam1 RTSP/1.0\r\nCSeq: 1\r\n\r\n")
			}
			_, _ = conn.Read(make([]byte, 512))
		}
		_ = conn.Close()
	}
}
