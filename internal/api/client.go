package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/camd/camd/device"
	"github.com/camd/camd/stream"
)

// maxResponseBytes bounds what the client reads from the daemon; a list of
// thousands of cameras fits with room to spare.
const maxResponseBytes = 64 << 20

// Client talks to a camd daemon's control API.
type Client struct {
	base  string
	token string
	tr    *http.Transport
	hc    *http.Client
	err   error // a TLS setting that could not be used; every call fails with it
}

// NewClient returns a client for the daemon at addr ("127.0.0.1:7654",
// ":7654", "http://host:port" or "https://host:port"). token may be empty
// on loopback. Over https it trusts the system's CAs.
func NewClient(addr, token string) *Client {
	c, _ := NewClientTLS(addr, token, ClientTLS{})
	return c
}

// ClientTLS says which server certificate an https client accepts.
type ClientTLS struct {
	// CAFile is a PEM file of CA (or self-signed) certificates trusted
	// instead of the system's.
	CAFile string
	// Fingerprint pins the server certificate's SHA-256 (hex, colons
	// optional). Any certificate with that hash is accepted, whatever its
	// issuer, names and dates; with CAFile as well, both must hold.
	Fingerprint string
}

// ErrFingerprint says the daemon's certificate is not the pinned one.
var ErrFingerprint = errors.New("the daemon's TLS certificate does not match the pinned fingerprint")

// NewClientTLS is NewClient with the server certificate checked as t says.
// If t cannot be used (an unreadable CA file, a malformed fingerprint) it
// returns that error, and also a Client whose every call fails with it.
func NewClientTLS(addr, token string, t ClientTLS) (*Client, error) {
	tr := &http.Transport{
		Proxy:                 nil, // the daemon is local or on the LAN; never via a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	c := &Client{
		base:  BaseURL(addr),
		token: token,
		tr:    tr,
		hc:    &http.Client{Transport: tr, Timeout: 60 * time.Second},
	}
	tc, err := t.config()
	if err != nil {
		c.err = err
		return c, err
	}
	tr.TLSClientConfig = tc
	return c, nil
}

// config builds the TLS client config, nil for the defaults.
func (t ClientTLS) config() (*tls.Config, error) {
	if t.CAFile == "" && t.Fingerprint == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.Fingerprint == "" {
		return tc, nil
	}
	pin, err := parseFingerprint(t.Fingerprint)
	if err != nil {
		return nil, err
	}
	roots := tc.RootCAs
	// The pin replaces the usual chain and name checks, which a
	// self-signed certificate for an address would fail; a CA given as
	// well is checked by hand below.
	tc.InsecureSkipVerify = true
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return ErrFingerprint
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return ErrFingerprint
		}
		if roots == nil {
			return nil
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, DNSName: cs.ServerName,
		})
		return err
	}
	return tc, nil
}

// BaseURL turns an address as given to --api into the API's base URL.
func BaseURL(addr string) string {
	addr = strings.TrimRight(strings.TrimSpace(addr), "/")
	if addr == "" {
		addr = DefaultListen
	}
	if !strings.Contains(addr, "://") {
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		addr = "http://" + addr
	}
	return addr
}

// Base returns the base URL the client talks to, with any password hidden.
func (c *Client) Base() string { return stream.RedactURL(c.base) }

// CloseIdleConnections closes kept-alive connections to the daemon.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Error is an error response from the API.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the API's one-line error.
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is maps status codes to the device package's errors, so that callers can
// write errors.Is(err, device.ErrNotFound) against a remote daemon too.
func (e *Error) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusNotFound:
		return target == device.ErrNotFound && strings.HasPrefix(e.Message, device.ErrNotFound.Error())
	case http.StatusConflict:
		return target == device.ErrExists
	case http.StatusBadRequest:
		return target == device.ErrInvalid && strings.HasPrefix(e.Message, device.ErrInvalid.Error())
	case http.StatusServiceUnavailable:
		return target == device.ErrClosed
	}
	return false
}

