package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Health is the daemon's answer on /healthz.
type Health struct {
	// StatusCode is the HTTP status: 200 when healthy, 503 when not.
	StatusCode int `json:"http_status"`
	// Status is "ok" or "unhealthy".
	Status string `json:"status"`
	// Reason says why it is not ok.
	Reason string `json:"reason,omitempty"`
	// Degraded is set while camd holds far more descriptors than expected
	// (still healthy).
	Degraded bool `json:"degraded,omitempty"`
	// DegradedReason says why it is degraded.
	DegradedReason string `json:"degraded_reason,omitempty"`
	// LastLoopAgeSeconds is how long ago the supervision loop last ran.
	LastLoopAgeSeconds float64 `json:"last_loop_age_seconds,omitempty"`
}

// OK reports whether the daemon said it is healthy.
func (h Health) OK() bool { return h.StatusCode == http.StatusOK && h.Status == "ok" }

// Health asks the daemon's /healthz, which needs no token (the client's is
// sent if it has one). An answer other than 200 or 503 with a health body
// is an *Error; a daemon that cannot be reached is an *UnreachableError.
func (c *Client) Health(ctx context.Context) (Health, error) {
	if c.err != nil {
		return Health{}, c.err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return Health{}, fmt.Errorf("bad API address %s: %w", c.Base(), errors.New("not a valid URL"))
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Health{}, ctx.Err()
		}
		return Health{}, &UnreachableError{URL: c.Base(), Reason: reason(err), Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Health{}, fmt.Errorf("read response from %s: %w", c.Base(), err)
	}
	h := Health{StatusCode: resp.StatusCode}
	if (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable) ||
		json.Unmarshal(b, &h) != nil || h.Status == "" {
		return Health{}, &Error{StatusCode: resp.StatusCode, Message: fmt.Sprintf("%s/healthz answered %s, not a health status", c.Base(), resp.Status)}
	}
	return h, nil
}
