package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/camd/camd/daemon"
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

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f runFlags
	fs := flag.NewFlagSet("camd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "YAML config `file` (every setting has a default; flags override the file)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data `dir` for the store and the API token (default "+daemon.DefaultDataDir()+")")
	fs.StringVar(&f.apiListen, "api-listen", "", "control API `address` (default "+daemon.DefaultAPIListen+")")
	fs.StringVar(&f.rtspListen, "rtsp-listen", "", "relay RTSP `address`, or off (default "+daemon.DefaultRelayListen+")")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json (default text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn or error (default info)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: camd run [flags]")
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "Runs the daemon in the foreground (it never forks) and logs to stderr.")
		fmt.Fprintln(stdout, "SIGTERM or SIGINT shut it down; a second one exits at once. SIGHUP")
		fmt.Fprintln(stdout, "re-reads --config and applies thresholds and log level.")
		fmt.Fprintln(stdout)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q (see camd run --help)", fs.Arg(0))
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

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
