package main

// The command tree, on github.com/spf13/cobra: help with examples on every
// command, "camd --version", "camd completion bash|zsh|fish|powershell",
// man pages ("camd gen-man DIR", which "make man" runs) and one exit-status
// rule for every command: 0 success, 1 failure, 2 usage error.
//
// A command's own errors are failures; everything cobra itself refuses
// (an unknown command or flag, a wrong number of arguments) is a usage
// error. run tells them apart by wrapping every command's RunE.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() {
	// Commands are listed in the order they are added: the usual ones
	// first.
	cobra.EnableCommandSorting = false
}

// exitRule is the exit-status rule, as help and the man pages state it.
const exitRule = "Exit status: 0 success, 1 failure, 2 usage error (unknown command or flag, wrong arguments)."

const usageTemplate = `Usage: {{.UseLine}}{{if .HasAvailableSubCommands}}

Commands:{{$pad := usePadding .}}{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Use $pad}} {{.Short}}{{end}}{{end}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}

` + exitRule + `{{if .HasAvailableSubCommands}}
Run "{{.CommandPath}} COMMAND --help" for a command's flags and examples.{{end}}
`

// usePadding is the width of the widest subcommand usage of c.
func usePadding(c *cobra.Command) int {
	n := 0
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() || s.Name() == "help" {
			n = max(n, len(s.Use)+1)
		}
	}
	return n
}

func init() { cobra.AddTemplateFunc("usePadding", usePadding) }

// cmdFailure is an error returned by a command's own code: a failure (exit
// 1, or the status an exitError inside carries), not a usage error.
type cmdFailure struct{ err error }

func (f *cmdFailure) Error() string { return f.err.Error() }
func (f *cmdFailure) Unwrap() error { return f.err }

// usageErr is a usage error a command finds itself (after cobra has parsed
// its flags): run prints it with the command's usage, and exits 2.
type usageErr struct{ msg string }

func (u *usageErr) Error() string { return u.msg }

func usagef(format string, a ...any) error { return &usageErr{fmt.Sprintf(format, a...)} }

// run runs "camd ARGS…" and returns nil, a failure (printed or not: see
// exitCode) or exitError{2} for a usage error, which it has printed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd()
	root.SetArgs(append([]string{}, args...))
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(cliStdin)
	return execute(ctx, root, stderr)
}

// helpShown wraps c's help function to report whether a command's help
// was printed: run then returns flag.ErrHelp, as the flag package does,
// which exits 0. A group's help (camd --help, camd camera --help) is its
// normal answer, and returns nil.
func helpShown(c *cobra.Command) *bool {
	shown := new(bool)
	h := c.HelpFunc()
	c.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		*shown = !cmd.HasSubCommands()
		h(cmd, args)
	})
	return shown
}

// execute runs a command tree and sorts its error into failure or usage
// error.
func execute(ctx context.Context, root *cobra.Command, stderr io.Writer) error {
	prepare(root)
	shown := helpShown(root)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		if *shown {
			return flag.ErrHelp
		}
		return nil
	}
	var u *usageErr
	var f *cmdFailure
	if errors.As(err, &f) && !errors.As(err, &u) {
		return f.err
	}
	if cmd == nil {
		cmd = root
	}
	msg := err.Error()
	if errors.As(err, &u) {
		msg = u.msg
	}
	// The message comes last, where the eye lands.
	fmt.Fprintf(stderr, "Usage: %s\n", cmd.UseLine())
	fmt.Fprintf(stderr, "Run \"%s --help\" for the flags and examples.\n", cmd.CommandPath())
	fmt.Fprintf(stderr, "camd: %s\n", oneLineMsg(msg))
	return exitError{exitUsage}
}

// prepare completes a command tree once its output is set: cobra's help
// and completion commands (which take their output when made) are added
// and made to follow camd's rules, and every command's own errors are
// marked as failures.
func prepare(root *cobra.Command) {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%s", flagMsg(err)) })
	if root.HasSubCommands() {
		root.InitDefaultHelpCmd()
		root.InitDefaultCompletionCmd()
	}
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  camd help camera add"
			// cobra's help answers an unknown topic with the usage and
			// success; by camd's rule that is a usage error.
			c.Run = nil
			c.RunE = func(h *cobra.Command, args []string) error {
				cmd, rest, err := h.Root().Find(args)
				if err != nil || cmd == nil || len(rest) > 0 {
					return usagef("no command %q to help with", strings.Join(args, " "))
				}
				cmd.InitDefaultHelpFlag()
				cmd.InitDefaultVersionFlag()
				return cmd.Help()
			}
		case "completion":
			makeGroup(c)
			c.Short = "print a shell completion script (bash, zsh, fish, powershell)"
			c.Example = "  source <(camd completion bash)\n  camd completion zsh > \"${fpath[1]}/_camd\"\n  camd completion fish > ~/.config/fish/completions/camd.fish"
			for _, sh := range c.Commands() {
				sh.Example = map[string]string{
					"bash":       "  source <(camd completion bash)\n  camd completion bash > /etc/bash_completion.d/camd",
					"zsh":        "  camd completion zsh > \"${fpath[1]}/_camd\"",
					"fish":       "  camd completion fish > ~/.config/fish/completions/camd.fish",
					"powershell": "  camd completion powershell | Out-String | Invoke-Expression",
				}[sh.Name()]
			}
		}
	}
	wrapRunE(root)
}

