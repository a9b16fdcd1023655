// Package api is camd's HTTP/JSON control API (/api/v1/...) and the client
// the CLI uses to talk to it.
//
// The server binds its listener in New, so that a busy port is reported at
// once as one clear line instead of failing later inside a goroutine.
//
// Every request passes these doors, in order, on every route (the API,
// /metrics, /healthz, /readyz and the status page alike):
//
//   - Connections: at most Config.MaxConns client connections are open at
//     once; one over the cap is closed as soon as it is accepted.
//   - TLS: with Config.TLSCert and Config.TLSKey the API speaks only HTTPS
//     (a plain-HTTP request gets Go's 400 "Client sent an HTTP request to
//     an HTTPS server"). Off loopback without TLS, Run logs a WARN.
//   - Host: when no token is required, the Host header must name
//     localhost, a loopback address or the listen host (any IP address when
//     listening on all interfaces), or the answer is 421. This defeats DNS
//     rebinding, where a web page's own name resolves to 127.0.0.1. With a
//     token required any Host is accepted: a rebinding page cannot read the
//     token, so the token is the guard.
//   - Origin: a POST, PUT, PATCH or DELETE that a browser marks as
//     cross-origin (Sec-Fetch-Site, or an Origin that is not the Host) is
//     refused with 403 (http.CrossOriginProtection), whatever its content
//     type. The CLI sends neither header; the status page's fetches are
//     same-origin.
//   - Token: when the listener is not a loopback address every request but
//     /healthz, /readyz and the status page must carry the bearer token (see
//     EnsureToken); on loopback it is optional unless Config.RequireToken
//     forces it. Waiving it off loopback also needs
//     Config.AllowNoTokenOffLoopback, and Run then logs a WARN. Tokens are
//     at least MinTokenLen bytes. A wrong token is logged (at most once a
//     second) and answered later and later per client address
//     (internal/authguard); a request with no token at all is not counted.
//
// Nothing the API returns, logs or reports in an error contains a camera
// password: views come redacted from the device.Manager, and submitted URLs
// are never echoed back.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/internal/authguard"
)

// DefaultListen is the API's address when Config.Listen is empty.
const DefaultListen = "127.0.0.1:7654"

// DefaultMaxBodyBytes bounds a request body when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 10

// Config configures a Server.
type Config struct {
	// Manager is the camera registry the API controls. Required.
	Manager *device.Manager
	// Listen is the TCP address. It defaults to "127.0.0.1:7654".
	Listen string
	// Token is the bearer token. It is required on every request when
	// RequireToken says so.
	Token string
	// RequireToken forces (true) or waives (false) the token. When nil the
	// token is required iff the bound address is not a loopback address.
	RequireToken *bool
	// Version is reported by GET /api/v1/status.
	Version string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Mount holds extra handlers behind the same authentication as the API,
	// keyed by http.ServeMux pattern (e.g. "/metrics").
	Mount map[string]http.Handler
	// PublicMount holds extra handlers that need no token (e.g. "/healthz",
	// "/readyz", "/"). They must reveal no camera URL.
	PublicMount map[string]http.Handler
	// RelayStats, if set, is included as "relay" in each camera's JSON.
	RelayStats func(name string) any
	// StatusExtra, if set, adds fields to GET /api/v1/status. Its keys must
	// not collide with the built-in ones (those win).
	StatusExtra func() map[string]any
	// MaxBodyBytes bounds request bodies. It defaults to 64 KiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds how long Run lets in-flight requests finish
	// once its context is done; then their connections are closed and
	// their contexts cancelled. It defaults to 5 seconds.
	ShutdownTimeout time.Duration
	// AllowNoTokenOffLoopback lets RequireToken false stand on an address
	// that is not loopback; without it New refuses with
	// ErrNoTokenOffLoopback. It defaults to false.
	AllowNoTokenOffLoopback bool
	// TLSCert and TLSKey are PEM files; with both set the API speaks only
	// HTTPS. They default to "" (plain HTTP).
	TLSCert, TLSKey string
	// MaxConns caps open client connections. It defaults to
	// DefaultMaxConns.
	MaxConns int
	// Events, if set, is the event history behind GET /api/v1/events and
	// the Server-Sent Events stream GET /api/v1/events/stream.
	Events EventLog
	// EventKeepalive is how often an idle event stream sends a comment. It
	// defaults to DefaultEventKeepalive (15 seconds).
	EventKeepalive time.Duration
	// AuthGuard tunes how failed authentication is slowed and logged; its
	// Door and Logger are filled in. The zero value is authguard's
	// defaults.
	AuthGuard authguard.Config
}

