// Command camd keeps RTSP cameras alive on headless boxes.
//
// Run "camd help" for the subcommands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. It returns an error to print; errSilent means
// the command already said what went wrong.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var errSilent = errors.New("silent")

// exitError carries a specific exit status.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func commands() []command {
	return []command{
		{"run", "run the daemon in the foreground", cmdRun},
		{"camera", "add, list, show, remove, start, stop, restart cameras", cmdCamera},
		{"status", "show the daemon's status", cmdStatus},
		{"events", "show camera and daemon events; --follow for live ones", runEvents},
		{"sim", "serve simulated RTSP cameras with injectable faults", cmdSim},
		{"demo", "run a simulator and a daemon together with a live table", cmdDemo},
		{"install", "install camd as a native service", cmdInstall},
		{"uninstall", "remove the native service", cmdUninstall},
		{"start", "start the installed service", cmdServiceStart},
		{"stop", "stop the installed service", cmdServiceStop},
		{"restart", "restart the installed service", cmdServiceRestart},
		{"service", "service status", cmdService},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "camd:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: camd COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run \"camd COMMAND --help\" for a command's flags.")
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("camd version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: camd version [--json]")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{
			"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		})
	}
	fmt.Fprintln(stdout, "camd", version)
	return nil
}