// UnreachableError says the daemon could not be reached at all.
type UnreachableError struct {
	// URL is the base URL tried, password hidden.
	URL string
	// Reason is short: "connection refused", "timed out", ...
	Reason string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the camd daemon at %s (%s)", e.URL, e.Reason)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func reason(err error) string {
	var ne net.Error
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrFingerprint):
		return ErrFingerprint.Error()
	case errors.As(err, &ua):
		return "its TLS certificate is signed by an authority not trusted here"
	case errors.As(err, &hn):
		return "its TLS certificate is not for this address: " + hn.Error()
	case errors.As(err, &ci):
		return "its TLS certificate is not valid: " + ci.Error()
	case errors.As(err, &rh), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "it does not speak HTTPS; use http://"
	case errors.Is(err, syscall.ECONNREFUSED),
		// Windows reports WSAECONNREFUSED, which is not syscall.ECONNREFUSED.
		strings.Contains(err.Error(), "actively refused"):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "unknown host"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// Do sends a request to path ("/api/v1/...") with body (nil for none)
// encoded as JSON, and returns the response body of a 2xx answer. Other
// answers are *Error; a daemon that cannot be reached is *UnreachableError.
func (c *Client) Do(ctx context.Context, method, path string, body any) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("bad API address %s: %w", c.Base(), errors.New("not a valid URL"))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, ctx.Err()
		}
		// A deadline that passed is the daemon not answering: report it
		// like any other unreachable daemon, with the address.
		return nil, &UnreachableError{URL: c.Base(), Reason: reason(err), Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("read response from %s: %w", c.Base(), err)
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s answered %s", c.Base(), resp.Status)
			// Go's TLS server answers plain HTTP with this 400.
			if resp.StatusCode == http.StatusBadRequest && bytes.Contains(b, []byte("HTTP request to an HTTPS server")) {
				eb.Error = fmt.Sprintf("the daemon at %s speaks HTTPS; use %s", c.Base(), strings.Replace(c.Base(), "http://", "https://", 1))
			}
		}
		return nil, &Error{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	return b, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	b, err := c.Do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode response from %s: %w", c.Base(), err)
	}
	return nil
}

// CameraPath returns the API path of a camera, or of one of its actions.
func CameraPath(name string, action ...string) string {
	p := "/api/v1/cameras/" + url.PathEscape(name)
	for _, a := range action {
		p += "/" + a
	}
	return p
}

// Cameras lists every camera, sorted by name.
func (c *Client) Cameras(ctx context.Context) ([]CameraJSON, error) {
	var out []CameraJSON
	return out, c.do(ctx, http.MethodGet, "/api/v1/cameras", nil, &out)
}

// Camera returns one camera.
func (c *Client) Camera(ctx context.Context, name string) (CameraJSON, error) {
	var out CameraJSON
	return out, c.do(ctx, http.MethodGet, CameraPath(name), nil, &out)
}

// AddCamera adds a camera and, if start, starts it.
func (c *Client) AddCamera(ctx context.Context, spec device.Spec, start bool) (CameraJSON, error) {
	var out CameraJSON
	req := AddRequest{Name: spec.Name, URL: spec.URL, Transport: spec.Transport, Start: &start}
	return out, c.do(ctx, http.MethodPost, "/api/v1/cameras", req, &out)
}

// UpdateCamera replaces a camera's name, URL and transport (PUT); an empty
// spec.Name keeps the name.
func (c *Client) UpdateCamera(ctx context.Context, name string, spec device.Spec) (CameraJSON, error) {
	var out CameraJSON
	req := UpdateRequest{URL: &spec.URL}
	if spec.Name != "" {
		req.Name = &spec.Name
	}
	if spec.Transport != "" {
		req.Transport = &spec.Transport
	}
	return out, c.do(ctx, http.MethodPut, CameraPath(name), req, &out)
}

// RemoveCamera stops a camera and deletes it.
func (c *Client) RemoveCamera(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, CameraPath(name), nil, nil)
}

// StartCamera starts a camera.
func (c *Client) StartCamera(ctx context.Context, name string) (CameraJSON, error) {
	var out CameraJSON
	return out, c.do(ctx, http.MethodPost, CameraPath(name, "start"), nil, &out)
}

// StopCamera stops a camera; it stays stopped across daemon restarts.
func (c *Client) StopCamera(ctx context.Context, name string) (CameraJSON, error) {
	var out CameraJSON
	return out, c.do(ctx, http.MethodPost, CameraPath(name, "stop"), nil, &out)
}

// RestartCamera reconnects a camera from scratch.
func (c *Client) RestartCamera(ctx context.Context, name string) (CameraJSON, error) {
	var out CameraJSON
	return out, c.do(ctx, http.MethodPost, CameraPath(name, "restart"), nil, &out)
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (DaemonStatus, error) {
	var out DaemonStatus
	return out, c.do(ctx, http.MethodGet, "/api/v1/status", nil, &out)
}
