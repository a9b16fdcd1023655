package api

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns caps open client connections when Config.MaxConns is 0:
// far more than a CLI, a status page and a Prometheus scraper need, far
// fewer than the descriptors camd has to spare.
const DefaultMaxConns = 64

// MinTokenLen is the shortest API token accepted, in bytes. Generated
// tokens are 64 hex characters.
const MinTokenLen = 16

var (
	// ErrNoTokenOffLoopback is returned by New when the token is waived on
	// an address that is not loopback without AllowNoTokenOffLoopback.
	ErrNoTokenOffLoopback = errors.New("the token is waived on an address that is not loopback")
	// ErrTokenTooShort is returned for a token of fewer than MinTokenLen
	// bytes.
	ErrTokenTooShort = fmt.Errorf("the API token is shorter than %d bytes", MinTokenLen)
)

// listenOffLoopback reports whether a listen address is plainly not
// loopback: an IP literal that is not, or no host (every interface). A
// host name is not plain; New decides on the bound address.
func listenOffLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && !a.IsLoopback()
}

// hostCheck is the set of Host header values accepted when no token is
// required.
type hostCheck struct {
	listenHost string // lower case, no brackets; "" when none configured
	anyIP      bool   // listening on every interface: any IP literal
}

func newHostCheck(listen string) hostCheck {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return hostCheck{}
	}
	h := hostCheck{listenHost: normHost(host)}
	if a, err := netip.ParseAddr(h.listenHost); host == "" || (err == nil && a.IsUnspecified()) {
		h.anyIP = true
		h.listenHost = ""
	}
	return h
}

// normHost lower-cases a host, strips the brackets of an IPv6 literal and a
// trailing dot.
func normHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allowed reports whether a request's Host (with or without port) is one
// the API answers to. A DNS-rebinding page's requests carry the page's own
// name, which is none of these; an IP literal cannot be rebound. An empty
// Host (HTTP/1.0) is no browser's.
func (h hostCheck) allowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = normHost(host)
	if host == "localhost" || (h.listenHost != "" && host == h.listenHost) {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return a.Unmap().IsLoopback() || h.anyIP
}

// checkHost answers 421 to a request whose Host the API does not answer
// to, when no token is required (see the package comment).
func (s *Server) checkHost(next http.Handler) http.Handler {
	if s.requireToken {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts.allowed(r.Host) {
			writeError(w, http.StatusMisdirectedRequest,
				"the Host header names neither localhost, a loopback address nor the API's listen address; camd refuses it (DNS rebinding protection)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses state-changing requests that a browser marks as
// cross-origin, whatever their content type: the camera actions read no
// body, so a form post or a beacon would otherwise work.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: camd's API takes changes only from its own pages and from clients that are not browsers")
	}))
	return cop.Handler(next)
}

// limitListener closes connections over its cap as soon as they are
// accepted, and counts the open ones.
type limitListener struct {
	net.Listener
	max  int64
	log  *slog.Logger
	open atomic.Int64

	dropped  atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last WARN
}

// capWarnEvery is the least time between two "cap reached" lines.
const capWarnEvery = 10 * time.Second

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		_ = c.Close()
		n := l.dropped.Add(1)
		now := time.Now().UnixNano()
		if last := l.lastWarn.Load(); now-last >= int64(capWarnEvery) && l.lastWarn.CompareAndSwap(last, now) {
			l.log.Warn("control API: connection cap reached; closing new connections", "max_conns", l.max, "closed", n)
			l.dropped.Store(0)
		}
	}
}

// countedConn gives its slot back once, on its first Close.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite keeps net/http's half-close (it lets the client read an error
// answer before the connection goes) working through the wrapper.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// loadCert loads the API's certificate and key.
func loadCert(certFile, keyFile string) (*tls.Certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("api: TLS needs both a certificate and a key file")
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("api: TLS certificate %s and key %s: %s", certFile, keyFile, oneLine(err.Error()))
	}
	if _, err := x509.ParseCertificate(c.Certificate[0]); err != nil {
		return nil, fmt.Errorf("api: TLS certificate %s: %s", certFile, oneLine(err.Error()))
	}
	return &c, nil
}

// Fingerprint returns the SHA-256 of a DER certificate as colon-separated
// upper-case hex, the form "openssl x509 -fingerprint -sha256" prints.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// parseFingerprint accepts a SHA-256 fingerprint as hex, with or without
// colons or spaces, in either case, optionally prefixed "sha256:" or
// "SHA256 Fingerprint=".
func parseFingerprint(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if i := strings.LastIndexAny(t, "="); i >= 0 {
		t = t[i+1:]
	}
	t = strings.TrimPrefix(strings.TrimPrefix(t, "sha256:"), "SHA256:")
	t = strings.NewReplacer(":", "", " ", "", "-", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return nil, errors.New("fingerprint is not a SHA-256 in hex (64 hex digits, colons allowed)")
	}
	return b, nil
}
