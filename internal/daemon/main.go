package daemon

import (
	"context"
	"os"
	"os/signal"
)

// Main runs a daemon as the process's main activity: New, then Run with
// signal handling. SIGTERM and SIGINT (and the cancellation of ctx) begin a
// graceful shutdown; a second one exits at once with status 1. SIGHUP calls
// reload and applies the config it returns; a reload error is logged and
// changes nothing. reload may be nil (SIGHUP is then only logged).
func Main(ctx context.Context, opts Options, reload func() (Config, error)) error {
	// Catch signals before start-up so that an early SIGTERM is a clean
	// shutdown rather than the default kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, shutdownSignals...)
	if len(reloadSignals) > 0 { // Notify with no signals means all of them
		signal.Notify(sigs, reloadSignals...)
	}
	defer signal.Stop(sigs)

	d, err := New(ctx, opts)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()

	parent := ctx.Done()
	stopping := false
	for {
		select {
		case err := <-done:
			return err
		case <-parent:
			parent = nil
			stopping = true
			cancel()
		case s := <-sigs:
			switch {
			case isReload(s):
				d.log.Info("signal received; reloading the config", "signal", s.String())
				if reload == nil {
					d.log.Warn("no config file to reload (start with --config)")
					continue
				}
				next, err := reload()
				if err == nil {
					err = d.Reload(next)
				}
				if err != nil {
					d.log.Error("reload failed; nothing changed", "err", err)
				}
			case stopping:
				d.log.Warn("second signal; exiting now", "signal", s.String(), "unfinished", d.Step())
				d.opts.Exit(1)
			default:
				d.log.Info("signal received; shutting down", "signal", s.String())
				stopping = true
				cancel()
			}
		}
	}
}
