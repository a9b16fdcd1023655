package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
}

// NewClient returns a client for the daemon at addr ("127.0.0.1:7654",
// ":7654" or "http://host:port"). token may be empty on loopback.
func NewClient(addr, token string) *Client {
	tr := &http.Transport{
		Proxy:                 nil, // the daemon is local or on the LAN; never via a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	return &Client{
		base:  BaseURL(addr),
		token: token,
		tr:    tr,
		hc:    &http.Client{Transport: tr, Timeout: 60 * time.Second},
	}
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
	switch {
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
