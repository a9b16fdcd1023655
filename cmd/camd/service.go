package main

// camd install / uninstall / start / stop / restart / service: camd as a
// native service, through github.com/kardianos/service.
//
// The library's stock definitions are wrong for camd in several ways (its
// systemd unit waits RestartSec=120 and has a start-rate limit, launchd's
// RunAtLoad is off, Windows recovery does nothing), so camd hands it its own
// unit and plist (package packaging, the very files the packages ship) and
// the Windows recovery options. On Unix the installed service runs
// "camd run" directly, which handles its own signals; only on Windows does
// the service go through service.Run ("camd service run"), because that is
// how a program talks to the service control manager.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/camd/camd/packaging"
)

// installPlan is everything "camd install" will do, worked out without
// touching the system (so that --dry-run and tests can show it).
type installPlan struct {
	goos     string
	exe      string   // the binary the service runs
	args     []string // its arguments
	config   string   // config file; "" means camd's built-in defaults
	dataDir  string
	path     string // where the unit/plist is written ("" on Windows)
	text     string // the unit/plist text ("" on Windows)
	cfg      *service.Config
	writeCfg bool // config is the default path and missing: write the default config
}

// windowsDataDir is the data dir of the Windows service (LocalSystem has no
// useful per-user dirs).
func windowsDataDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "camd")
}

// defaultServiceConfig is the config file a service uses when install is
// not given --config.
func defaultServiceConfig(goos string) string {
	switch goos {
	case "darwin":
		return packaging.LaunchdConfigPath
	case "windows":
		return filepath.Join(windowsDataDir(), "camd.yaml")
	}
	return packaging.SystemdConfigPath
}

// hiddenByUnit says why the systemd unit's sandbox would hide exe from the
// service, or "" if it would not.
func hiddenByUnit(exe string) string {
	for _, p := range []struct{ dir, why string }{
		{"/home", "ProtectHome=yes"},
		{"/root", "ProtectHome=yes"},
		{"/run/user", "ProtectHome=yes"},
		{"/tmp", "PrivateTmp=yes"},
		{"/var/tmp", "PrivateTmp=yes"},
	} {
		if exe == p.dir || strings.HasPrefix(exe, p.dir+"/") {
			return fmt.Sprintf("%s is under %s, which the unit's %s hides from the service", exe, p.dir, p.why)
		}
	}
	return ""
}

// planInstall works out the service definition for goos. exe is the
// absolute path of the binary; config is the --config flag ("" if none).
func planInstall(goos, exe, config string) (*installPlan, error) {
	p := &installPlan{goos: goos, exe: exe}
	if config == "" {
		p.config = defaultServiceConfig(goos)
		if _, err := os.Stat(p.config); err != nil {
			if len(defaultConfigYAML) > 0 {
				p.writeCfg = true
			} else {
				p.config = "" // nothing to write: camd's built-in defaults
			}
		}
	} else {
		abs, err := filepath.Abs(config)
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("config file %s: %w", abs, errors.Unwrap(err))
		} else if st.IsDir() {
			return nil, fmt.Errorf("config file %s is a directory", abs)
		}
		p.config = abs
	}
	p.cfg = &service.Config{
		Name:        "camd",
		DisplayName: "camd camera daemon",
		Description: "Keeps RTSP cameras connected and serves them to local readers.",
		Executable:  exe,
		Option:      service.KeyValue{},
	}
	var err error
	switch goos {
	case "darwin":
		p.dataDir = packaging.LaunchdDataDir
		p.args = packaging.RunArgs(p.config, p.dataDir)
		p.path = packaging.LaunchdPlistPath
		p.text, err = packaging.LaunchdPlistFor(exe, p.args)
		p.cfg.Name = packaging.LaunchdLabel
		p.cfg.Option["LaunchdConfig"] = packaging.TemplateLiteral(p.text)
		p.cfg.Option["RunAtLoad"] = true
		p.cfg.Option["KeepAlive"] = true
	case "windows":
		p.dataDir = windowsDataDir()
		p.args = append([]string{"service", "run"}, packaging.RunArgs(p.config, p.dataDir)[1:]...)
		p.cfg.Option["StartType"] = "automatic"
		p.cfg.Option["OnFailure"] = "restart"
		p.cfg.Option["OnFailureDelayDuration"] = "5s"
		p.cfg.Option["OnFailureResetPeriod"] = 24 * 60 * 60
	default:
		if why := hiddenByUnit(exe); why != "" {
			return nil, fmt.Errorf("%s; copy it first, e.g. install -m 0755 %s /usr/local/bin/camd && /usr/local/bin/camd install", why, exe)
		}
		if c := p.config; c != "" && !p.writeCfg {
			if why := hiddenByUnit(c); why != "" {
				return nil, fmt.Errorf("config file: %s; put it in /etc/camd", why)
			}
		}
		p.dataDir = packaging.SystemdDataDir
		p.args = packaging.RunArgs(p.config, p.dataDir)
		p.path = "/etc/systemd/system/" + packaging.SystemdUnitName
		p.text, err = packaging.SystemdUnitFor(exe, p.args)
		p.cfg.Option["SystemdScript"] = packaging.TemplateLiteral(p.text)
		p.cfg.UserName = packaging.SystemdUser
	}
	if err != nil {
		return nil, err
	}
	p.cfg.Arguments = p.args
	return p, nil
}