// Server is the control API server.
type Server struct {
	cfg          Config
	log          *slog.Logger
	m            *device.Manager
	ln           net.Listener
	srv          *http.Server
	requireToken bool
	tokenHash    [sha256.Size]byte
	started      time.Time
	offLoopback  bool
	hosts        hostCheck
	guard        *authguard.Guard
	tlsCert      *tls.Certificate // nil without TLS
	limit        *limitListener

	// baseCtx is every request's parent; cancelling it tells handlers that
	// outlived the graceful shutdown to give up.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	// streamsDone is closed when shutdown begins: event streams never go
	// idle, so they end then rather than hold up the graceful shutdown.
	streamsDone chan struct{}

	// handlers counts running handlers; hmu and stopping make every Add
	// happen before Run's Wait, even for a request that a connection
	// goroutine dispatches after a forced Close.
	hmu      sync.Mutex
	stopping bool
	handlers sync.WaitGroup

	runMu  sync.Mutex
	ran    bool
	closed bool
}

// New validates cfg and binds the listener; call Run to serve.
func New(cfg Config) (*Server, error) {
	if cfg.Manager == nil {
		return nil, errors.New("api: a device.Manager is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.EventKeepalive <= 0 {
		cfg.EventKeepalive = DefaultEventKeepalive
	}
	if cfg.Token != "" && len(cfg.Token) < MinTokenLen {
		return nil, fmt.Errorf("api: %w", ErrTokenTooShort)
	}
	waived := cfg.RequireToken != nil && !*cfg.RequireToken
	// An address that is plainly not loopback is refused before it is
	// bound; a host name is known only once bound.
	if waived && !cfg.AllowNoTokenOffLoopback && listenOffLoopback(cfg.Listen) {
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Listen, ErrNoTokenOffLoopback)
	}
	var cert *tls.Certificate
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		c, err := loadCert(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		cert = c
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Listen, listenCause(err))
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger,
		m:           cfg.Manager,
		ln:          ln,
		started:     time.Now(),
		offLoopback: !isLoopback(ln.Addr()),
		tlsCert:     cert,
		streamsDone: make(chan struct{}),
	}
	if cfg.RequireToken != nil {
		s.requireToken = *cfg.RequireToken
	} else {
		s.requireToken = s.offLoopback
	}
	if s.requireToken && cfg.Token == "" {
		_ = ln.Close()
		return nil, fmt.Errorf("api: listen %s: a token is required on a non-loopback address", cfg.Listen)
	}
	if !s.requireToken && s.offLoopback && !cfg.AllowNoTokenOffLoopback {
		_ = ln.Close()
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Listen, ErrNoTokenOffLoopback)
	}
	s.hosts = newHostCheck(cfg.Listen)
	gcfg := cfg.AuthGuard
	gcfg.Door = "control API"
	gcfg.Logger = s.log
	s.guard = authguard.New(gcfg)
	s.limit = &limitListener{Listener: ln, max: int64(cfg.MaxConns), log: s.log}
	s.ln = s.limit
	if cert != nil {
		s.ln = tls.NewListener(s.limit, &tls.Config{
			Certificates: []tls.Certificate{*cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		})
	}
	// Comparing fixed-size hashes keeps the comparison constant-time even
	// in the token's length.
	s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())

	h, err := s.routes()
	if err != nil {
		s.cancelBase()
		_ = ln.Close()
		return nil, err
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		// Client misbehaviour (bad TLS hellos, broken headers) is noise at
		// info level; keep it for debugging.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv.RegisterOnShutdown(func() { close(s.streamsDone) })
	return s, nil
}