var flagValueRE = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)

// flagMsg says what is wrong with a flag's value in words, not in the
// parser's ("strconv.ParseInt: parsing …").
func flagMsg(err error) string {
	m := flagValueRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	want := "a valid value"
	switch {
	case strings.Contains(m[3], "ParseInt"), strings.Contains(m[3], "ParseUint"):
		want = "a whole number"
	case strings.Contains(m[3], "ParseBool"):
		want = "true or false"
	case strings.Contains(m[3], "duration"):
		want = `a duration like "30s"`
	}
	name := m[2]
	if i := strings.LastIndex(name, "--"); i >= 0 {
		name = name[i:]
	}
	return fmt.Sprintf("%s wants %s, not %q", name, want, m[1])
}

// oneLineMsg folds cobra's multi-line suggestions onto one line.
func oneLineMsg(s string) string {
	s = strings.Replace(s, "\n\nDid you mean this?\n", " (did you mean: ", 1)
	if strings.Contains(s, "(did you mean: ") {
		s = strings.TrimRight(s, "\n") + ")"
	}
	return strings.Join(strings.Fields(s), " ")
}

// wrapRunE marks the errors of every command's own code as failures.
func wrapRunE(c *cobra.Command) {
	if c.RunE != nil {
		fn := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := fn(cmd, args); err != nil {
				var u *usageErr
				if errors.As(err, &u) {
					return err
				}
				return &cmdFailure{err}
			}
			return nil
		}
	}
	for _, s := range c.Commands() {
		wrapRunE(s)
	}
}

// Argument checks that say what is wrong in camd's words (cobra's own
// echo the arguments, one of which may be a URL with a password).
func noArgs(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("%s takes no arguments (%d given)", what, len(args))
		}
		return nil
	}
}

func exactArgs(n int, what, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (%d arguments given)", what, names, len(args))
		}
		return nil
	}
}

// groupCmd is a command that only holds subcommands: bare, it prints its
// help to stderr and exits 2; with an unknown subcommand it says so.
func groupCmd(use, short, long, example string) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: long, Example: example}
	makeGroup(c)
	return c
}

// makeGroup gives a command of subcommands the behaviour groupCmd says.
func makeGroup(c *cobra.Command) {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 || len(args) == 1 && args[0] == "help" {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		return usagef("%s", msg)
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			return cmd.Help() // "camd camera help"
		}
		cmd.SetOut(cmd.ErrOrStderr())
		_ = cmd.Help()
		return exitError{exitUsage}
	}
}

func newRootCmd() *cobra.Command {
	root := groupCmd("camd COMMAND", "keeps RTSP cameras connected and serves them to local readers",
		`camd keeps RTSP cameras connected on a headless box: it supervises each
camera's connection, reconnects it when it stalls or drops, keeps its
state across restarts, and serves it to local readers over RTSP.

"camd run" is the daemon; the other commands talk to it over its control
API (127.0.0.1:7654 unless --api or $CAMD_API says otherwise).`,
		`  camd run --config /etc/camd/camd.yaml
  camd camera add door - < door.url
  camd camera ls
  camd demo`)
	root.Version = version
	root.SetVersionTemplate("camd {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.AddCommand(
		newRunCmd(),
		newCameraCmd(),
		newStatusCmd(),
		newHealthCmd(),
		newEventsCmd(),
		newSimCmd(),
		newDemoCmd(),
		newInstallCmd(),
		newUninstallCmd(),
		newServiceStartCmd(),
		newServiceStopCmd(),
		newServiceRestartCmd(),
		newServiceCmd(),
		newVersionCmd(),
		newGenManCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Long:  "Prints camd's version (as \"camd --version\" does); --json adds the Go version, OS and architecture.",
		Example: `  camd version
  camd version --json`,
		Args: noArgs("version"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{
					"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
				})
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "camd", version)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// newGenManCmd writes a man page per command; "make man" runs it.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "write a man page for every command into DIR",
		Hidden: true,
		Example: `  camd gen-man dist/man
  man -l dist/man/camd-camera-add.1`,
		Args: exactArgs(1, "gen-man", "one DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			addExitRule(root)
			hdr := &doc.GenManHeader{Title: "CAMD", Section: "1", Source: "camd " + version, Manual: "camd manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("writing man pages to %s: %w", dir, err)
			}
			n, _ := filepath.Glob(filepath.Join(dir, "camd*.1"))
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d man pages to %s\n", len(n), dir)
			return nil
		},
	}
}

// addExitRule ends every command's description with the exit-status rule,
// for the man pages (help has it from the usage template).
func addExitRule(c *cobra.Command) {
	long := c.Long
	if long == "" {
		long = c.Short
	}
	c.Long = long + "\n\n" + exitRule
	for _, s := range c.Commands() {
		addExitRule(s)
	}
}