// defaultConfigYAML is the documented default config written by install
// when the default config file does not exist yet.
// TODO: packaging.DefaultConfig (an embed of packaging/camd.yaml) once that
// file has landed; until then install leaves --config out and camd runs on
// its built-in defaults.
var defaultConfigYAML []byte

// thisExecutable is the resolved path of the running binary.
func thisExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("cannot find the camd binary: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Abs(exe)
}

// needRoot fails unless the process can manage system services.
func needRoot(cmd string) error {
	if runtime.GOOS != "windows" && os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: run \"sudo camd %s\"", cmd, cmd)
	}
	return nil
}

// noopProgram is the service.Interface for managing the service (install,
// start, ...), where the library never calls it.
type noopProgram struct{}

func (noopProgram) Start(service.Service) error { return nil }
func (noopProgram) Stop(service.Service) error  { return nil }

// newService returns the library's handle on camd's service for this OS,
// refusing service managers camd ships no definition for.
func newService(p *installPlan) (service.Service, error) {
	s, err := service.New(noopProgram{}, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("no service manager found: %w", err)
	}
	if runtime.GOOS == "linux" && s.Platform() != "linux-systemd" {
		return nil, fmt.Errorf("this system's service manager is %s; camd ships a unit for systemd only: run \"camd run\" under your supervisor instead", s.Platform())
	}
	return s, nil
}

// packagedUnit returns the path of a unit installed by the camd package, if any.
func packagedUnit() string {
	for _, d := range []string{"/lib/systemd/system", "/usr/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, packaging.SystemdUnitName)); err == nil {
			return filepath.Join(d, packaging.SystemdUnitName)
		}
	}
	return ""
}

