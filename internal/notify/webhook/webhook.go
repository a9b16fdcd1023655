// Package webhook delivers camd's events to HTTP endpoints.
//
// Each event is one POST of its JSON (events.Event) with these headers:
//
//	Content-Type: application/json
//	Idempotency-Key: <event id>      (also X-Camd-Event-Id)
//	X-Camd-Event-Kind: <kind>
//	X-Camd-Signature: t=<unix seconds>,v1=<hex>   (only with a secret)
//
// where v1 is HMAC-SHA256 keyed with the secret over the bytes
// "<t>.<body>": the timestamp as sent, a full stop, then the raw body.
// A receiver recomputes it (Verify does), compares in constant time and
// refuses a timestamp far from its clock, which stops a replay.
//
// Every hook has its own goroutine and its own cursor in the event log:
// events are delivered one at a time, in order, and the cursor moves only
// after a 2xx answer, so a receiver sees every event at least once, across
// camd restarts too; it uses the idempotency key to drop repeats. Any
// other answer, or none within the request timeout, is retried with
// exponential backoff. The backlog of a hook that is down is the event
// history itself, which is bounded: events the history dropped before the
// hook got them are counted and logged.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/notify"
)

// Header names.
const (
	HeaderSignature   = "X-Camd-Signature"
	HeaderEventID     = "X-Camd-Event-Id"
	HeaderEventKind   = "X-Camd-Event-Kind"
	HeaderIdempotency = "Idempotency-Key"
)

// Defaults used where a Config field is zero.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 5 * time.Minute
)

// pageSize is how many events a hook reads from the log at a time.
const pageSize = 100

// maxPending bounds the count behind camd_webhook_pending_events.
const maxPending = 100000

// maxResponse is how much of an answer is read (and dropped) so that the
// connection can be reused.
const maxResponse = 64 << 10

// Errors.
var (
	// ErrBadHook is returned (wrapped, one line) by New for a hook that
	// cannot be used.
	ErrBadHook = errors.New("bad webhook")
	// ErrSignature is returned by Verify for a signature that does not
	// match.
	ErrSignature = errors.New("webhook signature does not match")
)

// Hook is one endpoint.
type Hook struct {
	// URL is http:// or https://.
	URL string
	// Kinds, if set, are the only event kinds sent.
	Kinds []events.Kind
	// Cameras, if set, are the only cameras whose events are sent (daemon
	// events, which have no camera, are then not sent).
	Cameras []string
	// Secret, if set, signs every request (X-Camd-Signature).
	Secret string
}

// Config configures a Notifier.
type Config struct {
	Hooks []Hook
	// Log is the event history. Required.
	Log events.Log
	// Timeout bounds each request, answer included. It defaults to
	// DefaultTimeout.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the delay between attempts. They
	// default to DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Version goes in the User-Agent.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Transport, if set, replaces the default HTTP transport (tests use
	// it for a private CA).
	Transport http.RoundTripper
}

// Notifier delivers events to every configured hook.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	hooks  []*hook
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  sync.Once
}

// hook is one endpoint's state. Its goroutine owns cur and the outage
// fields; the counters are read by the metrics.
type hook struct {
	Hook
	name    string // cursor name
	label   string // Label(URL), for logs and metrics
	kinds   map[events.Kind]bool
	cameras map[string]bool

	cur       atomic.Uint64
	delivered atomic.Uint64
	failures  atomic.Uint64
	dropped   atomic.Uint64
	failing   atomic.Bool
	ready     atomic.Bool // cur has been read from the log
}

// New checks the hooks. It starts nothing (Start does).
func New(cfg Config) (*Notifier, error) {
	if cfg.Log == nil {
		return nil, fmt.Errorf("%w: no event log", ErrBadHook)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 1
		t.ResponseHeaderTimeout = cfg.Timeout
		tr = t
	}
	n.client = &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// A redirect is an answer that is not 2xx: retried, not followed
		// (following would send the event, and its signature, elsewhere).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	seen := map[string]bool{}
	for i, h := range cfg.Hooks {
		label, err := CheckURL(h.URL)
		if err != nil {
			return nil, fmt.Errorf("%w: hook %d: %v", ErrBadHook, i+1, err)
		}
		if seen[h.URL] {
			return nil, fmt.Errorf("%w: hook %d: %s is listed twice", ErrBadHook, i+1, label)
		}
		seen[h.URL] = true
		hk := &hook{Hook: h, name: CursorName(h.URL), label: label}
		if len(h.Kinds) > 0 {
			hk.kinds = map[events.Kind]bool{}
			for _, k := range h.Kinds {
				hk.kinds[k] = true
			}
		}
		if len(h.Cameras) > 0 {
			hk.cameras = map[string]bool{}
			for _, c := range h.Cameras {
				hk.cameras[c] = true
			}
		}
		n.hooks = append(n.hooks, hk)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// CheckURL checks a hook URL and returns its Label.
func CheckURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("url: want http://HOST/PATH or https://HOST/PATH")
	}
	return Label(raw), nil
}

// Label names a hook in logs and metrics: its scheme and host, and a hash
// of the whole URL to tell apart hooks on one host. The rest is left out:
// a user, a query or a path (Slack's, for one) may hold a token.
func Label(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "invalid URL"
	}
	return u.Scheme + "://" + u.Host + "#" + strings.TrimPrefix(CursorName(raw), "webhook:")
}

