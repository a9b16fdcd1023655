package main

// "camd health": the container health check. It needs no shell and no
// token (/healthz is public), so an image's HEALTHCHECK can run it as is.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/camd/camd/internal/printable"
)

const healthUsage = `camd health [flags]

Asks the daemon's /healthz whether its supervision loop runs. Exits 0 when
it answers ok, 1 when it is unhealthy or cannot be reached, 2 on a usage
error. It needs no token; --api, $CAMD_API, --ca and --fingerprint say where
and how to reach the daemon, as for the other commands.`

// healthTimeout bounds the whole check: a daemon that cannot answer
// /healthz in this long is not healthy, and container runtimes give a check
// 30 s by default.
const healthTimeout = 10 * time.Second

// cmdHealth is "camd health".
func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stdout, stderr = printable.NewWriter(stdout), printable.NewWriter(stderr)
	var c cliConn
	fs := cliFlags("camd health", healthUsage, &c, stderr)
	timeout := fs.Duration("timeout", healthTimeout, "give up after this long")
	pos, err := cliParse(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		fmt.Fprintln(stderr, "camd: health takes no arguments")
		return exitError{2}
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "camd: --timeout must be above 0")
		return exitError{2}
	}
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	h, err := cl.Health(ctx)
	if err != nil {
		return c.report(stderr, err)
	}
	if c.json {
		b, _ := json.Marshal(h)
		if err := printJSON(stdout, b); err != nil {
			return err
		}
	} else if h.OK() {
		msg := "ok"
		if h.Degraded {
			msg += " (degraded: " + h.DegradedReason + ")"
		}
		fmt.Fprintln(stdout, msg)
	}
	if !h.OK() {
		fmt.Fprintf(stderr, "camd: %s: %s\n", h.Status, h.Reason)
		return errSilent
	}
	return nil
}