func newInstallCmd() *cobra.Command {
	var config string
	var noStart, dryRun bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "install camd as a native service",
		Long: `Installs camd as a native service that runs "camd run" from this binary:
a systemd unit on Linux, a launchd daemon on macOS, a Windows service.
The service starts at boot and is restarted within seconds whenever it
exits. Needs root, except with --dry-run.`,
		Example: `  sudo camd install
  sudo camd install --config /etc/camd/camd.yaml --no-start
  camd install --dry-run`,
		Args: noArgs("install"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdInstall(config, noStart, dryRun, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&config, "config", "", "config `file` the service runs with (default "+defaultServiceConfig(runtime.GOOS)+")")
	fs.BoolVar(&noStart, "no-start", false, "install and enable, but do not start")
	fs.BoolVar(&dryRun, "dry-run", false, "print the service definition and what would be done; change nothing")
	return cmd
}

func cmdInstall(configFlag string, noStartFlag, dryRunFlag bool, stdout io.Writer) error {
	config, noStart, dryRun := &configFlag, &noStartFlag, &dryRunFlag
	if !*dryRun {
		if err := needRoot("install"); err != nil {
			return err
		}
	}
	exe, err := thisExecutable()
	if err != nil {
		return err
	}
	p, err := planInstall(runtime.GOOS, exe, *config)
	if err != nil {
		return err
	}
	if *dryRun {
		return printPlan(stdout, p)
	}
	s, err := newService(p)
	if err != nil {
		return err
	}
	if runtime.GOOS == "linux" {
		if u := packagedUnit(); u != "" {
			return fmt.Errorf("camd is installed from a package (%s); the package manages the service: use systemctl", u)
		}
		if err := ensureUser(stdout); err != nil {
			return err
		}
	}
	if runtime.GOOS == "darwin" {
		// The plist runs camd as _camd: the user, its data dir and its log
		// dir must exist first (the .pkg's preinstall runs the same script).
		if out, err := exec.Command("/bin/sh", "-c", packaging.MacOSUserScript, "macos-user.sh").CombinedOutput(); err != nil {
			return fmt.Errorf("creating the %q user and its dirs: %v: %s", packaging.LaunchdUser, err, strings.TrimSpace(string(out)))
		}
	}
	if p.writeCfg {
		if err := os.MkdirAll(filepath.Dir(p.config), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p.config, defaultConfigYAML, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the default config to %s\n", p.config)
	}
	if err := s.Install(); err != nil {
		if strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("camd is already installed as a service (%v); run \"camd uninstall\" first to reinstall", err)
		}
		return fmt.Errorf("installing the service: %w", err)
	}
	where := p.path
	if where == "" {
		where = "service " + p.cfg.Name
	}
	fmt.Fprintf(stdout, "installed %s: %s %s\n", where, exe, strings.Join(p.args, " "))
	if *noStart {
		fmt.Fprintln(stdout, "enabled at boot; start it with \"camd start\"")
		return nil
	}
	if err := s.Start(); err != nil {
		return fmt.Errorf("installed, but starting the service failed: %w (see %s)", err, logHint())
	}
	fmt.Fprintf(stdout, "started; logs: %s\n", logHint())
	return nil
}

// printPlan prints what install would do.
func printPlan(w io.Writer, p *installPlan) error {
	fmt.Fprintf(w, "# service: %s\n", p.cfg.Name)
	fmt.Fprintf(w, "# command: %s %s\n", p.exe, strings.Join(p.args, " "))
	if p.writeCfg {
		fmt.Fprintf(w, "# would write the default config to %s\n", p.config)
	}
	if p.goos == "windows" {
		fmt.Fprintf(w, "# recovery: restart after %s on every failure\n", p.cfg.Option["OnFailureDelayDuration"])
		return nil
	}
	fmt.Fprintf(w, "# file: %s\n", p.path)
	_, err := io.WriteString(w, p.text)
	return err
}

// ensureUser creates the camd system user (and group) unless it exists.
func ensureUser(stdout io.Writer) error {
	name := packaging.SystemdUser
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		return fmt.Errorf("there is no %q system user and no useradd to create one: create it (group %q too), then run camd install again", name, name)
	}
	shell := "/usr/sbin/nologin"
	for _, sh := range []string{"/usr/sbin/nologin", "/sbin/nologin", "/bin/false"} {
		if _, err := os.Stat(sh); err == nil {
			shell = sh
			break
		}
	}
	args := []string{"--system", "--home-dir", packaging.SystemdDataDir, "--no-create-home", "--shell", shell}
	if _, err := user.LookupGroup(name); err == nil {
		args = append(args, "--gid", name)
	} else {
		args = append(args, "--user-group")
	}
	out, err := exec.Command(useradd, append(args, name)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("creating the %q system user: useradd: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(stdout, "created system user %q\n", name)
	return nil
}

func logHint() string {
	switch runtime.GOOS {
	case "linux":
		return "journalctl -u camd"
	case "darwin":
		return packaging.LaunchdLogDir + "/camd.log"
	case "windows":
		return filepath.Join(windowsDataDir(), "camd.log")
	}
	return "the service manager's log"
}

// manage returns the library's handle on the installed service.
func manage(name string, root bool) (service.Service, *installPlan, error) {
	if root {
		if err := needRoot(name); err != nil {
			return nil, nil, err
		}
	}
	exe, err := thisExecutable()
	if err != nil {
		return nil, nil, err
	}
	// The definition does not matter for managing; only the name does. A
	// missing --config is fine here, and so is a binary in /home.
	p := &installPlan{goos: runtime.GOOS, exe: exe, cfg: &service.Config{Name: "camd", Executable: exe}}
	if runtime.GOOS == "darwin" {
		p.cfg.Name = packaging.LaunchdLabel
		p.path = packaging.LaunchdPlistPath
	} else if runtime.GOOS != "windows" {
		p.path = "/etc/systemd/system/" + packaging.SystemdUnitName
	}
	s, err := newService(p)
	if err != nil {
		return nil, nil, err
	}
	return s, p, nil
}

// notInstalled turns the library's vague errors into one line.
func notInstalled(s service.Service, err error) error {
	if err == nil {
		return nil
	}
	if st, serr := s.Status(); errors.Is(serr, service.ErrNotInstalled) || (serr == nil && st == service.StatusUnknown) {
		return errors.New("camd is not installed as a service (run \"sudo camd install\")")
	}
	return err
}

func newUninstallCmd() *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "remove the native service",
		Long: `Stops camd's service and removes it. The state (cameras and their
statuses) is kept unless --purge is given; --purge also removes the data
dir and, on Linux, the camd user. Needs root.`,
		Example: `  sudo camd uninstall
  sudo camd uninstall --purge`,
		Args: noArgs("uninstall"),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmdUninstall(purge, cmd.OutOrStdout()) },
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove the data dir and the camd user")
	return cmd
}