// CursorName is the name of a hook's cursor in the event log: a hash of
// its URL, so that the store holds no credentials of it.
func CursorName(rawURL string) string {
	s := sha256.Sum256([]byte(rawURL))
	return "webhook:" + hex.EncodeToString(s[:4])
}

// Start starts one goroutine per hook. It never blocks.
func (n *Notifier) Start() {
	n.start.Do(func() {
		for _, h := range n.hooks {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.run(h)
			}()
		}
	})
}

// Close cancels the requests in flight and waits for the hooks'
// goroutines. What was not delivered is sent after the next start.
func (n *Notifier) Close() error {
	n.cancel()
	n.wg.Wait()
	n.client.CloseIdleConnections()
	return nil
}

func (h *hook) match(e events.Event) bool {
	if h.kinds != nil && !h.kinds[e.Kind] {
		return false
	}
	if h.cameras != nil && !h.cameras[e.Camera] {
		return false
	}
	return true
}

// run delivers the hook's events until Close.
func (n *Notifier) run(h *hook) {
	ctx := n.ctx
	log := n.log.With("hook", h.label)
	bo := notify.Backoff{Min: n.cfg.BackoffMin, Max: n.cfg.BackoffMax}
	var logErr error // the log's error last logged, so an outage logs once
	logFailed := func(what string, err error) bool {
		if logErr == nil {
			log.Error("webhook: "+what+"; retrying", "err", err)
		}
		logErr = err
		return notify.Sleep(ctx, bo.Next())
	}
	var cur uint64
	for {
		c, err := notify.StartCursor(n.cfg.Log, h.name)
		if err == nil {
			cur = c
			break
		}
		if !logFailed("reading its cursor failed", err) {
			return
		}
	}
	h.cur.Store(cur)
	h.ready.Store(true)
	saved := cur
	defer func() {
		// Events skipped by the filter since the last delivery.
		if cur != saved {
			_ = n.cfg.Log.SetCursor(h.name, cur)
		}
	}()
	for {
		changed := n.cfg.Log.Changed()
		evs, err := n.cfg.Log.After(cur, events.Filter{}, pageSize)
		if err != nil {
			if !logFailed("reading the event log failed", err) {
				return
			}
			continue
		}
		if logErr != nil {
			log.Info("webhook: event log readable again")
			logErr = nil
		}
		bo.Reset()
		if len(evs) == 0 {
			if cur != saved && n.cfg.Log.SetCursor(h.name, cur) == nil {
				saved = cur
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
			continue
		}
		if first := evs[0].ID; first > cur+1 && cur > 0 {
			lost := first - cur - 1
			h.dropped.Add(lost)
			log.Warn("webhook: the event history dropped events before this hook got them (it was down longer than the history keeps)",
				"lost", lost, "first_lost", cur+1, "last_lost", first-1)
		}
		for _, e := range evs {
			if h.match(e) {
				if !n.deliver(ctx, h, log, e) {
					return
				}
				if err := n.cfg.Log.SetCursor(h.name, e.ID); err == nil {
					saved = e.ID
				} else {
					log.Warn("webhook: saving its cursor failed; the event may be sent again after a restart", "id", e.ID, "err", err)
				}
			}
			cur = e.ID
			h.cur.Store(cur)
		}
	}
}

// deliver posts e until a 2xx answer; false if ctx ended first. An outage
// is logged when it begins and when it ends, not at every attempt.
func (n *Notifier) deliver(ctx context.Context, h *hook, log *slog.Logger, e events.Event) bool {
	body, err := json.Marshal(e)
	if err != nil { // an Event always marshals
		log.Error("webhook: event does not marshal; skipped", "id", e.ID, "err", err)
		return true
	}
	bo := notify.Backoff{Min: n.cfg.BackoffMin, Max: n.cfg.BackoffMax}
	var since time.Time
	attempts := 0
	for {
		attempts++
		err := n.post(ctx, h, e, body)
		if err == nil {
			h.delivered.Add(1)
			if h.failing.Load() {
				h.failing.Store(false)
				log.Info("webhook: delivering again", "down_for", time.Since(since).Round(time.Second).String(), "attempts", attempts)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		h.failures.Add(1)
		if !h.failing.Load() {
			h.failing.Store(true)
			since = time.Now()
			log.Warn("webhook: delivery failing; retrying with backoff until it answers 2xx (logged again when it recovers)",
				"id", e.ID, "err", err)
		}
		if !notify.Sleep(ctx, bo.Next()) {
			return false
		}
	}
}

// post sends one attempt.
func (n *Notifier) post(ctx context.Context, h *hook, e events.Event, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	id := strconv.FormatUint(e.ID, 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "camd/"+n.cfg.Version)
	req.Header.Set(HeaderIdempotency, id)
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderEventKind, string(e.Kind))
	if h.Secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(h.Secret), time.Now(), body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, query and all; the label is logged.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// Sign returns the X-Camd-Signature value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks an X-Camd-Signature value against body: the HMAC must
// match and the timestamp be within tolerance of now (0: not checked).
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=UNIX,v1=HEX", ErrSignature)
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: timestamp %s is too far from now", ErrSignature, time.Unix(sec, 0).UTC().Format(time.RFC3339))
		}
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignature
}
