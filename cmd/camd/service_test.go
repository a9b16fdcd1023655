package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/template"

	"github.com/camd/camd/packaging"
)

// render executes a custom script the way kardianos/service does (as a
// text/template) and returns the text it would write.
func render(t *testing.T, script string) string {
	t.Helper()
	tpl, err := template.New("").Parse(script)
	if err != nil {
		t.Fatalf("kardianos/service could not parse the script: %v", err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, struct{}{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPlanInstallSystemd(t *testing.T) {
	// Not in TMPDIR: the unit's PrivateTmp hides /tmp, and install refuses it.
	dir, err := os.MkdirTemp(".", "_svctest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg, _ := filepath.Abs(filepath.Join(dir, "my {{cams}}.yaml"))
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if why := hiddenByUnit(cfg); why != "" {
		t.Skip(why)
	}
	p, err := planInstall("linux", "/usr/local/bin/camd", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Name != "camd" || p.path != "/etc/systemd/system/camd.service" || p.cfg.UserName != "camd" {
		t.Errorf("name %q path %q user %q", p.cfg.Name, p.path, p.cfg.UserName)
	}
	wantArgs := []string{"run", "--config", cfg, "--data-dir", "/var/lib/camd"}
	if strings.Join(p.args, "|") != strings.Join(wantArgs, "|") {
		t.Errorf("args %q, want %q", p.args, wantArgs)
	}
	script, _ := p.cfg.Option["SystemdScript"].(string)
	got := render(t, script)
	if got != p.text {
		t.Errorf("the library would write\n%s\nnot\n%s", got, p.text)
	}
	if !strings.Contains(got, "\nExecStart=/usr/local/bin/camd run --config \""+cfg+"\" --data-dir /var/lib/camd\n") {
		t.Errorf("ExecStart not as expected in\n%s", got)
	}
	// The rest is the packaged unit: RestartSec=2, not the library's 120.
	if !strings.Contains(got, "\nRestartSec=2\n") || strings.Contains(got, "RestartSec=120") {
		t.Error("RestartSec is not camd's")
	}
}

func TestPlanInstallDefaultConfig(t *testing.T) {
	p, err := planInstall("linux", "/usr/bin/camd", "")
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(packaging.SystemdConfigPath)
	switch {
	case statErr == nil:
		if p.config != packaging.SystemdConfigPath || p.writeCfg {
			t.Errorf("existing default config: config %q writeCfg %v", p.config, p.writeCfg)
		}
	case len(defaultConfigYAML) > 0:
		if p.config != packaging.SystemdConfigPath || !p.writeCfg {
			t.Errorf("missing default config: config %q writeCfg %v", p.config, p.writeCfg)
		}
	default:
		if p.config != "" {
			t.Errorf("no default config to write, yet config %q", p.config)
		}
	}
}

func TestPlanInstallRefuses(t *testing.T) {
	for _, exe := range []string{"/root/camd", "/home/u/go/bin/camd", "/tmp/camd", "/var/tmp/x/camd", "/run/user/1000/camd"} {
		_, err := planInstall("linux", exe, "")
		if err == nil || !strings.Contains(err.Error(), "hides from the service") || !strings.Contains(err.Error(), "/usr/local/bin/camd") {
			t.Errorf("%s: %v", exe, err)
		}
	}
	for _, exe := range []string{"/usr/bin/camd", "/usr/local/bin/camd", "/opt/camd/camd", "/homestead/camd"} {
		if why := hiddenByUnit(exe); why != "" {
			t.Errorf("%s: %s", exe, why)
		}
	}
	_, err := planInstall("linux", "/usr/bin/camd", "/nonexistent/camd.yaml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/camd.yaml") {
		t.Errorf("missing --config: %v", err)
	}
	_, err = planInstall("linux", "/usr/bin/camd", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("--config DIR: %v", err)
	}
}

func TestPlanInstallLaunchd(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "camd.yaml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := planInstall("darwin", "/Users/me/bin/camd", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Name != packaging.LaunchdLabel || p.path != packaging.LaunchdPlistPath {
		t.Errorf("name %q path %q", p.cfg.Name, p.path)
	}
	if p.cfg.Option["RunAtLoad"] != true || p.cfg.Option["KeepAlive"] != true {
		t.Errorf("options %v", p.cfg.Option)
	}
	script, _ := p.cfg.Option["LaunchdConfig"].(string)
	got := render(t, script)
	if got != p.text || !strings.Contains(got, "<string>/Users/me/bin/camd</string>") ||
		!strings.Contains(got, "<string>"+cfg+"</string>") || !strings.Contains(got, "<string>"+packaging.LaunchdDataDir+"</string>") {
		t.Errorf("plist:\n%s", got)
	}
}

func TestPlanInstallWindows(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "camd.yaml")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := planInstall("windows", `C:\camd\camd.exe`, cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := p.cfg.Option
	if o["OnFailure"] != "restart" || o["OnFailureDelayDuration"] != "5s" || o["OnFailureResetPeriod"] != 86400 || o["StartType"] != "automatic" {
		t.Errorf("recovery options %v", o)
	}
	if len(p.args) < 2 || p.args[0] != "service" || p.args[1] != "run" || p.args[2] != "--config" || p.args[3] != cfg {
		t.Errorf("args %q", p.args)
	}
}

func TestInstallDryRun(t *testing.T) {
	exe, err := thisExecutable()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(context.Background(), []string{"install", "--dry-run"}, &out, &errb)
	if runtime.GOOS == "linux" && hiddenByUnit(exe) != "" {
		// The test binary lives in /tmp: install says why it will not do.
		if err == nil || !strings.Contains(err.Error(), "PrivateTmp") && !strings.Contains(err.Error(), "ProtectHome") {
			t.Fatalf("err %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ExecStart="+exe+" run") && !strings.Contains(out.String(), "<string>"+exe+"</string>") {
		t.Errorf("dry run:\n%s", out.String())
	}
}

func TestServiceUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"service", "--help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "camd service status") {
		t.Errorf("service --help: %v %q", err, out.String())
	}
	out.Reset()
	var ee exitError
	if err := run(context.Background(), []string{"service"}, &out, &errb); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("service with no command: %v", err)
	}
	errb.Reset()
	if err := run(context.Background(), []string{"service", "frob"}, &out, &errb); !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errb.String(), "frob") {
		t.Errorf("service frob: %v %q, want a usage error (2) naming it", err, errb.String())
	}
	if runtime.GOOS != "windows" {
		err := run(context.Background(), []string{"service", "run"}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "camd run") {
			t.Errorf("service run on Unix: %v", err)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"install", "--help"}, &out, &errb); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "Usage: camd install") {
		t.Errorf("install --help: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"install", "extra"}, &out, &errb); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("install extra: %v", err)
	}
}

func TestNeedRoot(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("root or Windows")
	}
	for _, cmd := range []string{"install", "uninstall", "start", "stop", "restart"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{cmd}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "needs root") || !strings.Contains(err.Error(), "sudo camd "+cmd) {
			t.Errorf("%s as non-root: %v", cmd, err)
		}
	}
}
