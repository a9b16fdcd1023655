package main

// "camd events": the event history, and with --follow the live stream.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/camd/camd/internal/api"
	"github.com/camd/camd/internal/events"
	"github.com/camd/camd/internal/printable"
)

// eventsRetry bounds the pause before --follow reconnects.
const (
	eventsRetryMin = 500 * time.Millisecond
	eventsRetryMax = 10 * time.Second
)

// newEventsCmd is "camd events".
func newEventsCmd() *cobra.Command {
	var c cliConn
	var o eventsOpts
	cmd := &cobra.Command{
		Use:   "events",
		Short: "show camera and daemon events; --follow for live ones",
		Long: `Prints the newest N events of the history (camera down and up, starts
and stops, daemon events), oldest first. --follow then keeps printing
events as they happen, reconnecting if the daemon goes away, until
interrupted. --json prints one JSON object per line.

` + connHelp,
		Example: `  camd events
  camd events --follow --camera door
  camd events --kind down,up --since 24h --json`,
		Args: noArgs("events (use --camera NAME)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.n < 0 || o.n > api.MaxEventLimit {
				return usagef("-n %d is outside 0 to %d", o.n, api.MaxEventLimit)
			}
			return runEvents(cmd.Context(), &c, o, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	addConnFlags(cmd, &c)
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing events as they happen")
	f.StringVar(&o.camera, "camera", "", "only this camera's events")
	f.StringVar(&o.kind, "kind", "", "only these kinds (comma-separated: down,up,…)")
	f.StringVar(&o.since, "since", "", "only events since this time (RFC 3339) or this long ago (24h)")
	f.IntVarP(&o.n, "n", "n", 50, fmt.Sprintf("how many of the newest events to print first (0 to %d)", api.MaxEventLimit))
	return cmd
}

// eventsOpts are the flags of "camd events".
type eventsOpts struct {
	follow              bool
	camera, kind, since string
	n                   int
}

// runEvents prints the events.
func runEvents(ctx context.Context, c *cliConn, o eventsOpts, stdout, stderr io.Writer) error {
	c.stderr = stderr
	follow, camera, kind, since, n := &o.follow, &o.camera, &o.kind, &o.since, &o.n
	q := api.EventQuery{Camera: *camera, Limit: *n, Tail: true}
	if *kind != "" {
		for _, k := range strings.Split(*kind, ",") {
			q.Kinds = append(q.Kinds, events.Kind(strings.TrimSpace(k)))
		}
	}
	if *since != "" {
		if t, err := time.Parse(time.RFC3339, *since); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(*since); err == nil && d >= 0 {
			q.Since = time.Now().Add(-d)
		} else {
			return usagef("--since %q is neither an RFC 3339 time nor a duration such as 24h", *since)
		}
	}
	cl := c.client()
	defer cl.CloseIdleConnections()
	printEv := func(e events.Event) error {
		if c.json {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(stdout, eventLine(e))
		return err
	}

	var last uint64
	if *n > 0 || !*follow {
		rctx, cancel := context.WithTimeout(ctx, cliTimeout)
		page, err := cl.Events(rctx, q)
		cancel()
		if err != nil {
			return c.report(stderr, err)
		}
		for _, e := range page.Events {
			if err := printEv(e); err != nil {
				return err
			}
		}
		last = page.LastID
	}
	if !*follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	wait := eventsRetryMin
	for {
		err := cl.StreamEvents(ctx, q, last, func(e events.Event) error {
			last = e.ID
			wait = eventsRetryMin
			return printEv(e)
		})
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) {
			return c.report(stderr, err)
		}
		if err == nil {
			err = errors.New("the daemon ended the event stream")
		}
		fmt.Fprintf(stderr, "camd: %v; reconnecting in %s\n", oneLineErr(err), wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, eventsRetryMax)
	}
}

// eventLine is one event as the CLI prints it: local time, camera (or
// "-" for the daemon), kind, details as key=value sorted by key.
func eventLine(e events.Event) string {
	cam := e.Camera
	if cam == "" {
		cam = "-"
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s  #%-5d %-12s %-16s", e.Time.Local().Format("2006-01-02 15:04:05"), e.ID, cam, e.Kind)
	for _, k := range keys {
		v := e.Details[k]
		if strings.ContainsAny(v, " \t\"") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return strings.TrimRight(b.String(), " ")
}

func oneLineErr(err error) string {
	var u *api.UnreachableError
	if errors.As(err, &u) {
		return u.Error()
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
