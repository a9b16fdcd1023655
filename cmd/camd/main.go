// Command camd keeps RTSP cameras alive on headless boxes.
//
// Run "camd --help" for the commands. Every command exits 0 on success, 1 on
// failure and 2 on a usage error (cli.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// Exit statuses: the one rule every command follows.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errSilent is a failure (exit 1) whose message the command has printed.
var errSilent = errors.New("silent")

// exitError carries a specific exit status; whatever it stands for has been
// printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps what run returned to the process's exit status, printing
// an error that has not been printed yet.
func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errSilent):
		return exitFailure
	}
	fmt.Fprintln(stderr, "camd:", err)
	return exitFailure
}
