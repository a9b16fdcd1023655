// Package authguard slows and logs failed authentication, per client
// address, for camd's doors (the control API and the relay).
//
// A client that keeps failing is answered later and later, up to MaxDelay,
// so that guessing a password from one address costs seconds a try instead
// of microseconds. The failures are logged at most once per LogEvery, with
// how many were folded into that line, so that a guessing client cannot fill
// the log either.
//
// Caveats: the key is the client's IP address (an IPv6 client is keyed by
// its /64), so clients behind one NAT share a delay; the table is bounded
// (MaxClients), and when it is full the least recently failing address is
// forgotten. A success from an address forgets it at once.
package authguard

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults used where a Config field is zero.
const (
	DefaultFreeTries   = 5
	DefaultBaseDelay   = 100 * time.Millisecond
	DefaultMaxDelay    = 5 * time.Second
	DefaultForgetAfter = 10 * time.Minute
	DefaultLogEvery    = time.Second
	DefaultMaxClients  = 4096
)

// Config configures a Guard.
type Config struct {
	// Door names what is guarded in log lines ("relay", "control API").
	Door string
	// Logger receives the rate-limited WARN lines. It defaults to
	// slog.Default().
	Logger *slog.Logger
	// FreeTries is how many failures an address has before its answers are
	// delayed. It defaults to 5 (a person mistyping a password is not
	// slowed).
	FreeTries int
	// BaseDelay is the first delay; each further failure doubles it up to
	// MaxDelay. They default to 100 ms and 5 s.
	BaseDelay, MaxDelay time.Duration
	// ForgetAfter is how long an address is remembered after its last
	// failure. It defaults to 10 minutes.
	ForgetAfter time.Duration
	// LogEvery is the least time between two log lines. It defaults to 1 s.
	LogEvery time.Duration
	// MaxClients bounds the table of failing addresses. It defaults to 4096.
	MaxClients int

	// now is the clock; tests set it.
	now func() time.Time
}

type client struct {
	fails int
	last  time.Time
}

// Guard counts failures per client address. It is safe for concurrent use.
type Guard struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	clients   map[netip.Prefix]*client
	lastLog   time.Time
	unlogged  int          // failures since the last log line
	unloggedA netip.Prefix // the address of the latest of them
}

// New returns a Guard with cfg's zero fields defaulted.
func New(cfg Config) *Guard {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FreeTries <= 0 {
		cfg.FreeTries = DefaultFreeTries
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.ForgetAfter <= 0 {
		cfg.ForgetAfter = DefaultForgetAfter
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return &Guard{cfg: cfg, log: cfg.Logger, clients: map[netip.Prefix]*client{}}
}

// key maps "host:port" (or a bare host) to the client's key.
func key(remote string) netip.Prefix {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Failed records a failed attempt from remote ("host:port") and returns how
// long its answer should be delayed (0 for the first FreeTries failures).
func (g *Guard) Failed(remote string) time.Duration {
	k := key(remote)
	now := g.cfg.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.clients[k]
	if c == nil || now.Sub(c.last) > g.cfg.ForgetAfter {
		if c == nil && len(g.clients) >= g.cfg.MaxClients {
			g.evictLocked(now)
		}
		c = &client{}
		g.clients[k] = c
	}
	c.fails++
	c.last = now
	g.unlogged++
	g.unloggedA = k
	if now.Sub(g.lastLog) >= g.cfg.LogEvery {
		g.log.Warn(g.cfg.Door+": authentication failed", "client", k.Addr().String(),
			"failures", g.unlogged, "client_failures", c.fails)
		g.lastLog = now
		g.unlogged = 0
	}
	return g.delay(c.fails)
}

func (g *Guard) delay(fails int) time.Duration {
	over := fails - g.cfg.FreeTries
	if over <= 0 {
		return 0
	}
	d := g.cfg.BaseDelay
	for i := 1; i < over && d < g.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, g.cfg.MaxDelay)
}

// evictLocked forgets expired addresses, or else the least recently failing
// one.
func (g *Guard) evictLocked(now time.Time) {
	var oldest netip.Prefix
	var oldestT time.Time
	for k, c := range g.clients {
		if now.Sub(c.last) > g.cfg.ForgetAfter {
			delete(g.clients, k)
			continue
		}
		if oldestT.IsZero() || c.last.Before(oldestT) {
			oldest, oldestT = k, c.last
		}
	}
	if len(g.clients) >= g.cfg.MaxClients {
		delete(g.clients, oldest)
	}
}

// Succeeded forgets remote's failures.
func (g *Guard) Succeeded(remote string) {
	k := key(remote)
	g.mu.Lock()
	delete(g.clients, k)
	g.mu.Unlock()
}

// Failures returns how many failures remote has on record.
func (g *Guard) Failures(remote string) int {
	k := key(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.clients[k]; c != nil {
		return c.fails
	}
	return 0
}

// Wait records a failure from remote and sleeps for its delay, or until ctx
// is done. It is Failed plus the sleep, for callers that answer in the same
// goroutine.
func (g *Guard) Wait(ctx context.Context, remote string) {
	d := g.Failed(remote)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