func cmdUninstall(purge bool, stdout io.Writer) error {
	s, p, err := manage("uninstall", true)
	if err != nil {
		return err
	}
	if runtime.GOOS == "linux" {
		if _, err := os.Stat(p.path); err != nil {
			if u := packagedUnit(); u != "" {
				return fmt.Errorf("camd's service comes from the camd package (%s): remove the package instead (apt remove camd / dnf remove camd)", u)
			}
			return fmt.Errorf("camd is not installed as a service (no %s)", p.path)
		}
	}
	_ = s.Stop() // not running is fine
	if err := s.Uninstall(); err != nil {
		return notInstalled(s, fmt.Errorf("removing the service: %w", err))
	}
	what := p.path
	if what == "" {
		what = "service " + p.cfg.Name
	}
	fmt.Fprintf(stdout, "stopped and removed %s\n", what)
	dataDir := packaging.SystemdDataDir
	switch runtime.GOOS {
	case "darwin":
		dataDir = packaging.LaunchdDataDir
	case "windows":
		dataDir = windowsDataDir()
	}
	if !purge {
		fmt.Fprintf(stdout, "kept the state in %s (camd uninstall --purge removes it)\n", dataDir)
		return nil
	}
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("removing %s: %w", dataDir, err)
	}
	fmt.Fprintf(stdout, "removed %s\n", dataDir)
	if runtime.GOOS == "linux" {
		if _, err := user.Lookup(packaging.SystemdUser); err == nil {
			if out, err := exec.Command("userdel", packaging.SystemdUser).CombinedOutput(); err != nil {
				return fmt.Errorf("removing the %q user: userdel: %v: %s", packaging.SystemdUser, err, strings.TrimSpace(string(out)))
			}
			fmt.Fprintf(stdout, "removed user %q\n", packaging.SystemdUser)
		}
	}
	return nil
}

// newServiceActionCmd is "camd start", "stop" or "restart" of the installed
// service.
func newServiceActionCmd(name, short, long string, act func(service.Service) error, done string, hint bool) *cobra.Command {
	return &cobra.Command{
		Use:     name,
		Short:   short,
		Long:    long + " Needs root.",
		Example: "  sudo camd " + name,
		Args:    noArgs(name),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := manage(name, true)
			if err != nil {
				return err
			}
			if err := act(s); err != nil {
				ing := map[string]string{"start": "starting", "stop": "stopping", "restart": "restarting"}[name]
				err = fmt.Errorf("%s the service: %w", ing, err)
				if hint {
					err = fmt.Errorf("%w (see %s)", err, logHint())
				}
				return notInstalled(s, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), done)
			return nil
		},
	}
}

func newServiceStartCmd() *cobra.Command {
	return newServiceActionCmd("start", "start the installed service", "Starts the installed camd service.",
		service.Service.Start, "started", true)
}

