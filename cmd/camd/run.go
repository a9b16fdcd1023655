package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/camd/camd/internal/daemon"
)

// runFlags are camd run's flags; each overrides the config file's value
// when given.
type runFlags struct {
	config                string
	dataDir               string
	apiListen, rtspListen string
	logFormat, logLevel   string
	set                   map[string]bool
}

func (f *runFlags) apply(c *daemon.Config) {
	if f.set["data-dir"] {
		c.DataDir = f.dataDir
	}
	if f.set["api-listen"] {
		c.API.Listen = f.apiListen
	}
	if f.set["rtsp-listen"] {
		c.Relay.Listen = f.rtspListen
	}
	if f.set["log-format"] {
		c.Log.Format = f.logFormat
	}
	if f.set["log-level"] {
		c.Log.Level = f.logLevel
	}
}

// load reads the config file (if any) and puts the flags on top.
func (f *runFlags) load() (daemon.Config, error) {
	var c daemon.Config
	if f.config != "" {
		var err error
		if c, err = daemon.LoadConfig(f.config); err != nil {
			return daemon.Config{}, err
		}
	}
	f.apply(&c)
	return c, c.Validate()
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run the daemon in the foreground",
		Long: `Runs the daemon in the foreground (it never forks) and logs to stderr.
SIGTERM or SIGINT shut it down; a second one exits at once. SIGHUP
re-reads --config and applies thresholds and log level.

Every setting has a default, so no config file is needed; flags override
the file. A mistake in the file is reported with its line and key, and
camd exits 1 without starting.`,
		Example: `  camd run
  camd run --config /etc/camd/camd.yaml
  camd run --data-dir ./state --api-listen 127.0.0.1:7654 --rtsp-listen off
  camd run --log-format json --log-level debug`,
		Args: noArgs("run"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.set = map[string]bool{}
			cmd.Flags().Visit(func(fl *pflag.Flag) { f.set[fl.Name] = true })
			return runDaemon(cmd.Context(), &f, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "", "YAML config `file` (every setting has a default; flags override the file)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data `dir` for the store and the API token (default "+daemon.DefaultDataDir()+")")
	fs.StringVar(&f.apiListen, "api-listen", "", "control API `address` (default "+daemon.DefaultAPIListen+")")
	fs.StringVar(&f.rtspListen, "rtsp-listen", "", "relay RTSP `address`, or off (default "+daemon.DefaultRelayListen+")")
	fs.StringVar(&f.logFormat, "log-format", "", "log `format`: text or json (default text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log `level`: debug, info, warn or error (default info)")
	return cmd
}

// cmdRun is "camd run ARGS…" on its own, for the Windows service, whose
// daemon ends when ctx is cancelled.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newRunCmd()
	c.SetArgs(append([]string{}, args...))
	c.SetOut(stdout)
	c.SetErr(stderr)
	return execute(ctx, c, stderr)
}

func runDaemon(ctx context.Context, f *runFlags, stderr io.Writer) error {
	cfg, err := f.load()
	if err != nil {
		return err
	}
	var reload func() (daemon.Config, error)
	if f.config != "" {
		reload = f.load
	}
	return daemon.Main(ctx, daemon.Options{
		Config:  cfg,
		Version: version,
		Stderr:  stderr,
		Hooks:   daemon.HooksFromEnv(),
	}, reload)
}
