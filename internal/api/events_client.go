package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/camd/camd/internal/events"
)

// EventQuery selects events for Client.Events and Client.StreamEvents;
// zero fields select everything.
type EventQuery struct {
	Camera string
	Kinds  []events.Kind
	Since  time.Time
	After  uint64
	Limit  int
	// Tail asks for the newest Limit events instead of the oldest.
	Tail bool
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	if q.Camera != "" {
		v.Set("camera", q.Camera)
	}
	if len(q.Kinds) > 0 {
		ks := make([]string, len(q.Kinds))
		for i, k := range q.Kinds {
			ks[i] = string(k)
		}
		v.Set("kind", strings.Join(ks, ","))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Tail {
		v.Set("tail", "1")
	}
	return v
}

// Events returns one page of the event history, oldest first.
func (c *Client) Events(ctx context.Context, q EventQuery) (EventsPage, error) {
	var out EventsPage
	p := "/api/v1/events"
	if v := q.values().Encode(); v != "" {
		p += "?" + v
	}
	return out, c.do(ctx, http.MethodGet, p, nil, &out)
}

// StreamEvents follows GET /api/v1/events/stream, calling fn for each
// event, until ctx is done, the stream ends or fn returns an error (which
// it returns). With last > 0 the stream first replays the events after id
// last (Last-Event-ID); with last 0, only new events come. q's After,
// Limit and Tail are not used.
func (c *Client) StreamEvents(ctx context.Context, q EventQuery, last uint64, fn func(events.Event) error) error {
	if c.err != nil {
		return c.err
	}
	q.After, q.Limit, q.Tail = 0, 0, false
	p := c.base + "/api/v1/events/stream"
	if v := q.values().Encode(); v != "" {
		p += "?" + v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p, nil)
	if err != nil {
		return fmt.Errorf("bad API address %s: %w", c.Base(), errors.New("not a valid URL"))
	}
	req.Header.Set("Accept", "text/event-stream")
	if last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// No overall timeout: a stream lasts; the server's keepalives and ctx
	// bound it.
	resp, err := (&http.Client{Transport: c.tr}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{URL: c.Base(), Reason: reason(err), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s answered %s", c.Base(), resp.Status)
		}
		return &Error{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	err = ReadSSE(resp.Body, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ReadSSE reads a Server-Sent Events stream of camd events from r, calling
// fn for each, until r ends (nil) or fails, or fn returns an error.
// Comments (keepalives) are skipped.
func ReadSSE(r io.Reader, fn func(events.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var e events.Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return fmt.Errorf("event stream: undecodable event: %w", err)
			}
			data.Reset()
			if err := fn(e); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return sc.Err()
}
