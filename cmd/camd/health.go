package main

// "camd health": the container health check. It needs no shell and no
// token (/healthz is public), so an image's HEALTHCHECK can run it as is.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/camd/camd/internal/printable"
)

// healthTimeout bounds the whole check: a daemon that cannot answer
// /healthz in this long is not healthy, and container runtimes give a check
// 30 s by default.
const healthTimeout = 10 * time.Second

// newHealthCmd is "camd health".
func newHealthCmd() *cobra.Command {
	var c cliConn
	timeout := healthTimeout
	cmd := &cobra.Command{
		Use:   "health",
		Short: "exit 0 when the daemon's /healthz is ok (for health checks)",
		Long: `Asks the daemon's /healthz whether its supervision loop runs. Exits 0 when
it answers ok, 1 when it is unhealthy or cannot be reached, 2 on a usage
error. It needs no token.

` + connHelp,
		Example: `  camd health
  camd health --api https://nas.local:7654 --ca /etc/camd/ca.pem --timeout 5s`,
		Args: noArgs("health"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usagef("--timeout must be above 0")
			}
			return cmdHealth(cmd.Context(), &c, timeout, printable.NewWriter(cmd.OutOrStdout()), printable.NewWriter(cmd.ErrOrStderr()))
		},
	}
	addConnFlags(cmd, &c)
	cmd.Flags().DurationVar(&timeout, "timeout", healthTimeout, "give up after this long")
	return cmd
}

// cmdHealth asks /healthz.
func cmdHealth(ctx context.Context, c *cliConn, timeout time.Duration, stdout, stderr io.Writer) error {
	c.stderr = stderr
	cl := c.client()
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
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