// listenCause strips the "listen tcp ADDR: bind:" layers of a listen error
// so that the message reads "api: listen ADDR: address already in use",
// while errors.Is(err, syscall.EADDRINUSE) still holds.
func listenCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) && sc.Err != nil {
		err = sc.Err
	}
	return err
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Addr returns the bound address, e.g. "127.0.0.1:7654".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// TokenRequired reports whether requests need the bearer token.
func (s *Server) TokenRequired() bool { return s.requireToken }

// URL returns the API's base URL, e.g. "https://127.0.0.1:7654".
func (s *Server) URL() string {
	if s.tlsCert != nil {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// TLSFingerprint returns the SHA-256 fingerprint of the API's certificate
// (as Fingerprint formats it), or "" without TLS.
func (s *Server) TLSFingerprint() string {
	if s.tlsCert == nil {
		return ""
	}
	return Fingerprint(s.tlsCert.Certificate[0])
}

// OpenConns returns the number of open client connections: accepted and
// not yet closed, whatever state HTTP has them in. Connections refused over
// the cap are not counted; they are closed as soon as they are accepted.
func (s *Server) OpenConns() int { return int(s.limit.open.Load()) }

// Run serves until ctx is done, then shuts the server down: in-flight
// requests get a few seconds, after which their connections are closed and
// their contexts cancelled. It returns once every handler has returned. It
// may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.runMu.Lock()
	if s.ran || s.closed {
		s.runMu.Unlock()
		return errors.New("api: server already ran or was closed")
	}
	s.ran = true
	s.runMu.Unlock()

	args := []any{"url", s.URL(), "token_required", s.requireToken, "max_conns", s.cfg.MaxConns}
	if s.tlsCert != nil {
		args = append(args, "tls_sha256", s.TLSFingerprint())
	}
	s.log.Info("control API listening", args...)
	if !s.requireToken && s.offLoopback {
		s.log.Warn("control API: no token is required off loopback (allow_no_token_off_loopback): anyone who can reach it controls camd", "addr", s.Addr())
	}
	if s.offLoopback && s.tlsCert == nil {
		s.log.Warn("control API: off loopback without TLS, so the token and camera data cross the network in clear; set api.tls_cert and api.tls_key")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.srv.Serve(s.ln) }()

	var err error
	select {
	case err = <-serveErr:
		// Serve failed on its own (the listener broke); nothing left to
		// drain but handlers.
		err = fmt.Errorf("api: serve: %w", err)
		_ = s.srv.Close()
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		if serr := s.srv.Shutdown(sctx); serr != nil {
			s.log.Warn("control API: requests still running at shutdown; closing their connections", "err", serr)
			_ = s.srv.Close()
		}
		cancel()
		<-serveErr
	}
	s.cancelBase()
	s.hmu.Lock()
	s.stopping = true
	s.hmu.Unlock()
	s.handlers.Wait()
	s.log.Info("control API stopped")
	return err
}

// Close releases the listener of a Server whose Run was never called (a
// daemon that failed to start after New). After Run it does nothing.
func (s *Server) Close() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.ran || s.closed {
		return nil
	}
	s.closed = true
	s.cancelBase()
	return s.ln.Close()
}