func newServiceStopCmd() *cobra.Command {
	return newServiceActionCmd("stop", "stop the installed service", "Stops the installed camd service (it starts again at boot).",
		service.Service.Stop, "stopped", false)
}

func newServiceRestartCmd() *cobra.Command {
	return newServiceActionCmd("restart", "restart the installed service", "Restarts the installed camd service.",
		service.Service.Restart, "restarted", true)
}

func newServiceCmd() *cobra.Command {
	c := groupCmd("service COMMAND", "report on the installed service (service status)", "Reports on camd's native service.", "  camd service status")
	c.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "print whether the service is running",
		Long: `Prints whether camd's service is running, stopped or not installed. As
for init scripts, the exit status is 0 when it runs, 3 when it is
stopped and 4 when it is not installed (or its status is unknown); 2 is
a usage error.`,
		Example: "  camd service status",
		Args:    noArgs("service status"),
		RunE:    func(cmd *cobra.Command, _ []string) error { return serviceStatus(cmd.OutOrStdout()) },
	}, &cobra.Command{
		Use:                "run [camd run flags]",
		Short:              "the Windows service entry point",
		Long:               "What the Windows service manager runs: \"camd run\" under the service control manager, logging to the data dir.",
		Example:            `  camd service run --config C:\ProgramData\camd\camd.yaml`,
		Hidden:             runtime.GOOS != "windows",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serviceRun(cmd.Context(), args, cmd.ErrOrStderr())
		},
	})
	return c
}

func serviceStatus(stdout io.Writer) error {
	s, p, err := manage("service status", false)
	if err != nil {
		return err
	}
	where := s.Platform()
	if p.path != "" {
		where += ", " + p.path
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		fmt.Fprintf(stdout, "camd: not installed (%s)\n", s.Platform())
		return exitError{4}
	case err != nil:
		fmt.Fprintf(stdout, "camd: %v (%s; see %s)\n", err, where, logHint())
		return exitError{3}
	case st == service.StatusRunning:
		fmt.Fprintf(stdout, "camd: running (%s)\n", where)
		return nil
	case st == service.StatusStopped:
		fmt.Fprintf(stdout, "camd: stopped (%s)\n", where)
		return exitError{3}
	}
	fmt.Fprintf(stdout, "camd: status unknown (%s)\n", where)
	return exitError{4}
}

// windowsProgram runs the daemon under the Windows service control manager:
// Start launches "camd run" with a context that Stop cancels.
type windowsProgram struct {
	args   []string
	log    io.Writer
	cancel context.CancelFunc
	done   chan error
}

func (w *windowsProgram) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() {
		err := cmdRun(ctx, w.args, w.log, w.log)
		w.done <- err
		if ctx.Err() == nil {
			// The daemon ended without being asked to: exit without
			// reporting SERVICE_STOPPED so that the service manager's
			// recovery action (restart after 5 s) applies.
			fmt.Fprintf(w.log, "camd: the daemon exited on its own (%v); exiting so that the service manager restarts it\n", err)
			os.Exit(1)
		}
	}()
	return nil
}

func (w *windowsProgram) Stop(service.Service) error {
	w.cancel()
	select {
	case err := <-w.done:
		return err
	case <-time.After(20 * time.Second):
		return errors.New("the daemon did not stop within 20 s")
	}
}

// serviceRun is what the Windows service executes. It talks to the service
// control manager through service.Run and runs the daemon (cmdRun, which
// must treat the cancellation of its context as a graceful shutdown) with
// its log in the data dir, since a service has no stderr.
func serviceRun(_ context.Context, args []string, stderr io.Writer) error {
	if runtime.GOOS != "windows" {
		return errors.New("\"camd service run\" is the Windows service entry point; use \"camd run\"")
	}
	if err := os.MkdirAll(windowsDataDir(), 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(windowsDataDir(), "camd.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the service log %s: %w", logPath, err)
	}
	defer f.Close()
	w := &windowsProgram{args: args, log: f}
	if service.Interactive() {
		w.log = stderr
	}
	s, err := service.New(w, &service.Config{Name: "camd"})
	if err != nil {
		return err
	}
	return s.Run()
}
