// Package api is camd's HTTP/JSON control API (/api/v1/...) and the client
// the CLI uses to talk to it.
//
// The server binds its listener in New, so that a busy port is reported at
// once as one clear line instead of failing later inside a goroutine. When
// the listener is not a loopback address every request must carry the
// bearer token (see EnsureToken); on loopback the token is optional unless
// Config.RequireToken forces it.
//
// Nothing the API returns, logs or reports in an error contains a camera
// password: views come redacted from the device.Manager, and submitted URLs
// are never echoed back.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/camd/camd/device"
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

	// baseCtx is every request's parent; cancelling it tells handlers that
	// outlived the graceful shutdown to give up.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	conns atomic.Int64
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
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen %s: %w", cfg.Listen, listenCause(err))
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		m:       cfg.Manager,
		ln:      ln,
		started: time.Now(),
	}
	if cfg.RequireToken != nil {
		s.requireToken = *cfg.RequireToken
	} else {
		s.requireToken = !isLoopback(ln.Addr())
	}
	if s.requireToken && cfg.Token == "" {
		_ = ln.Close()
		return nil, fmt.Errorf("api: listen %s: a token is required on a non-loopback address", cfg.Listen)
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
		ConnState:         s.connState,
		// Client misbehaviour (bad TLS hellos, broken headers) is noise at
		// info level; keep it for debugging.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
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

// OpenConns returns the number of open API connections.
func (s *Server) OpenConns() int { return int(s.conns.Load()) }

func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

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

	s.log.Info("control API listening", "addr", s.Addr(), "token_required", s.requireToken)
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
	return s.logged(s.canonicalAPI(mux)), nil
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

// auth checks the bearer token when one is required.
func (s *Server) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.requireToken && !s.tokenOK(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="camd"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API token (Authorization: Bearer TOKEN)")
			return
		}
		next(w, r)
	})
}

func (s *Server) tokenOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) == 1
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