// routes builds the handler tree. ServeMux panics on conflicting patterns
// (a mount colliding with an API route); that is turned into an error.
func (s *Server) routes() (h http.Handler, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("api: %v", r)
		}
	}()
	mux := http.NewServeMux()
	api := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, s.auth(fn)) }

	api("GET /api/v1/cameras", s.listCameras)
	api("POST /api/v1/cameras", s.addCamera)
	api("/api/v1/cameras", s.notAllowed("GET, HEAD, POST"))
	api("GET /api/v1/cameras/{name}", s.getCamera)
	api("PUT /api/v1/cameras/{name}", s.putCamera)
	api("PATCH /api/v1/cameras/{name}", s.patchCamera)
	api("DELETE /api/v1/cameras/{name}", s.deleteCamera)
	api("/api/v1/cameras/{name}", s.notAllowed("GET, HEAD, PUT, PATCH, DELETE"))
	for _, action := range []string{"start", "stop", "restart"} {
		api("POST /api/v1/cameras/{name}/"+action, s.cameraAction(action))
		api("/api/v1/cameras/{name}/"+action, s.notAllowed("POST"))
	}
	api("GET /api/v1/status", s.status)
	api("/api/v1/status", s.notAllowed("GET, HEAD"))
	if s.cfg.Events != nil {
		api("GET /api/v1/events", s.listEvents)
		api("/api/v1/events", s.notAllowed("GET, HEAD"))
		api("GET /api/v1/events/stream", s.streamEvents)
		api("/api/v1/events/stream", s.notAllowed("GET"))
	}
	// Unknown API routes answer in JSON, after authentication so that
	// probing without a token learns nothing about which routes exist.
	// "/api" is here too: without it ServeMux redirects it to "/api/".
	api("/api/", s.notFound)
	api("/api", s.notFound)

	for pattern, h := range s.cfg.Mount {
		mux.Handle(pattern, s.auth(h.ServeHTTP))
	}
	rootTaken := false
	for pattern, h := range s.cfg.PublicMount {
		if pattern == "/" {
			rootTaken = true
		}
		mux.Handle(pattern, h)
	}
	if !rootTaken {
		mux.HandleFunc("/", s.notFound)
	}
	return s.logged(s.checkHost(s.crossOrigin(s.canonicalAPI(mux)))), nil
}

// canonicalAPI answers an API path that is not in clean form (a "." or ".."
// segment, an empty one) as a route that does not exist. ServeMux would
// redirect it to its clean form with an empty body, which an API client
// cannot read as an error, and which would turn "cameras/x/../y" into a
// request about y. No camera's name makes such a path: names start with a
// letter or digit. Other paths (the status page) keep ServeMux's redirect.
func (s *Server) canonicalAPI(mux http.Handler) http.Handler {
	notFound := s.auth(s.notFound)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.Method != http.MethodConnect && (p == "/api" || strings.HasPrefix(p, "/api/")) && !isCleanPath(p) {
			notFound.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// isCleanPath reports whether ServeMux would leave p as it is: path.Clean
// leaves it alone, except for one trailing slash, which is kept.
func isCleanPath(p string) bool {
	if strings.HasSuffix(p, "/") && p != "/" {
		p = p[:len(p)-1]
	}
	return path.Clean(p) == p
}

// statusRecorder remembers the status code for the request log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer (flushing in
// mounted handlers).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logged counts the handler for Run's final wait and logs the request at
// debug level. Only the path is logged: queries are not used by the API and
// could carry anything.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hmu.Lock()
		if s.stopping {
			s.hmu.Unlock()
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusServiceUnavailable, "camd is shutting down")
			return
		}
		s.handlers.Add(1)
		s.hmu.Unlock()
		defer s.handlers.Done()
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.code,
				"duration", time.Since(start), "remote", r.RemoteAddr)
		}
	})
}

// auth checks the bearer token when one is required. A wrong token is
// logged and slowed per client address; a request that carries none is
// not, as it guesses nothing (the status page asks without one first).
func (s *Server) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.requireToken {
			ok, presented := s.tokenOK(r)
			if !ok {
				if presented {
					s.guard.Wait(r.Context(), r.RemoteAddr)
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="camd"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong API token (Authorization: Bearer TOKEN)")
				return
			}
			s.guard.Succeeded(r.RemoteAddr)
		}
		next(w, r)
	})
}

// tokenOK reports whether r carries the token, and whether it carries an
// Authorization header at all.
func (s *Server) tokenOK(r *http.Request) (ok, presented bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return false, false
	}
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false, true
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1, true
}

func (s *Server) notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "no such route")
}

func (s *Server) notAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
	}
}
